package runtime

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qinqing/qinqing/shared/event"
)

// A handler's Logger is the function's logger tagged with the event's
// type, id and source (built when the handler first asks for it), and the
// server's line per event carries the same fields with the outcome.
func TestEventLogger(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(core).Sugar()
	var first, second *zap.SugaredLogger
	fn := &Function{Name: "probe", Handlers: map[string]Handler{
		"cn.huzhou.probe": OnDecision(func(ctx context.Context, m Meta, p *struct{}) (Decision, error) {
			first, second = Logger(ctx), Logger(ctx)
			Logger(ctx).Infow("inside", "k", 1)
			return Decision{}, event.Invalid("k", "refused before any database work")
		}),
	}}
	srv := NewServer(fn, nil, log)
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Type", "cn.huzhou.probe")
	req.Header.Set("Ce-Source", "/probe/source")
	req.Header.Set("Ce-Id", "probe-1")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("answer %d %s, want 400", rec.Code, rec.Body)
	}
	if first == nil || first != second {
		t.Errorf("Logger(ctx) built the event's logger more than once (%p, %p)", first, second)
	}
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("%d log lines, want the handler's and the server's: %v", len(entries), entries)
	}
	inside, line := entries[0].ContextMap(), entries[1].ContextMap()
	for k, want := range map[string]any{"type": "cn.huzhou.probe", "id": "probe-1", "source": "/probe/source"} {
		if inside[k] != want || line[k] != want {
			t.Errorf("%s: handler's line %v, server's line %v, want %v", k, inside[k], line[k], want)
		}
	}
	if inside["k"] != int64(1) || entries[0].Message != "inside" {
		t.Errorf("handler's line = %s %v", entries[0].Message, inside)
	}
	if entries[1].Message != "event" || line["status"] != int64(400) || line["outcome"] != event.EINVALID {
		t.Errorf("server's line = %s %v, want event status 400 outcome %s", entries[1].Message, line, event.EINVALID)
	}
	if _, ok := line["ms"].(float64); !ok {
		t.Errorf("server's line has no ms: %v", line)
	}
}

// The answer to an event reaches its sender before the server's log line
// is written: with the log's writer stalled on that line, the client reads
// the whole answer (a problem, with its Content-Length) and only then is
// the writer let go.
func TestAnswerBeforeLogLine(t *testing.T) {
	t.Parallel()
	stalled, release := make(chan struct{}), make(chan struct{})
	sink := writerFunc(func(p []byte) (int, error) {
		if strings.Contains(string(p), `"msg":"event"`) {
			close(stalled)
			<-release
		}
		return len(p), nil
	})
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(sink), zapcore.InfoLevel)).Sugar()
	fn := &Function{Name: "probe", Handlers: map[string]Handler{
		"cn.huzhou.probe": OnDecision(func(ctx context.Context, m Meta, p *struct{}) (Decision, error) {
			return Decision{}, event.Invalid("k", "refused before any database work")
		}),
	}}
	ts := httptest.NewServer(NewServer(fn, nil, log))
	defer ts.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Type", "cn.huzhou.probe")
	req.Header.Set("Ce-Source", "/probe/source")
	req.Header.Set("Ce-Id", "probe-1")
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("no answer while the log line is being written: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("answer cut short while the log line is being written: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest || resp.ContentLength != int64(len(body)) || !strings.Contains(string(body), `"field":"k"`) {
		t.Fatalf("answer %d, Content-Length %d, body %q; want 400 with its length", resp.StatusCode, resp.ContentLength, body)
	}
	select {
	case <-stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's log line was never written")
	}
	close(release)
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

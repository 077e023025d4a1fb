package runtime

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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

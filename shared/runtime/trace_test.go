package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/telemetry"
)

// recorder installs telemetry recording spans in memory and metrics in a
// manual reader. The telemetry is process-wide: servers built by parallel
// tests record into it too, so assertions pick spans by trace id.
var recorder = sync.OnceValues(func() (*tracetest.SpanRecorder, *sdkmetric.ManualReader) {
	sr := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	otel.SetTracerProvider(tp) // the pgx tracer's provider, as Setup does
	telemetry.SetCurrent(telemetry.New(tp, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), reader))
	return sr, reader
})

func spansOf(sr *tracetest.SpanRecorder, traceID trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.SpanContext().TraceID() == traceID {
			out = append(out, s)
		}
	}
	return out
}

func attrOf(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// A traced event: its server span is a child of the incoming traceparent
// (the CloudEvents extension in binary and structured mode, or the HTTP
// header, which wins), carries the CloudEvents attributes and the
// outcome; the reply and the stored follow-up carry the span's
// traceparent; a redelivery is a span marked as such; the relay sends the
// follow-up with the stored traceparent; the metrics count each outcome.
func TestEventSpans(t *testing.T) {
	sr, reader := recorder()
	ctx := context.Background()
	// The pool as runtime.Main opens it with tracing on: the pgx tracer set.
	cfg := postgres.Config{URL: pgtest.URL(t)}
	if pgtest.ThroughPgBouncer() {
		cfg.Pooler = postgres.PoolerPgBouncerTransaction
	}
	pool, err := postgres.Open(ctx, cfg, telemetry.PgxTracer(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	fn := &runtime.Function{Name: "traced", Handlers: map[string]runtime.Handler{
		"traced.requested": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
				return runtime.Result{}, err
			}
			res := runtime.Reply("traced.done", map[string]int{"n": p.N})
			res.FollowUps = []runtime.Outgoing{{Type: "traced.followed", Data: map[string]int{"n": p.N}}}
			return res, nil
		}),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	defer srv.Close()

	// TestMain runs the tests twice (directly and through PgBouncer) in
	// one process: each run has its own trace ids and counts from its own
	// baseline.
	run := runs.Add(1)
	traceID := fmt.Sprintf("4bf92f3577b34da6a3ce929d0e0e%02d", run)
	before := tracedCounts(t, reader)
	cases := []struct {
		name, parent string
		prepare      func(req *http.Request, id, tp string)
	}{
		{"BinaryExtension", "00f067aa0ba902b7", func(req *http.Request, id, tp string) {
			binaryHeaders(req, id)
			req.Header.Set("Ce-Traceparent", tp)
		}},
		{"StructuredExtension", "00f067aa0ba902b8", func(req *http.Request, id, tp string) {
			body, _ := json.Marshal(map[string]any{"specversion": "1.0", "type": "traced.requested", "source": "/test",
				"id": id, "traceparent": tp, "datacontenttype": "application/json", "data": map[string]int{"n": 1}})
			req.Body = ioNop(body)
			req.ContentLength = int64(len(body))
			req.Header.Set("Content-Type", "application/cloudevents+json")
		}},
		{"HTTPHeaderWins", "00f067aa0ba902b9", func(req *http.Request, id, tp string) {
			binaryHeaders(req, id)
			req.Header.Set("Ce-Traceparent", "00-"+strings.Repeat("1", 32)+"-"+strings.Repeat("2", 16)+"-01")
			req.Header.Set("Traceparent", tp)
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tid := traceID + fmt.Sprintf("%02d", i)
			tp := "00-" + tid + "-" + tc.parent + "-01"
			id := "traced-" + tc.name
			send := func() *http.Response {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(`{"n":1}`))
				tc.prepare(req, id, tp)
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			resp := send()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			tidv, _ := trace.TraceIDFromHex(tid)
			spans := spansOf(sr, tidv)
			var server sdktrace.ReadOnlySpan
			for _, s := range spans {
				if s.SpanKind() == trace.SpanKindServer {
					server = s
				}
			}
			if server == nil {
				t.Fatalf("no server span in trace %s (%d spans)", tid, len(spans))
			}
			if got := server.Parent().SpanID().String(); got != tc.parent || !server.Parent().IsRemote() {
				t.Fatalf("server span parent %s, want the incoming %s", got, tc.parent)
			}
			for k, want := range map[string]string{telemetry.AttrEventID: id, telemetry.AttrEventSource: "/test",
				telemetry.AttrEventType: "traced.requested", telemetry.AttrEventSpecVersion: "1.0",
				telemetry.AttrOutcome: "handled", telemetry.AttrStatus: "200"} {
				if got := attrOf(server, k); got != want {
					t.Fatalf("%s = %q, want %q", k, got, want)
				}
			}
			// The database calls are children of the server span.
			var db int
			for _, s := range spans {
				if s.Parent().SpanID() == server.SpanContext().SpanID() && s.SpanKind() == trace.SpanKindClient {
					db++
				}
			}
			if db == 0 {
				t.Fatal("no Postgres span under the server span")
			}
			want := fmt.Sprintf("00-%s-%s-01", tid, server.SpanContext().SpanID())
			if got := resp.Header.Get("Ce-Traceparent"); got != want {
				t.Fatalf("reply traceparent %q, want %q", got, want)
			}
			var stored string
			fid := runtime.DeriveID("followup", "traced", "/test", id, "0")
			if err := pool.QueryRow(ctx, `SELECT traceparent FROM qinqing.outbox WHERE id = $1`, fid).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if stored != want {
				t.Fatalf("outbox traceparent %q, want %q", stored, want)
			}
			// A redelivery: a new span in the trace, marked as such.
			if resp := send(); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Ce-Traceparent"), tid) {
				t.Fatalf("redelivery: status %d, traceparent %q", resp.StatusCode, resp.Header.Get("Ce-Traceparent"))
			}
			var redelivered bool
			for _, s := range spansOf(sr, tidv) {
				if s.SpanKind() == trace.SpanKindServer && attrOf(s, telemetry.AttrOutcome) == "redelivery" && attrOf(s, telemetry.AttrRedelivery) == "true" {
					redelivered = true
				}
			}
			if !redelivered {
				t.Fatal("no server span marked as a redelivery")
			}
		})
	}

	// The relay sends each follow-up with its stored traceparent as the
	// extension, and its own send span (a child of it) as the header.
	sink := newHeaderSink(t)
	r := &runtime.Relay{Function: "traced", Pool: pool, Sink: sink.URL, Log: zap.NewNop().Sugar()}
	if n := r.Drain(ctx); n != len(cases) {
		t.Fatalf("relay delivered %d, want %d", n, len(cases))
	}
	for _, got := range sink.received() {
		ext, header := got.Get("Ce-Traceparent"), got.Get("Traceparent")
		if ext == "" || header == "" || ext[3:35] != header[3:35] || ext == header {
			t.Fatalf("follow-up traceparent extension %q, header %q: want the same trace, the header a child", ext, header)
		}
		tidv, _ := trace.TraceIDFromHex(ext[3:35])
		var producer bool
		for _, s := range spansOf(sr, tidv) {
			if s.SpanKind() == trace.SpanKindProducer && s.Parent().SpanID().String() == ext[36:52] && s.SpanContext().SpanID().String() == header[36:52] {
				producer = true
			}
		}
		if !producer {
			t.Fatalf("no relay send span between %s and %s", ext, header)
		}
	}

	// Metrics: the handled events and redeliveries by outcome, deliveries.
	counts := tracedCounts(t, reader)
	for k := range counts {
		counts[k] -= before[k]
	}
	want := map[string]int64{
		telemetry.MetricEvents + "/handled":       int64(len(cases)),
		telemetry.MetricEvents + "/redelivery":    int64(len(cases)),
		telemetry.MetricDeliveries + "/delivered": int64(len(cases)),
	}
	for k, v := range want {
		if counts[k] != v {
			t.Fatalf("metric %s = %d, want %d (all: %v)", k, counts[k], v, counts)
		}
	}
}

var runs atomic.Int32

// tracedCounts sums the counters of function "traced" by name/outcome.
func tracedCounts(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, p := range sum.DataPoints {
					if fn, _ := p.Attributes.Value(attribute.Key("function")); fn.AsString() != "traced" {
						continue
					}
					o, _ := p.Attributes.Value(attribute.Key("outcome"))
					counts[m.Name+"/"+o.AsString()] += p.Value
				}
			}
		}
	}
	return counts
}

// An untraced event with tracing off gets no traceparent anywhere; the
// follow-up row stays NULL.
func TestNoTraceWithoutContext(t *testing.T) {
	pool := pgtest.Pool(t)
	saved := telemetry.Current()
	off := telemetry.New(nil, nil, nil)
	telemetry.SetCurrent(off)
	fn := &runtime.Function{Name: "untraced", Handlers: map[string]runtime.Handler{
		"u": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			res := runtime.Reply("u.done", nil)
			res.FollowUps = []runtime.Outgoing{{Type: "u.followed", Data: map[string]int{}}}
			return res, nil
		}),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	telemetry.SetCurrent(saved)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(`{}`))
	binaryHeaders(req, "u-1")
	req.Header.Set("Ce-Type", "u")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Ce-Traceparent") != "" {
		t.Fatalf("status %d, traceparent %q", resp.StatusCode, resp.Header.Get("Ce-Traceparent"))
	}
	var n int
	_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM qinqing.outbox WHERE traceparent IS NULL`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d follow-ups without traceparent, want 1", n)
	}
}

func binaryHeaders(req *http.Request, id string) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Type", "traced.requested")
	req.Header.Set("Ce-Source", "/test")
	req.Header.Set("Ce-Id", id)
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func ioNop(b []byte) nopCloser { return nopCloser{bytes.NewReader(b)} }

// headerSink records the headers of what the relay POSTs.
type headerSink struct {
	URL string
	mu  sync.Mutex
	got []http.Header
}

func newHeaderSink(t *testing.T) *headerSink {
	s := &headerSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got = append(s.got, r.Header.Clone())
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *headerSink) received() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.got...)
}

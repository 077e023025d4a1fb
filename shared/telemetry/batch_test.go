package telemetry

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// batches is a span exporter that keeps the size of every export; gate,
// when set, holds each export until it is closed.
type batches struct {
	mu       sync.Mutex
	sizes    []int
	names    []string
	gate     chan struct{}
	shutdown bool
}

func (e *batches) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.gate != nil {
		select {
		case <-e.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sizes = append(e.sizes, len(spans))
	for _, s := range spans {
		e.names = append(e.names, s.Name())
	}
	return nil
}

func (e *batches) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdown = true
	return nil
}

func (e *batches) got() ([]int, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.sizes...), append([]string(nil), e.names...)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func newTestBatcher(t *testing.T, env map[string]string, e *batches) (*batcher, trace.Tracer) {
	t.Helper()
	withEnv(t, env)
	b, err := newBatcher(e)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
	return b, tp.Tracer("test")
}

// A full batch is exported at once, the rest when flushed; an unsampled
// span is not exported; Shutdown exports what is left, shuts the exporter
// down and exports nothing ended after it.
func TestBatcherExportsFullBatchesAndFlushes(t *testing.T) {
	e := &batches{}
	b, tr := newTestBatcher(t, map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "3", "OTEL_BSP_SCHEDULE_DELAY": "600000"}, e)
	end := func(name string, sampled bool) {
		ctx := context.Background()
		if !sampled {
			ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, Remote: true}))
		}
		_, s := tr.Start(ctx, name)
		s.End()
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		end(n, true)
	}
	end("unsampled", false)
	waitFor(t, "the full batch", func() bool { s, _ := e.got(); return len(s) == 1 })
	if s, _ := e.got(); s[0] != 3 {
		t.Fatalf("first export of %d spans, want 3", s[0])
	}
	time.Sleep(50 * time.Millisecond)
	if s, _ := e.got(); len(s) != 1 {
		t.Fatalf("exports %v before the flush: the lone span waits for the delay", s)
	}
	end("e", true)
	if err := b.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s, names := e.got(); len(s) != 2 || s[1] != 2 || strings.Join(names, "") != "abcde" {
		t.Fatalf("exports %v of %v, want [3 2] of abcde", s, names)
	}
	end("f", true)
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	end("after", true)
	if err := b.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s, names := e.got(); len(s) != 3 || strings.Join(names, "") != "abcdef" || !e.shutdown {
		t.Fatalf("exports %v of %v, exporter shut down %v; want [3 2 1] of abcdef, shut down", s, names, e.shutdown)
	}
}

// Without a full batch, the schedule delay exports what is queued.
func TestBatcherExportsAfterTheScheduleDelay(t *testing.T) {
	e := &batches{}
	b, tr := newTestBatcher(t, map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "20"}, e)
	defer b.Shutdown(context.Background())
	_, s := tr.Start(context.Background(), "lone")
	s.End()
	waitFor(t, "the delayed export", func() bool { s, _ := e.got(); return len(s) == 1 })
}

// While the exporter is stuck, spans past the queue are dropped, and the
// count is reported at shutdown.
func TestBatcherDropsPastTheQueue(t *testing.T) {
	e := &batches{gate: make(chan struct{})}
	b, tr := newTestBatcher(t, map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "4", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2",
		"OTEL_BSP_SCHEDULE_DELAY": "600000"}, e)
	var reported []string
	var mu sync.Mutex
	saved := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { mu.Lock(); reported = append(reported, err.Error()); mu.Unlock() }))
	defer otel.SetErrorHandler(saved)
	for range 2 { // the first batch, taken by the exporter and held
		_, s := tr.Start(context.Background(), "x")
		s.End()
	}
	waitFor(t, "the first batch taken", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) == 0 })
	for range 7 { // four fit the queue, three are dropped
		_, s := tr.Start(context.Background(), "x")
		s.End()
	}
	close(e.gate)
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, names := e.got(); len(names) != 6 {
		t.Fatalf("%d spans exported, want 6", len(names))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || !strings.Contains(reported[0], "3 spans dropped") {
		t.Fatalf("reported %q, want one report of 3 spans dropped", reported)
	}
}

// A setting that is not a positive integer stops Setup with its name.
func TestBatcherRefusesBadSettings(t *testing.T) {
	for _, name := range []string{"OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"} {
		for _, v := range []string{"soon", "0", "-5"} {
			withEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", name: v})
			if _, err := Setup(context.Background(), Options{Service: "f"}); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("%s=%s: %v, want an error naming it", name, v, err)
			}
		}
	}
	withEnv(t, map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1000"})
	b, err := newBatcher(&batches{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	if b.maxBatch != 100 || b.delay != 5*time.Second || b.timeout != 30*time.Second {
		t.Fatalf("batch %d, delay %v, timeout %v; want 100 (the queue), 5s, 30s", b.maxBatch, b.delay, b.timeout)
	}
}

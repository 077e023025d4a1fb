package telemetry

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
)

// A traced pool makes one client span per round trip: a pipelined batch
// is one span named after its statements, a single query its own span,
// and acquiring a connection none.
func TestPgxTracerOneSpanPerRoundTrip(t *testing.T) {
	ctx := context.Background()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = PgxTracer(tp)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil { // connect outside the trace
		t.Fatal(err)
	}

	ctx, root := tp.Tracer("test").Start(ctx, "event")
	b := &pgx.Batch{}
	b.Queue(`SELECT 1`)
	b.Queue(`with x as (select 2) select * from x`)
	b.Queue(`  (SELECT 3)`)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT 4`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	root.End()

	var names []string
	for _, s := range sr.Ended() {
		if s.Parent().SpanID() == root.SpanContext().SpanID() {
			names = append(names, s.Name())
		}
	}
	want := []string{"batch SELECT WITH SELECT", "SELECT"}
	if len(names) != len(want) || names[0] != want[0] || names[1] != want[1] {
		t.Fatalf("child spans %q, want %q", names, want)
	}
	for _, s := range sr.Ended() {
		if s.Name() == "pool.acquire" {
			t.Fatalf("an acquire span: %q", s.Name())
		}
	}
}

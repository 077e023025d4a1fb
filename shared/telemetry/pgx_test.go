package telemetry

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

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

// A single query's span is the one otelpgx makes (name, kind, scope,
// attributes, status, the exception event of an error); a batch's span
// carries the batch size and db.system.name, as otelpgx's batch span does.
func TestPgxTracerSpansAsOtelpgx(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	record := func(tracer func(trace.TracerProvider) pgx.QueryTracer, run func(ctx context.Context, pool *pgxpool.Pool)) []sdktrace.ReadOnlySpan {
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.Tracer = tracer(tp)
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if err := pool.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		ctx, root := tp.Tracer("test").Start(ctx, "event")
		run(ctx, pool)
		root.End()
		var out []sdktrace.ReadOnlySpan
		for _, s := range sr.Ended() {
			if s.Parent().SpanID() == root.SpanContext().SpanID() {
				out = append(out, s)
			}
		}
		return out
	}
	otel := func(tp trace.TracerProvider) pgx.QueryTracer {
		return otelpgx.NewTracer(otelpgx.WithTrimSQLInSpanName(), otelpgx.WithDisableAcquireTracer(),
			otelpgx.WithMeterProvider(metricnoop.NewMeterProvider()), otelpgx.WithDisableConnectionDetailsInAttributes(),
			otelpgx.WithTracerProvider(tp))
	}
	queries := func(ctx context.Context, pool *pgxpool.Pool) {
		var n int
		if err := pool.QueryRow(ctx, `SELECT 4`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, "-- name: fails\nSELECT 1/0"); err == nil {
			t.Fatal("1/0 did not fail")
		}
		_ = pool.QueryRow(ctx, `SELECT 1 WHERE false`).Scan(&n) // no rows: not an error
	}
	got, want := record(PgxTracer, queries), record(otel, queries)
	if len(got) != 3 || len(want) != 3 {
		t.Fatalf("%d spans, otelpgx %d; want 3", len(got), len(want))
	}
	for i := range want {
		g, w := describe(got[i]), describe(want[i])
		if g != w {
			t.Errorf("span %d:\n got %s\nwant %s", i, g, w)
		}
	}

	batch := record(PgxTracer, func(ctx context.Context, pool *pgxpool.Pool) {
		b := &pgx.Batch{}
		b.Queue(`SELECT 1`)
		b.Queue(`SELECT 2`)
		b.Queue(`SELECT 3`)
		if err := pool.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
	})
	if len(batch) != 1 {
		t.Fatalf("%d batch spans, want 1", len(batch))
	}
	if g, w := describe(batch[0]), "batch SELECT SELECT SELECT client github.com/exaring/otelpgx@"+otelpgxVersion()+" [db.operation.batch.size=3 db.system.name=postgresql] Unset  []"; g != w {
		t.Errorf("batch span:\n got %s\nwant %s", g, w)
	}
}

// describe renders what a span says: name, kind, scope, attributes
// (sorted), status and the names of its events.
func describe(s sdktrace.ReadOnlySpan) string {
	var attrs, events []string
	for _, kv := range s.Attributes() {
		attrs = append(attrs, string(kv.Key)+"="+kv.Value.Emit())
	}
	sort.Strings(attrs)
	for _, e := range s.Events() {
		events = append(events, e.Name)
	}
	return fmt.Sprintf("%s %s %s@%s %v %s %s %v", s.Name(), s.SpanKind(), s.InstrumentationScope().Name, s.InstrumentationScope().Version, attrs,
		s.Status().Code, s.Status().Description, events)
}

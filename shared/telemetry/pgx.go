package telemetry

import (
	"context"
	"database/sql"
	"errors"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// PgxTracer is the pgx tracer of a traced function: one client span per
// round trip to the database, never one per statement inside it.
//
// otelpgx alone records a span for every pool acquire, for every pipelined
// batch and again for every statement of the batch: about eleven spans for
// an event the runtime handles in three round trips, and most of the cost
// of tracing is making, exporting and collecting spans. Here the acquire
// spans are off (the pool's wait shows in the server span and in the
// qinqing_db_* gauges), and a batch is one span named after its statements
// ("batch BEGIN INSERT SELECT"), so the waterfall still shows what each
// round trip did. otelpgx's own per-query metrics are off: they are not in
// Metrics (what the dashboards and alerts may name) and would cost a
// histogram record per statement. tp nil means the global provider.
//
// The spans of the hot path, single queries and batches, are made here,
// with otelpgx's names, attributes, scope and error recording, but without
// its per-call work that a span does not need: a context value with the
// start time for the (disabled) metrics, pooled option slices, the
// statement's operation parsed again on every call, db.system.name twice.
// A statement's attributes are built once per SQL text and reused, and
// set on its span in one copy.
// COPY, connect and prepare keep otelpgx's own spans.
func PgxTracer(tp trace.TracerProvider) pgx.QueryTracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &pgxTracer{
		Tracer: otelpgx.NewTracer(otelpgx.WithTrimSQLInSpanName(), otelpgx.WithDisableAcquireTracer(),
			otelpgx.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelpgx.WithDisableConnectionDetailsInAttributes(), otelpgx.WithTracerProvider(tp)),
		tracer: tp.Tracer(otelpgxScope, trace.WithInstrumentationVersion(otelpgxVersion())),
	}
}

// otelpgxScope is otelpgx's instrumentation scope, which the spans made
// here share.
const otelpgxScope = "github.com/exaring/otelpgx"

// otelpgxVersion is the scope version otelpgx gives its own tracer: the
// module's version in the build.
func otelpgxVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == otelpgxScope {
				return dep.Version
			}
		}
	}
	return "unknown"
}

// pgxTracer is otelpgx with its query and batch spans made here.
type pgxTracer struct {
	*otelpgx.Tracer
	tracer trace.Tracer

	stmts  sync.Map // SQL text → *statement
	nstmts atomic.Int64
}

// statement is what the spans of one SQL text share.
type statement struct {
	// op is a single query's span name and db.operation.name, as otelpgx
	// names it (otelpgx.SQLOperationName: leading comments skipped).
	op string
	// batchOp is the statement's word in a batch span's name (operation).
	batchOp string
	// attrs are a single query span's attributes but the rows affected.
	attrs [3]attribute.KeyValue
}

// maxStatements bounds the statement cache: qinqing's SQL texts are
// constants, but a caller building SQL per call must not grow memory
// without end (past it, a statement is described per call).
const maxStatements = 1024

var dbSystem = semconv.DBSystemNamePostgreSQL

func (t *pgxTracer) statement(sql string) *statement {
	if s, ok := t.stmts.Load(sql); ok {
		return s.(*statement)
	}
	op := otelpgx.SQLOperationName(context.Background(), sql)
	s := &statement{op: op, batchOp: operation(sql),
		attrs: [3]attribute.KeyValue{dbSystem, semconv.DBQueryText(sql), semconv.DBOperationName(op)}}
	if t.nstmts.Load() < maxStatements {
		if _, loaded := t.stmts.LoadOrStore(sql, s); !loaded {
			t.nstmts.Add(1)
		}
	}
	return s
}

// clientSpan are the start options of every span made here.
var clientSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

type statementKey struct{}

// TraceQueryStart starts the span of a single query (Query, QueryRow,
// Exec), named after its operation ("SELECT"). Its attributes are set
// when it ends, all at once: one copy into the span instead of three (the
// start options, the span, the span again grown for the rows affected).
func (t *pgxTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	s := t.statement(data.SQL)
	ctx, _ = t.tracer.Start(ctx, s.op, clientSpan...)
	return context.WithValue(ctx, statementKey{}, s)
}

// attrBufs hold the attributes of a span being ended: the span copies
// them, so one buffer serves any number of spans.
var attrBufs = sync.Pool{New: func() any { return new([4]attribute.KeyValue) }}

func (t *pgxTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	recordError(span, data.Err)
	if s, ok := ctx.Value(statementKey{}).(*statement); ok {
		buf := attrBufs.Get().(*[4]attribute.KeyValue)
		attrs := append(buf[:0], s.attrs[:]...)
		if data.Err == nil {
			attrs = append(attrs, otelpgx.RowsAffectedKey.Int64(data.CommandTag.RowsAffected()))
		}
		span.SetAttributes(attrs...)
		*buf = [4]attribute.KeyValue{}
		attrBufs.Put(buf)
	}
	span.End()
}

// batchAttrs are the attributes of a batch span of n statements, built
// once for the usual sizes.
var batchAttrs = func() [16][]attribute.KeyValue {
	var a [16][]attribute.KeyValue
	for n := range a {
		a[n] = batchAttributes(n)
	}
	return a
}()

func batchAttributes(n int) []attribute.KeyValue {
	return []attribute.KeyValue{dbSystem, semconv.DBOperationBatchSize(n)}
}

// TraceBatchStart starts a batch's one span, named after the statements
// queued in it ("batch BEGIN INSERT SELECT"): a pipelined batch is sent
// whole, so the name says what the round trip sent.
func (t *pgxTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	var queued []*pgx.QueuedQuery
	if data.Batch != nil {
		queued = data.Batch.QueuedQueries
	}
	var name strings.Builder
	name.Grow(6 + 8*len(queued))
	name.WriteString("batch")
	for _, q := range queued {
		name.WriteByte(' ')
		name.WriteString(t.statement(q.SQL).batchOp)
	}
	var attrs []attribute.KeyValue
	if len(queued) < len(batchAttrs) {
		attrs = batchAttrs[len(queued)]
	} else {
		attrs = batchAttributes(len(queued))
	}
	// Set after the start, not as a start option: one copy, not two.
	ctx, span := t.tracer.Start(ctx, name.String(), clientSpan...)
	span.SetAttributes(attrs...)
	return ctx
}

// TraceBatchQuery makes no span: the statement is part of the batch's.
// An error is recorded on the batch span by TraceBatchEnd.
func (t *pgxTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t *pgxTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	recordError(span, data.Err)
	span.End()
}

// recordError records err on span as otelpgx does: an exception event,
// the error status and the SQLSTATE of a Postgres error. No rows is not
// an error.
func recordError(span trace.Span, err error) {
	if err == nil || errors.Is(err, sql.ErrNoRows) {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		span.SetAttributes(otelpgx.SQLStateKey.String(pgErr.Code))
	}
}

// operation is the first word of a statement, upper-cased (WITH … INSERT
// stays WITH: the span name says what was sent, not what it did).
func operation(sql string) string {
	sql = strings.TrimLeft(sql, " \t\r\n(")
	end := strings.IndexAny(sql, " \t\r\n(;")
	if end < 0 {
		end = len(sql)
	}
	return strings.ToUpper(sql[:end])
}

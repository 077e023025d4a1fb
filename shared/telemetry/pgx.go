package telemetry

import (
	"context"
	"strings"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
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
// round trip did. Single queries, COPY, connect and prepare keep otelpgx's
// own spans. otelpgx's own per-query metrics are off: they are not in
// Metrics (what the dashboards and alerts may name) and would cost a
// histogram record per statement. tp nil means the global provider.
func PgxTracer(tp trace.TracerProvider) pgx.QueryTracer {
	opts := []otelpgx.Option{otelpgx.WithTrimSQLInSpanName(), otelpgx.WithDisableAcquireTracer(),
		otelpgx.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelpgx.WithDisableConnectionDetailsInAttributes(), otelpgx.WithTracerAttributes(semconv.DBSystemNamePostgreSQL)}
	if tp != nil {
		opts = append(opts, otelpgx.WithTracerProvider(tp))
	}
	return &pgxTracer{Tracer: otelpgx.NewTracer(opts...)}
}

// pgxTracer is otelpgx with a batch traced as one span.
type pgxTracer struct {
	*otelpgx.Tracer
}

type batchKey struct{}

// batchOps collects the operation names of one batch's statements.
type batchOps struct{ names []string }

func (t *pgxTracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	ctx = t.Tracer.TraceBatchStart(ctx, conn, data)
	if trace.SpanFromContext(ctx).IsRecording() {
		ctx = context.WithValue(ctx, batchKey{}, &batchOps{names: make([]string, 0, 4)})
	}
	return ctx
}

// TraceBatchQuery notes the statement's operation instead of a span of its
// own. An error is recorded on the batch span by TraceBatchEnd.
func (t *pgxTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	if ops, ok := ctx.Value(batchKey{}).(*batchOps); ok {
		ops.names = append(ops.names, operation(data.SQL))
	}
}

func (t *pgxTracer) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	if ops, ok := ctx.Value(batchKey{}).(*batchOps); ok && len(ops.names) > 0 {
		trace.SpanFromContext(ctx).SetName("batch " + strings.Join(ops.names, " "))
	}
	t.Tracer.TraceBatchEnd(ctx, conn, data)
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

package telemetry

import (
	"context"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric describes one exported metric family. Names are already in
// Prometheus form (base unit and _total in the name), so the OTLP →
// Prometheus translation of a collector or of Prometheus's own OTLP
// receiver keeps them as they are, and GET /metrics shows the same names.
type Metric struct {
	Name   string
	Kind   string // counter, histogram or gauge
	Unit   string // the OTel unit
	Help   string
	Labels []string
}

// Names of the metrics (see Metrics for what each is).
const (
	MetricEvents           = "qinqing_events_total"
	MetricEventDuration    = "qinqing_event_duration_seconds"
	MetricDeliveries       = "qinqing_outbox_deliveries_total"
	MetricDeliveryAttempts = "qinqing_outbox_delivery_attempts"
	MetricPruned           = "qinqing_pruned_rows_total"
	MetricPanics           = "qinqing_panics_total"
	MetricOutboxPending    = "qinqing_outbox_pending"
	MetricOutboxOldestAge  = "qinqing_outbox_oldest_pending_age_seconds"
	MetricDeadLetters      = "qinqing_dead_letters_pending"
	MetricAppealsOpen      = "qinqing_appeals_open"
	MetricAppealsOverdue   = "qinqing_appeals_overdue"
	MetricSubsidyBudget    = "qinqing_subsidy_budget_remaining_fen"
	MetricForumSeats       = "qinqing_forum_seats"
)

// Metrics is every metric qinqing exports. The chart's dashboard and alert
// rules may name only these (test/deploy checks it).
var Metrics = []Metric{
	{MetricEvents, "counter", "{event}", "Events received, by function, CloudEvents type, outcome (handled, redelivery, invalid, too_large, error, or a route's own) and HTTP status.", []string{"function", "type", "outcome", "status"}},
	{MetricEventDuration, "histogram", "s", "Time from receipt to the answer of one event.", []string{"function", "type", "outcome", "status"}},
	{MetricDeliveries, "counter", "{delivery}", "Outbox deliveries to K_SINK, by outcome (delivered, failed).", []string{"function", "outcome"}},
	{MetricDeliveryAttempts, "histogram", "{attempt}", "Attempts a follow-up needed until the sink accepted it.", []string{"function"}},
	{MetricPruned, "counter", "{row}", "Inbox and outbox rows deleted after their retention.", []string{"function", "table"}},
	{MetricPanics, "counter", "{panic}", "Handler panics recovered (the event was answered 500 and nothing was written).", []string{"function", "type"}},
	{MetricOutboxPending, "gauge", "{event}", "Follow-ups in the outbox not yet delivered (all functions: one shared table).", nil},
	{MetricOutboxOldestAge, "gauge", "s", "Age of the oldest undelivered follow-up; 0 when none is pending.", nil},
	{MetricDeadLetters, "gauge", "{event}", "Dead letters not yet replayed.", nil},
	{MetricAppealsOpen, "gauge", "{appeal}", "Open appeals by escalation ladder stage (on_time, reminder, supervision, exposure) and department.", []string{"stage", "department"}},
	{MetricAppealsOverdue, "gauge", "{appeal}", "Open appeals past a due time, by the stage that is late (assign, reply, revisit).", []string{"stage"}},
	{MetricSubsidyBudget, "gauge", "{fen}", "Subsidy budget left to approve, per policy, in fen.", []string{"policy"}},
	{MetricForumSeats, "gauge", "{seat}", "Confirmed and waitlisted seats per open forum.", []string{"forum", "status"}},
}

// durationBuckets are the histogram bounds of handling times, in seconds.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Instruments are the synchronous instruments the runtime records.
type Instruments struct {
	events     metric.Int64Counter
	duration   metric.Float64Histogram
	deliveries metric.Int64Counter
	attempts   metric.Int64Histogram
	pruned     metric.Int64Counter
	panics     metric.Int64Counter

	// series caches the options of each event series; enabled is false
	// on the no-op meter, where Event does nothing.
	enabled  bool
	seriesMu sync.RWMutex
	series   map[eventKey]*eventSeries
}

// eventSeries is what recording one event of a series passes the
// instruments, built once: the attribute set (sorting and hashing four
// attributes per event is a measurable part of the cost of metrics on
// the hot path) wrapped in the option slices the calls take.
type eventSeries struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

func newInstruments(m metric.Meter, enabled bool) *Instruments {
	help := map[string]Metric{}
	for _, d := range Metrics {
		help[d.Name] = d
	}
	desc := func(name string) (string, string) { return help[name].Help, help[name].Unit }
	i := &Instruments{enabled: enabled, series: map[eventKey]*eventSeries{}}
	// A meter only fails on invalid names, which these are not: the errors
	// are dropped and the instrument is then a no-op.
	d, u := desc(MetricEvents)
	i.events, _ = m.Int64Counter(MetricEvents, metric.WithDescription(d), metric.WithUnit(u))
	d, u = desc(MetricEventDuration)
	i.duration, _ = m.Float64Histogram(MetricEventDuration, metric.WithDescription(d), metric.WithUnit(u),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	d, u = desc(MetricDeliveries)
	i.deliveries, _ = m.Int64Counter(MetricDeliveries, metric.WithDescription(d), metric.WithUnit(u))
	d, u = desc(MetricDeliveryAttempts)
	i.attempts, _ = m.Int64Histogram(MetricDeliveryAttempts, metric.WithDescription(d), metric.WithUnit(u),
		metric.WithExplicitBucketBoundaries(1, 2, 3, 5, 8, 13, 21))
	d, u = desc(MetricPruned)
	i.pruned, _ = m.Int64Counter(MetricPruned, metric.WithDescription(d), metric.WithUnit(u))
	d, u = desc(MetricPanics)
	i.panics, _ = m.Int64Counter(MetricPanics, metric.WithDescription(d), metric.WithUnit(u))
	return i
}

// Event records one received event.
func (i *Instruments) Event(ctx context.Context, function, typ, outcome string, status int, seconds float64) {
	if !i.enabled {
		return
	}
	s := i.eventSeries(eventKey{function, typ, outcome, status})
	i.events.Add(ctx, 1, s.add...)
	i.duration.Record(ctx, seconds, s.record...)
}

// eventKey is the label values of one event series.
type eventKey struct {
	function, typ, outcome string
	status                 int
}

// maxEventSets bounds the cache of series: event types come from the
// senders, and a flood of made-up ones must not grow memory without end
// (past it, a series is built per event).
const maxEventSets = 1024

// eventSeries returns the series of k, built once.
func (i *Instruments) eventSeries(k eventKey) *eventSeries {
	i.seriesMu.RLock()
	s, ok := i.series[k]
	i.seriesMu.RUnlock()
	if ok {
		return s
	}
	set := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("function", k.function), attribute.String("type", k.typ),
		attribute.String("outcome", k.outcome), attribute.String("status", strconv.Itoa(k.status))))
	s = &eventSeries{add: []metric.AddOption{set}, record: []metric.RecordOption{set}}
	i.seriesMu.Lock()
	if len(i.series) < maxEventSets {
		i.series[k] = s
	}
	i.seriesMu.Unlock()
	return s
}

// Delivery records one outbox delivery attempt; attempts is the row's
// attempt count, recorded when the sink accepted it.
func (i *Instruments) Delivery(ctx context.Context, function string, ok bool, attempts int) {
	fn := attribute.String("function", function)
	if ok {
		i.deliveries.Add(ctx, 1, metric.WithAttributes(fn, attribute.String("outcome", "delivered")))
		i.attempts.Record(ctx, int64(attempts), metric.WithAttributes(fn))
		return
	}
	i.deliveries.Add(ctx, 1, metric.WithAttributes(fn, attribute.String("outcome", "failed")))
}

// Pruned records rows deleted from table ("inbox" or "outbox").
func (i *Instruments) Pruned(ctx context.Context, function, table string, n int64) {
	if n > 0 {
		i.pruned.Add(ctx, n, metric.WithAttributes(attribute.String("function", function), attribute.String("table", table)))
	}
}

// Panic records one recovered handler panic.
func (i *Instruments) Panic(ctx context.Context, function, typ string) {
	i.panics.Add(ctx, 1, metric.WithAttributes(attribute.String("function", function), attribute.String("type", typ)))
}

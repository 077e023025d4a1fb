package telemetry

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Gauge queries: read at collection time (a scrape of GET /metrics or an
// OTLP push), never on the event path. Each is answered from an index and
// costs what the figure counts (the pending backlog, the open appeals, the
// policies, the seats of open forums), not what the tables hold; the
// EXPLAIN test in gauges_test.go keeps it so.
const (
	// outbox_pending and outbox_pending_created (0005) are partial indexes
	// over the undelivered rows only.
	QueryOutbox = `SELECT count(*)::float8, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
		FROM qinqing.outbox WHERE delivered_at IS NULL`
	// dead_letters_by_status (status, received_at, id).
	QueryDeadLetters = `SELECT count(*)::float8 FROM deadletter.dead_letters WHERE status = 'pending'`
	// The open appeals by department and ladder level: the open statuses
	// are exactly the rows of the deadline check's appeals_open_due
	// (0093), read whole. The level is the highest announced for a stage
	// the appeal's status still has open (assigned: assign and reply;
	// accepted: reply; replied: revisit), looked up by the announcements'
	// primary key.
	QueryAppealsOpen = `SELECT department, stage, count(*)::float8 FROM (
		SELECT a.department, ` + ladderLevel + ` AS stage FROM appeal.appeals a WHERE a.open_due IS NOT NULL
		) open GROUP BY 1, 2`
	// appeals_open_due as a range from the start: the open appeals with a
	// deadline passed, counted by each stage their status has open and
	// past due.
	QueryAppealsOverdue = `SELECT s.stage, s.n FROM (
		SELECT count(*) FILTER (WHERE status = 'assigned' AND assign_due < now())::float8 AS assign,
			count(*) FILTER (WHERE status IN ('assigned', 'accepted') AND reply_due < now())::float8 AS reply,
			count(*) FILTER (WHERE status = 'replied' AND revisit_due < now())::float8 AS revisit
		FROM appeal.appeals WHERE open_due < now()) c
		CROSS JOIN LATERAL (VALUES ('assign', c.assign), ('reply', c.reply), ('revisit', c.revisit)) AS s(stage, n)`
	// ledger_lines_by_policy (policy_id, account) INCLUDE (amount_fen):
	// an index-only sum of each policy's budget lines.
	QuerySubsidyBudget = `SELECT p.policy_id,
		coalesce((SELECT sum(l.amount_fen) FROM subsidy.ledger_lines l
		          WHERE l.policy_id = p.policy_id AND l.account = 'budget'), 0)::float8
		FROM subsidy.policies p`
	// forums_open_by_deadline (open forums) and signups_by_forum.
	QueryForumSeats = `SELECT s.forum_id, s.status, count(*)::float8
		FROM forum.forums f JOIN forum.signups s ON s.forum_id = f.forum_id
		WHERE f.closed_at IS NULL AND s.status IN ('confirmed', 'waitlisted')
		GROUP BY 1, 2`
)

// ladderLevel is the escalation level an open appeal a has reached.
const ladderLevel = `coalesce((SELECT CASE max(CASE o.level WHEN 'reminder' THEN 1 WHEN 'supervision' THEN 2 WHEN 'exposure' THEN 3 END)
		                 WHEN 1 THEN 'reminder' WHEN 2 THEN 'supervision' WHEN 3 THEN 'exposure' END
		          FROM appeal.overdue_announcements o
		          WHERE o.appeal_id = a.appeal_id
		            AND o.stage = ANY (CASE a.status WHEN 'assigned' THEN ARRAY['assign', 'reply']
		                                             WHEN 'accepted' THEN ARRAY['reply'] ELSE ARRAY['revisit'] END)),
		         'on_time')`

// GaugeQueries are the queries behind the database gauges, for the EXPLAIN
// test.
var GaugeQueries = []string{QueryOutbox, QueryDeadLetters, QueryAppealsOpen, QueryAppealsOverdue, QuerySubsidyBudget, QueryForumSeats}

// gaugeTimeout bounds one collection's queries.
const gaugeTimeout = 3 * time.Second

// RegisterDatabaseGauges registers the gauges read from the database
// (outbox, dead letters, business figures). Every function with a pool
// registers them: the tables are shared, so each running pod reports the
// same values (those its database role may read) and dashboards take the
// max over pods. A figure whose query
// fails (the database is down) is left out of that collection. It does
// nothing when metrics are off.
func (t *Telemetry) RegisterDatabaseGauges(pool *pgxpool.Pool, onError func(error)) error {
	if !t.Metrics || pool == nil {
		return nil
	}
	m := t.meter
	gauge := func(name string) (metric.Float64ObservableGauge, error) {
		for _, d := range Metrics {
			if d.Name == name {
				return m.Float64ObservableGauge(name, metric.WithDescription(d.Help), metric.WithUnit(d.Unit))
			}
		}
		panic("telemetry: no metric " + name)
	}
	names := []string{MetricOutboxPending, MetricOutboxOldestAge, MetricDeadLetters, MetricAppealsOpen,
		MetricAppealsOverdue, MetricSubsidyBudget, MetricForumSeats}
	gs := make([]metric.Float64ObservableGauge, len(names))
	obs := make([]metric.Observable, len(names))
	for i, n := range names {
		g, err := gauge(n)
		if err != nil {
			return err
		}
		gs[i], obs[i] = g, g
	}
	pending, oldest, dead, open, overdue, budget, seats := gs[0], gs[1], gs[2], gs[3], gs[4], gs[5], gs[6]
	// Under per-function database roles a function may not read every
	// table: a figure refused with insufficient_privilege is dropped for
	// the life of the process (the functions that may read it report it).
	var mu sync.Mutex
	denied := map[string]bool{}
	skip := func(q string) bool {
		mu.Lock()
		defer mu.Unlock()
		return denied[q]
	}
	check := func(q string, err error) error {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			mu.Lock()
			denied[q] = true
			mu.Unlock()
			return nil
		}
		return err
	}
	report := func(err error) {
		if err != nil && onError != nil {
			onError(err)
		}
	}
	_, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, gaugeTimeout)
		defer cancel()
		var n, age float64
		if err := pool.QueryRow(ctx, QueryOutbox).Scan(&n, &age); err == nil {
			o.ObserveFloat64(pending, n)
			o.ObserveFloat64(oldest, age)
		} else {
			report(err)
			if ctx.Err() != nil {
				return nil // the database is not answering: skip the rest
			}
		}
		if !skip(QueryDeadLetters) {
			if err := pool.QueryRow(ctx, QueryDeadLetters).Scan(&n); err == nil {
				o.ObserveFloat64(dead, n)
			} else {
				report(check(QueryDeadLetters, err))
			}
		}
		rowsOf := func(q string, nLabels int, observe func(labels []string, v float64)) {
			if !skip(q) {
				report(check(q, observeRows(ctx, pool, q, observe, nLabels)))
			}
		}
		rowsOf(QueryAppealsOpen, 2, func(labels []string, v float64) {
			o.ObserveFloat64(open, v, metric.WithAttributes(attribute.String("department", labels[0]), attribute.String("stage", labels[1])))
		})
		rowsOf(QueryAppealsOverdue, 1, func(labels []string, v float64) {
			o.ObserveFloat64(overdue, v, metric.WithAttributes(attribute.String("stage", labels[0])))
		})
		rowsOf(QuerySubsidyBudget, 1, func(labels []string, v float64) {
			o.ObserveFloat64(budget, v, metric.WithAttributes(attribute.String("policy", labels[0])))
		})
		rowsOf(QueryForumSeats, 2, func(labels []string, v float64) {
			o.ObserveFloat64(seats, v, metric.WithAttributes(attribute.String("forum", labels[0]), attribute.String("status", labels[1])))
		})
		return nil
	}, obs...)
	return err
}

// observeRows runs q, whose rows are nLabels text columns and a number.
func observeRows(ctx context.Context, pool *pgxpool.Pool, q string, observe func(labels []string, v float64), nLabels int) error {
	rows, err := pool.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		labels := make([]string, nLabels)
		var v float64
		dst := make([]any, 0, nLabels+1)
		for i := range labels {
			dst = append(dst, &labels[i])
		}
		dst = append(dst, &v)
		if err := rows.Scan(dst...); err != nil {
			return err
		}
		observe(labels, v)
	}
	return rows.Err()
}

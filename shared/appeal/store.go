package appeal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/postgres"
)

// This file is the appeal domain's store for the functions other than
// appeal-router that read its tables (docs/runtime.md, "Where SQL
// lives"): deadline-check (its role reads the whole appeal schema and
// the inbox), open311 (appeals, history and overdue announcements) and
// webhook-egress (only the columns naming an appeal's origin). Each
// function's doc names who runs it; migrations 0090–0092 grant what it
// needs. appeal-router's own statements stay in its store.go.

// CohortStep is one history row of an appeal of a review's cohort, with
// the appeal's own columns.
type CohortStep struct {
	AppealID, Category, Channel, County string
	ReceivedAt, AssignDue               time.Time
	FirstReplyDue                       time.Time // the first promise, 10 working days after receipt

	At           time.Time
	Action       Action
	To           Status
	Department   string
	Satisfaction Satisfaction
}

// EachCohortStep calls fn for every history row up to asOf of the appeals
// received in [from, to), by appeal id, then time (deadline-check's
// monthly review). Its cost follows the month's appeals: an index-only
// range scan of appeals_received_cohort, then each appeal's history from
// history_by_appeal. fn's argument is reused for the next row.
func EachCohortStep(ctx context.Context, q postgres.Querier, from, to, asOf time.Time, fn func(s *CohortStep) error) error {
	rows, err := q.Query(ctx, `SELECT a.appeal_id, a.category, a.channel, a.county, a.received_at, a.assign_due,
			a.first_reply_due, h.at, h.action, h.to_status, h.department, coalesce(h.satisfaction, '')
		FROM appeal.appeals a CROSS JOIN LATERAL (
			-- OFFSET 0 keeps this a per-appeal index lookup (history_by_appeal):
			-- joined flat, the planner may hash the whole history instead.
			SELECT h.at, h.seq, h.action, h.to_status, h.department, h.satisfaction FROM appeal.history h
			WHERE h.appeal_id = a.appeal_id AND h.at <= $3 OFFSET 0) h
		WHERE a.received_at >= $1 AND a.received_at < $2
		ORDER BY a.appeal_id, h.at, h.seq`, from, to, asOf)
	if err != nil {
		return fmt.Errorf("review cohort: %w", err)
	}
	var s CohortStep
	_, err = pgx.ForEachRow(rows, []any{&s.AppealID, &s.Category, &s.Channel, &s.County, &s.ReceivedAt, &s.AssignDue,
		&s.FirstReplyDue, &s.At, &s.Action, &s.To, &s.Department, &s.Satisfaction}, func() error { return fn(&s) })
	if err != nil {
		return fmt.Errorf("review cohort: %w", err)
	}
	return nil
}

// PastDue is an open appeal past the due time of a stage it has not met.
type PastDue struct {
	AppealID, Department string
	Stage                Stage
	Due                  time.Time
}

// OverdueSQL reads the open appeals past a due time among the appeals
// with no transition after asOf (their current state is their state at
// asOf): one index range scan of appeals_open_due over the open appeals
// whose earliest open deadline is before asOf (open_due, 0093), each
// expanded into the stages its status has open and past due, plus one
// history_by_appeal probe per appeal: closed appeals and appeals not yet
// due are never read.
//
// It, ChangedSQL and ChangedSinceSQL are exported for the plan tests
// (EXPLAIN).
const OverdueSQL = `
SELECT a.appeal_id, a.department, s.stage, s.due FROM appeal.appeals a
	CROSS JOIN LATERAL (VALUES ` + OpenStages + `) AS s(stage, due)
	WHERE a.open_due < $1 AND s.due < $1 AND ` + unchangedSince + `
ORDER BY a.appeal_id, s.stage`

// OpenStages are the rows (stage, due) of an appeal a: each stage's due
// time while its status has the stage open, NULL otherwise (assigned:
// assign and reply; accepted: reply; replied: revisit).
const OpenStages = `('assign', CASE WHEN a.status = 'assigned' THEN a.assign_due END),
		('reply', CASE WHEN a.status IN ('assigned', 'accepted') THEN a.reply_due END),
		('revisit', CASE WHEN a.status = 'replied' THEN a.revisit_due END)`

const unchangedSince = `NOT EXISTS (SELECT 1 FROM appeal.history h WHERE h.appeal_id = a.appeal_id AND h.at > $1)`

// QueuePastDueUnchanged queues on b the read of the stages past their due
// time at asOf of the open appeals with no transition after asOf, by
// appeal and stage, into *out (deadline-check). Appeals changed after
// asOf are read by ChangedSteps, when QueueChangedSince says there are
// any. The check sends both queued statements in one batch: on the first
// event of a new backend each would otherwise cost a parse and an
// execute round trip of its own.
func QueuePastDueUnchanged(b *pgx.Batch, asOf time.Time, out *[]PastDue) {
	b.Queue(OverdueSQL, asOf).Query(func(rows pgx.Rows) error {
		late, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PastDue, error) {
			var p PastDue
			err := r.Scan(&p.AppealID, &p.Department, &p.Stage, &p.Due)
			return p, err
		})
		if err != nil {
			return fmt.Errorf("overdue appeals: %w", err)
		}
		*out = late
		return nil
	})
}

// ChangedStep is one history row up to asOf of an appeal with a
// transition after asOf, with the appeal's first deadlines. ReplyDue and
// RevisitDue are the deadlines the row set (RFC 3339, "" for none): the
// submission and a reopening record the replyDue they set, a reply the
// revisitDue.
type ChangedStep struct {
	AppealID                 string
	AssignDue, FirstReplyDue time.Time
	To                       Status
	Department               string
	ReplyDue, RevisitDue     string
}

// ChangedSQL reads the history up to $1 (asOf) of the appeals with a
// transition after it, found by the history_at index (ChangedSteps).
const ChangedSQL = `
SELECT h.appeal_id, a.assign_due, a.first_reply_due, h.to_status, h.department,
	coalesce(h.detail->>'replyDue', ''), coalesce(h.detail->>'revisitDue', '')
FROM (SELECT DISTINCT appeal_id FROM appeal.history WHERE at > $1) c
	JOIN appeal.appeals a ON a.appeal_id = c.appeal_id
	JOIN appeal.history h ON h.appeal_id = c.appeal_id AND h.at <= $1
ORDER BY h.appeal_id, h.at, h.seq`

// ChangedSinceSQL says whether any appeal has a transition after $1
// (asOf): whether the latest transition is, one backward probe of the
// history_at index whatever $1 (QueueChangedSince). An EXISTS over
// `at > $1` would be the same answer, but its generic plan (the one a
// prepared statement settles on after five runs) expects a match within
// a few rows and scans the table, all of it when there is none.
const ChangedSinceSQL = `SELECT coalesce(max(at) > $1, false) FROM appeal.history`

// QueueChangedSince queues on b whether any appeal has a transition after
// asOf, into *out once b is read (deadline-check): only then does the
// check read their history (ChangedSteps). For a check run on time there
// are none, and the one-index probe is all it costs: on the first event of
// a new backend ChangedSQL's first planning cost about twice as much.
func QueueChangedSince(b *pgx.Batch, asOf time.Time, out *bool) {
	b.Queue(ChangedSinceSQL, asOf).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(out); err != nil {
			return fmt.Errorf("changed appeals: %w", err)
		}
		return nil
	})
}

// ChangedSteps reads the history up to asOf of every appeal with a
// transition after asOf (found by the history_at index), calling fn per
// row by appeal, then time (deadline-check): a check that arrives after
// later answers — delayed, or sent again — rebuilds their state at asOf
// from it. fn's argument is reused for the next row.
func ChangedSteps(ctx context.Context, q postgres.Querier, asOf time.Time, fn func(s *ChangedStep) error) error {
	rows, err := q.Query(ctx, ChangedSQL, asOf)
	if err != nil {
		return fmt.Errorf("changed appeals: %w", err)
	}
	var s ChangedStep
	_, err = pgx.ForEachRow(rows, []any{&s.AppealID, &s.AssignDue, &s.FirstReplyDue, &s.To, &s.Department,
		&s.ReplyDue, &s.RevisitDue}, func() error { return fn(&s) })
	if err != nil {
		return fmt.Errorf("changed appeals: %w", err)
	}
	return nil
}

// CaseTraces returns, for the given appeals, the traceparent their case
// carried when appeal-router handled the event that created them
// (deadline-check): the inbox keeps it (for INBOX_RETENTION, 90 days by
// default) under that event's source and id, which the appeal row
// records. An appeal whose event was not traced, or was forgotten, is
// absent. One lookup by the inbox's primary key per appeal.
func CaseTraces(ctx context.Context, q postgres.Querier, appealIDs []string) (map[string]string, error) {
	out := map[string]string{}
	if len(appealIDs) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT a.appeal_id, i.traceparent
		FROM appeal.appeals a
		JOIN qinqing.inbox i ON i.function = 'appeal-router' AND i.source = a.source AND i.id = a.event_id
		WHERE a.appeal_id = ANY($1) AND i.traceparent IS NOT NULL`, appealIDs)
	if err != nil {
		return nil, fmt.Errorf("case traces: %w", err)
	}
	var id, tp string
	_, err = pgx.ForEachRow(rows, []any{&id, &tp}, func() error {
		out[id] = tp
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("case traces: %w", err)
	}
	return out, nil
}

// Origin is where an appeal came from: the source of the event that
// created it and, for an appeal raised with a forum signup, the source
// the signup recorded (nil when it recorded none or is not on record).
type Origin struct {
	Source       string
	FromSignup   bool
	SignupSource *string
}

// OriginOf returns the appeal's origin, false when the appeal is not on
// record (webhook-egress: its role may read only appeal_id, source and
// signup_id of appeal.appeals and signup_id, source of forum.signups).
func OriginOf(ctx context.Context, q postgres.Querier, appealID string) (Origin, bool, error) {
	var o Origin
	err := q.QueryRow(ctx, `SELECT a.source, a.signup_id IS NOT NULL, s.source
		FROM appeal.appeals a LEFT JOIN forum.signups s ON s.signup_id = a.signup_id
		WHERE a.appeal_id = $1`, appealID).Scan(&o.Source, &o.FromSignup, &o.SignupSource)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return o, false, nil
	case err != nil:
		return o, false, fmt.Errorf("appeal origin: %w", err)
	}
	return o, true, nil
}

package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/calendar"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/telemetry"
)

// OverdueAnnounced is the data of cn.huzhou.appeal.overdue.
type OverdueAnnounced struct {
	AppealID           string       `json:"appealId"`
	Stage              appeal.Stage `json:"stage"`
	Level              appeal.Level `json:"level"`
	Department         string       `json:"department"`
	DueAt              time.Time    `json:"dueAt"`
	WorkingDaysOverdue int          `json:"workingDaysOverdue"`
}

// pastDue is an appeal past the due time of a stage it has not met.
type pastDue struct {
	appealID   string
	department string
	stage      appeal.Stage
	due        time.Time
}

// overdueSQL reads the open appeals past a due time, one branch per stage,
// among the appeals with no transition after asOf (their current state is
// their state at asOf). Each branch's WHERE repeats its partial index's
// predicate, so each is an index range scan over that stage's open
// appeals due before asOf, plus one history_by_appeal probe per row:
// closed appeals and appeals not yet due are never read.
const overdueSQL = `
SELECT appeal_id, department, 'assign' AS stage, assign_due AS due FROM appeal.appeals a
	WHERE status = 'assigned' AND assign_due < $1 AND ` + unchangedSince + `
UNION ALL
SELECT appeal_id, department, 'reply', reply_due FROM appeal.appeals a
	WHERE status IN ('assigned', 'accepted') AND reply_due < $1 AND ` + unchangedSince + `
UNION ALL
SELECT appeal_id, department, 'revisit', revisit_due FROM appeal.appeals a
	WHERE status = 'replied' AND revisit_due < $1 AND ` + unchangedSince + `
ORDER BY appeal_id, stage`

const unchangedSince = `NOT EXISTS (SELECT 1 FROM appeal.history h WHERE h.appeal_id = a.appeal_id AND h.at > $1)`

// changedSQL reads the history up to asOf of the appeals with a
// transition after asOf (found by the history_at index): a check that
// arrives after later answers — delayed, or sent again — rebuilds their
// state at asOf from it. For a check run on time there are none.
const changedSQL = `
SELECT h.appeal_id, a.assign_due, a.first_reply_due, h.to_status, h.department,
	coalesce(h.detail->>'replyDue', ''), coalesce(h.detail->>'revisitDue', '')
FROM (SELECT DISTINCT appeal_id FROM appeal.history WHERE at > $1) c
	JOIN appeal.appeals a ON a.appeal_id = c.appeal_id
	JOIN appeal.history h ON h.appeal_id = c.appeal_id AND h.at <= $1
ORDER BY h.appeal_id, h.at, h.seq`

// pastDueAt returns the open stages past their due time as of asOf, each
// appeal judged as it stood at asOf.
func pastDueAt(ctx context.Context, tx pgx.Tx, asOf time.Time) ([]pastDue, error) {
	rows, err := tx.Query(ctx, overdueSQL, asOf)
	if err != nil {
		return nil, fmt.Errorf("overdue appeals: %w", err)
	}
	late, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pastDue, error) {
		var p pastDue
		err := r.Scan(&p.appealID, &p.department, &p.stage, &p.due)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("overdue appeals: %w", err)
	}
	rows, err = tx.Query(ctx, changedSQL, asOf)
	if err != nil {
		return nil, fmt.Errorf("changed appeals: %w", err)
	}
	var states []stateAt
	var row struct {
		id, department, replyDue, revisitDue string
		assignDue, firstReplyDue             time.Time
		status                               appeal.Status
	}
	_, err = pgx.ForEachRow(rows, []any{&row.id, &row.assignDue, &row.firstReplyDue, &row.status, &row.department,
		&row.replyDue, &row.revisitDue}, func() error {
		if n := len(states); n == 0 || states[n-1].appealID != row.id {
			states = append(states, stateAt{appealID: row.id, assignDue: row.assignDue, replyDue: row.firstReplyDue})
		}
		s := &states[len(states)-1]
		s.status, s.department = row.status, row.department
		// The submission and a reopening record the replyDue they set, a
		// reply the revisitDue.
		if row.replyDue != "" {
			t, err := time.Parse(time.RFC3339Nano, row.replyDue)
			if err != nil {
				return fmt.Errorf("appeal %s: replyDue %q in history: %w", row.id, row.replyDue, err)
			}
			s.replyDue = t
		}
		if row.revisitDue != "" {
			t, err := time.Parse(time.RFC3339Nano, row.revisitDue)
			if err != nil {
				return fmt.Errorf("appeal %s: revisitDue %q in history: %w", row.id, row.revisitDue, err)
			}
			s.revisitDue = &t
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("changed appeals: %w", err)
	}
	for _, s := range states {
		late = append(late, s.pastDue(asOf)...)
	}
	// One order for every check, so two checks at once insert their
	// announcements in the same order (see recordAnnouncements).
	sort.Slice(late, func(i, j int) bool {
		if late[i].appealID != late[j].appealID {
			return late[i].appealID < late[j].appealID
		}
		return late[i].stage < late[j].stage
	})
	return late, nil
}

// stateAt is an appeal as it stood at a time, rebuilt from its history.
type stateAt struct {
	appealID, department string
	status               appeal.Status
	assignDue, replyDue  time.Time
	revisitDue           *time.Time // nil until a reply
}

// pastDue returns the stages open in this state and past due at asOf,
// by the rules of overdueSQL.
func (s stateAt) pastDue(asOf time.Time) []pastDue {
	var out []pastDue
	add := func(st appeal.Stage, due time.Time) {
		if due.Before(asOf) {
			out = append(out, pastDue{appealID: s.appealID, department: s.department, stage: st, due: due})
		}
	}
	switch s.status {
	case appeal.Assigned:
		add(appeal.StageAssign, s.assignDue)
		add(appeal.StageReply, s.replyDue)
	case appeal.Accepted:
		add(appeal.StageReply, s.replyDue)
	case appeal.Replied:
		if s.revisitDue != nil {
			add(appeal.StageRevisit, *s.revisitDue)
		}
	}
	return out
}

// appealsOverdue is the appeals' Check: every stage past its due time as
// of the event time climbs the ladder by workingDaysOverdue, and each
// (appeal, stage, level) reached is announced once. Each appeal is judged
// as it stood at the event time, so a check that arrives late, or again
// under a new id, gives the same figures.
func (f *Function) appealsOverdue(ctx context.Context, tx pgx.Tx, m runtime.Meta, c *CheckCompleted) ([]runtime.Outgoing, error) {
	late, err := pastDueAt(ctx, tx, m.Time)
	if err != nil {
		return nil, err
	}
	if len(late) == 0 {
		return nil, nil
	}
	cal, err := f.cache.Get(ctx, tx)
	if err != nil {
		return nil, err
	}
	for _, p := range late {
		switch p.stage {
		case appeal.StageAssign:
			c.Overdue.Assign++
		case appeal.StageReply:
			c.Overdue.Reply++
		case appeal.StageRevisit:
			c.Overdue.Revisit++
		}
	}
	due := Ladder(cal, late, m.Time)
	fresh, err := recordAnnouncements(ctx, tx, m, due)
	if err != nil {
		return nil, err
	}
	// Each announcement continues its appeal's own trace (the case that
	// began with a signup or a webhook), linked to this check's span.
	var announced []string
	for _, a := range due {
		if fresh[appeal.OverdueKey(a.AppealID, a.Stage, a.Level)] {
			announced = append(announced, a.AppealID)
		}
	}
	traces, err := caseTraces(ctx, tx, announced)
	if err != nil {
		return nil, err
	}
	tel := telemetry.Current()
	out := make([]runtime.Outgoing, 0, len(fresh))
	for _, a := range due {
		if !fresh[appeal.OverdueKey(a.AppealID, a.Stage, a.Level)] {
			continue
		}
		a.DueAt = a.DueAt.In(f.loc)
		out = append(out, runtime.Outgoing{
			Key:     appeal.OverdueKey(a.AppealID, a.Stage, a.Level),
			Type:    appeal.TypeOverdue,
			Subject: a.AppealID,
			Data:    a,
			TraceParent: tel.Continue(ctx, traces[a.AppealID], "overdue "+string(a.Stage)+"/"+string(a.Level),
				attribute.String("qinqing.appeal_id", a.AppealID), attribute.String("qinqing.department", a.Department),
				attribute.Int("qinqing.working_days_overdue", a.WorkingDaysOverdue)),
		})
	}
	return out, nil
}

// Ladder returns, for appeals past due (sorted by appeal and stage), every
// level each has reached as of asOf, lowest first: workingDaysOverdue is
// the number of working days after the due date up to and including the
// date of the check, both dates in the calendar's time zone.
func Ladder(cal *calendar.Calendar, late []pastDue, asOf time.Time) []OverdueAnnounced {
	today := calendar.DateOf(asOf, cal.Loc)
	var out []OverdueAnnounced
	for _, p := range late {
		n := cal.WorkingDaysBetween(calendar.DateOf(p.due, cal.Loc), today)
		for _, l := range appeal.LevelsFor(n) {
			out = append(out, OverdueAnnounced{AppealID: p.appealID, Stage: p.stage, Level: l,
				Department: p.department, DueAt: p.due, WorkingDaysOverdue: n})
		}
	}
	return out
}

// recordAnnouncements inserts one row per (appeal, stage, level) and
// returns the keys of those that were not announced before. A check
// running at the same moment inserts the same keys in the same order, so
// it waits on the first conflicting row until this one commits, then
// skips what this one announced (ON CONFLICT DO NOTHING): no duplicates,
// no deadlock.
func recordAnnouncements(ctx context.Context, tx pgx.Tx, m runtime.Meta, due []OverdueAnnounced) (map[string]bool, error) {
	ids := make([]string, len(due))
	stages := make([]string, len(due))
	levels := make([]string, len(due))
	depts := make([]string, len(due))
	dues := make([]time.Time, len(due))
	days := make([]int32, len(due))
	for i, a := range due {
		ids[i], stages[i], levels[i], depts[i], dues[i], days[i] =
			a.AppealID, string(a.Stage), string(a.Level), a.Department, a.DueAt, int32(a.WorkingDaysOverdue)
	}
	rows, err := tx.Query(ctx, `INSERT INTO appeal.overdue_announcements
			(appeal_id, stage, level, department, due_at, working_days_overdue, as_of, source, event_id)
		SELECT a, s, l, d, due, w, $7, $8, $9
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int[])
			WITH ORDINALITY AS u(a, s, l, d, due, w, n)
		ORDER BY n
		ON CONFLICT (appeal_id, stage, level) DO NOTHING
		RETURNING appeal_id, stage, level`, ids, stages, levels, depts, dues, days, m.Time, m.Source, m.ID)
	if err != nil {
		return nil, fmt.Errorf("record announcements: %w", err)
	}
	fresh := map[string]bool{}
	var id, stage, level string
	_, err = pgx.ForEachRow(rows, []any{&id, &stage, &level}, func() error {
		fresh[appeal.OverdueKey(id, appeal.Stage(stage), appeal.Level(level))] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record announcements: %w", err)
	}
	return fresh, nil
}

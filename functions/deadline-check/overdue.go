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
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/telemetry"
)

// pastDue is an appeal past the due time of a stage it has not met.
type pastDue struct {
	appealID   string
	department string
	stage      appeal.Stage
	due        time.Time
}

// queuePastDue queues on b the reads of the open stages past their due
// time as of asOf, each appeal judged as it stood at asOf: the appeals
// unchanged since asOf as they stand (appeal.QueuePastDueUnchanged), and
// whether any changed since (appeal.QueueChangedSince). Once b is sent,
// the returned function reads the history of those that changed, if any
// (appeal.ChangedSteps), rebuilds their state at asOf, and gives every
// stage past due, sorted.
func queuePastDue(b *pgx.Batch, asOf time.Time) func(ctx context.Context, tx pgx.Tx) ([]pastDue, error) {
	var unchanged []appeal.PastDue
	var changed bool
	appeal.QueuePastDueUnchanged(b, asOf, &unchanged)
	appeal.QueueChangedSince(b, asOf, &changed)
	return func(ctx context.Context, tx pgx.Tx) ([]pastDue, error) {
		var states []stateAt
		if changed {
			if err := appeal.ChangedSteps(ctx, tx, asOf, func(row *appeal.ChangedStep) error {
				if n := len(states); n == 0 || states[n-1].appealID != row.AppealID {
					states = append(states, stateAt{appealID: row.AppealID, assignDue: row.AssignDue, replyDue: row.FirstReplyDue})
				}
				s := &states[len(states)-1]
				s.status, s.department = row.To, row.Department
				// The submission and a reopening record the replyDue they
				// set, a reply the revisitDue.
				if row.ReplyDue != "" {
					t, err := time.Parse(time.RFC3339Nano, row.ReplyDue)
					if err != nil {
						return fmt.Errorf("appeal %s: replyDue %q in history: %w", row.AppealID, row.ReplyDue, err)
					}
					s.replyDue = t
				}
				if row.RevisitDue != "" {
					t, err := time.Parse(time.RFC3339Nano, row.RevisitDue)
					if err != nil {
						return fmt.Errorf("appeal %s: revisitDue %q in history: %w", row.AppealID, row.RevisitDue, err)
					}
					s.revisitDue = &t
				}
				return nil
			}); err != nil {
				return nil, err
			}
		}
		late := make([]pastDue, len(unchanged))
		for i, p := range unchanged {
			late[i] = pastDue{appealID: p.AppealID, department: p.Department, stage: p.Stage, due: p.Due}
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
}

// stateAt is an appeal as it stood at a time, rebuilt from its history.
type stateAt struct {
	appealID, department string
	status               appeal.Status
	assignDue, replyDue  time.Time
	revisitDue           *time.Time // nil until a reply
}

// pastDue returns the stages open in this state and past due at asOf,
// by the rules of appeal.QueuePastDueUnchanged.
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
// It queues its two reads (the unchanged appeals past due, whether any
// changed since) and rebuilds the changed ones in the rest.
func (f *Function) appealsOverdue(b *pgx.Batch, m runtime.Meta, c *contract.CheckCompleted) Rest {
	pastDue := queuePastDue(b, m.Time)
	return func(ctx context.Context, tx pgx.Tx) ([]runtime.Outgoing, error) {
		late, err := pastDue(ctx, tx)
		if err != nil {
			return nil, err
		}
		return f.announceOverdue(ctx, tx, m, c, late)
	}
}

// announceOverdue counts the stages past due and announces each level
// they reached that was not announced before.
func (f *Function) announceOverdue(ctx context.Context, tx pgx.Tx, m runtime.Meta, c *contract.CheckCompleted, late []pastDue) ([]runtime.Outgoing, error) {
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
	traces, err := appeal.CaseTraces(ctx, tx, announced)
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
			Type:    contract.TypeAppealOverdue,
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
func Ladder(cal *calendar.Calendar, late []pastDue, asOf time.Time) []contract.OverdueAnnounced {
	today := calendar.DateOf(asOf, cal.Loc)
	var out []contract.OverdueAnnounced
	for _, p := range late {
		n := cal.WorkingDaysBetween(calendar.DateOf(p.due, cal.Loc), today)
		for _, l := range appeal.LevelsFor(n) {
			out = append(out, contract.OverdueAnnounced{AppealID: p.appealID, Stage: p.stage, Level: l,
				Department: p.department, DueAt: p.due, WorkingDaysOverdue: n})
		}
	}
	return out
}

package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/calendar"
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime"
)

const name = "appeal-router"

// Function routes appeals and keeps their lifecycle.
type Function struct {
	loc   *time.Location
	cache *calendar.Cache
	rules *appeal.Rules
}

// New returns the function's handlers.
func New(env *runtime.Env, rules *appeal.Rules) *runtime.Function {
	f := &Function{loc: env.Loc, cache: env.Calendar, rules: rules}
	return &runtime.Function{
		Name: name,
		Handlers: map[string]runtime.Handler{
			contract.TypeCalendarPublished: runtime.On(f.publishCalendar),
			contract.TypeAppealSubmitted:   runtime.On(f.submit),
			contract.TypeAppealAccepted:    runtime.On(f.accept),
			contract.TypeAppealReturned:    runtime.On(f.giveBack),
			contract.TypeAppealReplied:     runtime.On(f.reply),
			contract.TypeAppealRevisited:   runtime.On(f.revisit),
		},
	}
}

// Refusal reasons of cn.huzhou.appeal.rejected.
const (
	ReasonUnknownAppeal     = "unknown_appeal"
	ReasonInvalidTransition = "invalid_transition"
	ReasonWrongDepartment   = "wrong_department"
)

// calendar returns the working-day calendar (cached briefly; a
// publication handled here drops the cache once it has committed).
func (f *Function) calendar(ctx context.Context, tx pgx.Tx) (*calendar.Calendar, error) {
	return f.cache.Get(ctx, tx)
}

func (f *Function) publishCalendar(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.CalendarPublished) (runtime.Result, error) {
	if err := calendar.Publish(ctx, tx, p.Year, p.HolidayDates(), p.WorkdayDates(), m.Source); err != nil {
		return runtime.Result{}, err
	}
	res := runtime.Reply(contract.TypeCalendarAccepted, contract.CalendarAccepted{
		Year: p.Year, Holidays: len(p.HolidayDates()), Workdays: len(p.WorkdayDates()),
	})
	// Dropped after the commit: a load racing with this transaction may
	// have cached the old year, and a rollback must keep the old one.
	// Other instances see the publication within the cache's TTL.
	res.AfterCommit = f.cache.Invalidate
	return res, nil
}

// submit routes a new appeal. Its id is the given appealId, or one
// derived from the event's source + id. An appealId that exists already
// (another event for the same appeal) creates nothing: the reply is the
// existing appeal's current assignment.
func (f *Function) submit(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.AppealSubmitted) (runtime.Result, error) {
	id := p.AppealID
	if id == "" {
		id = runtime.DeriveID("appeal", m.Source, m.ID)
	}
	cal, err := f.calendar(ctx, tx)
	if err != nil {
		return runtime.Result{}, err
	}
	a := contract.AppealAssignment{
		AppealID:   id,
		Department: f.rules.Route(p.Category, p.County),
		ReceivedAt: m.Time.Truncate(time.Microsecond), // what Postgres keeps
		AssignDue:  cal.DueAfter(m.Time, appeal.AssignWorkingDays),
		ReplyDue:   cal.DueAfter(m.Time, appeal.ReplyWorkingDays),
	}
	created, err := insertAppeal(ctx, tx, m, id, p, a)
	if err != nil {
		return runtime.Result{}, err
	}
	if !created {
		if a, err = assignment(ctx, tx, id); err != nil {
			return runtime.Result{}, err
		}
	} else if err := addHistory(ctx, tx, m, id, step{action: appeal.Submit, actor: m.Source, to: appeal.Assigned,
		department: a.Department, detail: map[string]any{"channel": p.Channel, "category": p.Category, "county": p.County,
			"assignDue": a.AssignDue, "replyDue": a.ReplyDue}}); err != nil {
		return runtime.Result{}, err
	}
	return runtime.Reply(contract.TypeAppealAssigned, f.local(a)), nil
}

// local shows the assignment's times in the business time zone.
func (f *Function) local(a contract.AppealAssignment) contract.AppealAssignment {
	a.ReceivedAt, a.AssignDue, a.ReplyDue = a.ReceivedAt.In(f.loc), a.AssignDue.In(f.loc), a.ReplyDue.In(f.loc)
	return a
}

func (f *Function) accept(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.AppealAccepted) (runtime.Result, error) {
	return f.answer(ctx, tx, m, p.AppealID, p.Department, appeal.Accept, "", map[string]any{})
}

func (f *Function) giveBack(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.AppealReturned) (runtime.Result, error) {
	return f.answer(ctx, tx, m, p.AppealID, p.Department, appeal.Return, "", map[string]any{"reason": p.Reason})
}

func (f *Function) reply(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.AppealReplied) (runtime.Result, error) {
	return f.answer(ctx, tx, m, p.AppealID, p.Department, appeal.Reply, "", map[string]any{"reply": p.Reply})
}

func (f *Function) revisit(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.AppealRevisited) (runtime.Result, error) {
	return f.answer(ctx, tx, m, p.AppealID, "", appeal.Revisit, appeal.Satisfaction(p.Satisfaction),
		map[string]any{"satisfaction": p.Satisfaction, "comment": p.Comment})
}

// answer applies one transition under the appeal's row lock. The
// refusals, in the order they are checked: unknown_appeal;
// wrong_department when a department answers that is not the current
// assignee (revisits name no department); invalid_transition when the
// state machine does not allow the action, or when the business
// environment office returns an appeal (it has nowhere to return it to).
func (f *Function) answer(ctx context.Context, tx pgx.Tx, m runtime.Meta, id, department string, a appeal.Action,
	sat appeal.Satisfaction, detail map[string]any) (runtime.Result, error) {
	reject := func(reason string) (runtime.Result, error) {
		return runtime.Reply(contract.TypeAppealRejected, contract.AppealRejection{AppealID: id, Reason: reason}), nil
	}
	cur, found, err := lockAppeal(ctx, tx, id)
	if err != nil {
		return runtime.Result{}, err
	}
	if !found {
		return reject(ReasonUnknownAppeal)
	}
	if department != "" && department != cur.department {
		return reject(ReasonWrongDepartment)
	}
	to, ok := appeal.Next(cur.status, a, sat)
	if !ok || a == appeal.Return && cur.department == appeal.DefaultDepartment {
		return reject(ReasonInvalidTransition)
	}
	s := step{action: a, actor: department, from: cur.status, to: to, department: cur.department, satisfaction: sat, detail: detail}
	if a == appeal.Revisit {
		s.actor = m.Source
	}
	var d dues
	switch {
	case a == appeal.Return:
		s.department = appeal.DefaultDepartment
	case a == appeal.Reply:
		cal, err := f.calendar(ctx, tx)
		if err != nil {
			return runtime.Result{}, err
		}
		due := cal.DueAfter(m.Time, appeal.RevisitWorkingDays)
		d.revisitDue, detail["revisitDue"] = &due, due.In(f.loc)
	case a == appeal.Revisit && to == appeal.Accepted:
		cal, err := f.calendar(ctx, tx)
		if err != nil {
			return runtime.Result{}, err
		}
		due := cal.DueAfter(m.Time, appeal.ReplyWorkingDays)
		d.replyDue, d.reopened, detail["replyDue"] = &due, true, due.In(f.loc)
	}
	if err := updateAppeal(ctx, tx, id, s, d, m.Time); err != nil {
		return runtime.Result{}, err
	}
	if err := addHistory(ctx, tx, m, id, s); err != nil {
		return runtime.Result{}, err
	}
	return runtime.Reply(contract.TypeAppealUpdated, contract.AppealUpdate{AppealID: id, Status: to, Department: s.department}), nil
}

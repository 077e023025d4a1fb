package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/calendar"
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/subsidy"
)

const name = "deadline-check"

// Function runs the deadline checks and the monthly review.
type Function struct {
	loc    *time.Location
	cache  *calendar.Cache
	docs   *docs.Store
	checks []Check
}

// New returns the function's handlers.
func New(env *runtime.Env, store *docs.Store) *runtime.Function {
	f := &Function{loc: env.Loc, cache: env.Calendar, docs: store}
	// Each kind of deadline is one Check.
	f.checks = []Check{f.appealsOverdue, f.paymentsOverdue}
	return &runtime.Function{
		Name: name,
		// Longer than the runtime's default: the monthly review renders its reports
		// (the chart gives it timeoutSeconds 600).
		RequestTimeout: runtime.LongRequestTimeout,
		Handlers: map[string]runtime.Handler{
			event.PingType: runtime.Jobs(map[string]runtime.JobFunc{
				"deadline-check": f.deadlineCheck,
				"monthly-review": f.monthlyReview,
			}),
		},
	}
}

// A Check finds what is overdue as of m.Time, adds its counts to c.Overdue
// and returns the follow-ups announcing what was not announced before
// (each with a Key, and guarded by a unique row of its own, so two checks
// at once announce it once).
type Check func(ctx context.Context, tx pgx.Tx, m runtime.Meta, c *contract.CheckCompleted) ([]runtime.Outgoing, error)

// paymentsOverdue announces, once each, subsidy payments not settled by
// their dueAt (contract section 5, the payment part; the queries live with
// the subsidy domain in shared/subsidy).
func (f *Function) paymentsOverdue(ctx context.Context, tx pgx.Tx, m runtime.Meta, c *contract.CheckCompleted) ([]runtime.Outgoing, error) {
	n, fresh, err := subsidy.AnnounceOverduePayments(ctx, tx, m.Time.In(f.loc))
	c.Overdue.Payment = n
	out := make([]runtime.Outgoing, len(fresh))
	for i, a := range fresh {
		out[i] = runtime.Outgoing{Type: a.Type, Key: a.Key, Data: a.Data}
	}
	return out, err
}

// deadlineCheck runs every check as of the event time in the event's
// transaction.
func (f *Function) deadlineCheck(ctx context.Context, tx pgx.Tx, m runtime.Meta) (runtime.Result, error) {
	c := contract.CheckCompleted{AsOf: m.Time.In(f.loc)}
	var res runtime.Result
	for _, check := range f.checks {
		out, err := check(ctx, tx, m, &c)
		if err != nil {
			return runtime.Result{}, err
		}
		res.FollowUps = append(res.FollowUps, out...)
	}
	c.Announced = len(res.FollowUps)
	res.Reply = runtime.Outgoing{Type: contract.TypeDeadlineCheckCompleted, Data: c}
	return res, nil
}

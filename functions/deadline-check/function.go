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
			event.PingType: runtime.Jobs(map[string]runtime.Job{
				"deadline-check": runtime.QueueJob(f.deadlineCheck),
				"monthly-review": runtime.JobFunc(f.monthlyReview),
			}),
		},
	}
}

// A Check is one kind of deadline. It queues on b its statements finding
// what is overdue as of m.Time, and returns the rest of its work, run once
// b is sent: it adds its counts to c.Overdue and returns the follow-ups
// announcing what was not announced before (each with a Key, and guarded
// by a unique row of its own, so two checks at once announce it once).
// Every check's statements go out in one batch, the one that begins the
// event's transaction and inserts its inbox row (runtime.QueueJob): on
// the first event of a new backend, one parse and one execute round trip
// for all of them and the inbox row. What a check reads there is cheap
// to plan on a new backend; what is needed only when something is due
// (rebuilding changed appeals, announcing overdue payments) goes in the
// rest, and only then.
type Check func(b *pgx.Batch, m runtime.Meta, c *contract.CheckCompleted) Rest

// Rest is what a Check does after its batch was sent.
type Rest func(ctx context.Context, tx pgx.Tx) ([]runtime.Outgoing, error)

// paymentsOverdue announces, once each, subsidy payments not settled by
// their dueAt (contract section 5, the payment part; the statements live
// with the subsidy domain in shared/subsidy). The batch says whether any
// is overdue; only then does the rest announce them, in one more
// statement.
func (f *Function) paymentsOverdue(b *pgx.Batch, m runtime.Meta, c *contract.CheckCompleted) Rest {
	asOf := m.Time.In(f.loc)
	var overdue bool
	subsidy.QueueAnyOverduePayments(b, asOf, &overdue)
	return func(ctx context.Context, tx pgx.Tx) ([]runtime.Outgoing, error) {
		if !overdue {
			return nil, nil
		}
		n, fresh, err := subsidy.AnnounceOverduePayments(ctx, tx, asOf)
		if err != nil {
			return nil, err
		}
		c.Overdue.Payment = n
		out := make([]runtime.Outgoing, len(fresh))
		for i, a := range fresh {
			out[i] = runtime.Outgoing{Type: a.Type, Key: a.Key, Data: a.Data}
		}
		return out, nil
	}
}

// deadlineCheck queues every check's statements as of the event time on
// b, the event's first batch, and returns the rest of the checks, run in
// the event's transaction once b is read, in the order of f.checks. So
// every check takes its announcement rows in the same order (the
// appeals', then the payments'), and two checks at once never wait on
// each other's in a cycle.
func (f *Function) deadlineCheck(b *pgx.Batch, m runtime.Meta) runtime.Run {
	c := contract.CheckCompleted{AsOf: m.Time.In(f.loc)}
	rest := make([]Rest, len(f.checks))
	for i, check := range f.checks {
		rest[i] = check(b, m, &c)
	}
	return func(ctx context.Context, tx pgx.Tx) (runtime.Result, error) {
		var res runtime.Result
		for _, r := range rest {
			out, err := r(ctx, tx)
			if err != nil {
				return runtime.Result{}, err
			}
			res.FollowUps = append(res.FollowUps, out...)
		}
		c.Announced = len(res.FollowUps)
		res.Reply = runtime.Outgoing{Type: contract.TypeDeadlineCheckCompleted, Data: c}
		return res, nil
	}
}

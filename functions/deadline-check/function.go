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
	// horizon reads the deadline horizon for checks (horizonSQL).
	horizon string
}

// New returns the function's handlers.
func New(env *runtime.Env, store *docs.Store) *runtime.Function {
	f := &Function{loc: env.Loc, cache: env.Calendar, docs: store}
	// Each kind of deadline is one Check, in the order they take their
	// announcement rows (see deadlineCheck).
	f.checks = []Check{
		{Kind: "appeal", Queue: f.appealsOverdue},
		{Kind: "payment", Queue: f.paymentsOverdue},
	}
	f.horizon = horizonSQL(f.checks)
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

// A Check is one kind of deadline: the appeals' stages, the subsidy
// payments.
type Check struct {
	// Kind is the check's kind in the deadline horizon (qinqing.deadlines,
	// migration 0094): the check runs only when a row of its kind has a
	// deadline before the check's time or changed after it.
	Kind string
	// Queue queues on b its statements finding what is overdue as of
	// m.Time, and returns the rest of its work, run once b is sent: it
	// adds its counts to c.Overdue and returns the follow-ups announcing
	// what was not announced before (each with a Key, and guarded by a
	// unique row of its own, so two checks at once announce it once).
	// The statements of every check that runs go out in one batch; what
	// is needed only when something is overdue (rebuilding changed
	// appeals, announcing payments) goes in the rest, and only then.
	Queue func(b *pgx.Batch, m runtime.Meta, c *contract.CheckCompleted) Rest
}

// Rest is what a Check does after its batch was sent.
type Rest func(ctx context.Context, tx pgx.Tx) ([]runtime.Outgoing, error)

// paymentsOverdue announces, once each, subsidy payments not settled by
// their dueAt (contract section 5, the payment part; the statement lives
// with the subsidy domain in shared/subsidy). It runs only when the
// horizon says a payment may be overdue, so it queues nothing and goes
// straight to the statement that finds and announces them.
func (f *Function) paymentsOverdue(_ *pgx.Batch, m runtime.Meta, c *contract.CheckCompleted) Rest {
	asOf := m.Time.In(f.loc)
	return func(ctx context.Context, tx pgx.Tx) ([]runtime.Outgoing, error) {
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

// deadlineCheck queues on b, the event's first batch (with the inbox row:
// runtime.QueueJob), the read of the deadline horizon as of the event
// time, one index probe or two per kind of one small table. The returned
// Run sends, in one more batch, the statements of the checks whose kind
// may have something overdue (none: the check is answered at once), then
// runs their rest in the order of f.checks. So every check takes its
// announcement rows in the same order (the appeals', then the
// payments'), and two checks at once never wait on each other's in a
// cycle.
//
// On the first event of a new backend each table a statement reads costs
// catalog look-ups and planning (about 0.5 ms of the backend's CPU each):
// a check with nothing due reads one table besides the inbox, where it
// read four (README, Speed).
func (f *Function) deadlineCheck(b *pgx.Batch, m runtime.Meta) runtime.Run {
	c := contract.CheckCompleted{AsOf: m.Time.In(f.loc)}
	due := make([]bool, len(f.checks))
	queueHorizon(b, f.horizon, m.Time, due)
	return func(ctx context.Context, tx pgx.Tx) (runtime.Result, error) {
		var rest []Rest
		b := &pgx.Batch{}
		for i, check := range f.checks {
			if due[i] {
				rest = append(rest, check.Queue(b, m, &c))
			}
		}
		if b.Len() > 0 {
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return runtime.Result{}, err
			}
		}
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

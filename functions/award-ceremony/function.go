package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime"
)

const name = "award-ceremony"

// MaxWinnersPerCategory bounds AWARD_WINNERS_PER_CATEGORY.
const MaxWinnersPerCategory = 100

// Function handles the award events.
type Function struct {
	docs    *docs.Store
	loc     *time.Location
	winners int
}

// New returns the function's handlers; winners is the number of winners
// per category.
func New(env *runtime.Env, store *docs.Store, winners int) *runtime.Function {
	f := &Function{docs: store, loc: env.Loc, winners: winners}
	return &runtime.Function{
		Name: name,
		// Longer than the runtime's default: the ceremony renders its documents
		// (the chart gives it timeoutSeconds 600).
		RequestTimeout: runtime.LongRequestTimeout,
		Handlers: map[string]runtime.Handler{
			contract.TypeMetricsReported:     runtime.On(f.metrics),
			contract.TypeNominationSubmitted: runtime.On(f.nominate),
			contract.TypeScoreRecorded:       runtime.On(f.score),
			event.PingType:                   runtime.Jobs(map[string]runtime.Job{"award-ceremony": runtime.JobFunc(f.ceremony)}),
		},
	}
}

func validWinnersPerCategory(n int) error {
	if n < 1 || n > MaxWinnersPerCategory {
		return fmt.Errorf("AWARD_WINNERS_PER_CATEGORY: must be between 1 and %d, got %d", MaxWinnersPerCategory, n)
	}
	return nil
}

func (f *Function) metrics(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.MetricsReported) (runtime.Result, error) {
	replaced, err := upsertMetrics(ctx, tx, m, p)
	if err != nil {
		return runtime.Result{}, err
	}
	return runtime.Reply(contract.TypeMetricsAccepted, contract.MetricsAccepted{USCC: p.USCC, Year: p.Year, Superseded: !replaced}), nil
}

func (f *Function) nominate(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.NominationSubmitted) (runtime.Result, error) {
	reply := contract.NominationReply{NominationID: p.NominationID, Year: p.Year, Category: p.Category}
	same, err := insertNomination(ctx, tx, m, p)
	if err != nil {
		return runtime.Result{}, err
	}
	if !same {
		reply.Reason = "duplicate_nomination"
		return runtime.Reply(contract.TypeNominationRejected, reply), nil
	}
	return runtime.Reply(contract.TypeNominationAccepted, reply), nil
}

func (f *Function) score(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.ScoreRecorded) (runtime.Result, error) {
	reply := contract.ScoreReply{NominationID: p.NominationID, Judge: p.Judge, Score: json.Number(contract.FormatScore(p.Centi()))}
	found, err := nominationExists(ctx, tx, p.NominationID)
	if err != nil {
		return runtime.Result{}, err
	}
	if !found {
		reply.Reason = "unknown_nomination"
		return runtime.Reply(contract.TypeScoreRejected, reply), nil
	}
	replaced, err := upsertScore(ctx, tx, m, p)
	if err != nil {
		return runtime.Result{}, err
	}
	reply.Superseded = !replaced
	return runtime.Reply(contract.TypeScoreAccepted, reply), nil
}

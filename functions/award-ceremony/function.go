package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
			TypeMetricsReported:     runtime.On(f.metrics),
			TypeNominationSubmitted: runtime.On(f.nominate),
			TypeScoreRecorded:       runtime.On(f.score),
			event.PingType:          runtime.Jobs(map[string]runtime.JobFunc{"award-ceremony": f.ceremony}),
		},
	}
}

func validWinnersPerCategory(n int) error {
	if n < 1 || n > MaxWinnersPerCategory {
		return fmt.Errorf("AWARD_WINNERS_PER_CATEGORY: must be between 1 and %d, got %d", MaxWinnersPerCategory, n)
	}
	return nil
}

// MetricsAccepted is the data of metrics.accepted. Superseded is true when
// a report with a later event time was already on file, so this one was
// recorded as handled but did not replace it.
type MetricsAccepted struct {
	USCC       string `json:"uscc"`
	Year       int    `json:"year"`
	Superseded bool   `json:"superseded"`
}

// NominationReply is the data of nomination.accepted and
// nomination.rejected (reason "duplicate_nomination").
type NominationReply struct {
	NominationID string `json:"nominationId"`
	Year         int    `json:"year"`
	Category     string `json:"category"`
	Reason       string `json:"reason,omitempty"`
}

// ScoreReply is the data of score.accepted and score.rejected (reason
// "unknown_nomination"). Superseded is true when the judge's score with a
// later event time was already on file.
type ScoreReply struct {
	NominationID string      `json:"nominationId"`
	Judge        string      `json:"judge"`
	Score        json.Number `json:"score"`
	Superseded   bool        `json:"superseded"`
	Reason       string      `json:"reason,omitempty"`
}

func (f *Function) metrics(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *MetricsReported) (runtime.Result, error) {
	replaced, err := upsertMetrics(ctx, tx, m, p)
	if err != nil {
		return runtime.Result{}, err
	}
	return runtime.Reply(TypeMetricsAccepted, MetricsAccepted{USCC: p.USCC, Year: p.Year, Superseded: !replaced}), nil
}

func (f *Function) nominate(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *NominationSubmitted) (runtime.Result, error) {
	reply := NominationReply{NominationID: p.NominationID, Year: p.Year, Category: p.Category}
	same, err := insertNomination(ctx, tx, m, p)
	if err != nil {
		return runtime.Result{}, err
	}
	if !same {
		reply.Reason = "duplicate_nomination"
		return runtime.Reply(TypeNominationRejected, reply), nil
	}
	return runtime.Reply(TypeNominationAccepted, reply), nil
}

func (f *Function) score(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *ScoreRecorded) (runtime.Result, error) {
	reply := ScoreReply{NominationID: p.NominationID, Judge: p.Judge, Score: json.Number(formatScore(p.centi))}
	found, err := nominationExists(ctx, tx, p.NominationID)
	if err != nil {
		return runtime.Result{}, err
	}
	if !found {
		reply.Reason = "unknown_nomination"
		return runtime.Reply(TypeScoreRejected, reply), nil
	}
	replaced, err := upsertScore(ctx, tx, m, p)
	if err != nil {
		return runtime.Result{}, err
	}
	reply.Superseded = !replaced
	return runtime.Reply(TypeScoreAccepted, reply), nil
}

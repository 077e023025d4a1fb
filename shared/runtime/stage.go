package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Stage is the part of handling an event that must not run inside the
// event's database transaction: a call to another system that may take
// seconds (webhook-egress posting to a portal). The runtime runs it after
// the data was decoded and validated and before the inbox transaction,
// holding no transaction open; it returns the Run that the runtime then
// runs in the transaction as usual (inbox row, outbox, stored reply). An
// error is mapped as a Run's error is (EINVALID → 400, anything else →
// 5xx so Knative retries), and nothing of the transaction is written.
//
// A stage may run more than once for one event — a retry after a 5xx,
// two deliveries at the same moment, a redelivery whose inbox row was
// pruned — so it must be idempotent on its own, for example by recording
// what it did in its own short transactions and skipping what is already
// done. An event whose inbox row exists (already handled) skips the stage
// and is answered with the stored reply.
type Stage func(ctx context.Context) (Run, error)

// StagedHandler is a Handler whose events have a Stage. Prepare (used by
// callers that drive a Handler themselves) runs the stage inside the
// transaction; the runtime's server calls PrepareStage and runs the stage
// before it.
type StagedHandler interface {
	Handler
	PrepareStage(m Meta, data []byte) (Stage, error)
}

// Staged builds a StagedHandler from a typed stage: the data is decoded
// and validated as On does, then fn runs outside any transaction and
// returns the Run for the transaction.
func Staged[T any](fn func(ctx context.Context, m Meta, p *T) (Run, error)) StagedHandler {
	return staged[T](fn)
}

type staged[T any] func(ctx context.Context, m Meta, p *T) (Run, error)

func (fn staged[T]) PrepareStage(m Meta, data []byte) (Stage, error) {
	p := new(T)
	if err := DecodeJSON(data, p); err != nil {
		return nil, err
	}
	if v, ok := any(p).(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context) (Run, error) { return fn(ctx, m, p) }, nil
}

func (fn staged[T]) Prepare(m Meta, data []byte) (Run, error) {
	stage, err := fn.PrepareStage(m, data)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, tx pgx.Tx) (Result, error) {
		run, err := stage(ctx)
		if err != nil {
			return Result{}, err
		}
		return run(ctx, tx)
	}, nil
}

// prepare turns an event into its Run, or for a QueuedHandler's event
// with a Queue into that Queue (then the Run is nil). For a StagedHandler
// it runs the stage first, outside any transaction, unless the event was
// already handled (then the Run is never called: the inbox answers the
// stored reply).
func (s *Server) prepare(ctx context.Context, h Handler, m Meta, data []byte) (Run, Queue, error) {
	if qh, ok := h.(QueuedHandler); ok {
		q, err := qh.PrepareQueue(m, data)
		if err != nil || q != nil {
			return nil, q, err
		}
	}
	sh, ok := h.(StagedHandler)
	if !ok {
		run, err := h.Prepare(m, data)
		return run, nil, err
	}
	run, err := s.prepareStaged(ctx, sh, m, data)
	return run, nil, err
}

func (s *Server) prepareStaged(ctx context.Context, sh StagedHandler, m Meta, data []byte) (Run, error) {
	stage, err := sh.PrepareStage(m, data)
	if err != nil {
		return nil, err
	}
	// Like the transaction, the lookup waits for the first connection of
	// a cold start: else it would open a second one beside it.
	if s.warm != nil {
		select {
		case <-s.warm:
		case <-ctx.Done():
		}
	}
	var handled bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM qinqing.inbox WHERE function = $1 AND source = $2 AND id = $3)`,
		m.Function, m.Source, m.ID).Scan(&handled); err != nil {
		return nil, fmt.Errorf("inbox lookup: %w", err)
	}
	if handled {
		return func(context.Context, pgx.Tx) (Result, error) {
			return Result{}, errors.New("the event's inbox row went away while it was being answered; retry")
		}, nil
	}
	return stage(ctx)
}

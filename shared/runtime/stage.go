package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/event"
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
	p, err := decode[T](data)
	if err != nil {
		return nil, err
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
	handled, err := s.handledBefore(ctx, m)
	if err != nil {
		return nil, err
	}
	if handled {
		return func(context.Context, pgx.Tx) (Result, error) {
			return Result{}, errors.New("the event's inbox row went away while it was being answered; retry")
		}, nil
	}
	return stage(ctx)
}

// StagedReply builds a StagedHandler whose stage is the whole of the
// work: fn runs outside any transaction, as Staged's stage does, and
// returns the event's Result itself rather than a Run (webhook-egress:
// its posts are recorded in their own short transactions, and the event
// only has a reply). The runtime then writes the inbox row once, with
// the reply, in one statement: no transaction of three round trips for
// an empty Run, and on a cold start no UPDATE of the inbox to plan. A
// Result with follow-ups or an AfterCommit is stored in the event's
// transaction as Staged's Run's would be. Like Staged's, the stage is
// skipped for an event already handled, and a delivery of the same
// event committed meanwhile makes the insert find its row: that event's
// stored reply is the answer.
func StagedReply[T any](fn func(ctx context.Context, m Meta, p *T) (Result, error)) StagedHandler {
	return stagedReply[T](fn)
}

type stagedReply[T any] func(ctx context.Context, m Meta, p *T) (Result, error)

// PrepareStage implements StagedHandler: the stage's Run returns the
// stage's Result, for callers that run it in a transaction themselves.
func (fn stagedReply[T]) PrepareStage(m Meta, data []byte) (Stage, error) {
	reply, err := fn.prepareReply(m, data)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (Run, error) {
		res, err := reply(ctx)
		if err != nil {
			return nil, err
		}
		return func(context.Context, pgx.Tx) (Result, error) { return res, nil }, nil
	}, nil
}

// Prepare implements Handler: the stage runs inside the caller's
// transaction.
func (fn stagedReply[T]) Prepare(m Meta, data []byte) (Run, error) {
	reply, err := fn.prepareReply(m, data)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ pgx.Tx) (Result, error) { return reply(ctx) }, nil
}

// prepareReply decodes and validates the data as On does and returns the
// stage.
func (fn stagedReply[T]) prepareReply(m Meta, data []byte) (func(context.Context) (Result, error), error) {
	p, err := decode[T](data)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (Result, error) { return fn(ctx, m, p) }, nil
}

// replyStaged is what the server asks of a StagedReply handler.
type replyStaged interface {
	prepareReply(m Meta, data []byte) (func(context.Context) (Result, error), error)
}

// handledBefore reports whether the event has its inbox row (it was
// handled), waiting first for the first connection of a cold start (else
// the lookup would open a second one beside it).
func (s *Server) handledBefore(ctx context.Context, m Meta) (bool, error) {
	if s.warm != nil {
		select {
		case <-s.warm:
		case <-ctx.Done():
		}
	}
	var handled bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM qinqing.inbox WHERE function = $1 AND source = $2 AND id = $3)`,
		m.Function, m.Source, m.ID).Scan(&handled); err != nil {
		return false, fmt.Errorf("inbox lookup: %w", err)
	}
	return handled, nil
}

// handleReplyStaged handles an event of a StagedReply handler: the
// stored reply when the event was handled before, else the stage, then
// its Result stored with the inbox row (storeReply), or in the event's
// transaction when it has follow-ups or an AfterCommit.
func (s *Server) handleReplyStaged(ctx context.Context, rs replyStaged, m Meta, data []byte) (*cloudevents.Event, bool, error) {
	stage, err := rs.prepareReply(m, data)
	if err != nil {
		return nil, false, err
	}
	handled, err := s.handledBefore(ctx, m)
	if err != nil {
		return nil, false, err
	}
	if handled {
		reply, err := s.readReply(ctx, m)
		return reply, err == nil, err
	}
	res, err := stage(ctx)
	if err != nil {
		return nil, false, err
	}
	if len(res.FollowUps) > 0 || res.AfterCommit != nil {
		return s.handle(ctx, m, func(context.Context, pgx.Tx) (Result, error) { return res, nil }, nil)
	}
	return s.storeReply(ctx, m, res)
}

// inboxReplySQL writes an event's inbox row with its reply (storeReply).
const inboxReplySQL = `INSERT INTO qinqing.inbox (function, source, id, type, traceparent, reply_id, reply_type, reply_data, reply_subject)
	VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7, $8, NULLIF($9, ''))
	ON CONFLICT DO NOTHING RETURNING received_at`

// storeReply writes the event's inbox row with res's reply in one
// statement (queryAlone). When the row is there already (a
// delivery of the same event committed meanwhile; one still in flight
// makes the insert wait on its key) that event's stored reply is the
// answer.
func (s *Server) storeReply(ctx context.Context, m Meta, res Result) (*cloudevents.Event, bool, error) {
	data, err := replyData(m, res)
	if err != nil {
		return nil, false, err
	}
	rid := replyID(m)
	args := []any{m.Function, m.Source, m.ID, m.Type, m.TraceParent, rid, res.Reply.Type, string(data), res.Reply.Subject}
	var receivedAt time.Time
	err = s.queryAlone(ctx, inboxReplySQL, args, func(row pgx.Row) error { return row.Scan(&receivedAt) })
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		reply, err := s.readReply(ctx, m)
		return reply, err == nil, err
	case unanswered(ctx, err):
		return nil, false, event.Unavailable(err, unansweredDetail)
	case err != nil:
		return nil, false, fmt.Errorf("inbox reply: %w", err)
	}
	return newEvent(rid, SourceOf(m.Function), res.Reply.Type, res.Reply.Subject, receivedAt, data), false, nil
}

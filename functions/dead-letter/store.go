package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/postgres"
)

// Outcomes of storing a dead letter.
const (
	stored     = "stored"     // a new dead letter
	reopened   = "reopened"   // a replayed dead letter failed again: pending once more
	redelivery = "redelivery" // already stored and pending: nothing changed
)

// insertDeadLetter stores d once per (source, event id, error dest). A
// redelivery of a pending dead letter changes nothing; the same event
// failing again after a replay reopens the row (status pending, the new
// error, failures + 1) so it is never lost. A replay in progress holds the
// row lock, so this waits for it and then sees its outcome.
//
// Two first deliveries at once would both pass ON CONFLICT's check and one
// would then fail on the other unique index (the primary key), so they
// first serialise on a transaction-scoped advisory lock of the id.
//
// The transaction is one round trip: the pool's timeouts (behind a
// transaction pooler, postgres.Settings), the lock and the insert in one
// batch, which Postgres runs as one implicit transaction (the runtime's
// decisions do the same): it commits at the batch's end, and a statement
// that fails rolls it back whole, the lock with it.
func insertDeadLetter(ctx context.Context, pool *pgxpool.Pool, d *DeadLetter) (string, error) {
	b := &pgx.Batch{}
	if q := postgres.Settings(pool); q != "" {
		b.Queue("SELECT " + q)
	}
	b.Queue(postgres.LockXactSQL, "deadletter/"+d.ID)
	outcome := ""
	b.Queue(`INSERT INTO deadletter.dead_letters AS dl
		(id, source, event_id, error_dest, spec_version, type, subject, event_time, data_content_type, data_schema,
		 extensions, data, error_code, error_data)
		VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), NULLIF($8, ''), NULLIF($9, ''), NULLIF($10, ''), $11, $12, $13, $14)
		ON CONFLICT (source, event_id, error_dest) DO UPDATE
		SET status = 'pending', received_at = now(), failures = dl.failures + 1,
		    error_code = EXCLUDED.error_code, error_data = EXCLUDED.error_data, extensions = EXCLUDED.extensions
		WHERE dl.status = 'replayed'
		RETURNING xmax = 0`,
		d.ID, d.Source, d.EventID, d.ErrorDest, d.SpecVersion, d.Type, d.Subject, d.Time, d.DataContentType, d.DataSchema,
		d.Extensions, d.Data, d.ErrorCode, d.ErrorData).QueryRow(func(row pgx.Row) error {
		var inserted bool
		switch err := row.Scan(&inserted); {
		case errors.Is(err, pgx.ErrNoRows):
			outcome = redelivery
		case err != nil:
			return fmt.Errorf("insert dead letter: %w", err)
		case inserted:
			outcome = stored
		default:
			outcome = reopened
		}
		return nil
	})
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return "", err
	}
	return outcome, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const selectDeadLetter = `SELECT id, status, received_at, error_dest, error_code, error_data, failures, replays, replayed_at,
	last_replay_error, spec_version, event_id, source, type, coalesce(subject, ''), coalesce(event_time, ''),
	coalesce(data_content_type, ''), coalesce(data_schema, ''), extensions, data
	FROM deadletter.dead_letters`

func scanDeadLetter(row pgx.Row) (*DeadLetter, error) {
	d := &DeadLetter{}
	err := row.Scan(&d.ID, &d.Status, &d.ReceivedAt, &d.ErrorDest, &d.ErrorCode, &d.ErrorData, &d.Failures, &d.Replays,
		&d.ReplayedAt, &d.LastError, &d.SpecVersion, &d.EventID, &d.Source, &d.Type, &d.Subject, &d.Time,
		&d.DataContentType, &d.DataSchema, &d.Extensions, &d.Data)
	return d, err
}

// listDeadLetters returns the dead letters with the given status (all when
// status is ""), oldest first.
func listDeadLetters(ctx context.Context, q querier, status string) ([]*DeadLetter, error) {
	rows, err := q.Query(ctx, selectDeadLetter+` WHERE $1 = '' OR status = $1 ORDER BY received_at, id`, status)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	var out []*DeadLetter
	for rows.Next() {
		d, err := scanDeadLetter(rows)
		if err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// lockDeadLetter loads one dead letter for a replay, holding its row lock
// until the transaction ends: two replays of one dead letter never
// interleave, and a new failure of the same event waits for the outcome.
// found is false for an unknown id.
func lockDeadLetter(ctx context.Context, tx pgx.Tx, id string) (d *DeadLetter, found bool, err error) {
	d, err = scanDeadLetter(tx.QueryRow(ctx, selectDeadLetter+` WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load dead letter: %w", err)
	}
	return d, true, nil
}

// markReplayed records a replay the sink accepted.
func markReplayed(ctx context.Context, tx pgx.Tx, d *DeadLetter) error {
	err := tx.QueryRow(ctx, `UPDATE deadletter.dead_letters
		SET status = 'replayed', replays = replays + 1, replayed_at = now(), last_replay_error = NULL
		WHERE id = $1 RETURNING status, replays, replayed_at`, d.ID).Scan(&d.Status, &d.Replays, &d.ReplayedAt)
	if err != nil {
		return fmt.Errorf("mark replayed: %w", err)
	}
	d.LastError = nil
	return nil
}

// markReplayFailed records why the sink refused a replay; the status stays.
func markReplayFailed(ctx context.Context, tx pgx.Tx, id, reason string) error {
	if _, err := tx.Exec(ctx, `UPDATE deadletter.dead_letters SET last_replay_error = $2 WHERE id = $1`, id, reason); err != nil {
		return fmt.Errorf("record replay failure: %w", err)
	}
	return nil
}

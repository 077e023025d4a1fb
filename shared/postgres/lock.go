package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// LockXact takes the transaction-scoped advisory lock named key, waiting
// for a holder in another transaction; COMMIT or ROLLBACK releases it.
// The lock is pg_advisory_xact_lock(hashtextextended(key, 0)), so two
// transactions passing the same key exclude each other and different keys
// almost never collide. Name a key "<schema or function>.<what>/<id>"
// (e.g. "recycling.stats/2026-11"). A transaction lock is safe behind
// PgBouncer in transaction mode; never take a session lock.
func LockXact(ctx context.Context, tx pgx.Tx, key string) error {
	if _, err := tx.Exec(ctx, LockXactSQL, key); err != nil {
		return fmt.Errorf("lock %s: %w", key, err)
	}
	return nil
}

// LockXactSQL is LockXact's statement, for a batch: $1 is the key.
const LockXactSQL = `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`

// TryLockXact is LockXact without the wait: it reports false at once when
// another transaction holds the lock named key
// (pg_try_advisory_xact_lock(hashtextextended(key, 0))).
func TryLockXact(ctx context.Context, tx pgx.Tx, key string) (bool, error) {
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))`, key).Scan(&locked); err != nil {
		return false, fmt.Errorf("lock %s: %w", key, err)
	}
	return locked, nil
}

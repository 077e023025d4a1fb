package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pruneBatch is how many rows one DELETE removes, so pruning a large
// backlog never holds long locks.
const pruneBatch = 5000

// prune deletes the attempts made before cutoff and the settled
// (delivered or failed) deliveries last changed before it, in batches.
// Deliveries still to be retried or in flight are kept.
func prune(ctx context.Context, db *pgxpool.Pool, cutoff time.Time) (attempts, deliveries int64, err error) {
	for _, q := range []struct {
		n   *int64
		sql string
	}{
		{&attempts, `DELETE FROM egress.attempts WHERE seq IN
			(SELECT seq FROM egress.attempts WHERE attempted_at < $1 LIMIT $2)`},
		{&deliveries, `DELETE FROM egress.deliveries WHERE (portal, webhook_id) IN
			(SELECT portal, webhook_id FROM egress.deliveries WHERE state IN ('delivered', 'failed') AND updated_at < $1 LIMIT $2)`},
	} {
		for {
			tag, err := db.Exec(ctx, q.sql, cutoff, pruneBatch)
			if err != nil {
				return attempts, deliveries, fmt.Errorf("prune: %w", err)
			}
			*q.n += tag.RowsAffected()
			if tag.RowsAffected() < pruneBatch {
				break
			}
		}
	}
	return attempts, deliveries, nil
}

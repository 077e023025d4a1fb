package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// pruneLoop removes delivery records older than retention: 30 seconds
// after start, then hourly, until ctx ends (several replicas pruning at
// once only delete the same rows).
func pruneLoop(ctx context.Context, db *pgxpool.Pool, log *zap.SugaredLogger, retention time.Duration) {
	wait := 30 * time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = time.Hour
		attempts, deliveries, err := prune(ctx, db, time.Now().Add(-retention))
		if err != nil {
			log.Warnw("prune deliveries", "error", err)
			continue
		}
		if attempts+deliveries > 0 {
			log.Infow("pruned deliveries", "attempts", attempts, "deliveries", deliveries, "retention", retention.String())
		}
	}
}

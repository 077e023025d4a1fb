// Package postgres holds the database plumbing every function shares: the
// pgx pool, transactions, and the embedded migrations.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is the database part of every function's configuration.
type Config struct {
	// URL is the Postgres connection URL.
	URL string `envconfig:"DATABASE_URL" required:"true"`
	// MaxConns bounds the pool; Knative's container concurrency should not exceed it by much.
	MaxConns int32 `envconfig:"DATABASE_MAX_CONNS" default:"10"`
}

// Open creates a pool. It does not connect: the first connection is made
// when the first event needs one, so a cold start is not slowed and a
// database outage turns into 5xx answers rather than a crash loop.
func Open(ctx context.Context, c Config) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if c.MaxConns > 0 {
		pc.MaxConns = c.MaxConns
	}
	pc.MaxConnIdleTime = 5 * time.Minute
	return pgxpool.NewWithConfig(ctx, pc)
}

// Beginner is what InTx needs: a pool, a connection or a transaction
// (which gives a savepoint).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn in a transaction and commits when fn returns nil. The
// rollback runs on a context that is not cancelled, so a cancelled request
// never leaves a connection stuck in an open transaction
// (after riverqueue/river rivershared/util/dbutil).
func InTx(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) (err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = tx.Rollback(rctx)
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// InTxV is InTx for functions that return a value.
func InTxV[T any](ctx context.Context, db Beginner, fn func(tx pgx.Tx) (T, error)) (T, error) {
	var v T
	err := InTx(ctx, db, func(tx pgx.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v, err
}

// IsUniqueViolation reports whether err is a unique-constraint violation,
// optionally of the named constraint.
func IsUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return false
	}
	return constraint == "" || pe.ConstraintName == constraint
}

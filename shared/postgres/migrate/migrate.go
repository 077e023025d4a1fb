// Package migrate applies the migrations (goose). It is a package of its
// own so that the functions, which never migrate, do not link goose,
// database/sql and text/template (goose parses templates at init): the
// Helm hook Job (cmd/migrate), make run and the tests do.
package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/qinqing/qinqing/shared/postgres"
)

// Up applies every pending migration of postgres.Migrations to the
// database at url and returns the files it applied. Two runs at once (two Helm hook pods, or
// make run beside a test) serialise on goose's table lock, a row in
// goose_lock leased for 30 s and renewed while the run lasts, so the
// second waits and then finds nothing to do; a run that dies holding it
// is taken over when the lease ends. Unlike a session advisory lock this
// also holds through PgBouncer in transaction pooling mode, and the
// connections use the pooler-safe query mode (postgres.PoolerSafe), so url may be
// direct or pooled.
func Up(ctx context.Context, url string) ([]string, error) {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	postgres.PoolerSafe(cc)
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	// Ask for the lock every second (jittered) for up to ten minutes.
	locker, err := lock.NewPostgresTableLocker(lock.WithTableLockTimeout(time.Second, 600))
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, postgres.Migrations(),
		goose.WithLocker(locker),
		goose.WithAllowOutofOrder(true),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	applied := make([]string, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Path)
	}
	return applied, nil
}

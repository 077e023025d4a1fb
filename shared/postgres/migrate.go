package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrations are the numbered SQL files of the one migration history. Each
// domain owns a number range so parallel work does not collide:
// 0001–0009 qinqing core (inbox, outbox, calendar), 0010–0019 forum,
// 0020–0029 appeal, 0030–0039 subsidy, 0040–0049 recycling,
// 0050–0059 award, 0060–0069 dead letters.
//
//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies every pending migration to the database at url and
// returns the files it applied. Two runs at once (two Helm hook pods, or
// make run beside a test) serialise on goose's table lock, a row in
// goose_lock leased for 30 s and renewed while the run lasts, so the
// second waits and then finds nothing to do; a run that dies holding it
// is taken over when the lease ends. Unlike a session advisory lock this
// also holds through PgBouncer in transaction pooling mode, and the
// connections use the pooler-safe query mode (PoolerSafe), so url may be
// direct or pooled.
func Migrate(ctx context.Context, url string) ([]string, error) {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	PoolerSafe(cc)
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	// Ask for the lock every second (jittered) for up to ten minutes.
	locker, err := lock.NewPostgresTableLocker(lock.WithTableLockTimeout(time.Second, 600))
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
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

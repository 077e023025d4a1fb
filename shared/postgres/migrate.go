package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for goose
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

// Migrate applies every pending migration to the database at url. It holds
// a Postgres advisory lock for the duration, so two runs at once (two Helm
// hook pods, or make run beside a test) serialise instead of racing; a
// second run is a no-op.
func Migrate(ctx context.Context, url string) ([]string, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithSessionLocker(locker),
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

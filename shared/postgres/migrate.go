package postgres

import (
	"embed"
	"io/fs"
)

// migrations holds the numbered SQL files of the one migration history. Each
// domain owns a number range so parallel work does not collide:
// 0001–0009 qinqing core (inbox, outbox, calendar), 0010–0019 forum,
// 0020–0029 appeal, 0030–0039 subsidy, 0040–0049 recycling,
// 0050–0059 award, 0060–0069 dead letters.
//
//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the migration files, at the root of the FS, for
// migrate.Up (shared/postgres/migrate).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	return sub
}

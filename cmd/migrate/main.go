// Command migrate applies every qinqing database migration to
// MIGRATIONS_DATABASE_URL (a direct connection with the owner role), or to
// DATABASE_URL when that is unset, and exits 0. It is idempotent and safe
// to run twice at once, also through PgBouncer in transaction pooling mode
// (goose's table lock, see migrate.Up); the Helm chart runs it as a
// pre-install/pre-upgrade hook Job.
// `make run` (cmd/devstack) applies the same migrations in-process with
// the same migrate.Up. Functions never migrate on start.
//
// With -create-login-roles it then creates (or updates) the login role of
// each function whose DATABASE_PASSWORD_<FUNCTION> is set, as a member of
// the function's group role (docs/deploy.md, "Roles and grants").
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kelseyhightower/envconfig"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/migrate"
)

func main() {
	createLogins := flag.Bool("create-login-roles", false, "create or update the login role of each function whose DATABASE_PASSWORD_<FUNCTION> is set")
	flag.Parse()
	var cfg struct {
		MigrationsURL string `envconfig:"MIGRATIONS_DATABASE_URL"`
		URL           string `envconfig:"DATABASE_URL"`
	}
	if err := envconfig.Process("", &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(2)
	}
	url := cfg.MigrationsURL
	if url == "" {
		url = cfg.URL
	}
	if url == "" {
		fmt.Fprintln(os.Stderr, "migrate: MIGRATIONS_DATABASE_URL or DATABASE_URL must be set")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	applied, err := migrate.Up(ctx, url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
	if len(applied) == 0 {
		fmt.Println("migrate: database is up to date")
	}
	for _, a := range applied {
		fmt.Println("migrate: applied", a)
	}
	if *createLogins {
		roles, err := postgres.CreateLoginRoles(ctx, url, os.Getenv)
		for _, r := range roles {
			fmt.Println("migrate: login role", r)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "migrate:", err)
			os.Exit(1)
		}
		if len(roles) == 0 {
			fmt.Println("migrate: -create-login-roles: no DATABASE_PASSWORD_<FUNCTION> is set")
		}
	}
}

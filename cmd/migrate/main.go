// Command migrate applies every qinqing database migration to DATABASE_URL
// and exits 0. It is idempotent and safe to run twice at once (advisory
// lock); the Helm chart runs it as a pre-install/pre-upgrade hook Job.
// `make run` (cmd/devstack) applies the same migrations in-process with
// the same postgres.Migrate. Functions never migrate on start.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kelseyhightower/envconfig"

	"github.com/qinqing/qinqing/shared/postgres"
)

func main() {
	var cfg struct {
		URL string `envconfig:"DATABASE_URL" required:"true"`
	}
	if err := envconfig.Process("", &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	applied, err := postgres.Migrate(ctx, cfg.URL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
	if len(applied) == 0 {
		fmt.Println("migrate: database is up to date")
		return
	}
	for _, a := range applied {
		fmt.Println("migrate: applied", a)
	}
}

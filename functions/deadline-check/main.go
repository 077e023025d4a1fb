// Command deadline-check is the cron function of contract section 5: the
// escalation ladder for appeals past their deadlines (deadline-check) and
// the monthly review of the business environment (monthly-review), both
// "as of" the PingSource event's time.
package main

import (
	"context"

	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/postgres"
	_ "github.com/qinqing/qinqing/shared/postgres/early" // the database connection begins while the program initialises
	"github.com/qinqing/qinqing/shared/runtime"
)

// Config is the function's environment.
type Config struct {
	runtime.Base
	postgres.Config
	docs.S3
}

func main() {
	var cfg Config
	runtime.LoadConfig(name, &cfg)
	runtime.Main(name, cfg.Base, cfg.Config, func(ctx context.Context, env *runtime.Env) (*runtime.Function, error) {
		store, err := docs.Open(ctx, cfg.S3)
		if err != nil {
			return nil, err
		}
		return New(env, store), nil
	})
}

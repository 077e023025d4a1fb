// Command forum-signup is the function for the weekly government–enterprise
// forum (亲清直通车·政企恳谈会): scheduling, signups with reserved seats and a
// waitlist, cancellations, and the weekly close with its roster (contract
// section 3).
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

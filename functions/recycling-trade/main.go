// Command recycling-trade is the function for the waste lead-acid battery
// recycling platform (废铅蓄电池回收平台, 长兴县): collectors' licences, trade
// records with their refusals, bulk CSV imports and the monthly statistics
// regulators read (contract section 7).
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
	ImportConfig
}

func main() {
	var cfg Config
	runtime.LoadConfig(name, &cfg)
	if err := cfg.ImportConfig.Check(); err != nil {
		runtime.Fatalf(name, "%v", err)
	}
	runtime.Main(name, cfg.Base, cfg.Config, func(ctx context.Context, env *runtime.Env) (*runtime.Function, error) {
		store, err := docs.Open(ctx, cfg.S3)
		if err != nil {
			return nil, err
		}
		return New(env, store, cfg.ImportConfig), nil
	})
}

// Command award-ceremony is the function for 实干争先, the awards of
// Huzhou's entrepreneurs' day: enterprise metrics, nominations and judge
// scores, and the annual ceremony job that ranks the top 50 private
// enterprises (湖州民企50强), names the winners of each category and writes
// the programme and certificates (contract section 8).
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
	// WinnersPerCategory is how many winners each category names (Helm
	// values); 1 to MaxWinnersPerCategory.
	WinnersPerCategory int `envconfig:"AWARD_WINNERS_PER_CATEGORY" default:"3"`
}

func main() {
	var cfg Config
	runtime.LoadConfig(name, &cfg)
	if err := validWinnersPerCategory(cfg.WinnersPerCategory); err != nil {
		runtime.Fatalf(name, "%v", err)
	}
	runtime.Main(name, cfg.Base, cfg.Config, func(ctx context.Context, env *runtime.Env) (*runtime.Function, error) {
		store, err := docs.Open(ctx, cfg.S3)
		if err != nil {
			return nil, err
		}
		return New(env, store, cfg.WinnersPerCategory), nil
	})
}

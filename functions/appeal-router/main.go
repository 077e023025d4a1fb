// Command appeal-router is the function for enterprises' appeals (诉求) in
// a closed loop: it routes each new appeal to a department by the routing
// rules, keeps the lifecycle (accepted, returned, replied, revisited) with
// its history and deadlines, and accepts the yearly working-day calendar
// (contract sections 2 and 4).
package main

import (
	"context"

	"github.com/qinqing/qinqing/shared/appeal/rulesfile"
	"github.com/qinqing/qinqing/shared/postgres"
	_ "github.com/qinqing/qinqing/shared/postgres/early" // the database connection begins while the program initialises
	"github.com/qinqing/qinqing/shared/runtime"
)

// Config is the function's environment.
type Config struct {
	runtime.Base
	postgres.Config
	// RoutingRulesFile is the routing table (JSON or YAML); unset means the
	// built-in table of Huzhou's departments.
	RoutingRulesFile string `envconfig:"ROUTING_RULES_FILE"`
}

func main() {
	var cfg Config
	runtime.LoadConfig(name, &cfg)
	runtime.Main(name, cfg.Base, cfg.Config, func(ctx context.Context, env *runtime.Env) (*runtime.Function, error) {
		rules, err := rulesfile.Load(cfg.RoutingRulesFile)
		if err != nil {
			return nil, err
		}
		env.Log.Infow("routing rules", "file", cfg.RoutingRulesFile, "rules", len(rules.Rules), "default", rules.DefaultDepartment)
		return New(env, rules), nil
	})
}

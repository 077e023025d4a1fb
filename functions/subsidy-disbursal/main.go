// Command subsidy-disbursal is the function of 政策一键兑 (policy one-click
// redemption, contract section 6): honours, project milestones and requests
// become entitlements under the configured policies, each booked in a
// double-entry ledger and paid through the treasury within 5 working days.
package main

import (
	"context"
	"time"

	"github.com/qinqing/qinqing/shared/postgres"
	_ "github.com/qinqing/qinqing/shared/postgres/early" // the database connection begins while the program initialises
	"github.com/qinqing/qinqing/shared/runtime"
)

// Config is the function's environment.
type Config struct {
	runtime.Base
	postgres.Config
	// PoliciesFile is the subsidy policies (JSON or YAML, shape in
	// docs/subsidy.md); empty means the built-in default policies.
	PoliciesFile string `envconfig:"POLICIES_FILE"`
}

func main() {
	var cfg Config
	runtime.LoadConfig(name, &cfg)
	runtime.Main(name, cfg.Base, cfg.Config, func(ctx context.Context, env *runtime.Env) (*runtime.Function, error) {
		policies, err := LoadPolicies(cfg.PoliciesFile)
		if err != nil {
			return nil, err
		}
		f := New(env, policies)
		go func() {
			// After the first event (which writes the policies it uses
			// itself), or after RelayStartDelay without one: on a cold
			// start the writes would compete with that event.
			select {
			case <-env.Served():
			case <-time.After(runtime.RelayStartDelay):
			case <-ctx.Done():
				return
			}
			if err := f.SyncPolicies(ctx); err != nil {
				env.Log.Warnw("policies not written at start; each is written at its first use", "error", err)
			}
		}()
		return f.Runtime(), nil
	})
}

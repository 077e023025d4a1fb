// Command webhook-egress sends the portals their updates as signed
// Standard Webhooks (contract section 12): each event of a case goes to
// the portal the case came from, or to every subscribed portal for cases
// from elsewhere.
package main

import (
	"context"
	"strings"
	"time"

	"github.com/qinqing/qinqing/shared/portals"
	"github.com/qinqing/qinqing/shared/postgres"
	_ "github.com/qinqing/qinqing/shared/postgres/early" // the database connection begins while the program initialises
	"github.com/qinqing/qinqing/shared/runtime"
)

// Config is the function's environment.
type Config struct {
	runtime.Base
	postgres.Config
	// PortalsFile is the mounted Secret of the portals (the file
	// webhook-ingress reads); each portal's notify block says where it
	// receives which types. Unset: no portal receives anything.
	PortalsFile string `envconfig:"PORTALS_FILE"`
	// Timeout bounds each POST to a portal (connect, TLS, answer).
	Timeout time.Duration `envconfig:"EGRESS_TIMEOUT" default:"10s"`
	// Retention is how long delivery records are kept (attempts, and
	// deliveries that are settled); older ones are pruned 30 s after start
	// and then hourly.
	Retention time.Duration `envconfig:"EGRESS_RETENTION" default:"2160h"`
	// AdminToken is the bearer token of GET /deliveries. Unset: the
	// endpoint does not exist. Never logged.
	AdminToken string `envconfig:"ADMIN_TOKEN"`
}

func main() {
	var cfg Config
	runtime.LoadConfig(name, &cfg)
	if cfg.Timeout <= 0 {
		runtime.Fatalf(name, "EGRESS_TIMEOUT must be positive, got %s", cfg.Timeout)
	}
	if cfg.Retention <= 0 {
		runtime.Fatalf(name, "EGRESS_RETENTION must be positive, got %s", cfg.Retention)
	}
	runtime.Main(name, cfg.Base, cfg.Config, func(ctx context.Context, env *runtime.Env) (*runtime.Function, error) {
		ps := portals.Set{}
		if cfg.PortalsFile == "" {
			env.Log.Warnw("PORTALS_FILE is unset: no portal is configured, no update is sent")
		} else {
			var err error
			if ps, err = portals.Load(cfg.PortalsFile); err != nil {
				return nil, err
			}
		}
		notified := 0
		for _, p := range ps {
			if p.Notify != nil {
				notified++
			}
		}
		if weak := ps.WeakKeys(); len(weak) > 0 {
			env.Log.Warnw("portal keys shorter than the 24 bytes Standard Webhooks asks for", "portals", weak)
		}
		token := strings.TrimSpace(cfg.AdminToken)
		if token == "" {
			env.Log.Infow("ADMIN_TOKEN is unset: GET /deliveries is off")
		}
		env.Log.Infow("portals loaded", "portals", len(ps), "notified", notified, "timeout", cfg.Timeout.String())
		go pruneLoop(ctx, env.Pool, env.Log, cfg.Retention)
		return New(env, ps, cfg.Timeout, token), nil
	})
}

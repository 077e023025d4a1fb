// Command webhook-ingress turns the signed webhooks of portals that cannot
// speak CloudEvents into CloudEvents for the broker (contract section 9).
// It needs no database.
package main

import (
	"context"
	"net/http"
	"time"

	"github.com/qinqing/qinqing/shared/portals"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/runtime"
)

// Config is the function's environment. It has no DATABASE_URL.
type Config struct {
	runtime.Base
	// PortalsFile is the mounted Secret listing each portal's whsec_ secrets
	// and allowed event types (JSON or YAML). Unset: no portal is
	// configured and every webhook is answered 404; there are no built-in
	// secrets.
	PortalsFile string `envconfig:"PORTALS_FILE"`
	// SinkTimeout bounds the synchronous POST of each event to K_SINK.
	SinkTimeout time.Duration `envconfig:"SINK_TIMEOUT" default:"10s"`
}

func main() {
	var cfg Config
	runtime.LoadConfig(name, &cfg)
	runtime.Main(name, cfg.Base, postgres.Config{}, func(_ context.Context, env *runtime.Env) (*runtime.Function, error) {
		ps := Portals{}
		if cfg.PortalsFile == "" {
			env.Log.Warnw("PORTALS_FILE is unset: no portal is configured, every webhook is answered 404")
		} else {
			var err error
			if ps, err = portals.Load(cfg.PortalsFile); err != nil {
				return nil, err
			}
		}
		if weak := ps.WeakKeys(); len(weak) > 0 {
			env.Log.Warnw("portal keys shorter than the 24 bytes Standard Webhooks asks for", "portals", weak)
		}
		env.Log.Infow("portals loaded", "portals", len(ps))
		return New(env, ps, &http.Client{Timeout: cfg.SinkTimeout}), nil
	})
}

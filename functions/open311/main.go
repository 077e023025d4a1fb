// Command open311 serves the Open311 GeoReport v2 API over qinqing's
// appeals (contract section 13): case-management clients (FixMyStreet and
// others) list the services (the appeal categories of the routing rules),
// submit requests (which become cn.huzhou.appeal.submitted events from
// the portal's source) and follow their requests' status. Public behind
// the ingress, like webhook-ingress.
package main

import (
	"context"
	"net/http"
	"time"

	"github.com/qinqing/qinqing/shared/appeal/rulesfile"
	"github.com/qinqing/qinqing/shared/portals"
	"github.com/qinqing/qinqing/shared/postgres"
	_ "github.com/qinqing/qinqing/shared/postgres/early" // the database connection begins while the program initialises
	"github.com/qinqing/qinqing/shared/runtime"
)

// Config is the function's environment.
type Config struct {
	runtime.Base
	postgres.Config
	// PortalsFile is the portals configuration (the Secret webhook-ingress
	// reads); each portal's apiKeys authenticate its Open311 clients.
	// Unset: no portal, so every endpoint but services answers 403.
	PortalsFile string `envconfig:"PORTALS_FILE"`
	// RoutingRulesFile is appeal-router's routing table; its categories
	// are the services. Unset: the built-in table.
	RoutingRulesFile string `envconfig:"ROUTING_RULES_FILE"`
	// SinkTimeout bounds the synchronous POST of a new request's event to
	// K_SINK.
	SinkTimeout time.Duration `envconfig:"SINK_TIMEOUT" default:"10s"`
}

func main() {
	var cfg Config
	runtime.LoadConfig(name, &cfg)
	runtime.Main(name, cfg.Base, cfg.Config, func(_ context.Context, env *runtime.Env) (*runtime.Function, error) {
		rules, err := rulesfile.Load(cfg.RoutingRulesFile)
		if err != nil {
			return nil, err
		}
		keys := Keys{}
		if cfg.PortalsFile == "" {
			env.Log.Warnw("PORTALS_FILE is unset: no portal has an api_key, only services answers")
		} else {
			set, err := portals.Load(cfg.PortalsFile)
			if err != nil {
				return nil, err
			}
			keys = KeysOf(set)
		}
		env.Log.Infow("open311 configured", "portals", keys.Portals(), "services", len(rules.Rules))
		return New(env, rules, keys, &http.Client{Timeout: cfg.SinkTimeout}), nil
	})
}

// Command dead-letter is the Knative deadLetterSink of every Trigger: it
// keeps each event Knative could not deliver, and lets operators list and
// replay them (contract section 10).
package main

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/qinqing/qinqing/shared/postgres"
	_ "github.com/qinqing/qinqing/shared/postgres/early" // the database connection begins while the program initialises
	"github.com/qinqing/qinqing/shared/runtime"
)

// Config is the function's environment.
type Config struct {
	runtime.Base
	postgres.Config
	// AdminToken is the bearer token of the operator endpoints. Unset: the
	// endpoints do not exist (404). Never logged.
	AdminToken string `envconfig:"ADMIN_TOKEN"`
	// SinkTimeout bounds the POST of a replayed event to K_SINK.
	SinkTimeout time.Duration `envconfig:"SINK_TIMEOUT" default:"10s"`
	// OIDCConfig authenticates the senders of dead letters (oidc.go).
	OIDCConfig
}

func main() {
	var cfg Config
	runtime.LoadConfig(name, &cfg)
	runtime.Main(name, cfg.Base, cfg.Config, func(_ context.Context, env *runtime.Env) (*runtime.Function, error) {
		token := strings.TrimSpace(cfg.AdminToken)
		switch {
		case token == "":
			env.Log.Infow("ADMIN_TOKEN is unset: the operator endpoints are off")
		case len(token) < 16:
			env.Log.Warnw("ADMIN_TOKEN is shorter than 16 characters; use a long random token")
		}
		senders, err := newVerifier(cfg.OIDCConfig)
		if err != nil {
			return nil, err
		}
		if senders == nil {
			env.Log.Infow("DEADLETTER_OIDC_ISSUER is unset: dead letters are taken from whoever reaches POST / (see docs/deadletters.md)")
		}
		return New(env, token, &http.Client{Timeout: cfg.SinkTimeout}, senders), nil
	})
}

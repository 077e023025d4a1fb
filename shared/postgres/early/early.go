// Package early begins a function's database connection while the program
// is still initialising. A function's main package imports it for that
// side effect:
//
//	import _ "github.com/qinqing/qinqing/shared/postgres/early"
//
// Its init reads the database part of the configuration from the
// environment (postgres.Config: DATABASE_URL and the other DATABASE_*
// variables) and calls postgres.StartEarly, so that the server forks and
// starts the session's backend while the rest of the program initialises
// and main sets up logging, telemetry and the HTTP server; runtime.Main's
// postgres.Open then takes that pool. Measured on a cold start, the first
// connection is ready about a millisecond sooner (README, Speed).
//
// It does nothing without DATABASE_URL, with a configuration envconfig
// refuses (main reports it), and when OTLP tracing is configured (the
// pool's connections then need the pgx tracer, which exists only once
// main has set up telemetry; an early pool would be closed unused).
package early

import (
	"os"

	"github.com/kelseyhightower/envconfig"

	"github.com/qinqing/qinqing/shared/postgres"
)

func init() {
	if os.Getenv("DATABASE_URL") == "" || tracing() {
		return
	}
	var c postgres.Config
	if err := envconfig.Process("", &c); err != nil {
		return
	}
	postgres.StartEarly(c)
}

// tracing reports whether an OTLP trace endpoint is configured, the way
// telemetry.Setup decides to trace (short of its checks of the exporter
// and protocol names, whose errors main reports). A wrong guess costs
// only time: runtime.Main opens its own pool when the early one does not
// fit.
func tracing() bool {
	if os.Getenv("OTEL_SDK_DISABLED") == "true" || os.Getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

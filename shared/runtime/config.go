// Package runtime is the one pipeline every qinqing function runs: receive a
// CloudEvent over HTTP, decode and validate its data, handle it in one
// Postgres transaction with the inbox (exactly-once effect) and the outbox
// (follow-up events), map errors to statuses in one place, reply, and relay
// the outbox to K_SINK.
package runtime

import (
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Base is the configuration every function shares (contract section 1).
type Base struct {
	// Port is the HTTP listen port; Knative sets it.
	Port int `envconfig:"PORT" default:"8080"`
	// Sink is where follow-up events are POSTed (Knative SinkBinding).
	// Empty: they stay queued in the outbox.
	Sink string `envconfig:"K_SINK"`
	// TimeZone is the business time zone for deadlines and calendar months.
	TimeZone string `envconfig:"QINQING_TIMEZONE" default:"Asia/Shanghai"`
	// LogLevel is the zap level: debug, info, warn, error.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info"`
	// RelayInterval is how often the outbox relay looks for due events
	// besides being woken by LISTEN/NOTIFY.
	RelayInterval time.Duration `envconfig:"RELAY_INTERVAL" default:"2s"`
	// OutboxRetention is how long delivered follow-ups are kept.
	OutboxRetention time.Duration `envconfig:"OUTBOX_RETENTION" default:"168h"`
	// InboxRetention is how long handled events are remembered: a
	// redelivery within it answers the stored reply.
	InboxRetention time.Duration `envconfig:"INBOX_RETENTION" default:"2160h"`
	// RequestTimeout is the deadline of one request over the whole pipeline
	// (body, transaction, S3): on expiry the transaction rolls back and the
	// answer is 503. Keep it below Knative's timeoutSeconds. Unset (or 0):
	// the function's own default, else DefaultRequestTimeout.
	RequestTimeout time.Duration `envconfig:"REQUEST_TIMEOUT"`
	// BodyReadTimeout bounds reading a request's body: a client that stalls
	// longer gets 408.
	BodyReadTimeout time.Duration `envconfig:"BODY_READ_TIMEOUT" default:"15s"`
	// MetricsPrometheus serves GET /metrics in the Prometheus text format.
	// Off by default: webhook-ingress is public, and a pod that scales to
	// zero is rarely scraped; OTLP push (OTEL_EXPORTER_OTLP_ENDPOINT) is
	// the primary path.
	MetricsPrometheus bool `envconfig:"METRICS_PROMETHEUS" default:"false"`
}

// DefaultRequestTimeout is REQUEST_TIMEOUT when neither the environment
// nor the function sets one; LongRequestTimeout is the default of the
// functions whose jobs take minutes (inside Knative's 600 s maximum).
const (
	DefaultRequestTimeout = 60 * time.Second
	LongRequestTimeout    = 9 * time.Minute
)

// baseDefault returns the default of a duration field of Base: its
// envconfig tag, the one place each default is written (the Relay fills
// its zero settings with them too).
func baseDefault(field string) time.Duration {
	f, ok := reflect.TypeOf(Base{}).FieldByName(field)
	if !ok {
		panic("runtime: Base has no field " + field)
	}
	d, err := time.ParseDuration(f.Tag.Get("default"))
	if err != nil {
		panic(fmt.Sprintf("runtime: default of Base.%s: %v", field, err))
	}
	return d
}

// Location returns the business time zone.
func (b Base) Location() (*time.Location, error) {
	loc, err := time.LoadLocation(b.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("QINQING_TIMEZONE: %w", err)
	}
	return loc, nil
}

// LoadConfig fills cfg from the environment. A missing required value or
// a malformed one stops the process with one line naming the variable.
func LoadConfig(name string, cfg any) {
	if err := envconfig.Process("", cfg); err != nil {
		Fatalf(name, "%v", err)
	}
}

// Fatalf prints one line to stderr and exits 2: the way a function refuses
// to start with bad configuration.
func Fatalf(name, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", name, fmt.Sprintf(format, args...))
	os.Exit(2)
}

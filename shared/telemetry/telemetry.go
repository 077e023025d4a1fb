// Package telemetry is qinqing's OpenTelemetry wiring: traces and metrics
// configured only by the standard OTEL_* variables (contract section 11),
// the metric instruments every function records, the trace context carried
// by events, and the Prometheus text of GET /metrics.
//
// With no OTLP endpoint and METRICS_PROMETHEUS off, Setup builds no SDK at
// all: the instruments are no-ops, no exporter or goroutine is started, and
// a function behaves exactly as without telemetry. The W3C trace context of
// an incoming event is still passed on to replies and follow-ups then.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of qinqing's own spans and metrics.
const ScopeName = "github.com/qinqing/qinqing"

// Telemetry is one process's tracer, meter and instruments.
type Telemetry struct {
	// Tracing reports whether spans are recorded (a TracerProvider of the
	// SDK is installed); without it spans only carry the incoming context.
	Tracing bool
	// Metrics reports whether the instruments record (a MeterProvider of
	// the SDK is installed).
	Metrics bool
	// Exporters names what was started, for the start-up log line:
	// "otlp-traces", "otlp-metrics", "prometheus".
	Exporters []string

	tracer   trace.Tracer
	meter    metric.Meter
	inst     *Instruments
	prom     *sdkmetric.ManualReader
	shutdown []func(context.Context) error
	flush    func(context.Context) error // the span processor's, when tracing
}

var current atomic.Pointer[Telemetry]

func init() { current.Store(New(nil, nil, nil)) }

// Current is the process's telemetry: what Setup installed, or no-ops.
func Current() *Telemetry { return current.Load() }

// SetCurrent installs t as the process's telemetry (Setup does; tests use
// it with an in-memory recorder).
func SetCurrent(t *Telemetry) { current.Store(t) }

// New builds telemetry on the given providers; nil means no-op. prom, when
// set, is the reader GET /metrics collects from.
func New(tp trace.TracerProvider, mp metric.MeterProvider, prom *sdkmetric.ManualReader) *Telemetry {
	t := &Telemetry{Tracing: tp != nil, Metrics: mp != nil, prom: prom}
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	t.tracer = tp.Tracer(ScopeName)
	t.meter = mp.Meter(ScopeName)
	t.inst = newInstruments(t.meter, t.Metrics)
	return t
}

// Tracer is the tracer of qinqing's own spans.
func (t *Telemetry) Tracer() trace.Tracer { return t.tracer }

// Meter is the meter of qinqing's own metrics.
func (t *Telemetry) Meter() metric.Meter { return t.meter }

// Instruments are the metric instruments.
func (t *Telemetry) Instruments() *Instruments { return t.inst }

// Shutdown flushes and stops the exporters (at most what ctx allows).
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// FlushSpans exports the spans ended so far (nothing without tracing).
// The benchmark calls it at the end of a traced round, so that round's
// export is counted in it.
func (t *Telemetry) FlushSpans(ctx context.Context) error {
	if t.flush == nil {
		return nil
	}
	return t.flush(ctx)
}

// Options are the settings that are not OTEL_* variables.
type Options struct {
	// Service is the function's name: service.name unless OTEL_SERVICE_NAME
	// or OTEL_RESOURCE_ATTRIBUTES names another.
	Service string
	// Prometheus enables the reader behind PrometheusHandler
	// (METRICS_PROMETHEUS=true).
	Prometheus bool
}

// env reads one variable; getenv is replaced in tests.
var getenv = os.Getenv

// signal reports whether OTLP export of a signal ("TRACES", "METRICS") is
// configured: an endpoint is set, the SDK is not disabled and the
// signal's exporter is not "none". A protocol other than http/protobuf is
// a configuration error.
func signal(name string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	if e := strings.TrimSpace(getenv("OTEL_" + name + "_EXPORTER")); e != "" && e != "otlp" {
		if e == "none" {
			return false, nil
		}
		return false, fmt.Errorf("OTEL_%s_EXPORTER: only otlp or none is supported, got %q", name, e)
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_"+name+"_ENDPOINT") == "" {
		return false, nil
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_" + name + "_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(v)); p != "" {
			if p != "http/protobuf" {
				return false, fmt.Errorf("%s: only http/protobuf is supported, got %q", v, p)
			}
			break
		}
	}
	return true, nil
}

// Setup configures telemetry from the OTEL_* variables and installs it as
// Current and as the OpenTelemetry globals (so the pgx and AWS
// instrumentations use it). Without an endpoint and without Prometheus it
// builds nothing.
func Setup(ctx context.Context, o Options) (*Telemetry, error) {
	traces, err := signal("TRACES")
	if err != nil {
		return nil, err
	}
	metrics, err := signal("METRICS")
	if err != nil {
		return nil, err
	}
	if !traces && !metrics && !o.Prometheus {
		t := New(nil, nil, nil)
		SetCurrent(t)
		return t, nil
	}
	res, err := newResource(o.Service)
	if err != nil {
		return nil, err
	}
	var (
		tp        *sdktrace.TracerProvider
		mp        *sdkmetric.MeterProvider
		prom      *sdkmetric.ManualReader
		exporters []string
		shutdown  []func(context.Context) error
	)
	if traces {
		exp, err := newSpanExporter()
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		bsp, err := newBatcher(exp)
		if err != nil {
			return nil, err
		}
		// The sampler comes from OTEL_TRACES_SAMPLER (parentbased_always_on
		// by default), the batching from OTEL_BSP_* (batch.go).
		tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(bsp), sdktrace.WithResource(res))
		shutdown = append(shutdown, tp.Shutdown)
		exporters = append(exporters, "otlp-traces")
	}
	if metrics || o.Prometheus {
		opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
		if metrics {
			exp, err := newMetricExporter()
			if err != nil {
				return nil, fmt.Errorf("OTLP metric exporter: %w", err)
			}
			// The interval comes from OTEL_METRIC_EXPORT_INTERVAL (60 s).
			opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
			exporters = append(exporters, "otlp-metrics")
		}
		if o.Prometheus {
			prom = sdkmetric.NewManualReader()
			opts = append(opts, sdkmetric.WithReader(prom))
			exporters = append(exporters, "prometheus")
		}
		mp = sdkmetric.NewMeterProvider(opts...)
		shutdown = append(shutdown, mp.Shutdown)
	}
	// Interfaces, so that a provider left nil stays an untyped nil.
	var tpi trace.TracerProvider
	var mpi metric.MeterProvider
	if tp != nil {
		tpi = tp
		otel.SetTracerProvider(tp)
	}
	if mp != nil {
		mpi = mp
		otel.SetMeterProvider(mp)
	}
	t := New(tpi, mpi, prom)
	t.Exporters, t.shutdown = exporters, shutdown
	if tp != nil {
		t.flush = tp.ForceFlush
	}
	SetCurrent(t)
	return t, nil
}

// newResource is service.name = the function (unless the environment names
// one), merged with OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
func newResource(service string) (*resource.Resource, error) {
	base := resource.NewSchemaless(attribute.String("service.name", service),
		attribute.String("service.namespace", "qinqing"))
	r, err := resource.Merge(base, resource.Environment())
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return r, nil
}

// PrometheusHandler answers GET /metrics with the Prometheus text format,
// or nil when METRICS_PROMETHEUS is off.
func (t *Telemetry) PrometheusHandler() http.Handler {
	if t.prom == nil {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rm metricdata.ResourceMetrics
		if err := t.prom.Collect(r.Context(), &rm); err != nil {
			http.Error(w, "collect metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = WritePrometheus(w, &rm)
	})
}

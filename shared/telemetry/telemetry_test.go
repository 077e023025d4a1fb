package telemetry

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
)

func withEnv(t *testing.T, env map[string]string) {
	saved := getenv
	getenv = func(k string) string { return env[k] }
	t.Cleanup(func() { getenv = saved })
}

// With no OTEL_* endpoint and Prometheus off nothing is built: no SDK
// provider, no exporter, no goroutine, no /metrics.
func TestSetupWithoutEndpointStartsNothing(t *testing.T) {
	withEnv(t, map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"})
	before := runtime.NumGoroutine()
	tel, err := Setup(context.Background(), Options{Service: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if tel.Tracing || tel.Metrics || len(tel.Exporters) > 0 || tel.PrometheusHandler() != nil || len(tel.shutdown) > 0 {
		t.Fatalf("telemetry without endpoint: tracing %v, metrics %v, exporters %v", tel.Tracing, tel.Metrics, tel.Exporters)
	}
	time.Sleep(50 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines after Setup, %d before", after, before)
	}
	// Spans still pass on an incoming context: the noop span keeps it.
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	ctx, span := tel.StartServer(Incoming(context.Background(), h, nil), "x", time.Now())
	if tp, _ := TraceParent(ctx); tp != h.Get("Traceparent") || span.IsRecording() {
		t.Fatalf("noop span: traceparent %q, recording %v", tp, span.IsRecording())
	}
}

// An endpoint starts the OTLP exporters (and their goroutines); Shutdown
// stops them.
func TestSetupWithEndpoint(t *testing.T) {
	withEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"})
	saved := Current()
	defer SetCurrent(saved)
	tel, err := Setup(context.Background(), Options{Service: "f", Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx)
	}()
	if !tel.Tracing || !tel.Metrics || strings.Join(tel.Exporters, ",") != "otlp-traces,otlp-metrics,prometheus" {
		t.Fatalf("tracing %v metrics %v exporters %v", tel.Tracing, tel.Metrics, tel.Exporters)
	}
}

func TestSetupRefusesOtherProtocols(t *testing.T) {
	for env, want := range map[string]string{
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: only http/protobuf",
	} {
		withEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", env: "grpc"})
		if _, err := Setup(context.Background(), Options{Service: "f"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s=grpc: %v, want %q", env, err, want)
		}
	}
	withEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"})
	if tel, err := Setup(context.Background(), Options{Service: "f"}); err != nil || tel.Tracing {
		t.Fatalf("OTEL_SDK_DISABLED: %v, tracing %v", err, tel.Tracing)
	}
}

// GET /metrics: every instrument in the Prometheus text format under the
// names of Metrics.
func TestPrometheusText(t *testing.T) {
	withEnv(t, map[string]string{})
	saved := Current()
	defer SetCurrent(saved)
	tel, err := Setup(context.Background(), Options{Service: "f", Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tel.Instruments().Event(ctx, "f", "t.x", "handled", 200, 0.003)
	tel.Instruments().Event(ctx, "f", "t.x", "error", 503, 0.2)
	tel.Instruments().Delivery(ctx, "f", true, 2)
	tel.Instruments().Delivery(ctx, "f", false, 1)
	tel.Instruments().Pruned(ctx, "f", "inbox", 7)
	tel.Instruments().Panic(ctx, "f", "t.x")
	rec := httptest.NewRecorder()
	tel.PrometheusHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		"# TYPE qinqing_events_total counter",
		`qinqing_events_total{function="f",outcome="handled",status="200",type="t.x"} 1`,
		"# TYPE qinqing_event_duration_seconds histogram",
		`qinqing_event_duration_seconds_bucket{function="f",outcome="handled",status="200",type="t.x",le="0.005"} 1`,
		`qinqing_event_duration_seconds_bucket{function="f",outcome="error",status="503",type="t.x",le="0.1"} 0`,
		`qinqing_event_duration_seconds_bucket{function="f",outcome="error",status="503",type="t.x",le="+Inf"} 1`,
		`qinqing_event_duration_seconds_count{function="f",outcome="error",status="503",type="t.x"} 1`,
		`qinqing_outbox_deliveries_total{function="f",outcome="failed"} 1`,
		`qinqing_outbox_delivery_attempts_sum{function="f"} 2`,
		`qinqing_pruned_rows_total{function="f",table="inbox"} 7`,
		`qinqing_panics_total{function="f",type="t.x"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, body)
		}
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", ct)
	}
}

// The database gauges: values from the tables, and every query answered
// from an index (with sequential scans priced out, no Seq Scan remains:
// none of them reads a whole table per collection).
func TestDatabaseGauges(t *testing.T) {
	withEnv(t, map[string]string{})
	saved := Current()
	defer SetCurrent(saved)
	pool := pgtest.Pool(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO qinqing.outbox (id, producer, source, type, data, created_at) VALUES ('p1', 't', '/t', 't', '{}', now() - interval '90 seconds')`,
		`INSERT INTO qinqing.outbox (id, producer, source, type, data, created_at, delivered_at) VALUES ('d1', 't', '/t', 't', '{}', now() - interval '1 day', now())`,
		`INSERT INTO deadletter.dead_letters (id, source, event_id, spec_version, type) VALUES ('dl1', '/s', 'e1', '1.0', 't')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	tel, err := Setup(ctx, Options{Service: "f", Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	if err := tel.RegisterDatabaseGauges(pool, func(err error) { errs = append(errs, err) }); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	tel.PrometheusHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if len(errs) > 0 {
		t.Fatalf("gauge queries failed: %v", errs)
	}
	for _, want := range []string{"qinqing_outbox_pending 1\n", "qinqing_dead_letters_pending 1\n",
		"qinqing_appeals_overdue{stage=\"reply\"} 0\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in:\n%s", want, body)
		}
	}
	if !strings.Contains(body, "qinqing_outbox_oldest_pending_age_seconds 9") && !strings.Contains(body, "qinqing_outbox_oldest_pending_age_seconds 8") {
		t.Errorf("oldest pending age not about 90 s:\n%s", body)
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	for _, q := range GaugeQueries {
		var plan string
		if err := conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+q).Scan(&plan); err != nil {
			t.Fatalf("explain %s: %v", q, err)
		}
		var nodes []string
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				if n, ok := x["Node Type"].(string); ok && n == "Seq Scan" {
					nodes = append(nodes, n+" on "+x["Relation Name"].(string))
				}
				for _, c := range x {
					walk(c)
				}
			case []any:
				for _, c := range x {
					walk(c)
				}
			}
		}
		var parsed any
		_ = json.Unmarshal([]byte(plan), &parsed)
		walk(parsed)
		if len(nodes) > 0 {
			t.Errorf("%v in the plan of\n%s\n%s", nodes, q, plan)
		}
	}
}

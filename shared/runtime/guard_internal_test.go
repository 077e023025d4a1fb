package runtime

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/telemetry"
)

// A recovered panic is counted in Panics and in the qinqing_panics_total
// metric of its function. Not parallel: it swaps the process's telemetry.
func TestGuardCountsPanics(t *testing.T) {
	saved := telemetry.Current()
	defer telemetry.SetCurrent(saved)
	reader := sdkmetric.NewManualReader()
	telemetry.SetCurrent(telemetry.New(nil, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), reader))

	h := guard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }), Base{}, zap.NewNop().Sugar(), "probe")
	before := Panics.Load()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")))
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d %q, want 500 application/problem+json", rec.Code, rec.Header().Get("Content-Type"))
	}
	if got := Panics.Load() - before; got != 1 {
		t.Fatalf("Panics rose by %d, want 1", got)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == telemetry.MetricPanics {
				for _, p := range sum.DataPoints {
					if fn, _ := p.Attributes.Value(attribute.Key("function")); fn.AsString() == "probe" {
						n += p.Value
					}
				}
			}
		}
	}
	if n != 1 {
		t.Fatalf("%s{function=probe} = %d, want 1", telemetry.MetricPanics, n)
	}
}

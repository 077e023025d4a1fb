package telemetry

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// value renders an OTLP AnyValue the way attribute.Value.Emit renders
// ours, so the two can be compared.
func value(v *commonpb.AnyValue) string {
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		if x.BoolValue {
			return "true"
		}
		return "false"
	case *commonpb.AnyValue_IntValue:
		return attribute.Int64Value(x.IntValue).Emit()
	case *commonpb.AnyValue_DoubleValue:
		return attribute.Float64Value(x.DoubleValue).Emit()
	case *commonpb.AnyValue_BytesValue:
		return "bytes:" + string(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.Values {
			parts = append(parts, value(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *commonpb.AnyValue_KvlistValue:
		var parts []string
		for _, kv := range x.KvlistValue.Values {
			parts = append(parts, kv.Key+"="+value(kv.Value))
		}
		return "{" + strings.Join(parts, ",") + "}"
	case nil:
		return "<empty>"
	}
	return "?"
}

func kvs(list []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range list {
		m[kv.Key] = value(kv.Value)
	}
	return m
}

// Every field of a span qinqing's encoder writes decodes with the official
// generated OTLP types to what the SDK recorded: ids, parent, remote flag,
// kind, times, every attribute type, events, links, status, resource and
// scope; a long attribute makes lengths of two and three bytes.
func TestSpansEncodeAsOTLP(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	res := resource.NewSchemaless(attribute.String("service.name", "forum-signup"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithResource(res))
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		SpanID:  trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	linked := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{8}, TraceFlags: trace.FlagsSampled})
	long := strings.Repeat("é", 9000) // 18,000 bytes: a three-byte length
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
	start := time.Date(2026, 12, 1, 9, 0, 0, 123, time.UTC)
	ctx, server := tp.Tracer("qinqing", trace.WithInstrumentationVersion("v1")).Start(ctx, "process cn.huzhou.forum.signup.requested",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start), trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("why", "replay")}}),
		trace.WithAttributes(
			attribute.String("s", "signup"), attribute.String("empty", ""), attribute.Bool("yes", true), attribute.Bool("no", false),
			attribute.Int64("n", -42), attribute.Float64("f", 2.5), attribute.StringSlice("ss", []string{"a", ""}),
			attribute.Int64Slice("is", []int64{1, -2}), attribute.Float64Slice("fs", []float64{0.5}), attribute.BoolSlice("bs", []bool{true, false}),
			attribute.String("long", long)))
	server.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)), trace.WithTimestamp(start.Add(time.Millisecond)))
	server.SetStatus(codes.Error, "sink refused")
	_, client := tp.Tracer("otelpgx").Start(ctx, "batch INSERT", trace.WithSpanKind(trace.SpanKindClient))
	client.End(trace.WithTimestamp(start.Add(2 * time.Millisecond)))
	server.End(trace.WithTimestamp(start.Add(3 * time.Millisecond)))

	var req colltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(appendTraces(nil, sr.Ended()), &req); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(req.ResourceSpans) != 1 || len(req.ResourceSpans[0].ScopeSpans) != 2 {
		t.Fatalf("want one resource with two scopes, got %v", req.ResourceSpans)
	}
	rs := req.ResourceSpans[0]
	if kvs(rs.Resource.Attributes)["service.name"] != "forum-signup" {
		t.Errorf("resource %v", rs.Resource.Attributes)
	}
	spans := map[string]*tracepb.Span{}
	scopes := map[string]string{}
	for _, ss := range rs.ScopeSpans {
		for _, s := range ss.Spans {
			spans[s.Name] = s
			scopes[s.Name] = ss.Scope.Name + "@" + ss.Scope.Version
		}
	}
	s, c := spans["process cn.huzhou.forum.signup.requested"], spans["batch INSERT"]
	if s == nil || c == nil {
		t.Fatalf("spans %v", spans)
	}
	ssc := server.SpanContext()
	if string(s.TraceId) != string(parent.TraceID().String()) && trace.TraceID(s.TraceId) != parent.TraceID() {
		t.Errorf("trace id %x", s.TraceId)
	}
	if trace.SpanID(s.SpanId) != ssc.SpanID() || trace.SpanID(s.ParentSpanId) != parent.SpanID() || trace.SpanID(c.ParentSpanId) != ssc.SpanID() {
		t.Errorf("ids: span %x parent %x, client parent %x", s.SpanId, s.ParentSpanId, c.ParentSpanId)
	}
	if s.Flags != 0x301 || c.Flags != 0x101 {
		t.Errorf("flags %#x %#x, want 0x301 (sampled, remote parent) and 0x101", s.Flags, c.Flags)
	}
	if s.Kind != tracepb.Span_SPAN_KIND_SERVER || c.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("kinds %v %v", s.Kind, c.Kind)
	}
	if s.StartTimeUnixNano != uint64(start.UnixNano()) || s.EndTimeUnixNano != uint64(start.Add(3*time.Millisecond).UnixNano()) {
		t.Errorf("times %d %d", s.StartTimeUnixNano, s.EndTimeUnixNano)
	}
	want := map[string]string{"s": "signup", "empty": "", "yes": "true", "no": "false", "n": "-42", "f": "2.5",
		"ss": "[a,]", "is": "[1,-2]", "fs": "[0.5]", "bs": "[true,false]", "long": long}
	got := kvs(s.Attributes)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %.40q, want %.40q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d attributes, want %d", len(got), len(want))
	}
	if len(s.Events) != 1 || s.Events[0].Name != "retry" || kvs(s.Events[0].Attributes)["attempt"] != "2" || s.Events[0].TimeUnixNano != uint64(start.Add(time.Millisecond).UnixNano()) {
		t.Errorf("events %v", s.Events)
	}
	if len(s.Links) != 1 || trace.TraceID(s.Links[0].TraceId) != linked.TraceID() || kvs(s.Links[0].Attributes)["why"] != "replay" || s.Links[0].Flags != 0x101 {
		t.Errorf("links %v", s.Links)
	}
	if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || s.Status.GetMessage() != "sink refused" || c.Status.GetCode() != tracepb.Status_STATUS_CODE_UNSET {
		t.Errorf("status %v / %v", s.Status, c.Status)
	}
	if scopes[s.Name] != "qinqing@v1" || scopes[c.Name] != "otelpgx@" {
		t.Errorf("scopes %v", scopes)
	}
}

// Counters, histograms and gauges of both number types decode with the
// official types: names, units, temporality, monotonicity, points with
// their attributes, buckets, sum, min and max, and exemplars.
func TestMetricsEncodeAsOTLP(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	res := resource.NewSchemaless(attribute.String("service.name", "appeal-router"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res), sdkmetric.WithExemplarFilter(func(context.Context) bool { return true }))
	m := mp.Meter("qinqing")
	inst := newInstruments(m, true)
	inst.Event(ctx, "appeal-router", "cn.huzhou.appeal.submitted", "handled", 200, 0.003)
	inst.Event(ctx, "appeal-router", "cn.huzhou.appeal.submitted", "handled", 200, 0.02)
	inst.Event(ctx, "appeal-router", "cn.huzhou.appeal.submitted", "invalid", 400, 0.001)
	inst.Delivery(ctx, "appeal-router", true, 3)
	g, _ := m.Float64Gauge("qinqing_test_gauge")
	g.Record(ctx, -1.5)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	b, skipped := appendMetrics(nil, &rm)
	var req collmetrics.ExportMetricsServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil || skipped != 0 {
		t.Fatalf("decode: %v (skipped %d)", err, skipped)
	}
	if kvs(req.ResourceMetrics[0].Resource.Attributes)["service.name"] != "appeal-router" {
		t.Errorf("resource %v", req.ResourceMetrics[0].Resource)
	}
	metrics := map[string]*metricspb.Metric{}
	for _, sm := range req.ResourceMetrics[0].ScopeMetrics {
		for _, mm := range sm.Metrics {
			metrics[mm.Name] = mm
		}
	}
	ev := metrics[MetricEvents].GetSum()
	if ev == nil || !ev.IsMonotonic || ev.AggregationTemporality != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE || len(ev.DataPoints) != 2 {
		t.Fatalf("events sum %v", metrics[MetricEvents])
	}
	counts := map[string]int64{}
	for _, p := range ev.DataPoints {
		a := kvs(p.Attributes)
		counts[a["outcome"]+"/"+a["status"]] = p.GetAsInt()
		if p.TimeUnixNano == 0 || p.StartTimeUnixNano == 0 || len(p.Exemplars) == 0 {
			t.Errorf("point %v: times or exemplars missing", p)
		}
	}
	if counts["handled/200"] != 2 || counts["invalid/400"] != 1 {
		t.Errorf("event counts %v", counts)
	}
	if metrics[MetricEvents].Unit != "{event}" || metrics[MetricEvents].Description == "" {
		t.Errorf("unit %q description %q", metrics[MetricEvents].Unit, metrics[MetricEvents].Description)
	}
	h := metrics[MetricEventDuration].GetHistogram()
	var handled *metricspb.HistogramDataPoint
	for _, p := range h.GetDataPoints() {
		if kvs(p.Attributes)["outcome"] == "handled" {
			handled = p
		}
	}
	if handled == nil || handled.Count != 2 || handled.GetSum() != 0.023 || handled.GetMin() != 0.003 || handled.GetMax() != 0.02 ||
		len(handled.ExplicitBounds) != len(durationBuckets) || len(handled.BucketCounts) != len(durationBuckets)+1 {
		t.Fatalf("duration histogram %v", handled)
	}
	var inBuckets uint64
	for _, c := range handled.BucketCounts {
		inBuckets += c
	}
	if inBuckets != 2 || handled.BucketCounts[2] != 1 || handled.ExplicitBounds[0] != 0.001 {
		t.Errorf("buckets %v bounds %v", handled.BucketCounts, handled.ExplicitBounds)
	}
	att := metrics[MetricDeliveryAttempts].GetHistogram().GetDataPoints()
	if len(att) != 1 || att[0].GetSum() != 3 || att[0].GetMax() != 3 {
		t.Errorf("attempts histogram (int64) %v", att)
	}
	gp := metrics["qinqing_test_gauge"].GetGauge().GetDataPoints()
	if len(gp) != 1 || gp[0].GetAsDouble() != -1.5 {
		t.Errorf("gauge %v", gp)
	}
}

// The exporters post to the configured endpoint with the configured
// headers (gzip when asked), retry a 503 and stop on a 400.
func TestExportersPostAndRetry(t *testing.T) {
	var calls, fail, spans atomic.Int32
	var lastHeader atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		lastHeader.Store(r.URL.Path + " " + r.Header.Get("Api-Key") + " " + r.Header.Get("Content-Encoding") + " " + r.Header.Get("Content-Type"))
		if r.Header.Get("Content-Encoding") == "gzip" {
			// Every gzip body (the writers are reused) decodes.
			var req colltrace.ExportTraceServiceRequest
			zr, err := gzip.NewReader(r.Body)
			if err == nil {
				var b []byte
				if b, err = io.ReadAll(zr); err == nil {
					err = proto.Unmarshal(b, &req)
				}
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			spans.Add(int32(len(req.ResourceSpans[0].ScopeSpans[0].Spans)))
		}
		_, _ = io.Copy(io.Discard, r.Body)
		switch fail.Load() {
		case 503:
			fail.Store(0)
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 400:
			http.Error(w, "bad request", http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	withEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL + "/otlp/", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%20ecret",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip"})
	se, err := newSpanExporter()
	if err != nil {
		t.Fatal(err)
	}
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	_, sp := tp.Tracer("t").Start(context.Background(), "x")
	sp.End()
	fail.Store(503)
	if err := se.ExportSpans(context.Background(), sr.Ended()); err != nil || calls.Load() != 2 {
		t.Fatalf("export after a 503: %v, %d calls", err, calls.Load())
	}
	if err := se.ExportSpans(context.Background(), sr.Ended()); err != nil || calls.Load() != 3 || spans.Load() != 3 {
		t.Fatalf("second export: %v, %d calls, %d spans decoded (want 3 and 3)", err, calls.Load(), spans.Load())
	}
	if h := lastHeader.Load(); h != "/otlp/v1/traces s ecret gzip application/x-protobuf" {
		t.Errorf("request %q", h)
	}
	me, err := newMetricExporter()
	if err != nil {
		t.Fatal(err)
	}
	fail.Store(400)
	err = me.Export(context.Background(), &metricdata.ResourceMetrics{Resource: resource.Empty()})
	if err == nil || !strings.Contains(err.Error(), "400") || calls.Load() != 4 {
		t.Fatalf("export answered 400: %v, %d calls", err, calls.Load())
	}
	if h := lastHeader.Load(); h != "/otlp/v1/metrics s ecret  application/x-protobuf" {
		t.Errorf("request %q", h)
	}
	for _, env := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_HEADERS": "whsec_notapair"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
	} {
		withEnv(t, env)
		if _, err := newSpanExporter(); err == nil {
			t.Errorf("%v accepted", env)
		} else if strings.Contains(err.Error(), "whsec_") {
			t.Errorf("the error echoes a header: %v", err)
		}
	}
}

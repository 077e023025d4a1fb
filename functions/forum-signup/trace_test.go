package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/telemetry/receiver"
)

// The built binary exporting to an OTLP/HTTP receiver: a signup with a
// traceparent is a server span whose parent is that span, with Postgres
// and S3 child spans; the appeal follow-up reaching the sink carries the
// same trace id; a redelivery is a span marked as such; the metrics are
// pushed under the names the chart expects.
func TestTracesOverOTLP(t *testing.T) {
	t.Parallel()
	recv, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	f := &fixture{functest.Setup(t, binary, functest.Parts{Sink: true, S3: true, Env: []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.Endpoint(), "OTEL_BSP_SCHEDULE_DELAY=50",
		"OTEL_METRIC_EXPORT_INTERVAL=200", "OTEL_RESOURCE_ATTRIBUTES=deployment.environment=test"}})}
	fn, sink := f.Fn, f.Sink
	if !strings.Contains(fn.Output(), "otlp-traces") {
		t.Fatalf("no telemetry line naming the exporters:\n%s", fn.Output())
	}
	f.schedule(t, "T1", 30, 5)

	const traceID, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	data := signupData("T1", event.SampleUSCC(41), "self")
	data["problems"] = []any{map[string]any{"title": "用电", "category": "energy"}}
	data["documents"] = []any{map[string]any{"fileName": "plan.pdf", "contentType": "application/pdf", "sizeBytes": 12}}
	ev := functest.Event(contract.TypeSignupRequested, portalSrc, nextID(), week, data)
	ev.SetExtension("traceparent", "00-"+traceID+"-"+parent+"-01")
	if r := fn.Send(t, ev); r.Status != 200 || !strings.Contains(r.Header.Get("Ce-Traceparent"), traceID) {
		t.Fatalf("signup: %d %s, reply traceparent %q", r.Status, r.Body, r.Header.Get("Ce-Traceparent"))
	}
	if r := fn.Send(t, ev); r.Status != 200 {
		t.Fatalf("redelivery: %d %s", r.Status, r.Body)
	}

	appeal := sink.WaitFor(t, contract.TypeAppealSubmitted, 1, 10*time.Second)[0]
	tp, _ := appeal.Extensions()["traceparent"].(string)
	if len(tp) != 55 || tp[3:35] != traceID {
		t.Fatalf("appeal follow-up traceparent %q, want trace %s", tp, traceID)
	}

	spans, ok := recv.WaitFor(10*time.Second, func(s []receiver.Span) bool {
		var handled, redelivered, send bool
		for _, sp := range s {
			if sp.TraceID != traceID {
				continue
			}
			handled = handled || sp.Kind == "server" && sp.Attributes["qinqing.outcome"] == "handled"
			redelivered = redelivered || sp.Kind == "server" && sp.Attributes["qinqing.redelivery"] == "true"
			send = send || sp.Kind == "producer"
		}
		return handled && redelivered && send
	})
	if !ok {
		t.Fatalf("spans of trace %s never all arrived:\n%s", traceID, receiver.Waterfall(recv.Trace(traceID)))
	}
	var server receiver.Span
	for _, sp := range spans {
		if sp.TraceID == traceID && sp.Kind == "server" && sp.Attributes["qinqing.outcome"] == "handled" {
			server = sp
		}
	}
	if server.ParentSpanID != parent || server.Service != "forum-signup" ||
		server.Attributes["cloudevents.event_type"] != contract.TypeSignupRequested || server.Attributes["cloudevents.event_id"] != ev.ID() ||
		server.Attributes["cloudevents.event_source"] != portalSrc || server.Attributes["http.response.status_code"] != "200" {
		t.Fatalf("server span %+v", server)
	}
	// The follow-up's extension is the span that handled the signup.
	if tp[36:52] != server.SpanID {
		t.Fatalf("follow-up traceparent %s, want parent span %s", tp, server.SpanID)
	}
	var pg, s3span bool
	for _, sp := range recv.Trace(traceID) {
		if sp.ParentSpanID == server.SpanID && sp.Kind == "client" {
			pg = pg || strings.Contains(sp.Attributes["db.system"]+sp.Attributes["db.system.name"], "postgres")
			s3span = s3span || strings.HasPrefix(sp.Name, "S3.")
		}
	}
	if !pg || !s3span {
		t.Fatalf("child spans: postgres %v, s3 %v:\n%s", pg, s3span, receiver.Waterfall(recv.Trace(traceID)))
	}

	if _, ok := waitMetrics(recv, "forum-signup", 10*time.Second, "qinqing_events_total", "qinqing_event_duration_seconds",
		"qinqing_outbox_deliveries_total", "qinqing_outbox_pending", "qinqing_forum_seats"); !ok {
		t.Fatalf("metrics pushed: %v", recv.MetricNames("forum-signup"))
	}
}

func waitMetrics(recv *receiver.Receiver, service string, timeout time.Duration, names ...string) ([]string, bool) {
	deadline := time.Now().Add(timeout)
	for {
		got := recv.MetricNames(service)
		have := map[string]bool{}
		for _, n := range got {
			have[n] = true
		}
		all := true
		for _, n := range names {
			all = all && have[n]
		}
		if all || time.Now().After(deadline) {
			return got, all
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Without any OTEL_* variable the binary starts no exporter (no telemetry
// line) and serves no /metrics; with METRICS_PROMETHEUS=true it does.
func TestNoTelemetryByDefault(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s3, _ := s3test.New(t)
	env := append([]string{"DATABASE_URL=" + url}, s3.Env()...)
	fn := functest.Start(t, binary, env...)
	if strings.Contains(fn.Output(), "telemetry") {
		t.Fatalf("telemetry started without OTEL_*:\n%s", fn.Output())
	}
	if r := get(t, fn.URL+"/metrics"); r != 404 && r != 405 {
		t.Fatalf("GET /metrics without METRICS_PROMETHEUS: %d", r)
	}
	prom := functest.Start(t, binary, append(env, "METRICS_PROMETHEUS=true")...)
	if r := get(t, prom.URL+"/metrics"); r != 200 {
		t.Fatalf("GET /metrics with METRICS_PROMETHEUS=true: %d", r)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 && !strings.Contains(string(body), "# TYPE qinqing_outbox_pending gauge") {
		t.Fatalf("GET %s: no outbox gauge in\n%s", url, body)
	}
	return resp.StatusCode
}

package main

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/telemetry/receiver"
	"github.com/qinqing/qinqing/shared/testkit"
)

// postTraced posts a signed webhook with the portal's own traceparent
// header (none when traceparent is empty).
func postTraced(t *testing.T, fn *functest.Instance, traceparent string) (*functest.Response, *webhook) {
	t.Helper()
	wh := newWebhook("enterprise", typeAppeal, appealData, newSecret)
	req, err := http.NewRequest(http.MethodPost, fn.URL+"/webhooks/enterprise", bytes.NewReader(wh.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderID, wh.id)
	req.Header.Set(HeaderTimestamp, wh.ts)
	req.Header.Set(HeaderSignature, signature(newSecret, wh.id, wh.ts, wh.body))
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	return functest.Do(t, req), wh
}

// With tracing on, webhook-ingress starts the trace of a webhook (or
// continues the portal's traceparent): its span is exported, and the
// forwarded event carries it as extension and header.
func TestWebhookTrace(t *testing.T) {
	t.Parallel()
	recv, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	sink := functest.NewSink(t)
	portals := testkit.WriteFile(t, "portals.json", portalsJSON())
	fn := functest.Start(t, binary, "PORTALS_FILE="+portals, "K_SINK="+sink.URL, "DATABASE_URL=",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+recv.Endpoint(), "OTEL_BSP_SCHEDULE_DELAY=50")

	// No traceparent: a new trace begins here.
	if r, _ := postTraced(t, fn, ""); r.Status != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	ev := sink.WaitFor(t, typeAppeal, 1, 5*time.Second)[0]
	tp, _ := ev.Extensions()["traceparent"].(string)
	if len(tp) != 55 {
		t.Fatalf("forwarded event traceparent %q", tp)
	}
	spans, ok := recv.WaitFor(5*time.Second, func(s []receiver.Span) bool {
		for _, sp := range s {
			if sp.TraceID == tp[3:35] && sp.SpanID == tp[36:52] {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no exported span %s in %+v", tp, spans)
	}
	for _, sp := range spans {
		if sp.SpanID == tp[36:52] && (sp.ParentSpanID != "" || sp.Kind != "server" || sp.Attributes["qinqing.outcome"] != "accepted" ||
			sp.Attributes["cloudevents.event_type"] != typeAppeal || sp.Service != name) {
			t.Fatalf("webhook span %+v", sp)
		}
	}

	// The portal's traceparent: the span is its child.
	const portalTrace, portalSpan = "11112222333344445555666677778888", "9999aaaabbbbcccc"
	if r, _ := postTraced(t, fn, "00-"+portalTrace+"-"+portalSpan+"-01"); r.Status != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	evs := sink.WaitFor(t, typeAppeal, 2, 5*time.Second)
	tp, _ = evs[1].Extensions()["traceparent"].(string)
	if !strings.HasPrefix(tp, "00-"+portalTrace+"-") || strings.Contains(tp, portalSpan) {
		t.Fatalf("forwarded event traceparent %q, want a child in trace %s", tp, portalTrace)
	}
	if _, ok := recv.WaitFor(5*time.Second, func(s []receiver.Span) bool {
		for _, sp := range s {
			if sp.TraceID == portalTrace && sp.ParentSpanID == portalSpan {
				return true
			}
		}
		return false
	}); !ok {
		t.Fatal("no span continuing the portal's trace")
	}
}

// With tracing off the portal's trace context is still passed on
// unchanged, and a webhook without one gets none.
func TestWebhookTraceOff(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if os.Getenv(k) != "" {
			t.Skipf("%s is set in the environment", k)
		}
	}
	f := setup(t)
	const tp = "00-11112222333344445555666677778888-9999aaaabbbbcccc-01"
	if r, _ := postTraced(t, f.Fn, tp); r.Status != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	if r, _ := postTraced(t, f.Fn, ""); r.Status != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	evs := f.Sink.WaitFor(t, typeAppeal, 2, 5*time.Second)
	got := []any{evs[0].Extensions()["traceparent"], evs[1].Extensions()["traceparent"]}
	if got[0] != tp || got[1] != nil {
		t.Fatalf("traceparents %v, want [%s <nil>]", got, tp)
	}
}

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/telemetry/receiver"
)

// A dead letter keeps its trace, and a replay continues it: an event that
// came with only the HTTP traceparent header is stored with a traceparent
// extension in that trace (the dead-letter span, a child of the header);
// the replay is a span that is a child of the stored traceparent and is
// the replayed request's header, the extension sent unchanged.
func TestDeadLetterTrace(t *testing.T) {
	t.Parallel()
	recv, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	var mu sync.Mutex
	var headers []http.Header
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Clone())
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer sink.Close()
	f := &fixture{functest.Setup(t, binary, functest.Parts{Env: []string{"K_SINK=" + sink.URL, "ADMIN_TOKEN=" + token,
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.Endpoint(), "OTEL_BSP_SCHEDULE_DELAY=50"}})}

	const traceID, dispatch = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	ev := deadLetter(filterDest, 500, "boom")
	delete(ev.Extensions(), "traceparent")
	ev.SetExtension("knativearrivaltime", "2026-12-01T09:30:16Z") // keeps the map non-empty
	req, _ := http.NewRequest(http.MethodPost, f.Fn.URL+"/", nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&ev), req); err != nil {
		t.Fatal(err)
	}
	req.Header.Del("Ce-Traceparent")
	req.Header.Set("traceparent", "00-"+traceID+"-"+dispatch+"-01")
	if r := functest.Do(t, req); r.Status != http.StatusAccepted {
		t.Fatalf("dead letter: %d %s", r.Status, r.Body)
	}
	items := f.list(t, "?status=pending")
	stored := items[0].Event.Extensions["traceparent"]
	if !strings.HasPrefix(stored, "00-"+traceID+"-") || strings.Contains(stored, dispatch) {
		t.Fatalf("stored traceparent %q, want a child in trace %s", stored, traceID)
	}

	if r := f.admin(t, http.MethodPost, "/deadletters/"+items[0].ID+"/replay", "Bearer "+token); r.Status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	mu.Lock()
	h := headers[0]
	mu.Unlock()
	header := h.Get("Traceparent")
	if h.Get("Ce-Traceparent") != stored || !strings.HasPrefix(header, "00-"+traceID+"-") || header == stored {
		t.Fatalf("replayed: extension %q (stored %q), header %q", h.Get("Ce-Traceparent"), stored, header)
	}
	if _, ok := recv.WaitFor(5*time.Second, func(s []receiver.Span) bool {
		for _, sp := range s {
			if sp.Kind == "producer" && sp.SpanID == header[36:52] && sp.ParentSpanID == stored[36:52] {
				return true
			}
		}
		return false
	}); !ok {
		t.Fatalf("no replay span between %s and %s:\n%s", stored, header, receiver.Waterfall(recv.Trace(traceID)))
	}
}

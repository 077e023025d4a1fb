package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime"
)

// broker plays the Knative Broker locally: it is every function's K_SINK,
// routes each event by type (ping events by job) with contract.Route — the
// same table the Helm chart renders its Triggers from — feeds replies back
// in as the broker does, retries with exponential backoff, and hands what
// still fails to the dead-letter function with Knative's error extensions.
type broker struct {
	urls       map[string]string // function name → base URL
	deadLetter string            // dead-letter URL, "" when not running
	client     *http.Client
	retries    int
	backoff    time.Duration

	mu       sync.Mutex
	queue    []cloudevents.Event
	inflight int
	log      []observed
	wake     chan struct{}
}

// observed is an event that passed through the broker.
type observed struct {
	Event   cloudevents.Event
	From    string // "reply of <function>" or "" for events POSTed to the broker
	To      []string
	Failed  []string
	Missing []string // subscribers that are not built (yet)
}

func newBroker(urls map[string]string) *broker {
	return &broker{urls: urls, deadLetter: urls["dead-letter"], client: &http.Client{Timeout: 60 * time.Second},
		retries: 3, backoff: 200 * time.Millisecond, wake: make(chan struct{}, 1)}
}

// ServeHTTP accepts an event (202) and queues it.
func (b *broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/healthz" {
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	body, err := runtime.ReadBody(w, r)
	if err != nil {
		runtime.WriteError(w, err, nil)
		return
	}
	ev, err := runtime.ParseEvent(r.Context(), r, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.enqueue(*ev)
	w.WriteHeader(http.StatusAccepted)
}

func (b *broker) enqueue(ev cloudevents.Event) {
	b.mu.Lock()
	b.queue = append(b.queue, ev)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// idle reports whether nothing is queued or being delivered.
func (b *broker) idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue) == 0 && b.inflight == 0
}

// observedSince returns the events seen after the n-th.
func (b *broker) observedSince(n int) []observed {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n >= len(b.log) {
		return nil
	}
	return append([]observed(nil), b.log[n:]...)
}

func (b *broker) seen() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.log)
}

// run delivers queued events with a few workers until ctx ends.
func (b *broker) run(ctx context.Context, workers int) {
	for i := 0; i < workers; i++ {
		go func() {
			for {
				b.mu.Lock()
				if len(b.queue) == 0 {
					b.mu.Unlock()
					select {
					case <-ctx.Done():
						return
					case <-b.wake:
					case <-time.After(50 * time.Millisecond):
					}
					continue
				}
				ev := b.queue[0]
				b.queue = b.queue[1:]
				b.inflight++
				b.mu.Unlock()
				b.dispatch(ctx, ev)
				b.mu.Lock()
				b.inflight--
				b.mu.Unlock()
			}
		}()
	}
}

func jobOf(ev cloudevents.Event) string {
	var p struct {
		Job string `json:"job"`
	}
	_ = json.Unmarshal(ev.Data(), &p)
	return p.Job
}

func (b *broker) dispatch(ctx context.Context, ev cloudevents.Event) {
	targets := contract.Route(ev.Type(), jobOf(ev))
	b.mu.Lock()
	idx := len(b.log)
	b.log = append(b.log, observed{Event: ev})
	b.mu.Unlock()
	var o observed
	for _, fn := range targets {
		url, ok := b.urls[fn]
		if !ok {
			o.Missing = append(o.Missing, fn)
			continue
		}
		o.To = append(o.To, fn)
		reply, status, errData := b.deliver(ctx, url, ev)
		if status/100 != 2 {
			o.Failed = append(o.Failed, fmt.Sprintf("%s (%d)", fn, status))
			b.deadLetterOf(ctx, ev, url, status, errData)
			continue
		}
		if reply != nil {
			b.enqueue(*reply)
		}
	}
	b.mu.Lock()
	b.log[idx].To, b.log[idx].Failed, b.log[idx].Missing = o.To, o.Failed, o.Missing
	b.mu.Unlock()
}

// deliver POSTs ev with retries on 5xx and network errors (not on 4xx, as
// Knative does not retry those either).
func (b *broker) deliver(ctx context.Context, url string, ev cloudevents.Event) (*cloudevents.Event, int, []byte) {
	var status int
	var body []byte
	for attempt := 0; attempt <= b.retries; attempt++ {
		if attempt > 0 {
			time.Sleep(b.backoff << (attempt - 1))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/", nil)
		if err != nil {
			return nil, 0, nil
		}
		if err := cehttp.WriteRequest(ctx, binding.ToMessage(&ev), req); err != nil {
			return nil, 0, []byte(err.Error())
		}
		resp, err := b.client.Do(req)
		if err != nil {
			status, body = 503, []byte(err.Error())
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		status, body = resp.StatusCode, raw
		if status/100 == 2 {
			var reply *cloudevents.Event
			if resp.Header.Get("Ce-Id") != "" || resp.Header.Get("Content-Type") == "application/cloudevents+json" {
				resp.Body = io.NopCloser(bytesReader(raw))
				if r, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpResponse(resp)); err == nil {
					reply = r
				}
			}
			return reply, status, nil
		}
		if status < 500 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout {
			break
		}
	}
	return nil, status, body
}

// deadLetterOf hands a failed event to the dead-letter function with the
// extensions Knative adds.
func (b *broker) deadLetterOf(ctx context.Context, ev cloudevents.Event, dest string, code int, data []byte) {
	if b.deadLetter == "" {
		return
	}
	dl := ev.Clone()
	dl.SetExtension("knativeerrordest", dest)
	dl.SetExtension("knativeerrorcode", fmt.Sprint(code))
	if len(data) > 0 {
		dl.SetExtension("knativeerrordata", base64.StdEncoding.EncodeToString(data))
	}
	_, _, _ = b.deliver(ctx, b.deadLetter, dl)
}

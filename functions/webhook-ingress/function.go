package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/portals"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/telemetry"
)

const name = "webhook-ingress"

// Function receives portal webhooks and forwards them to K_SINK.
type Function struct {
	portals Portals
	sink    string
	client  *http.Client
	log     *zap.SugaredLogger
	now     func() time.Time
}

// New returns the function: one route, POST /webhooks/{portal}.
func New(env *runtime.Env, portals Portals, client *http.Client) *runtime.Function {
	f := &Function{portals: portals, sink: env.Base.Sink, client: client, log: env.Log, now: time.Now}
	return &runtime.Function{
		Name: name,
		Routes: func(mux *http.ServeMux) {
			mux.HandleFunc("POST /webhooks/{portal}", f.receive)
		},
	}
}

// Accepted is the 202 body: the CloudEvent the webhook became.
type Accepted struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Type   string `json:"type"`
}

// result of one webhook, for the response and the log line.
type result struct {
	status  int
	outcome string
	detail  string
	typ     string
}

// receive handles one webhook in its server span: a child of the portal's
// own traceparent header when it sends one, else the root of a new trace.
// The forwarded event carries the span's traceparent extension.
func (f *Function) receive(w http.ResponseWriter, r *http.Request) {
	start := f.now()
	portal := r.PathValue("portal")
	id := r.Header.Get(HeaderID)
	tel := telemetry.Current()
	ctx, span := tel.StartServer(telemetry.Incoming(r.Context(), r.Header, nil), "webhook", start,
		attribute.String(telemetry.AttrFunction, name), attribute.String("qinqing.portal", portals.Redact(portal)))
	res := f.handle(w, r.WithContext(ctx), portal, id)
	elapsed := time.Since(start)
	typ := ""
	if res.status == http.StatusAccepted {
		typ = res.typ // an allowed type: a label never takes a value a sender chose freely
		span.SetAttributes(attribute.String(telemetry.AttrEventID, id), attribute.String(telemetry.AttrEventType, res.typ),
			attribute.String(telemetry.AttrEventSource, "/portals/"+portal))
	}
	telemetry.End(span, res.outcome, res.status)
	tel.Instruments().Event(ctx, name, typ, res.outcome, res.status, elapsed.Seconds())
	fields := []any{"portal", portals.Redact(portal), "id", id, "status", res.status, "outcome", res.outcome,
		"ms", float64(elapsed.Microseconds()) / 1000}
	if res.typ != "" {
		fields = append(fields, "type", res.typ)
	}
	if res.status >= 500 {
		f.log.Warnw("webhook", append(fields, "detail", res.detail)...)
	} else {
		f.log.Infow("webhook", fields...)
	}
}

// handle checks, in order: the portal exists (404), the body fits (413),
// the signature and timestamp (401), the body's shape (400), the type is
// allowed (403), and the sink accepts the event (503). Nothing about the
// body is reported before the signature is verified.
func (f *Function) handle(w http.ResponseWriter, r *http.Request, portalName, id string) result {
	p, ok := f.portals[portalName]
	if !ok || !p.Inbound() {
		return f.fail(w, "unknown_portal", "", event.Errorf(event.ENOTFOUND, "",
			"unknown portal %q: POST to /webhooks/<portal> with the portal name you were given", portalName))
	}
	body, err := runtime.ReadBody(w, r)
	if err != nil { // the runtime's own answer, as to any route: outcome too_large, body_timeout or invalid
		return result{status: runtime.WriteError(w, err, nil), outcome: event.ErrorCode(err), detail: err.Error()}
	}
	ts, err := p.Verify(id, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, f.now())
	if err != nil {
		var ae *AuthError
		if !errors.As(err, &ae) {
			ae = &AuthError{Message: "signature verification failed"}
		}
		return f.fail(w, "unauthorized", "", event.Errorf(event.EUNAUTHORIZED, "", "%s", ae.Message))
	}
	typ, data, err := parseWebhook(body)
	if err != nil {
		return f.fail(w, "invalid", "", err)
	}
	if !p.Allows(typ) {
		return f.fail(w, "type_not_allowed", typ, event.Errorf(event.EFORBIDDEN, "type",
			"type %q is not allowed for portal %q (allowed: %s)", typ, p.Name, strings.Join(p.AllowedTypes(), ", ")))
	}
	if f.sink == "" {
		return f.fail(w, "no_sink", typ, event.Unavailable(nil,
			"events cannot be forwarded right now (no event sink is configured); nothing was accepted, retry later"))
	}
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetSource("/portals/" + p.Name)
	ev.SetType(typ)
	ev.SetTime(ts.UTC())
	_ = ev.SetData(cloudevents.ApplicationJSON, []byte(data))
	if err := ev.Validate(); err != nil {
		return f.fail(w, "invalid", typ, event.Errorf(event.EINVALID, "", "the webhook does not make a valid CloudEvent: %v", err))
	}
	telemetry.SetEventTrace(r.Context(), &ev)
	if err := runtime.Send(r.Context(), f.client, f.sink, &ev); err != nil {
		w.Header().Set("Retry-After", "30")
		return f.fail(w, "sink_down", typ, event.Unavailable(err,
			"the event could not be handed on right now; nothing was accepted, retry later with the same webhook-id"))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(Accepted{ID: ev.ID(), Source: ev.Source(), Type: ev.Type()})
	return result{status: http.StatusAccepted, outcome: "accepted", typ: typ}
}

// parseWebhook reads the body { "type": "<event type>", "data": { … } }.
// Other top-level members are ignored. data is returned byte for byte.
func parseWebhook(body []byte) (string, json.RawMessage, error) {
	bad := func(field, format string, args ...any) error {
		return event.Errorf(event.EINVALID, field, format, args...)
	}
	var m map[string]json.RawMessage
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return "", nil, bad("", `the body must be a JSON object {"type": "<event type>", "data": {…}}`)
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return "", nil, bad("", "the body is not valid JSON: %v", err)
	}
	rawType, ok := m["type"]
	if !ok {
		return "", nil, bad("type", "type is required")
	}
	var typ string
	if err := json.Unmarshal(rawType, &typ); err != nil {
		return "", nil, bad("type", "type must be a string")
	}
	if strings.TrimSpace(typ) == "" {
		return "", nil, bad("type", "type must not be empty")
	}
	data := bytes.TrimSpace(m["data"])
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return typ, nil, bad("data", "data is required")
	}
	if data[0] != '{' {
		return typ, nil, bad("data", "data must be a JSON object")
	}
	return typ, json.RawMessage(data), nil
}

// titles are the webhook's problem titles (its types and statuses are
// the runtime's, as for every route).
var titles = runtime.Titles{
	event.EINVALID:      "Malformed webhook",
	event.EUNAUTHORIZED: "Webhook signature not accepted",
	event.EFORBIDDEN:    "Event type not allowed for this portal",
	event.ENOTFOUND:     "Unknown portal",
	event.EUNAVAILABLE:  "Temporarily unavailable",
}

// fail answers err (runtime.WriteError) and returns the result for the
// log line: outcome says why; the detail, with the cause of a 5xx (the
// sink's own answer), goes to the log line only.
func (f *Function) fail(w http.ResponseWriter, outcome, typ string, err error) result {
	return result{status: runtime.WriteError(w, err, titles), outcome: outcome, typ: typ, detail: err.Error()}
}

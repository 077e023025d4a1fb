package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"

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
	field   string
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
		return f.problem(w, result{status: http.StatusNotFound, outcome: "unknown_portal",
			detail: fmt.Sprintf("unknown portal %q: POST to /webhooks/<portal> with the portal name you were given", portalName)})
	}
	body, ok := runtime.ReadBody(w, r)
	if !ok {
		return result{status: http.StatusRequestEntityTooLarge, outcome: "too_large"}
	}
	ts, err := p.Verify(id, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, f.now())
	if err != nil {
		var ae *AuthError
		if !errors.As(err, &ae) {
			ae = &AuthError{Message: "signature verification failed"}
		}
		return f.problem(w, result{status: http.StatusUnauthorized, outcome: "unauthorized", detail: ae.Message})
	}
	typ, data, res := parseWebhook(body)
	if res != nil {
		return f.problem(w, *res)
	}
	if !p.Allows(typ) {
		return f.problem(w, result{status: http.StatusForbidden, outcome: "type_not_allowed", field: "type", typ: typ,
			detail: fmt.Sprintf("type %q is not allowed for portal %q (allowed: %s)", typ, p.Name, strings.Join(p.AllowedTypes(), ", "))})
	}
	if f.sink == "" {
		return f.problem(w, result{status: http.StatusServiceUnavailable, outcome: "no_sink", typ: typ,
			detail: "events cannot be forwarded right now (no event sink is configured); nothing was accepted, retry later"})
	}
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetSource("/portals/" + p.Name)
	ev.SetType(typ)
	ev.SetTime(ts.UTC())
	_ = ev.SetData(cloudevents.ApplicationJSON, []byte(data))
	if err := ev.Validate(); err != nil {
		return f.problem(w, result{status: http.StatusBadRequest, outcome: "invalid", typ: typ,
			detail: fmt.Sprintf("the webhook does not make a valid CloudEvent: %v", err)})
	}
	telemetry.SetEventTrace(r.Context(), &ev)
	if err := runtime.Send(r.Context(), f.client, f.sink, &ev); err != nil {
		w.Header().Set("Retry-After", "30")
		return f.problem(w, result{status: http.StatusServiceUnavailable, outcome: "sink_down", typ: typ,
			detail: "the event could not be handed on right now; nothing was accepted, retry later with the same webhook-id"}, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(Accepted{ID: ev.ID(), Source: ev.Source(), Type: ev.Type()})
	return result{status: http.StatusAccepted, outcome: "accepted", typ: typ}
}

// parseWebhook reads the body { "type": "<event type>", "data": { … } }.
// Other top-level members are ignored. data is returned byte for byte.
func parseWebhook(body []byte) (string, json.RawMessage, *result) {
	bad := func(field, format string, args ...any) *result {
		return &result{status: http.StatusBadRequest, outcome: "invalid", field: field, detail: fmt.Sprintf(format, args...)}
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

// problem writes res as problem+json. cause (the sink's own answer, when
// given) goes to the log line only, not to the portal.
func (f *Function) problem(w http.ResponseWriter, res result, cause ...error) result {
	p := runtime.Problem{Status: res.status, Detail: res.detail, Field: res.field}
	switch res.status {
	case http.StatusBadRequest:
		p.Type, p.Title = runtime.ProblemInvalid, "Malformed webhook"
		if res.field != "" {
			p.InvalidParams = []runtime.InvalidParam{{Name: res.field, Reason: res.detail}}
		}
	case http.StatusUnauthorized:
		p.Type, p.Title = runtime.ProblemUnauthorized, "Webhook signature not accepted"
	case http.StatusForbidden:
		p.Type, p.Title = runtime.ProblemForbidden, "Event type not allowed for this portal"
	case http.StatusNotFound:
		p.Type, p.Title = runtime.ProblemNotFound, "Unknown portal"
	default:
		p.Type, p.Title = runtime.ProblemUnavailable, "Temporarily unavailable"
	}
	if len(cause) > 0 && cause[0] != nil {
		res.detail = res.detail + ": " + cause[0].Error()
	}
	runtime.WriteProblem(w, p)
	return res
}

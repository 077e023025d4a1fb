package telemetry

import (
	"context"
	"net/http"
	"time"

	ceotel "github.com/cloudevents/sdk-go/observability/opentelemetry/v2/client"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/extensions"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Span attributes of the OpenTelemetry CloudEvents semantic conventions and
// qinqing's own.
const (
	AttrEventID          = "cloudevents.event_id"
	AttrEventSource      = "cloudevents.event_source"
	AttrEventType        = "cloudevents.event_type"
	AttrEventSubject     = "cloudevents.event_subject"
	AttrEventSpecVersion = "cloudevents.event_spec_version"
	AttrOutcome          = "qinqing.outcome"
	AttrRedelivery       = "qinqing.redelivery"
	AttrFunction         = "qinqing.function"
	AttrStatus           = "http.response.status_code"
)

// tc is the W3C trace context propagator: the only one qinqing speaks.
var tc = propagation.TraceContext{}

// Incoming is the parent context of an event's server span: the HTTP
// traceparent header when the request has one (what Knative's broker and
// our relay send: the hop that delivered the event), else the event's
// distributed tracing extension (traceparent/tracestate attributes, which
// binary and structured mode both carry), else none. ev may be nil (the
// event could not be parsed).
func Incoming(ctx context.Context, h http.Header, ev *cloudevents.Event) context.Context {
	if h.Get(headerTraceParent) != "" {
		if c := tc.Extract(ctx, headerCarrier(h)); trace.SpanContextFromContext(c).IsValid() {
			return c
		}
	}
	if ev != nil {
		if ext, ok := extensions.GetDistributedTracingExtension(*ev); ok && ext.TraceParent != "" {
			return tc.Extract(ctx, ceotel.CloudEventCarrier{Extension: &ext})
		}
	}
	return ctx
}

// The trace context headers in canonical form: http.Header.Get of the
// lower-case names canonicalizes them, an allocation on every call.
const (
	headerTraceParent = "Traceparent"
	headerTraceState  = "Tracestate"
)

// headerCarrier is propagation.HeaderCarrier with the two names the
// propagator asks for looked up in canonical form.
type headerCarrier http.Header

func canonical(key string) string {
	switch key {
	case "traceparent":
		return headerTraceParent
	case "tracestate":
		return headerTraceState
	}
	return key
}

func (c headerCarrier) Get(key string) string { return http.Header(c).Get(canonical(key)) }

func (c headerCarrier) Set(key, value string) { http.Header(c).Set(canonical(key), value) }

func (c headerCarrier) Keys() []string { return propagation.HeaderCarrier(c).Keys() }

// EventAttributes are the CloudEvents semantic convention attributes of ev,
// with room for what a server span adds (qinqing.function, the outcome,
// the status, the redelivery mark) without a copy.
func EventAttributes(ev *cloudevents.Event) []attribute.KeyValue {
	attrs := append(make([]attribute.KeyValue, 0, 9),
		attribute.String(AttrEventID, ev.ID()),
		attribute.String(AttrEventSource, ev.Source()),
		attribute.String(AttrEventType, ev.Type()),
		attribute.String(AttrEventSpecVersion, ev.SpecVersion()),
	)
	if s := ev.Subject(); s != "" {
		attrs = append(attrs, attribute.String(AttrEventSubject, s))
	}
	return attrs
}

// StartServer starts the server span of one received request or event,
// begun at start (when the request arrived). The span keeps attrs (the
// caller passes them on to it) and sets them when it ends, with End's
// outcome and status: one copy of the attributes into the span instead
// of three (the start options, the span, and the span again grown for
// the outcome). No sampler qinqing configures reads a span's attributes.
func (t *Telemetry) StartServer(ctx context.Context, name string, start time.Time, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
	if len(attrs) == 0 || !span.IsRecording() {
		return ctx, span
	}
	return ctx, &serverSpan{Span: span, attrs: attrs}
}

// StartEvent is StartServer for a received CloudEvent ev: the span keeps
// ev's attributes (EventAttributes) and extra, built only when the span
// records, so an untraced event costs none of them.
func (t *Telemetry) StartEvent(ctx context.Context, name string, start time.Time, ev *cloudevents.Event, extra ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
	if !span.IsRecording() {
		return ctx, span
	}
	return ctx, &serverSpan{Span: span, attrs: append(EventAttributes(ev), extra...)}
}

// serverSpan is a recording server span with the attributes it sets when
// it ends.
type serverSpan struct {
	trace.Span
	attrs []attribute.KeyValue
}

func (s *serverSpan) End(options ...trace.SpanEndOption) {
	s.Span.SetAttributes(s.attrs...)
	s.Span.End(options...)
}

// StartProducer starts the span of sending an event (the relay, a replay,
// a forwarded webhook).
func (t *Telemetry) StartProducer(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
}

// End ends a server span with the outcome and HTTP status: 5xx marks the
// span as an error, a redelivery is marked as such.
func End(span trace.Span, outcome string, status int) {
	if span.IsRecording() {
		s, ok := span.(*serverSpan)
		if !ok {
			s = &serverSpan{Span: span}
		}
		s.attrs = append(s.attrs, attribute.String(AttrOutcome, outcome), attribute.Int(AttrStatus, status))
		if outcome == "redelivery" {
			s.attrs = append(s.attrs, attribute.Bool(AttrRedelivery, true))
		}
		span = s
		if status >= 500 {
			span.SetStatus(codes.Error, outcome)
		}
	}
	span.End()
}

// TraceParent is the W3C traceparent of the span in ctx ("" when ctx has
// no valid span context), and its tracestate.
func TraceParent(ctx context.Context) (traceparent, tracestate string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", ""
	}
	var c pairCarrier
	tc.Inject(ctx, &c)
	return c.traceparent, c.tracestate
}

// pairCarrier carries one traceparent and tracestate (a map carrier costs
// a map per call).
type pairCarrier struct{ traceparent, tracestate string }

func (c *pairCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.traceparent
	case "tracestate":
		return c.tracestate
	}
	return ""
}

func (c *pairCarrier) Set(key, value string) {
	switch key {
	case "traceparent":
		c.traceparent = value
	case "tracestate":
		c.tracestate = value
	}
}

func (c *pairCarrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// WithTraceParent returns ctx with the remote span context of a stored
// traceparent (and tracestate), or ctx unchanged when it is empty or
// malformed.
func WithTraceParent(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return tc.Extract(ctx, &pairCarrier{traceparent, tracestate})
}

// SetEventTrace sets ev's distributed tracing extension to the span
// context of ctx (nothing when ctx has none). It sets the attributes
// ceotel.InjectDistributedTracingExtension sets, without its reflection
// over the extension's fields.
func SetEventTrace(ctx context.Context, ev *cloudevents.Event) {
	tp, ts := TraceParent(ctx)
	if tp == "" {
		return
	}
	ev.SetExtension(extensions.TraceParentExtension, tp)
	if ts != "" {
		ev.SetExtension(extensions.TraceStateExtension, ts)
	}
}

// InjectHTTP sets the traceparent (and tracestate) header of an outgoing
// request to the span context of ctx.
func InjectHTTP(ctx context.Context, h http.Header) {
	tc.Inject(ctx, headerCarrier(h))
}

// Continue records that this function acted on a case whose trace began
// elsewhere: a span named name, a child of the stored traceparent, linked
// to the span in ctx (the event being handled, e.g. a cron job), ended at
// once. It returns the traceparent to give the follow-up about that case:
// the new span's, or traceparent itself when tracing is off; "" when there
// is no stored trace.
func (t *Telemetry) Continue(ctx context.Context, traceparent, name string, attrs ...attribute.KeyValue) string {
	if traceparent == "" {
		return ""
	}
	parent := WithTraceParent(context.Background(), traceparent, "")
	if !trace.SpanContextFromContext(parent).IsValid() {
		return ""
	}
	_, span := t.tracer.Start(parent, name, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...),
		trace.WithLinks(trace.LinkFromContext(ctx)))
	span.End()
	if !span.SpanContext().IsValid() {
		return traceparent
	}
	tp, _ := TraceParent(trace.ContextWithSpan(ctx, span))
	return tp
}

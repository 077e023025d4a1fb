// Package receiver is a small OTLP/HTTP receiver (http/protobuf): it
// decodes the spans and metric names functions export to it and keeps
// them in memory. Tests use it to check what the built binaries export,
// make run to print a trace as a waterfall without a collector, and the
// benchmark as the local collector of the tracing-on run.
package receiver

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Span is one received span.
type Span struct {
	Service      string // the resource's service.name
	Name         string
	Kind         string // server, client, producer, consumer, internal
	TraceID      string // 32 hex digits
	SpanID       string // 16 hex digits
	ParentSpanID string // "" for a root span
	Start, End   time.Time
	Attributes   map[string]string
	Error        bool // status code error
}

// Duration is the span's length.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Receiver collects what is exported to it.
type Receiver struct {
	mu      sync.Mutex
	count   bool // count spans, keep none (StartCounting)
	n       int  // spans received
	bufMu   sync.Mutex
	buf     bytes.Buffer // a counting receiver's request bodies
	spans   []Span
	metrics map[string]map[string]bool // service → metric names
	srv     *http.Server
	ln      net.Listener
}

// Start listens on addr ("127.0.0.1:0" for any free port).
func Start(addr string) (*Receiver, error) { return start(addr, false) }

// StartCounting is Start for a receiver that keeps no span, only their
// number (SpanCount). It reads every trace export whole and counts its
// spans by walking the protobuf fields, without decoding them into
// messages: the benchmark of tracing's cost uses it as a collector whose
// own work (decoding, batching, forwarding: another pod's CPU) is not
// counted against the function.
func StartCounting(addr string) (*Receiver, error) { return start(addr, true) }

func start(addr string, count bool) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &Receiver{metrics: map[string]map[string]bool{}, ln: ln, count: count}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.traces)
	mux.HandleFunc("POST /v1/metrics", r.metricsHandler)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Endpoint is the base URL for OTEL_EXPORTER_OTLP_ENDPOINT.
func (r *Receiver) Endpoint() string { return "http://" + r.ln.Addr().String() }

// Close stops the receiver.
func (r *Receiver) Close() error { return r.srv.Close() }

func body(w http.ResponseWriter, req *http.Request) ([]byte, bool) {
	return bodyInto(w, req, nil)
}

// bodyInto reads the request's body (into buf when it is given, reusing
// its memory) and checks its type.
func bodyInto(w http.ResponseWriter, req *http.Request, buf *bytes.Buffer) ([]byte, bool) {
	var rd io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return nil, false
		}
		defer gz.Close()
		rd = gz
	}
	var b []byte
	var err error
	if buf != nil {
		buf.Reset()
		_, err = buf.ReadFrom(io.LimitReader(rd, 64<<20))
		b = buf.Bytes()
	} else {
		b, err = io.ReadAll(io.LimitReader(rd, 64<<20))
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "only application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
		return nil, false
	}
	return b, true
}

func (r *Receiver) traces(w http.ResponseWriter, req *http.Request) {
	if r.count {
		// One buffer for every export, as a collector keeps its own: the
		// benchmark's process should not collect the receiver's garbage.
		r.bufMu.Lock()
		defer r.bufMu.Unlock()
		b, ok := bodyInto(w, req, &r.buf)
		if !ok {
			return
		}
		n, err := countSpans(b)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.n += n
		r.mu.Unlock()
		ack(w)
		return
	}
	b, ok := body(w, req)
	if !ok {
		return
	}
	var msg colltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range msg.ResourceSpans {
		service := attr(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := Span{Service: service, Name: s.Name, Kind: kind(s.Kind),
					TraceID: hex.EncodeToString(s.TraceId), SpanID: hex.EncodeToString(s.SpanId),
					Start: time.Unix(0, int64(s.StartTimeUnixNano)), End: time.Unix(0, int64(s.EndTimeUnixNano)),
					Attributes: map[string]string{}, Error: s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR}
				if len(s.ParentSpanId) > 0 {
					sp.ParentSpanID = hex.EncodeToString(s.ParentSpanId)
				}
				for _, kv := range s.Attributes {
					sp.Attributes[kv.Key] = value(kv.Value)
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.n += len(got)
	r.mu.Unlock()
	ack(w)
}

// countSpans counts the spans of an ExportTraceServiceRequest: field 2
// (spans) of field 2 (scope_spans) of field 1 (resource_spans).
func countSpans(b []byte) (int, error) {
	n := 0
	err := fields(b, 1, func(rs []byte) error {
		return fields(rs, 2, func(ss []byte) error {
			return fields(ss, 2, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

// fields calls f with the contents of every length-delimited field num of
// the message b, skipping the other fields.
func fields(b []byte, num protowire.Number, f func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			if err := f(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
	}
	return nil
}

// ack answers an accepted trace export: an empty
// ExportTraceServiceResponse.
func ack(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&colltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func (r *Receiver) metricsHandler(w http.ResponseWriter, req *http.Request) {
	b, ok := body(w, req)
	if !ok {
		return
	}
	var msg collmetrics.ExportMetricsServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rm := range msg.ResourceMetrics {
		service := attr(rm.GetResource().GetAttributes(), "service.name")
		if r.metrics[service] == nil {
			r.metrics[service] = map[string]bool{}
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				r.metrics[service][m.Name] = true
			}
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collmetrics.ExportMetricsServiceResponse{})
	_, _ = w.Write(out)
}

// SpanCount is the number of spans received so far.
func (r *Receiver) SpanCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Spans returns a copy of the spans received so far (none for a
// counting receiver).
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Trace returns the spans of one trace, by start time.
func (r *Receiver) Trace(traceID string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// MetricNames returns the metric names service exported so far, sorted.
func (r *Receiver) MetricNames(service string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n := range r.metrics[service] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// WaitFor polls until ok(spans) holds or timeout passes; it returns the
// spans and whether ok held.
func (r *Receiver) WaitFor(timeout time.Duration, ok func([]Span) bool) ([]Span, bool) {
	deadline := time.Now().Add(timeout)
	for {
		s := r.Spans()
		if ok(s) {
			return s, true
		}
		if time.Now().After(deadline) {
			return s, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Waterfall renders spans (one trace, by start) as lines of service, span
// name, offset and length in milliseconds, indented by depth.
func Waterfall(spans []Span) string {
	if len(spans) == 0 {
		return ""
	}
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].Start.Before(spans[j].Start) })
	byID := map[string]Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	depth := func(s Span) int {
		d := 0
		for p, ok := byID[s.ParentSpanID]; ok && d < 20; p, ok = byID[p.ParentSpanID] {
			d++
		}
		return d
	}
	t0 := spans[0].Start
	var b strings.Builder
	fmt.Fprintf(&b, "  %-18s %-58s %9s %9s\n", "function", "span", "start ms", "ms")
	for _, s := range spans {
		name := strings.Repeat("  ", depth(s)) + s.Name
		if len(name) > 58 {
			name = name[:55] + "..."
		}
		fmt.Fprintf(&b, "  %-18s %-58s %9.1f %9.2f\n", s.Service, name,
			float64(s.Start.Sub(t0).Microseconds())/1000, float64(s.Duration().Microseconds())/1000)
	}
	return b.String()
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return value(kv.Value)
		}
	}
	return ""
}

func value(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	}
	return fmt.Sprint(v)
}

func kind(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	}
	return "internal"
}

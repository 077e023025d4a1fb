package telemetry

import (
	"math"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The OTLP messages, by field number, as opentelemetry-proto v1 defines
// them (trace.proto, metrics.proto, common.proto, resource.proto). The
// receiver's tests decode what these functions write with the official
// generated types, field by field.

// Span flags: the low 8 bits are the W3C trace flags; bit 8 says whether
// the parent is known to be remote, bit 9 that it is.
const (
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// appendTraces appends an ExportTraceServiceRequest of spans to b.
func appendTraces(b []byte, spans []sdktrace.ReadOnlySpan) []byte {
	w := wire{b: b}
	// Spans of one process share a resource and come from a handful of
	// scopes: group them in the order they first appear.
	type group struct {
		res   *resource.Resource
		scope instrumentation.Scope
		spans []sdktrace.ReadOnlySpan
	}
	var groups []*group
	for _, s := range spans {
		res, scope := s.Resource(), s.InstrumentationScope()
		var g *group
		for _, c := range groups {
			if c.res == res && sameScope(c.scope, scope) {
				g = c
				break
			}
		}
		if g == nil {
			g = &group{res: res, scope: scope}
			groups = append(groups, g)
		}
		g.spans = append(g.spans, s)
	}
	for i := 0; i < len(groups); {
		res := groups[i].res
		rs := w.begin(1) // ResourceSpans
		w.resource(res)
		for ; i < len(groups) && groups[i].res == res; i++ {
			ss := w.begin(2) // ScopeSpans
			w.scope(groups[i].scope)
			for _, s := range groups[i].spans {
				sp := w.begin(2)
				w.span(s)
				w.end(sp)
			}
			w.str(3, groups[i].scope.SchemaURL)
			w.end(ss)
		}
		if res != nil {
			w.str(3, res.SchemaURL())
		}
		w.end(rs)
	}
	return w.b
}

func sameScope(a, b instrumentation.Scope) bool {
	return a.Name == b.Name && a.Version == b.Version && a.SchemaURL == b.SchemaURL && a.Attributes.Equals(&b.Attributes)
}

func (w *wire) resource(r *resource.Resource) {
	at := w.begin(1)
	if r != nil {
		w.keyValues(1, r.Attributes())
	}
	w.end(at)
}

func (w *wire) scope(s instrumentation.Scope) {
	at := w.begin(1)
	w.str(1, s.Name)
	w.str(2, s.Version)
	w.keyValues(3, s.Attributes.ToSlice())
	w.end(at)
}

func unixNano(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

func (w *wire) span(s sdktrace.ReadOnlySpan) {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	w.bytes(1, tid[:])
	w.bytes(2, sid[:])
	w.str(3, sc.TraceState().String())
	parent := s.Parent()
	if psid := parent.SpanID(); psid.IsValid() {
		w.bytes(4, psid[:])
	}
	w.str(5, s.Name())
	w.varint(6, uint64(spanKind(s.SpanKind())))
	w.fixed64(7, unixNano(s.StartTime()))
	w.fixed64(8, unixNano(s.EndTime()))
	w.keyValues(9, s.Attributes())
	w.varint(10, uint64(max(0, s.DroppedAttributes())))
	for _, e := range s.Events() {
		at := w.begin(11)
		w.fixed64(1, unixNano(e.Time))
		w.str(2, e.Name)
		w.keyValues(3, e.Attributes)
		w.varint(4, uint64(max(0, e.DroppedAttributeCount)))
		w.end(at)
	}
	w.varint(12, uint64(max(0, s.DroppedEvents())))
	for _, l := range s.Links() {
		at := w.begin(13)
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		w.bytes(1, ltid[:])
		w.bytes(2, lsid[:])
		w.str(3, l.SpanContext.TraceState().String())
		w.keyValues(4, l.Attributes)
		w.varint(5, uint64(max(0, l.DroppedAttributeCount)))
		w.fixed32(6, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
		w.end(at)
	}
	w.varint(14, uint64(max(0, s.DroppedLinks())))
	st := s.Status()
	at := w.begin(15)
	if st.Code == codes.Error {
		w.str(2, st.Description)
	}
	w.varint(3, uint64(statusCode(st.Code)))
	w.end(at)
	w.fixed32(16, spanFlags(sc.TraceFlags(), parent))
}

// spanKind maps the API's kinds to OTLP's (the same order, both with
// unspecified as 0, but the mapping is written out rather than assumed).
func spanKind(k trace.SpanKind) int {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	}
	return 0
}

// statusCode maps the API's codes (Unset, Error, Ok) to OTLP's (Unset,
// Ok, Error).
func statusCode(c codes.Code) int {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	}
	return 0
}

func spanFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	f := uint32(tf) | flagHasIsRemote
	if parent.IsRemote() {
		f |= flagIsRemote
	}
	return f
}

// appendMetrics appends an ExportMetricsServiceRequest of rm to b.
// Exponential histograms and summaries, which qinqing does not configure,
// are left out and counted in skipped.
func appendMetrics(b []byte, rm *metricdata.ResourceMetrics) (_ []byte, skipped int) {
	w := wire{b: b}
	rs := w.begin(1) // ResourceMetrics
	w.resource(rm.Resource)
	for _, sm := range rm.ScopeMetrics {
		at := w.begin(2) // ScopeMetrics
		w.scope(sm.Scope)
		for _, m := range sm.Metrics {
			mark := len(w.b)
			mt := w.begin(2)
			w.str(1, m.Name)
			w.str(2, m.Description)
			w.str(3, m.Unit)
			if !w.aggregation(m.Data) {
				w.b = w.b[:mark]
				skipped++
				continue
			}
			w.end(mt)
		}
		w.str(3, sm.Scope.SchemaURL)
		w.end(at)
	}
	if rm.Resource != nil {
		w.str(3, rm.Resource.SchemaURL())
	}
	w.end(rs)
	return w.b, skipped
}

// temporality maps the SDK's (undefined, cumulative, delta) to OTLP's
// (unspecified, delta, cumulative).
func temporality(t metricdata.Temporality) uint64 {
	switch t {
	case metricdata.DeltaTemporality:
		return 1
	case metricdata.CumulativeTemporality:
		return 2
	}
	return 0
}

func (w *wire) aggregation(a metricdata.Aggregation) bool {
	switch d := a.(type) {
	case metricdata.Gauge[int64]:
		gaugeMetric(w, d)
	case metricdata.Gauge[float64]:
		gaugeMetric(w, d)
	case metricdata.Sum[int64]:
		sumMetric(w, d)
	case metricdata.Sum[float64]:
		sumMetric(w, d)
	case metricdata.Histogram[int64]:
		histogramMetric(w, d)
	case metricdata.Histogram[float64]:
		histogramMetric(w, d)
	default:
		return false
	}
	return true
}

// gaugeMetric, sumMetric and histogramMetric write the Metric member of each kind (fields
// 5, 7 and 9) for either number type.
func gaugeMetric[N int64 | float64](w *wire, d metricdata.Gauge[N]) {
	at := w.begin(5)
	numberPoints(w, d.DataPoints)
	w.end(at)
}

func sumMetric[N int64 | float64](w *wire, d metricdata.Sum[N]) {
	at := w.begin(7)
	numberPoints(w, d.DataPoints)
	w.varint(2, temporality(d.Temporality))
	w.boolean(3, d.IsMonotonic)
	w.end(at)
}

func histogramMetric[N int64 | float64](w *wire, d metricdata.Histogram[N]) {
	at := w.begin(9)
	histogramPoints(w, d.DataPoints)
	w.varint(2, temporality(d.Temporality))
	w.end(at)
}

// number writes v as NumberDataPoint/Exemplar value: as_double (field
// dbl) or as_int (field 6, sfixed64).
func number[N int64 | float64](w *wire, dbl int, v N) {
	switch x := any(v).(type) {
	case int64:
		w.tag(6, wireFixed64)
		w.b = appendLE64(w.b, uint64(x))
	case float64:
		w.double(dbl, x, true)
	}
}

func appendLE64(b []byte, v uint64) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}

func numberPoints[N int64 | float64](w *wire, pts []metricdata.DataPoint[N]) {
	for _, p := range pts {
		at := w.begin(1)
		w.fixed64(2, unixNano(p.StartTime))
		w.fixed64(3, unixNano(p.Time))
		number(w, 4, p.Value)
		exemplars(w, 5, p.Exemplars)
		w.keyValues(7, p.Attributes.ToSlice())
		w.end(at)
	}
}

func histogramPoints[N int64 | float64](w *wire, pts []metricdata.HistogramDataPoint[N]) {
	for _, p := range pts {
		at := w.begin(1)
		w.fixed64(2, unixNano(p.StartTime))
		w.fixed64(3, unixNano(p.Time))
		w.tag(4, wireFixed64)
		w.b = appendLE64(w.b, p.Count)
		w.double(5, float64(p.Sum), true)
		if len(p.BucketCounts) > 0 {
			bc := w.begin(6) // packed fixed64
			for _, c := range p.BucketCounts {
				w.b = appendLE64(w.b, c)
			}
			w.end(bc)
		}
		if len(p.Bounds) > 0 {
			eb := w.begin(7) // packed double
			for _, v := range p.Bounds {
				w.b = appendLE64(w.b, math.Float64bits(v))
			}
			w.end(eb)
		}
		exemplars(w, 8, p.Exemplars)
		w.keyValues(9, p.Attributes.ToSlice())
		if v, ok := p.Min.Value(); ok {
			w.double(11, float64(v), true)
		}
		if v, ok := p.Max.Value(); ok {
			w.double(12, float64(v), true)
		}
		w.end(at)
	}
}

func exemplars[N int64 | float64](w *wire, field int, es []metricdata.Exemplar[N]) {
	for _, e := range es {
		at := w.begin(field)
		w.fixed64(2, unixNano(e.Time))
		number(w, 3, e.Value)
		w.bytes(4, e.SpanID)
		w.bytes(5, e.TraceID)
		w.keyValues(7, e.FilteredAttributes)
		w.end(at)
	}
}

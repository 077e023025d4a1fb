package telemetry

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// WritePrometheus writes rm in the Prometheus text exposition format
// (version 0.0.4). qinqing's metric names are already Prometheus names, so
// they are written unchanged: counters as counter, gauges as gauge,
// histograms as cumulative _bucket/_sum/_count. Metrics of other scopes
// (none today) are written the same way after replacing characters
// Prometheus does not allow.
func WritePrometheus(w io.Writer, rm *metricdata.ResourceMetrics) error {
	bw := bufio.NewWriter(w)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			writeMetric(bw, m)
		}
	}
	return bw.Flush()
}

func writeMetric(w *bufio.Writer, m metricdata.Metrics) {
	name := promName(m.Name)
	header := func(kind string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(m.Description), name, kind)
	}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		header(sumKind(d.IsMonotonic))
		for _, p := range d.DataPoints {
			sample(w, name, p.Attributes, "", "", float64(p.Value))
		}
	case metricdata.Sum[float64]:
		header(sumKind(d.IsMonotonic))
		for _, p := range d.DataPoints {
			sample(w, name, p.Attributes, "", "", p.Value)
		}
	case metricdata.Gauge[int64]:
		header("gauge")
		for _, p := range d.DataPoints {
			sample(w, name, p.Attributes, "", "", float64(p.Value))
		}
	case metricdata.Gauge[float64]:
		header("gauge")
		for _, p := range d.DataPoints {
			sample(w, name, p.Attributes, "", "", p.Value)
		}
	case metricdata.Histogram[int64]:
		header("histogram")
		for _, p := range d.DataPoints {
			histogram(w, name, p.Attributes, p.Bounds, p.BucketCounts, float64(p.Sum), p.Count)
		}
	case metricdata.Histogram[float64]:
		header("histogram")
		for _, p := range d.DataPoints {
			histogram(w, name, p.Attributes, p.Bounds, p.BucketCounts, p.Sum, p.Count)
		}
	}
}

func sumKind(monotonic bool) string {
	if monotonic {
		return "counter"
	}
	return "gauge"
}

func histogram(w *bufio.Writer, name string, attrs attribute.Set, bounds []float64, counts []uint64, sum float64, count uint64) {
	var cum uint64
	for i, b := range bounds {
		if i < len(counts) {
			cum += counts[i]
		}
		sample(w, name+"_bucket", attrs, "le", formatFloat(b), float64(cum))
	}
	sample(w, name+"_bucket", attrs, "le", "+Inf", float64(count))
	sample(w, name+"_sum", attrs, "", "", sum)
	sample(w, name+"_count", attrs, "", "", float64(count))
}

// sample writes one line; extraKey/extraValue is the le label of a bucket.
func sample(w *bufio.Writer, name string, attrs attribute.Set, extraKey, extraValue string, v float64) {
	w.WriteString(name)
	kvs := attrs.ToSlice()
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
	if len(kvs) > 0 || extraKey != "" {
		w.WriteByte('{')
		for i, kv := range kvs {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(promName(string(kv.Key)))
			w.WriteString(`="`)
			w.WriteString(escapeLabel(kv.Value.Emit()))
			w.WriteByte('"')
		}
		if extraKey != "" {
			if len(kvs) > 0 {
				w.WriteByte(',')
			}
			w.WriteString(extraKey + `="` + extraValue + `"`)
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// promName replaces what Prometheus names may not contain with '_'.
func promName(s string) string {
	var b strings.Builder
	for i, r := range s {
		ok := r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if ok {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

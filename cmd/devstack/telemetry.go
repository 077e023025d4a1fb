package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	otlprecv "github.com/qinqing/qinqing/shared/telemetry/receiver"
)

// telemetryEnv points every function at the in-process OTLP receiver (the
// collector of make run) and turns GET /metrics on, with short batching
// so the waterfall is complete when the week ends.
func telemetryEnv(recv *otlprecv.Receiver) map[string]string {
	return map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": recv.Endpoint(),
		"OTEL_BSP_SCHEDULE_DELAY":     "200",
		"OTEL_METRIC_EXPORT_INTERVAL": "5000",
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment=devstack",
		"METRICS_PROMETHEUS":          "true",
	}
}

// caseTrace prints one case as a waterfall: a signup's problem that became
// an appeal, preferably one the deadline check escalated, followed through
// forum-signup → appeal-router → deadline-check in one trace. Database and
// S3 calls are counted under the span they belong to, not listed.
func caseTrace(ctx context.Context, w io.Writer, pool *pgxpool.Pool, recv *otlprecv.Receiver) {
	// The sample week escalates no forum appeal: the second trace is the
	// escalated one (a portal's appeal), through the deadline check.
	traceOne(ctx, w, pool, recv, "a problem raised at the forum", `a.channel = 'forum'`)
	traceOne(ctx, w, pool, recv, "an appeal the deadline check escalated",
		`EXISTS (SELECT 1 FROM appeal.overdue_announcements o WHERE o.appeal_id = a.appeal_id)`)
}

func traceOne(ctx context.Context, w io.Writer, pool *pgxpool.Pool, recv *otlprecv.Receiver, what, where string) {
	var appealID, eventID string
	err := pool.QueryRow(ctx, `SELECT a.appeal_id, a.event_id FROM appeal.appeals a
		WHERE `+where+`
		ORDER BY EXISTS (SELECT 1 FROM appeal.overdue_announcements o WHERE o.appeal_id = a.appeal_id) DESC, a.received_at, a.appeal_id
		LIMIT 1`).Scan(&appealID, &eventID)
	if err != nil {
		fmt.Fprintf(w, "\n(no appeal to trace for %s: %v)\n", what, err)
		return
	}
	// The appeal-router span that handled the appeal.submitted follow-up
	// names the trace.
	find := func(spans []otlprecv.Span) string {
		for _, s := range spans {
			if s.Service == "appeal-router" && s.Kind == "server" && s.Attributes["cloudevents.event_id"] == eventID {
				return s.TraceID
			}
		}
		return ""
	}
	spans, _ := recv.WaitFor(5*time.Second, func(s []otlprecv.Span) bool { return find(s) != "" })
	traceID := find(spans)
	if traceID == "" {
		fmt.Fprintf(w, "\n(no trace recorded for appeal %s)\n", appealID)
		return
	}
	// Let the last batches (the deadline check's) arrive.
	recv.WaitFor(3*time.Second, func(s []otlprecv.Span) bool {
		for _, sp := range s {
			if sp.TraceID == traceID && sp.Service == "deadline-check" {
				return true
			}
		}
		return false
	})
	all := recv.Trace(traceID)
	calls := map[string]int{}
	var shown []otlprecv.Span
	for _, s := range all {
		if s.Kind == "client" || s.Name == "pool.acquire" {
			calls[s.ParentSpanID]++
			continue
		}
		shown = append(shown, s)
	}
	fmt.Fprintf(w, "\n═══ One case as a trace: %s (appeal %s, trace %s) ═══\n", what, appealID, traceID)
	fmt.Fprintf(w, "  %-16s %-52s %9s %8s %s\n", "function", "span", "at ms", "ms", "db/s3 calls")
	if len(shown) == 0 {
		return
	}
	byID := map[string]otlprecv.Span{}
	for _, s := range shown {
		byID[s.SpanID] = s
	}
	t0 := shown[0].Start
	for _, s := range shown {
		depth := 0
		for p, ok := byID[s.ParentSpanID]; ok && depth < 10; p, ok = byID[p.ParentSpanID] {
			depth++
		}
		name := strings.Repeat("  ", depth) + s.Name
		if len(name) > 52 {
			name = name[:49] + "..."
		}
		at := s.Start.Sub(t0)
		fmt.Fprintf(w, "  %-16s %-52s %9.1f %8.2f %s\n", s.Service, name,
			float64(at.Microseconds())/1000, float64(s.Duration().Microseconds())/1000, count(calls[s.SpanID]))
	}
}

func count(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// metricsSummary scrapes GET /metrics of every function and prints the
// figures after the week: events by outcome, outbox, dead letters and the
// business gauges (the same values every function reports; the first
// answer is shown).
func metricsSummary(w io.Writer, urls map[string]string) {
	type sample struct {
		name   string
		labels map[string]string
		value  float64
	}
	var all []sample
	gaugeSeen := map[string]bool{}
	names := make([]string, 0, len(urls))
	for n := range urls {
		names = append(names, n)
	}
	sort.Strings(names)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, fn := range names {
		resp, err := client.Get(urls[fn] + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		local := map[string]bool{}
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "qinqing_") {
				continue
			}
			s, ok := parseSample(line)
			if !ok {
				continue
			}
			if !strings.HasSuffix(s.name, "_total") && !strings.Contains(s.name, "_bucket") && !strings.HasSuffix(s.name, "_sum") && !strings.HasSuffix(s.name, "_count") {
				if gaugeSeen[s.name] {
					continue // a database gauge: every function reports the same
				}
				local[s.name] = true
			}
			all = append(all, sample{s.name, s.labels, s.value})
		}
		resp.Body.Close()
		for n := range local {
			gaugeSeen[n] = true
		}
	}
	fmt.Fprintln(w, "\n═══ Metrics after the week (GET /metrics of each function) ═══")
	sum := map[string]float64{}
	var keys []string
	add := func(k string, v float64) {
		if _, ok := sum[k]; !ok {
			keys = append(keys, k)
		}
		sum[k] += v
	}
	for _, s := range all {
		switch s.name {
		case "qinqing_events_total":
			add(fmt.Sprintf("events %-18s %s", s.labels["function"], s.labels["outcome"]), s.value)
		case "qinqing_outbox_deliveries_total":
			add("outbox deliveries "+s.labels["outcome"], s.value)
		case "qinqing_event_duration_seconds_sum":
			add("handling seconds (sum) "+s.labels["function"], s.value)
		case "qinqing_outbox_pending", "qinqing_outbox_oldest_pending_age_seconds", "qinqing_dead_letters_pending":
			add(strings.TrimPrefix(s.name, "qinqing_"), s.value)
		case "qinqing_appeals_open":
			add("appeals open "+s.labels["stage"]+" "+s.labels["department"], s.value)
		case "qinqing_appeals_overdue":
			add("appeals overdue "+s.labels["stage"], s.value)
		case "qinqing_subsidy_budget_remaining_fen":
			add("subsidy budget left (fen) "+s.labels["policy"], s.value)
		case "qinqing_forum_seats":
			add("forum seats "+s.labels["forum"]+" "+s.labels["status"], s.value)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-64s %s\n", k, strconv.FormatFloat(sum[k], 'f', -1, 64))
	}
}

// parseSample reads one Prometheus text line: name{k="v",…} value.
func parseSample(line string) (struct {
	name   string
	labels map[string]string
	value  float64
}, bool) {
	var out struct {
		name   string
		labels map[string]string
		value  float64
	}
	out.labels = map[string]string{}
	rest := line
	if i := strings.IndexByte(line, '{'); i >= 0 {
		out.name = line[:i]
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return out, false
		}
		for _, kv := range splitLabels(line[i+1 : j]) {
			k, v, ok := strings.Cut(kv, "=")
			if ok {
				out.labels[k], _ = strconv.Unquote(v)
			}
		}
		rest = line[j+1:]
	} else {
		sp := strings.IndexByte(line, ' ')
		if sp < 0 {
			return out, false
		}
		out.name, rest = line[:sp], line[sp:]
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
	out.value = v
	return out, err == nil
}

// splitLabels splits k="v",k2="v2" at the commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

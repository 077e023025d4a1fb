package deploy

import (
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/qinqing/qinqing/shared/telemetry"
)

// podMonitor and prometheusRule are the parts of the Prometheus Operator's
// monitoring.coreos.com/v1 types the chart uses, decoded strictly: a
// misspelled field fails as it would against the operator's CRD schema.
type podMonitor struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   objectMeta     `json:"metadata"`
	Spec       podMonitorSpec `json:"spec"`
}

type objectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type podMonitorSpec struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	PodMetricsEndpoints []struct {
		Port     string `json:"port"`
		Path     string `json:"path"`
		Interval string `json:"interval,omitempty"`
	} `json:"podMetricsEndpoints"`
}

type serviceMonitor struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type prometheusRule struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// grafanaDashboard is what the test reads of the dashboard JSON.
type grafanaDashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var metricRef = regexp.MustCompile(`\bqinqing_[a-z0-9_]+`)

// unknownMetrics returns the qinqing_* names in expr that are not metrics
// telemetry.Metrics exports (a histogram's _bucket, _sum and _count
// series count as the histogram).
func unknownMetrics(expr string) []string {
	kinds := map[string]string{}
	for _, m := range telemetry.Metrics {
		kinds[m.Name] = m.Kind
	}
	var bad []string
	for _, name := range metricRef.FindAllString(expr, -1) {
		if _, ok := kinds[name]; ok {
			continue
		}
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && kinds[b] == "histogram" {
				base = b
			}
		}
		if _, ok := kinds[base]; !ok {
			bad = append(bad, name)
		}
	}
	return bad
}

// balanced reports whether the brackets of a PromQL expression pair up.
func balanced(expr string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inString := false
	for _, r := range expr {
		switch {
		case r == '"':
			inString = !inString
		case inString:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && !inString
}

// The monitoring objects are off by default and on in the production
// values; they parse; the PodMonitor scrapes the pods' /metrics; the
// dashboard shows every figure of the issue and the rules carry every
// alert; and every metric they name is one the functions export.
func TestMonitoring(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	for _, m := range mustRender(t, c, koValues()).Objects {
		if strings.Contains(m.Source, "monitoring-") {
			t.Errorf("default values render %s", m)
		}
		if m.Kind == "Service" && strings.Contains(string(m.YAML), "OTEL_") {
			t.Errorf("default values set OTEL_* in %s", m)
		}
	}

	r := mustRender(t, c, readValues(t, chartDir+"/ci/production-values.yaml"))
	objs, errs := decodeAll(r.Objects)
	for _, err := range errs {
		t.Fatal(err)
	}
	var pm *podMonitor
	var rules *prometheusRule
	var dashboard *corev1.ConfigMap
	for _, o := range objs {
		switch x := o.(type) {
		case *podMonitor:
			pm = x
		case *prometheusRule:
			rules = x
		case *corev1.ConfigMap:
			if x.Labels["grafana_dashboard"] == "1" {
				dashboard = x
			}
		}
	}
	if pm == nil || rules == nil || dashboard == nil {
		t.Fatalf("production values: PodMonitor %v, PrometheusRule %v, dashboard ConfigMap %v", pm != nil, rules != nil, dashboard != nil)
	}

	// The PodMonitor selects the function pods and their /metrics port.
	if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port != "user-port" || pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" {
		t.Errorf("PodMonitor endpoints %+v", pm.Spec.PodMetricsEndpoints)
	}
	checkScrapeSelector(t, "PodMonitor", pm.Spec.Selector.MatchLabels, r)
	// Every function gets the OTLP endpoint; /metrics only where it is not public.
	for _, s := range r.find("Service") {
		y := string(s.YAML)
		if !strings.Contains(y, "serving.knative.dev") {
			continue
		}
		if !strings.Contains(y, "OTEL_EXPORTER_OTLP_ENDPOINT") || !strings.Contains(y, "http/protobuf") {
			t.Errorf("%s has no OTLP endpoint", s)
		}
		public := !strings.Contains(y, "networking.knative.dev/visibility: cluster-local")
		if public == strings.Contains(y, "METRICS_PROMETHEUS") {
			t.Errorf("%s: METRICS_PROMETHEUS set %v, public %v", s, !public, public)
		}
	}

	// The dashboard parses, and shows the figures the issue lists.
	var d grafanaDashboard
	if err := json.Unmarshal([]byte(dashboard.Data["qinqing.json"]), &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard %q (%q) with %d panels", d.Title, d.UID, len(d.Panels))
	}
	shown := map[string]bool{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if !balanced(tg.Expr) {
				t.Errorf("panel %q: unbalanced expression %s", p.Title, tg.Expr)
			}
			if bad := unknownMetrics(tg.Expr); len(bad) > 0 {
				t.Errorf("panel %q names metrics that are not exported: %v", p.Title, bad)
			}
			for _, n := range metricRef.FindAllString(tg.Expr, -1) {
				shown[n] = true
			}
		}
	}
	for _, want := range []string{"qinqing_events_total", "qinqing_event_duration_seconds_bucket", "qinqing_outbox_pending",
		"qinqing_outbox_oldest_pending_age_seconds", "qinqing_dead_letters_pending", "qinqing_appeals_open",
		"qinqing_appeals_overdue", "qinqing_subsidy_budget_remaining_fen", "qinqing_forum_seats"} {
		if !shown[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}

	// The rules: the four alerts, each with a runbook, over exported metrics.
	var alerts []string
	for _, g := range rules.Spec.Groups {
		for _, rule := range g.Rules {
			alerts = append(alerts, rule.Alert)
			if !balanced(rule.Expr) {
				t.Errorf("%s: unbalanced expression %s", rule.Alert, rule.Expr)
			}
			if bad := unknownMetrics(rule.Expr); len(bad) > 0 {
				t.Errorf("%s names metrics that are not exported: %v", rule.Alert, bad)
			}
			if !strings.Contains(rule.Annotations["runbook_url"], "operations.md#"+strings.ToLower(rule.Alert)) {
				t.Errorf("%s: runbook_url %q", rule.Alert, rule.Annotations["runbook_url"])
			}
		}
	}
	sort.Strings(alerts)
	want := []string{"QinqingAppealsExposed", "QinqingDeadLettersPending", "QinqingHighErrorRatio", "QinqingOutboxStuck"}
	if !slices.Equal(alerts, want) {
		t.Errorf("alerts %v, want %v", alerts, want)
	}

	// The check itself: a name that is not exported is caught.
	if bad := unknownMetrics(`rate(qinqing_events_totl[5m]) + qinqing_event_duration_seconds_count + qinqing_outbox_pending_bucket`); !slices.Equal(bad, []string{"qinqing_events_totl", "qinqing_outbox_pending_bucket"}) {
		t.Errorf("unknownMetrics = %v", bad)
	}
}

// A PodMonitor without /metrics behind it is refused.
func TestPodMonitorNeedsPrometheus(t *testing.T) {
	t.Parallel()
	_, err := render(loadChart(t), parseValues(t, "image: {ko: true}\ntelemetry: {podMonitor: {enabled: true}}"))
	if err == nil || !strings.Contains(err.Error(), "telemetry.prometheus.enabled") {
		t.Fatalf("render = %v, want a refusal naming telemetry.prometheus.enabled", err)
	}
}

// checkScrapeSelector checks that a monitor's selector matches the pods of
// exactly the functions that serve /metrics (the cluster-local ones): a
// public function answers 404 there and would show as a target down.
func checkScrapeSelector(t *testing.T, what string, sel map[string]string, r rendered) {
	t.Helper()
	objs, errs := decodeAll(r.find("Service"))
	for _, err := range errs {
		t.Fatal(err)
	}
	matches := func(podLabels map[string]string) bool {
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	n := 0
	for _, s := range objectsOf[*servingv1.Service](objs) {
		fn := s.Labels["app.kubernetes.io/component"]
		want := !slices.Contains(publicFunctions, fn)
		if got := matches(s.Spec.Template.Labels); got != want {
			t.Errorf("%s selector %v: matches the pods of %s %v, want %v", what, sel, fn, got, want)
		}
		n++
	}
	if n < 8 {
		t.Fatalf("%d Knative Services rendered", n)
	}
}

// The ServiceMonitor alternative: one headless Service per function that
// serves /metrics, selecting exactly its pods on the user port, and a
// ServiceMonitor selecting exactly those Services; it needs /metrics and
// excludes the PodMonitor.
func TestServiceMonitor(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	r := mustRender(t, c, parseValues(t, "image: {ko: true}\ntelemetry: {prometheus: {enabled: true}, serviceMonitor: {enabled: true, labels: {release: prom}}}"))
	objs, errs := decodeAll(r.Objects)
	for _, err := range errs {
		t.Fatal(err)
	}
	sms := objectsOf[*serviceMonitor](objs)
	if len(sms) != 1 || len(objectsOf[*podMonitor](objs)) != 0 {
		t.Fatalf("%d ServiceMonitors, %d PodMonitors; want 1 and 0", len(sms), len(objectsOf[*podMonitor](objs)))
	}
	sm := sms[0]
	if sm.Metadata.Labels["release"] != "prom" || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor %+v", sm)
	}
	metricsServices := map[string]*corev1.Service{}
	for _, s := range objectsOf[*corev1.Service](objs) {
		match := true
		for k, v := range sm.Spec.Selector.MatchLabels {
			if s.Labels[k] != v {
				match = false
			}
		}
		if match {
			metricsServices[s.Labels["app.kubernetes.io/component"]] = s
		}
	}
	for _, ks := range objectsOf[*servingv1.Service](objs) {
		fn := ks.Labels["app.kubernetes.io/component"]
		ms, ok := metricsServices[fn]
		if slices.Contains(publicFunctions, fn) {
			if ok {
				t.Errorf("public function %s has a metrics Service", fn)
			}
			continue
		}
		if !ok {
			t.Errorf("function %s: no Service the ServiceMonitor selects", fn)
			continue
		}
		if ms.Spec.ClusterIP != "None" || len(ms.Spec.Ports) != 1 || ms.Spec.Ports[0].Name != "metrics" || ms.Spec.Ports[0].TargetPort.String() != "user-port" {
			t.Errorf("metrics Service %s: clusterIP %q ports %+v", ms.Name, ms.Spec.ClusterIP, ms.Spec.Ports)
		}
		// It selects this function's pods and no other function's.
		for _, other := range objectsOf[*servingv1.Service](objs) {
			selected := true
			for k, v := range ms.Spec.Selector {
				if other.Spec.Template.Labels[k] != v {
					selected = false
				}
			}
			if want := other == ks; selected != want {
				t.Errorf("metrics Service %s selects the pods of %s: %v", ms.Name, other.Labels["app.kubernetes.io/component"], selected)
			}
		}
	}
	for _, bad := range []string{
		"image: {ko: true}\ntelemetry: {serviceMonitor: {enabled: true}}",
		"image: {ko: true}\ntelemetry: {prometheus: {enabled: true}, serviceMonitor: {enabled: true}, podMonitor: {enabled: true}}",
	} {
		if _, err := render(c, parseValues(t, bad)); err == nil {
			t.Errorf("%q rendered", bad)
		}
	}
}

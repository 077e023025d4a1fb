package deploy

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
)

// expectations are what a scenario's values promise about the rendered
// chart beyond what every scenario must satisfy.
type expectations struct {
	Timezone string // timezone of every PingSource
}

// objectsOf returns the decoded objects of one Go type.
func objectsOf[T any](objs []any) []T {
	var out []T
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// checkInvariants checks what no schema catches, against a catalogue (the
// real contract.Catalog, or a changed copy in the negative tests), and returns
// every problem found.
func checkInvariants(ms []manifest, objs []any, catalog []contract.Subscription, want expectations) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// Every object once, in the release namespace.
	seen := map[string]string{}
	for _, m := range ms {
		key := m.Kind + "/" + m.Name
		if prev, ok := seen[key]; ok {
			add("%s is rendered twice (%s and %s)", key, prev, m.Source)
		}
		seen[key] = m.Source
		if m.Kind != "Namespace" && m.Namespace != namespace {
			add("%s: namespace %q, want %q", m, m.Namespace, namespace)
		}
	}

	// Every function has exactly one Knative Service, and nothing else has one.
	services := objectsOf[*servingv1.Service](objs)
	svcOf := map[string]*servingv1.Service{} // function → Service
	fnOf := map[string]string{}              // Service name → function
	for _, s := range services {
		fn := s.Labels["app.kubernetes.io/component"]
		if _, dup := svcOf[fn]; dup {
			add("function %s has two Knative Services", fn)
		}
		svcOf[fn] = s
		fnOf[s.Name] = fn
	}
	for _, sub := range catalog {
		if svcOf[sub.Function] == nil {
			add("function %s has no Knative Service", sub.Function)
		}
	}
	for fn := range svcOf {
		if !slices.ContainsFunc(catalog, func(s contract.Subscription) bool { return s.Function == fn }) {
			add("Knative Service for %q, which is not a function of contract.Catalog", fn)
		}
	}
	for _, s := range services {
		problems = append(problems, checkService(s, objs)...)
	}

	// PingSources: one per job, with a time zone, sending {"job": …} to the broker.
	brokers := objectsOf[*eventingv1.Broker](objs)
	jobOfSource := map[string]string{} // CloudEvents source → job
	for _, p := range objectsOf[*sourcesv1.PingSource](objs) {
		var data struct {
			Job string `json:"job"`
		}
		if err := json.Unmarshal([]byte(p.Spec.Data), &data); err != nil || data.Job == "" {
			add("PingSource %s: data %q is not {\"job\": …}", p.Name, p.Spec.Data)
			continue
		}
		if p.Spec.Timezone == "" {
			add("PingSource %s (job %s) has no timezone", p.Name, data.Job)
		} else if want.Timezone != "" && p.Spec.Timezone != want.Timezone {
			add("PingSource %s: timezone %q, want %q", p.Name, p.Spec.Timezone, want.Timezone)
		}
		if p.Spec.ContentType != "application/json" {
			add("PingSource %s: contentType %q, want application/json", p.Name, p.Spec.ContentType)
		}
		if ref := p.Spec.Sink.Ref; ref == nil || ref.Kind != "Broker" {
			add("PingSource %s does not send to a Broker", p.Name)
		} else if len(brokers) > 0 && ref.Name != brokers[0].Name {
			add("PingSource %s sends to broker %s, want %s", p.Name, ref.Name, brokers[0].Name)
		}
		src := sourcesv1.PingSourceSource(p.Namespace, p.Name)
		if prev, dup := jobOfSource[src]; dup {
			add("two PingSources share source %s (jobs %s and %s)", src, prev, data.Job)
		}
		jobOfSource[src] = data.Job
	}
	jobCount := map[string]int{}
	for _, job := range jobOfSource {
		jobCount[job]++
	}
	wantJobs := map[string]bool{}
	for _, sub := range catalog {
		for _, job := range sub.Jobs {
			wantJobs[job] = true
			if jobCount[job] != 1 {
				add("job %s (function %s) has %d PingSources, want exactly 1", job, sub.Function, jobCount[job])
			}
		}
	}
	for job := range jobCount {
		if !wantJobs[job] {
			add("PingSource for job %q, which no function of contract.Catalog runs", job)
		}
	}

	// Triggers: exactly one per (function, type) and (function, job) of the
	// catalogue, and no other; each with retries and the dead-letter sink.
	deadLetter := ""
	if s := svcOf["dead-letter"]; s != nil {
		deadLetter = s.Name
	}
	routes := map[string]int{} // "function type" or "function job:<job>" → Triggers
	for _, tr := range objectsOf[*eventingv1.Trigger](objs) {
		problems = append(problems, checkDelivery(tr, deadLetter)...)
		if len(brokers) > 0 && tr.Spec.Broker != brokers[0].Name {
			add("Trigger %s: broker %s, want %s", tr.Name, tr.Spec.Broker, brokers[0].Name)
		}
		ref := tr.Spec.Subscriber.Ref
		if ref == nil || ref.Kind != "Service" || ref.APIVersion != "serving.knative.dev/v1" {
			add("Trigger %s: subscriber is not a Knative Service (so replies would not reach the broker)", tr.Name)
			continue
		}
		fn, ok := fnOf[ref.Name]
		if !ok {
			add("Trigger %s: subscriber %s is not a function's Service", tr.Name, ref.Name)
			continue
		}
		var attrs map[string]string
		if tr.Spec.Filter != nil {
			attrs = tr.Spec.Filter.Attributes
		}
		typ, source := attrs["type"], attrs["source"]
		switch {
		case typ == "":
			add("Trigger %s has no type filter", tr.Name)
		case typ == event.PingType:
			job, ok := jobOfSource[source]
			if !ok {
				add("Trigger %s: ping events filtered on source %q, which is no PingSource of the chart", tr.Name, source)
				continue
			}
			routes[fn+" job:"+job]++
		default:
			if source != "" || len(attrs) != 1 {
				add("Trigger %s: filter %v, want only type=%s", tr.Name, attrs, typ)
			}
			routes[fn+" "+typ]++
		}
	}
	want2 := map[string]bool{}
	for _, sub := range catalog {
		for _, t := range sub.Types {
			want2[sub.Function+" "+t] = true
		}
		for _, j := range sub.Jobs {
			want2[sub.Function+" job:"+j] = true
		}
	}
	for _, key := range sortedKeys(want2) {
		if n := routes[key]; n != 1 {
			add("%s: %d Triggers, want exactly 1 (contract.Catalog and the chart disagree: run go run ./cmd/gen-subscriptions)", key, n)
		}
	}
	for _, key := range sortedKeys(routes) {
		if !want2[key] {
			add("%s: a Trigger that contract.Catalog does not ask for", key)
		}
	}

	// K_SINK: every function gets the broker's address.
	bindings := objectsOf[*sourcesv1.SinkBinding](objs)
	for fn, s := range svcOf {
		if hasEnv(s.Spec.Template.Spec.PodSpec, "K_SINK") {
			continue
		}
		bound := false
		for _, b := range bindings {
			if b.Spec.Subject.Kind != "Service" || b.Spec.Subject.APIVersion != "serving.knative.dev/v1" {
				continue
			}
			if b.Spec.Sink.Ref == nil || b.Spec.Sink.Ref.Kind != "Broker" {
				continue
			}
			if b.Spec.Subject.Name == s.Name {
				bound = true
			}
			if sel := b.Spec.Subject.Selector; sel != nil {
				ls := labels.SelectorFromSet(sel.MatchLabels)
				if ls.Matches(labels.Set(s.Labels)) {
					bound = true
				}
			}
		}
		if !bound {
			add("function %s has no K_SINK: neither the env nor a SinkBinding to the broker", fn)
		}
	}

	// No container runs as root, anywhere.
	for i, m := range ms {
		for _, spec := range podSpecs(objs[i]) {
			for _, p := range checkPodSecurity(spec) {
				add("%s: %s", m, p)
			}
		}
	}
	return problems
}

// checkService checks one function's Knative Service.
func checkService(s *servingv1.Service, objs []any) []string {
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("Service %s: ", s.Name)+fmt.Sprintf(format, args...))
	}
	ann := s.Spec.Template.Annotations
	for _, k := range []string{"min-scale", "max-scale", "target", "scale-down-delay"} {
		if _, ok := ann["autoscaling.knative.dev/"+k]; !ok {
			add("no autoscaling.knative.dev/%s annotation", k)
		}
	}
	spec := s.Spec.Template.Spec.PodSpec
	if len(spec.Containers) != 1 {
		add("%d containers, want 1", len(spec.Containers))
		return problems
	}
	c := spec.Containers[0]
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
			add("no %s probe on GET /healthz", name)
		}
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		add("no memory request and limit")
	}
	if hasEnv(spec, "PORT") {
		add("sets PORT, which Knative sets")
	}
	// Every *_FILE variable points into a mounted ConfigMap or Secret key
	// (or a projected token).
	for _, e := range c.Env {
		if !strings.HasSuffix(e.Name, "_FILE") {
			continue
		}
		if p := checkMountedFile(spec, c, e.Value, objs); p != "" {
			add("%s=%s: %s", e.Name, e.Value, p)
		}
	}
	return problems
}

// checkMountedFile checks that file is a key of a ConfigMap or Secret
// volume mounted at its directory, and, when the chart renders that
// ConfigMap or Secret, that the key holds a JSON object.
func checkMountedFile(spec corev1.PodSpec, c corev1.Container, file string, objs []any) string {
	dir, base := path.Dir(file), path.Base(file)
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != dir {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != vm.Name {
				continue
			}
			var items []corev1.KeyToPath
			var data map[string][]byte
			switch {
			case v.ConfigMap != nil:
				items = v.ConfigMap.Items
				for _, cm := range objectsOf[*corev1.ConfigMap](objs) {
					if cm.Name == v.ConfigMap.Name {
						data = map[string][]byte{}
						for k, s := range cm.Data {
							data[k] = []byte(s)
						}
					}
				}
			case v.Secret != nil:
				items = v.Secret.Items
				for _, sec := range objectsOf[*corev1.Secret](objs) {
					if sec.Name == v.Secret.SecretName {
						data = sec.Data
					}
				}
			case v.Projected != nil:
				// A projected service account token or a cluster
				// ConfigMap (kube-root-ca.crt): the file must be one of
				// its sources' paths; not JSON.
				for _, src := range v.Projected.Sources {
					switch {
					case src.ServiceAccountToken != nil && src.ServiceAccountToken.Path == base:
						return ""
					case src.ConfigMap != nil:
						for _, it := range src.ConfigMap.Items {
							if it.Path == base {
								return ""
							}
						}
					}
				}
				return "not among the projected volume's sources"
			default:
				return "mounted from neither a ConfigMap, a Secret nor a projected volume"
			}
			key := base
			if len(items) > 0 {
				key = ""
				for _, it := range items {
					if it.Path == base {
						key = it.Key
					}
				}
				if key == "" {
					return "not among the volume's items"
				}
			}
			if data != nil {
				var obj map[string]any
				if err := json.Unmarshal(data[key], &obj); err != nil {
					return fmt.Sprintf("key %s is not a JSON object: %v", key, err)
				}
			}
			return ""
		}
	}
	return "no volume mounted at " + dir
}

// checkDelivery checks a Trigger's explicit delivery: retries with backoff
// and the dead-letter function as dead-letter sink.
func checkDelivery(tr *eventingv1.Trigger, deadLetter string) []string {
	var problems []string
	d := tr.Spec.Delivery
	if d == nil {
		return []string{fmt.Sprintf("Trigger %s has no delivery block (Knative does not retry by default)", tr.Name)}
	}
	if d.Retry == nil || *d.Retry < 1 {
		problems = append(problems, fmt.Sprintf("Trigger %s: no retries", tr.Name))
	}
	if d.BackoffPolicy == nil || d.BackoffDelay == nil {
		problems = append(problems, fmt.Sprintf("Trigger %s: no backoff policy and delay", tr.Name))
	}
	if d.DeadLetterSink == nil || d.DeadLetterSink.Ref == nil {
		problems = append(problems, fmt.Sprintf("Trigger %s has no deadLetterSink", tr.Name))
	} else if ref := d.DeadLetterSink.Ref; ref.Kind != "Service" || ref.APIVersion != "serving.knative.dev/v1" || ref.Name != deadLetter {
		problems = append(problems, fmt.Sprintf("Trigger %s: deadLetterSink %s %s, want the dead-letter Service %s", tr.Name, ref.Kind, ref.Name, deadLetter))
	}
	return problems
}

func hasEnv(spec corev1.PodSpec, name string) bool {
	for _, c := range spec.Containers {
		for _, e := range c.Env {
			if e.Name == name {
				return true
			}
		}
	}
	return false
}

// podSpecs returns the pod specs an object runs.
func podSpecs(obj any) []corev1.PodSpec {
	switch o := obj.(type) {
	case *servingv1.Service:
		return []corev1.PodSpec{o.Spec.Template.Spec.PodSpec}
	case *batchv1.Job:
		return []corev1.PodSpec{o.Spec.Template.Spec}
	case *corev1.Pod:
		return []corev1.PodSpec{o.Spec}
	}
	return k8sPodSpecs(obj)
}

// checkPodSecurity checks the restricted pod security profile: non-root,
// no privilege escalation, seccomp RuntimeDefault, all capabilities
// dropped, read-only root filesystem.
func checkPodSecurity(spec corev1.PodSpec) []string {
	var problems []string
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		problems = append(problems, "pod runs as user 0")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		problems = append(problems, "pod shares host namespaces")
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			problems = append(problems, fmt.Sprintf("container %s has no securityContext", c.Name))
			continue
		}
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
		if !nonRoot {
			problems = append(problems, fmt.Sprintf("container %s: runAsNonRoot is not true", c.Name))
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			problems = append(problems, fmt.Sprintf("container %s runs as user 0", c.Name))
		}
		if sc.Privileged != nil && *sc.Privileged {
			problems = append(problems, fmt.Sprintf("container %s is privileged", c.Name))
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			problems = append(problems, fmt.Sprintf("container %s: allowPrivilegeEscalation is not false", c.Name))
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			problems = append(problems, fmt.Sprintf("container %s: readOnlyRootFilesystem is not true", c.Name))
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			problems = append(problems, fmt.Sprintf("container %s: capabilities do not drop ALL (or add some)", c.Name))
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			problems = append(problems, fmt.Sprintf("container %s: seccomp profile is not RuntimeDefault", c.Name))
		}
	}
	return problems
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

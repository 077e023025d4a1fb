package deploy

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v3/pkg/chartutil"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// publicFunctions are called from outside the cluster (portals), not by
// the broker: they take traffic from the networking layer only.
// adminFunctions serve admin endpoints (ADMIN_TOKEN), which
// networkPolicy.adminFrom may also reach.
var (
	publicFunctions = []string{"webhook-ingress", "open311"}
	adminFunctions  = []string{"dead-letter", "webhook-egress"}
)

// effectiveValues coalesces a scenario's values with values.yaml, as Helm
// does before rendering.
func effectiveValues(t *testing.T, values map[string]any) chartutil.Values {
	t.Helper()
	v, err := chartutil.CoalesceValues(loadChart(t), values)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// selectorAt decodes a label selector of the values.
func selectorAt(t *testing.T, v chartutil.Values, path string) *metav1.LabelSelector {
	t.Helper()
	raw, err := v.Table(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var s metav1.LabelSelector
	data, _ := yaml.Marshal(map[string]any(raw))
	if err := strictYAML(data, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &s
}

// wantPeers says who may call each function: the broker's deliveries
// arrive from the eventing data plane or through Knative's routing
// (serving's activator, the networking layer's gateways); public
// functions take no broker deliveries; the dead-letter function takes
// them from eventing and, with the activator always in its path, from
// serving, never straight from a gateway. Functions with admin endpoints
// also admit networkPolicy.adminFrom.
func wantPeers(t *testing.T, v chartutil.Values, fn string) []networkingv1.NetworkPolicyPeer {
	t.Helper()
	peer := func(path string) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: selectorAt(t, v, path)}
	}
	eventing, serving, ingress := peer("networkPolicy.eventingNamespaceSelector"), peer("networkPolicy.servingNamespaceSelector"), peer("networkPolicy.ingressNamespaceSelector")
	var out []networkingv1.NetworkPolicyPeer
	switch {
	case fn == "dead-letter":
		out = []networkingv1.NetworkPolicyPeer{eventing, serving}
	case slices.Contains(publicFunctions, fn):
		out = []networkingv1.NetworkPolicyPeer{serving, ingress}
	default:
		out = []networkingv1.NetworkPolicyPeer{eventing, serving, ingress}
	}
	if slices.Contains(adminFunctions, fn) {
		admin, _ := v.PathValue("networkPolicy.adminFrom")
		data, _ := yaml.Marshal(admin)
		var extra []networkingv1.NetworkPolicyPeer
		if err := strictYAML(data, &extra); err != nil {
			t.Fatalf("networkPolicy.adminFrom: %v", err)
		}
		out = append(out, extra...)
	}
	return out
}

// checkNetworkPolicies checks that each function's pods are selected by
// exactly one NetworkPolicy, an Ingress policy admitting exactly the peers
// of wantPeers on every port, and that no policy selects the pods of the
// hooks or of another release.
func checkNetworkPolicies(t *testing.T, objs []any, v chartutil.Values) []string {
	t.Helper()
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	policies := objectsOf[*networkingv1.NetworkPolicy](objs)
	selects := func(p *networkingv1.NetworkPolicy, podLabels map[string]string) bool {
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err != nil {
			add("NetworkPolicy %s: podSelector: %v", p.Name, err)
			return false
		}
		return !sel.Empty() && sel.Matches(labels.Set(podLabels))
	}
	for _, p := range policies {
		for i, rule := range p.Spec.Ingress {
			for j, peer := range rule.From {
				for what, s := range map[string]*metav1.LabelSelector{"namespaceSelector": peer.NamespaceSelector, "podSelector": peer.PodSelector} {
					if s == nil {
						continue
					}
					if _, err := metav1.LabelSelectorAsSelector(s); err != nil {
						add("NetworkPolicy %s: ingress[%d].from[%d].%s: %v", p.Name, i, j, what, err)
					}
				}
			}
		}
	}
	for _, s := range objectsOf[*servingv1.Service](objs) {
		fn := s.Labels["app.kubernetes.io/component"]
		var mine []*networkingv1.NetworkPolicy
		for _, p := range policies {
			if selects(p, s.Spec.Template.Labels) {
				mine = append(mine, p)
			}
		}
		if len(mine) != 1 {
			add("function %s: its pods are selected by %d NetworkPolicies, want 1", fn, len(mine))
			continue
		}
		p := mine[0]
		if !slices.Equal(p.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
			add("NetworkPolicy %s: policyTypes %v, want [Ingress]", p.Name, p.Spec.PolicyTypes)
		}
		// A second rule admits the monitoring peers to the user port, on
		// the pods that serve /metrics.
		prom, _ := v.PathValue("telemetry.prometheus.enabled")
		scraped := prom == true && !slices.Contains(publicFunctions, fn)
		if got := s.Spec.Template.Labels["qinqing.dev/metrics"] == "true"; got != scraped {
			add("function %s: pod label qinqing.dev/metrics %v, want %v (serves /metrics)", fn, got, scraped)
		}
		if want := 1 + btoi(scraped); len(p.Spec.Ingress) != want {
			add("NetworkPolicy %s: %d ingress rules, want %d", p.Name, len(p.Spec.Ingress), want)
			continue
		}
		if scraped {
			m := p.Spec.Ingress[1]
			want := monitoringPeers(t, v)
			if len(m.Ports) != 1 || m.Ports[0].Port == nil || m.Ports[0].Port.String() != "user-port" || !reflect.DeepEqual(m.From, want) {
				add("NetworkPolicy %s: monitoring rule from %s ports %v, want from %s on user-port only", p.Name, peersString(m.From), m.Ports, peersString(want))
			}
		}
		rule := p.Spec.Ingress[0]
		if len(rule.Ports) != 0 {
			add("NetworkPolicy %s: limited to ports %v; the activator and autoscaler need the queue-proxy's ports as well", p.Name, rule.Ports)
		}
		if want := wantPeers(t, v, fn); !reflect.DeepEqual(rule.From, want) {
			add("NetworkPolicy %s (function %s): from %s, want %s", p.Name, fn, peersString(rule.From), peersString(want))
		}
		if fn == "dead-letter" && s.Spec.Template.Annotations["autoscaling.knative.dev/target-burst-capacity"] != "-1" {
			add("function dead-letter: the activator is not always in its path (target-burst-capacity -1), yet its NetworkPolicy admits no gateway")
		}
	}
	// Other pods of the namespace: hooks, the helm test pod, another
	// release's functions.
	others := []map[string]string{
		{"app.kubernetes.io/name": "qinqing", "app.kubernetes.io/instance": releaseName, "app.kubernetes.io/component": "migrate"},
		{"app.kubernetes.io/name": "qinqing", "app.kubernetes.io/instance": "other", "app.kubernetes.io/component": "dead-letter"},
	}
	for _, podLabels := range others {
		for _, p := range policies {
			if selects(p, podLabels) {
				add("NetworkPolicy %s selects pods %v, which are no function of this release", p.Name, podLabels)
			}
		}
	}
	return problems
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// monitoringPeers is networkPolicy.monitoringFrom of the values.
func monitoringPeers(t *testing.T, v chartutil.Values) []networkingv1.NetworkPolicyPeer {
	t.Helper()
	raw, err := v.PathValue("networkPolicy.monitoringFrom")
	if err != nil {
		t.Fatalf("networkPolicy.monitoringFrom: %v", err)
	}
	data, _ := yaml.Marshal(raw)
	var peers []networkingv1.NetworkPolicyPeer
	if err := strictYAML(data, &peers); err != nil {
		t.Fatalf("networkPolicy.monitoringFrom: %v", err)
	}
	return peers
}

func peersString(peers []networkingv1.NetworkPolicyPeer) string {
	data, _ := yaml.Marshal(peers)
	return strings.TrimSpace(string(data))
}

// TestNetworkPolicies checks every scenario's NetworkPolicies, decoded
// strictly with the Kubernetes networking types.
func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	for _, sc := range scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, c, sc.Values)
			objs, errs := decodeAll(r.Objects)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			for _, p := range checkNetworkPolicies(t, objs, effectiveValues(t, sc.Values)) {
				t.Error(p)
			}
		})
	}
	t.Run("Disabled", func(t *testing.T) {
		t.Parallel()
		r := mustRender(t, c, withKo(parseValues(t, "networkPolicy: {enabled: false}")))
		if ps := r.find("NetworkPolicy"); len(ps) != 0 {
			t.Errorf("%d NetworkPolicies with networkPolicy.enabled=false", len(ps))
		}
		for _, m := range r.find("Service") {
			if bytes.Contains(m.YAML, []byte("target-burst-capacity")) {
				t.Errorf("%s: target-burst-capacity without NetworkPolicies", m)
			}
		}
	})
}

// TestNetworkPolicyCheckFails shows that checkNetworkPolicies can fail:
// hand-edited policies that admit anyone, forget eventing, admit a gateway
// into dead-letter or select nothing are reported.
func TestNetworkPolicyCheckFails(t *testing.T) {
	t.Parallel()
	r := mustRender(t, loadChart(t), koValues())
	v := effectiveValues(t, koValues())
	for _, tc := range []struct {
		name, fn, old, new, want string
	}{
		{"AdmitsAnyone", "forum-signup", "    - from:\n", "    - {}\n    - from:\n", "2 ingress rules"},
		{"ForgetsEventing", "appeal-router", "kubernetes.io/metadata.name: knative-eventing", "kubernetes.io/metadata.name: knative-eventin", "function appeal-router): from"},
		{"GatewayIntoDeadLetter", "dead-letter", "kubernetes.io/metadata.name: knative-serving", "kubernetes.io/metadata.name: kourier-system", "function dead-letter): from"},
		{"SelectsNothing", "award-ceremony", "app.kubernetes.io/component: award-ceremony\n  policyTypes", "app.kubernetes.io/component: award\n  policyTypes", "function award-ceremony: its pods are selected by 0"},
		{"BadSelector", "deadline-check", "app.kubernetes.io/component: deadline-check\n  policyTypes", "app.kubernetes.io/component: deadline-check\n    matchExpressions: [{key: x, operator: Near}]\n  policyTypes", "podSelector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ms := slices.Clone(r.Objects)
			changed := false
			for i, m := range ms {
				if m.Kind == "NetworkPolicy" && m.Name == releaseName+"-"+tc.fn {
					if !bytes.Contains(m.YAML, []byte(tc.old)) {
						t.Fatalf("%s does not contain %q:\n%s", m, tc.old, m.YAML)
					}
					ms[i].YAML = bytes.Replace(m.YAML, []byte(tc.old), []byte(tc.new), 1)
					changed = true
				}
			}
			if !changed {
				t.Fatalf("no NetworkPolicy for %s", tc.fn)
			}
			objs, errs := decodeAll(ms)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			problems := checkNetworkPolicies(t, objs, v)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("problems %q do not include %q", problems, tc.want)
			}
		})
	}
}

// TestPodDisruptionBudgets checks that exactly the functions kept at two or
// more replicas get a PodDisruptionBudget that selects their pods.
func TestPodDisruptionBudgets(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	for _, sc := range scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, c, sc.Values)
			objs, errs := decodeAll(r.Objects)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			pdbs := objectsOf[*policyv1.PodDisruptionBudget](objs)
			withPDB := 0
			for _, s := range objectsOf[*servingv1.Service](objs) {
				fn := s.Labels["app.kubernetes.io/component"]
				var mine []*policyv1.PodDisruptionBudget
				for _, p := range pdbs {
					sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
					if err != nil {
						t.Fatalf("PodDisruptionBudget %s: %v", p.Name, err)
					}
					if sel.Matches(labels.Set(s.Spec.Template.Labels)) {
						mine = append(mine, p)
					}
				}
				want := 0
				if minScale := s.Spec.Template.Annotations["autoscaling.knative.dev/min-scale"]; minScale != "0" && minScale != "1" {
					want = 1
				}
				if len(mine) != want {
					t.Errorf("function %s (min-scale %s): %d PodDisruptionBudgets, want %d", fn, s.Spec.Template.Annotations["autoscaling.knative.dev/min-scale"], len(mine), want)
				}
				for _, p := range mine {
					withPDB++
					if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 || p.Spec.MinAvailable != nil {
						t.Errorf("PodDisruptionBudget %s: want maxUnavailable 1 only", p.Name)
					}
				}
			}
			if withPDB != len(pdbs) {
				t.Errorf("%d PodDisruptionBudgets, %d of them for a function", len(pdbs), withPDB)
			}
			if sc.Name == "ci/production-values.yaml" && withPDB != 2 {
				t.Errorf("production: %d PodDisruptionBudgets, want 2 (webhook-ingress and appeal-router keep 2 replicas)", withPDB)
			}
		})
	}
}

// TestServiceAccounts checks that every function runs as a ServiceAccount
// the chart renders (its own by default), with the annotations the values
// give it, and that none mounts a token.
func TestServiceAccounts(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	for _, sc := range scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, c, sc.Values)
			objs, errs := decodeAll(r.Objects)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			v := effectiveValues(t, sc.Values)
			accounts := map[string]*corev1.ServiceAccount{}
			for _, a := range objectsOf[*corev1.ServiceAccount](objs) {
				accounts[a.Name] = a
				if a.AutomountServiceAccountToken == nil || *a.AutomountServiceAccountToken {
					t.Errorf("ServiceAccount %s mounts a token", a.Name)
				}
			}
			create, _ := v.PathValue("serviceAccount.create")
			perFunction, _ := v.PathValue("serviceAccount.perFunction")
			shared, _ := v.Table("serviceAccount.annotations")
			used := map[string]bool{}
			for _, s := range objectsOf[*servingv1.Service](objs) {
				fn := s.Labels["app.kubernetes.io/component"]
				name := s.Spec.Template.Spec.ServiceAccountName
				used[name] = true
				if perFunction == true && name != s.Name {
					t.Errorf("function %s runs as %q, want its own %s", fn, name, s.Name)
				}
				if create != true {
					continue
				}
				a := accounts[name]
				if a == nil {
					t.Errorf("function %s runs as %q, which the chart does not render", fn, name)
					continue
				}
				want := map[string]string{}
				for k, val := range shared {
					want[k] = val.(string)
				}
				if perFunction == true {
					if own, err := v.Table("functions." + fn + ".serviceAccountAnnotations"); err == nil {
						for k, val := range own {
							want[k] = val.(string)
						}
					}
				}
				if len(want) == 0 {
					want = nil
				}
				if !reflect.DeepEqual(a.Annotations, want) {
					t.Errorf("ServiceAccount %s: annotations %v, want %v", name, a.Annotations, want)
				}
			}
			for name := range accounts {
				if !used[name] {
					t.Errorf("ServiceAccount %s is used by no function", name)
				}
			}
			if sc.Name == "ci/production-values.yaml" {
				if got := accounts[releaseName+"-forum-signup"].Annotations["eks.amazonaws.com/role-arn"]; !strings.HasSuffix(got, "role/qinqing-forum-signup") {
					t.Errorf("forum-signup's ServiceAccount has role %q, want its own", got)
				}
			}
		})
	}
}

// With deadLetter.oidc.enabled (the production values) every Trigger's
// deadLetterSink names the audience dead-letter checks its senders' tokens
// for, dead-letter gets the issuer, audience, subjects and a projected
// token of its service account to read the issuer's keys, and no other
// function has a token; by default there is none of it.
func TestDeadLetterOIDC(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	for _, sc := range []struct {
		name   string
		values map[string]any
		on     bool
	}{
		{"production", withKo(readValues(t, chartDir+"/ci/production-values.yaml")), true},
		{"default", koValues(), false},
	} {
		t.Run(sc.name, func(t *testing.T) {
			r := mustRender(t, c, sc.values)
			objs, errs := decodeAll(r.Objects)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			env := map[string]string{}
			for _, s := range objectsOf[*servingv1.Service](objs) {
				fn := s.Labels["app.kubernetes.io/component"]
				spec := s.Spec.Template.Spec
				if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
					t.Errorf("function %s mounts its service account token", fn)
				}
				projected := false
				for _, v := range spec.Volumes {
					if v.Projected != nil {
						for _, src := range v.Projected.Sources {
							projected = projected || src.ServiceAccountToken != nil
						}
					}
				}
				if projected != (sc.on && fn == "dead-letter") {
					t.Errorf("function %s has a projected service account token: %v", fn, projected)
				}
				for _, e := range spec.Containers[0].Env {
					if strings.HasPrefix(e.Name, "DEADLETTER_OIDC_") {
						if fn != "dead-letter" {
							t.Errorf("function %s gets %s", fn, e.Name)
						}
						env[e.Name] = e.Value
					}
				}
			}
			triggers := objectsOf[*eventingv1.Trigger](objs)
			if len(triggers) == 0 {
				t.Fatal("no Triggers rendered")
			}
			for _, tr := range triggers {
				dls := tr.Spec.Delivery.DeadLetterSink
				got := ""
				if dls.Audience != nil {
					got = *dls.Audience
				}
				if got != env["DEADLETTER_OIDC_AUDIENCE"] {
					t.Errorf("Trigger %s: deadLetterSink audience %q, dead-letter checks %q", tr.Name, got, env["DEADLETTER_OIDC_AUDIENCE"])
				}
			}
			if !sc.on {
				if len(env) != 0 {
					t.Errorf("default values set %v", env)
				}
				return
			}
			want := map[string]string{
				"DEADLETTER_OIDC_ISSUER":     "https://kubernetes.default.svc.cluster.local",
				"DEADLETTER_OIDC_AUDIENCE":   releaseName + "-dead-letter",
				"DEADLETTER_OIDC_SUBJECTS":   "system:serviceaccount:" + namespace + ":*",
				"DEADLETTER_OIDC_JWKS_URL":   "https://kubernetes.default.svc/openid/v1/jwks",
				"DEADLETTER_OIDC_TOKEN_FILE": "/var/run/qinqing/oidc/token",
				"DEADLETTER_OIDC_CA_FILE":    "/var/run/qinqing/oidc/ca.crt",
			}
			if !reflect.DeepEqual(env, want) {
				t.Errorf("dead-letter env %v, want %v", env, want)
			}
		})
	}
}

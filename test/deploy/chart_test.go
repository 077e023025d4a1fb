package deploy

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
)

// subscriptionsFile mirrors charts/qinqing/files/subscriptions.yaml.
type subscriptionsFile struct {
	PingType  string `json:"pingType"`
	Functions []struct {
		Name  string   `json:"name"`
		Types []string `json:"types"`
		Jobs  []string `json:"jobs"`
	} `json:"functions"`
}

// TestSubscriptionsFileMatchesCatalog checks that the table the chart
// renders its Triggers and PingSources from is contract.Catalog.
func TestSubscriptionsFileMatchesCatalog(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(chartDir + "/files/subscriptions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f subscriptionsFile
	if err := strictYAML(data, &f); err != nil {
		t.Fatalf("files/subscriptions.yaml: %v", err)
	}
	const fix = "charts/qinqing/files/subscriptions.yaml is out of date: run go run ./cmd/gen-subscriptions"
	if f.PingType != event.PingType {
		t.Errorf("pingType = %q, want %q; %s", f.PingType, event.PingType, fix)
	}
	if len(f.Functions) != len(contract.Catalog) {
		t.Fatalf("%d functions, contract.Catalog has %d; %s", len(f.Functions), len(contract.Catalog), fix)
	}
	for i, want := range contract.Catalog {
		got := f.Functions[i]
		if got.Name != want.Function || !slices.Equal(got.Types, want.Types) || !slices.Equal(got.Jobs, want.Jobs) {
			t.Errorf("function %d = %s %v %v, want %s %v %v; %s",
				i, got.Name, got.Types, got.Jobs, want.Function, want.Types, want.Jobs, fix)
		}
	}
}

// TestChart renders the chart with every scenario, decodes and validates
// every object with Knative's and Kubernetes' Go types, and checks the
// invariants against contract.Catalog.
func TestChart(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	for _, sc := range scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, c, sc.Values)
			objs, errs := decodeAll(r.Objects)
			for _, err := range errs {
				t.Error(err)
			}
			if len(errs) > 0 {
				return
			}
			tz := "Asia/Shanghai"
			if v, ok := sc.Values["timezone"].(string); ok {
				tz = v
			}
			for _, p := range checkInvariants(r.Objects, objs, contract.Catalog, expectations{Timezone: tz}) {
				t.Error(p)
			}
			checkHooks(t, r, objs)
			if !strings.Contains(r.Notes, "helm test") {
				t.Errorf("NOTES.txt does not render: %q", r.Notes)
			}
		})
	}
}

// checkHooks checks the migration hook Job and the helm test pod.
func checkHooks(t *testing.T, r rendered, objs []any) {
	t.Helper()
	var migrate *batchv1.Job
	var testPods []*corev1.Pod
	for i, m := range r.Objects {
		switch o := objs[i].(type) {
		case *batchv1.Job:
			if !slices.Equal(m.Hooks, []string{"pre-install", "pre-upgrade"}) {
				t.Errorf("%s: hooks %v, want pre-install,pre-upgrade", m, m.Hooks)
			}
			migrate = o
		case *corev1.Pod:
			if !slices.Equal(m.Hooks, []string{"test"}) {
				t.Errorf("%s: hooks %v, want test", m, m.Hooks)
			}
			testPods = append(testPods, o)
		default:
			if len(m.Hooks) > 0 {
				t.Errorf("%s: unexpected hook %v", m, m.Hooks)
			}
		}
	}
	if migrate != nil {
		// A pre-install hook runs before the release's other objects exist:
		// it may use nothing the chart creates outside the hook.
		created := map[string]bool{}
		for _, m := range r.Objects {
			if len(m.Hooks) == 0 {
				created[m.Kind+"/"+m.Name] = true
			}
		}
		spec := migrate.Spec.Template.Spec
		if sa := spec.ServiceAccountName; sa != "" && created["ServiceAccount/"+sa] {
			t.Errorf("migration Job uses ServiceAccount %s, which the chart creates after pre-install hooks", sa)
		}
		for _, c := range spec.Containers {
			if !hasEnv(spec, "DATABASE_URL") && !hasEnv(spec, "MIGRATIONS_DATABASE_URL") {
				t.Errorf("migration container %s has neither DATABASE_URL nor MIGRATIONS_DATABASE_URL", c.Name)
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && created["Secret/"+e.ValueFrom.SecretKeyRef.Name] {
					t.Errorf("migration Job reads Secret %s, which the chart creates after pre-install hooks", e.ValueFrom.SecretKeyRef.Name)
				}
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil && created["ConfigMap/"+e.ValueFrom.ConfigMapKeyRef.Name] {
					t.Errorf("migration Job reads ConfigMap %s, which the chart creates after pre-install hooks", e.ValueFrom.ConfigMapKeyRef.Name)
				}
			}
		}
		for _, v := range spec.Volumes {
			if (v.ConfigMap != nil && created["ConfigMap/"+v.ConfigMap.Name]) || (v.Secret != nil && created["Secret/"+v.Secret.SecretName]) {
				t.Errorf("migration Job mounts %s, which the chart creates after pre-install hooks", v.Name)
			}
		}
	}
	if len(testPods) != 1 {
		t.Fatalf("%d helm test pods, want 1", len(testPods))
	}
	script := strings.Join(append(testPods[0].Spec.Containers[0].Command, testPods[0].Spec.Containers[0].Args...), " ")
	for _, s := range objectsOf[*servingv1.Service](objs) {
		url := "http://" + s.Name + "." + namespace + ".svc.cluster.local/healthz"
		if !strings.Contains(script, url) {
			t.Errorf("helm test pod does not check %s", url)
		}
	}
}

// TestDefaultValues checks what the default values promise per function
// (rendered with image.ko for ko resolve): ko:// images, scale to zero,
// visibility, environment, and a container concurrency the pool serves.
func TestDefaultValues(t *testing.T) {
	t.Parallel()
	r := mustRender(t, loadChart(t), koValues())
	objs, errs := decodeAll(r.Objects)
	for _, err := range errs {
		t.Fatal(err)
	}
	documents := []string{"forum-signup", "deadline-check", "recycling-trade", "award-ceremony"}
	for _, s := range objectsOf[*servingv1.Service](objs) {
		fn := s.Labels["app.kubernetes.io/component"]
		if want := releaseName + "-" + fn; s.Name != want {
			t.Errorf("Service for %s is named %s, want %s", fn, s.Name, want)
		}
		spec := s.Spec.Template.Spec.PodSpec
		c := spec.Containers[0]
		// Resolved by decode, as ko resolve would.
		if want := "ko.local/" + fn + "@sha256:"; !strings.HasPrefix(c.Image, want) {
			t.Errorf("%s: image %s, want the ko://%sfunctions/%s reference", fn, c.Image, koPrefix, fn)
		}
		if got := s.Spec.Template.Annotations["autoscaling.knative.dev/min-scale"]; got != "0" {
			t.Errorf("%s: min-scale %s, want 0 (scale to zero)", fn, got)
		}
		local := s.Labels["networking.knative.dev/visibility"] == "cluster-local"
		if public := fn == "webhook-ingress" || fn == "open311"; local == public {
			t.Errorf("%s: cluster-local = %v; only webhook-ingress and open311 are reachable from outside", fn, local)
		}
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
		}
		want := []string{"QINQING_TIMEZONE", "LOG_LEVEL", "REQUEST_TIMEOUT", "BODY_READ_TIMEOUT"}
		if fn != "webhook-ingress" {
			want = append(want, "DATABASE_URL", "DATABASE_POOLER", "DATABASE_MAX_CONNS",
				"DATABASE_CONNECT_TIMEOUT", "DATABASE_STATEMENT_TIMEOUT", "DATABASE_LOCK_TIMEOUT")
		}
		if slices.Contains(documents, fn) {
			want = append(want, "S3_BUCKET", "S3_REGION", "S3_FORCE_PATH_STYLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
		}
		if fn == "award-ceremony" {
			want = append(want, "AWARD_WINNERS_PER_CATEGORY")
		}
		if fn == "webhook-egress" {
			want = append(want, "EGRESS_TIMEOUT")
		}
		for _, name := range want {
			if _, ok := env[name]; !ok {
				t.Errorf("%s: no %s", fn, name)
			}
		}
		if len(env) != len(want) {
			t.Errorf("%s: env %v, want exactly %v", fn, sortedKeys(env), want)
		}
		if e, ok := env["DATABASE_URL"]; ok && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "qinqing-database") {
			t.Errorf("%s: DATABASE_URL does not come from the Secret qinqing-database", fn)
		}
		if got := env["QINQING_TIMEZONE"].Value; got != "Asia/Shanghai" {
			t.Errorf("%s: QINQING_TIMEZONE=%q", fn, got)
		}
		if e, ok := env["DATABASE_POOLER"]; ok && e.Value != "none" {
			t.Errorf("%s: DATABASE_POOLER=%q, want none", fn, e.Value)
		}
		// One connection per request: the pool bounds the concurrency, and
		// the autoscaler aims at it.
		cc := int64(0)
		if s.Spec.Template.Spec.ContainerConcurrency != nil {
			cc = *s.Spec.Template.Spec.ContainerConcurrency
		}
		target := s.Spec.Template.Annotations["autoscaling.knative.dev/target"]
		if e, ok := env["DATABASE_MAX_CONNS"]; ok {
			if strconv.FormatInt(cc, 10) != e.Value || target != e.Value {
				t.Errorf("%s: containerConcurrency %d and target %s, want both DATABASE_MAX_CONNS=%s", fn, cc, target, e.Value)
			}
		} else if cc != 0 || target != "50" {
			t.Errorf("%s (no database): containerConcurrency %d and target %s, want 0 and 50", fn, cc, target)
		}
		if want := releaseName + "-" + fn; spec.ServiceAccountName != want {
			t.Errorf("%s: ServiceAccount %q, want its own %s", fn, spec.ServiceAccountName, want)
		}
	}
	for _, j := range objectsOf[*batchv1.Job](objs) {
		if img := j.Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(img, "ko.local/migrate@") {
			t.Errorf("migration image %s, want the ko://%scmd/migrate reference", img, koPrefix)
		}
	}
	if !strings.Contains(string(findDoc(t, r, "Job").YAML), koPrefix+"cmd/migrate") {
		t.Errorf("migration Job does not run %scmd/migrate", koPrefix)
	}
}

func findDoc(t *testing.T, r rendered, kind string) manifest {
	t.Helper()
	ms := r.find(kind)
	if len(ms) != 1 {
		t.Fatalf("%d %s objects, want 1", len(ms), kind)
	}
	return ms[0]
}

// TestValuesCoverCatalog checks that values.yaml and values.schema.json
// know exactly the functions and jobs of contract.Catalog, so that a new
// function or job cannot slip past the schema.
func TestValuesCoverCatalog(t *testing.T) {
	t.Parallel()
	var fns, jobs []string
	for _, s := range contract.Catalog {
		fns = append(fns, s.Function)
		jobs = append(jobs, s.Jobs...)
	}
	slices.Sort(fns)
	slices.Sort(jobs)

	values := readValues(t, chartDir+"/values.yaml")
	if got := sortedKeys(values["functions"].(map[string]any)); !slices.Equal(got, fns) {
		t.Errorf("values.yaml functions = %v, want %v", got, fns)
	}
	if got := sortedKeys(values["cron"].(map[string]any)); !slices.Equal(got, jobs) {
		t.Errorf("values.yaml cron = %v, want %v", got, jobs)
	}

	data, err := os.ReadFile(chartDir + "/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]struct {
			Properties           map[string]any `json:"properties"`
			AdditionalProperties *bool          `json:"additionalProperties"`
		} `json:"properties"`
		AdditionalProperties *bool `json:"additionalProperties"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	if schema.AdditionalProperties == nil || *schema.AdditionalProperties {
		t.Error("values.schema.json allows unknown top-level keys")
	}
	for key, want := range map[string][]string{"functions": fns, "cron": jobs} {
		p := schema.Properties[key]
		if got := sortedKeys(p.Properties); !slices.Equal(got, want) {
			t.Errorf("values.schema.json %s = %v, want %v", key, got, want)
		}
		if p.AdditionalProperties == nil || *p.AdditionalProperties {
			t.Errorf("values.schema.json %s allows unknown keys", key)
		}
	}
	for key := range values {
		if _, ok := schema.Properties[key]; !ok {
			t.Errorf("values.yaml key %s is not in values.schema.json", key)
		}
	}
}

// TestLint lints the chart as `helm lint --strict` does, with the default
// values and every scenario: any warning fails.
func TestLint(t *testing.T) {
	t.Parallel()
	for _, sc := range scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			l := lint.AllWithKubeVersionAndSchemaValidation(chartDir, sc.Values, namespace, nil, false)
			for _, m := range l.Messages {
				if m.Severity >= support.WarningSev {
					t.Error(m)
				} else {
					t.Log(m)
				}
			}
		})
	}
}

// TestImageReferences checks how the image values combine into references.
func TestImageReferences(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name, values, want string
	}{
		{"Ko", "image: {ko: true}", koPrefix + "functions/forum-signup"},
		{"Registry", "image: {registry: r.example/q/, tag: '2.0'}", "r.example/q/forum-signup:2.0"},
		{"RegistryAppVersion", "image: {registry: r.example/q}", "r.example/q/forum-signup:" + c.Metadata.AppVersion},
		{"RegistryDigest", "image: {registry: r.example/q, tag: '2.0'}\nfunctions: {forum-signup: {image: {digest: " + digest + "}}}", "r.example/q/forum-signup@" + digest},
		{"Repository", "image: {ko: true}\nfunctions: {forum-signup: {image: {repository: localhost:5001/fs, tag: dev}}}", "localhost:5001/fs:dev"},
		{"RepositoryWithoutTag", "image: {ko: true}\nfunctions: {forum-signup: {image: {repository: localhost:5001/fs}}}", "localhost:5001/fs"},
		{"FullReferenceWins", "image: {ko: true}\nfunctions: {forum-signup: {image: {repository: 'localhost:5001/fs:dev@" + digest + "', tag: x, digest: " + digest + "}}}", "localhost:5001/fs:dev@" + digest},
		{"TaggedReferenceGetsDigest", "image: {ko: true}\nfunctions: {forum-signup: {image: {repository: 'localhost:5001/fs:dev', digest: " + digest + "}}}", "localhost:5001/fs:dev@" + digest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, c, parseValues(t, tc.values))
			for _, m := range r.find("Service") {
				if m.Name != releaseName+"-forum-signup" {
					continue
				}
				var s servingv1.Service
				if err := strictYAML(m.YAML, &s); err != nil {
					t.Fatal(err)
				}
				if got := s.Spec.Template.Spec.Containers[0].Image; got != tc.want {
					t.Errorf("image = %s, want %s", got, tc.want)
				}
				return
			}
			t.Fatal("no forum-signup Service")
		})
	}
}

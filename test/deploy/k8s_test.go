package deploy

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// k8sPodSpecs returns the pod specs of the workload kinds of k8s/.
func k8sPodSpecs(obj any) []corev1.PodSpec {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return []corev1.PodSpec{o.Spec.Template.Spec}
	case *appsv1.StatefulSet:
		return []corev1.PodSpec{o.Spec.Template.Spec}
	}
	return nil
}

var k8sFileName = regexp.MustCompile(`^[0-9]{3}-[a-z0-9-]+\.yaml$`)

// TestK8sManifests decodes every object of k8s/ strictly (Knative objects
// are also defaulted and validated) and checks install order and the
// restricted pod security profile.
func TestK8sManifests(t *testing.T) {
	t.Parallel()
	files, ms := readK8s(t)
	if len(files) == 0 {
		t.Fatal("no k8s/*.yaml")
	}
	for _, f := range files {
		if !k8sFileName.MatchString(f) {
			t.Errorf("k8s/%s: want NNN-name.yaml, numbered by install order", f)
		}
	}
	if ms[0].Kind != "Namespace" || ms[0].Name != namespace {
		t.Errorf("the first object of k8s/ is %s, want the Namespace %s", ms[0], namespace)
	}
	objs, errs := decodeAll(ms)
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		return
	}
	seen := map[string]bool{}
	for i, m := range ms {
		if seen[m.Kind+"/"+m.Name] {
			t.Errorf("%s is defined twice", m)
		}
		seen[m.Kind+"/"+m.Name] = true
		if m.Kind != "Namespace" && m.Namespace != namespace {
			t.Errorf("%s: namespace %q, want %q", m, m.Namespace, namespace)
		}
		for _, spec := range podSpecs(objs[i]) {
			for _, p := range checkPodSecurity(spec) {
				t.Errorf("%s: %s", m, p)
			}
			for _, c := range spec.Containers {
				if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
					t.Errorf("%s: image %s is not pinned to a version", m, c.Image)
				}
			}
		}
	}
	ns := objectsOf[*corev1.Namespace](objs)[0]
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace %s enforces pod security %q, want restricted", ns.Name, got)
	}
}

// TestDevStackMatchesDevValues checks that the dev-only manifests of k8s/
// provide what charts/qinqing/ci/dev-values.yaml (the values of
// `skaffold dev`) expects: the Secrets with their keys, the database and
// S3 endpoints as Services, and the bucket.
func TestDevStackMatchesDevValues(t *testing.T) {
	t.Parallel()
	_, ms := readK8s(t)
	objs, errs := decodeAll(ms)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	secrets := map[string]*corev1.Secret{}
	for _, s := range objectsOf[*corev1.Secret](objs) {
		secrets[s.Name] = s
	}
	services := map[string]*corev1.Service{}
	for _, s := range objectsOf[*corev1.Service](objs) {
		services[s.Name] = s
	}
	hasKey := func(secret, key string) {
		t.Helper()
		s, ok := secrets[secret]
		if !ok {
			t.Errorf("dev-values.yaml uses Secret %s, which k8s/ does not define", secret)
			return
		}
		if _, ok := s.StringData[key]; !ok {
			t.Errorf("Secret %s has no key %s", secret, key)
		}
	}
	// serviceURL checks that a URL points at a Service port of k8s/.
	serviceURL := func(what, raw string) {
		t.Helper()
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("%s %q: %v", what, raw, err)
			return
		}
		name, rest, _ := strings.Cut(u.Hostname(), ".")
		if rest != namespace+".svc.cluster.local" {
			t.Errorf("%s %s is not a Service of namespace %s", what, raw, namespace)
		}
		svc, ok := services[name]
		if !ok {
			t.Errorf("%s %s: k8s/ has no Service %s", what, raw, name)
			return
		}
		port, _ := strconv.Atoi(u.Port())
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return int(p.Port) == port }) {
			t.Errorf("%s %s: Service %s has no port %d", what, raw, name, port)
		}
	}

	v := readValues(t, chartDir+"/ci/dev-values.yaml")
	get := func(path ...string) string {
		var cur any = v
		for _, p := range path {
			m, _ := cur.(map[string]any)
			cur = m[p]
		}
		s, _ := cur.(string)
		return s
	}
	defaults := readValues(t, chartDir+"/values.yaml")
	orDefault := func(path ...string) string {
		if s := get(path...); s != "" {
			return s
		}
		var cur any = defaults
		for _, p := range path {
			m, _ := cur.(map[string]any)
			cur = m[p]
		}
		s, _ := cur.(string)
		return s
	}

	dbSecret := orDefault("database", "existingSecret")
	hasKey(dbSecret, orDefault("database", "urlKey"))
	if s := secrets[dbSecret]; s != nil {
		serviceURL("database URL", s.StringData[orDefault("database", "urlKey")])
	}
	hasKey(orDefault("s3", "existingSecret"), orDefault("s3", "accessKeyIdKey"))
	hasKey(orDefault("s3", "existingSecret"), orDefault("s3", "secretAccessKeyKey"))
	serviceURL("s3.endpoint", get("s3", "endpoint"))
	hasKey(get("deadLetter", "adminToken", "existingSecret"), orDefault("deadLetter", "adminToken", "key"))

	bucket := orDefault("s3", "bucket")
	created := false
	for _, j := range objectsOf[*batchv1.Job](objs) {
		for _, c := range j.Spec.Template.Spec.Containers {
			if slices.Contains(c.Command, "mb") && slices.Contains(c.Command, "dev/"+bucket) {
				created = true
			}
		}
	}
	if !created {
		t.Errorf("no Job of k8s/ creates the bucket %s", bucket)
	}
}

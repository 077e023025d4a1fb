package deploy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/strvals"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/qinqing/qinqing/shared/contract"
)

// Skaffold and ko cannot run here (no registry, no cluster), so their
// configuration is checked by parsing: strictly, into the subset of their
// schemas this project uses, so a misspelled field fails.

// skaffoldSchema is the schema version of skaffold.yaml: the newest one
// documented on skaffold.dev, which newer Skaffold releases still read.
const skaffoldSchema = "skaffold/v4beta13"

type skaffoldConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Requires []struct {
		Configs        []string `json:"configs"`
		ActiveProfiles []struct {
			Name        string   `json:"name"`
			ActivatedBy []string `json:"activatedBy"`
		} `json:"activeProfiles"`
	} `json:"requires"`
	skaffoldPipeline
	Profiles []struct {
		Name       string `json:"name"`
		Activation []struct {
			Command string `json:"command"`
		} `json:"activation"`
		Patches []struct {
			Op    string `json:"op"`
			Path  string `json:"path"`
			Value any    `json:"value"`
		} `json:"patches"`
		skaffoldPipeline
	} `json:"profiles"`
}

type skaffoldPipeline struct {
	Build *struct {
		TagPolicy map[string]any `json:"tagPolicy"`
		Artifacts []struct {
			Image string `json:"image"`
			Ko    *struct {
				Main         string   `json:"main"`
				FromImage    string   `json:"fromImage"`
				Env          []string `json:"env"`
				Flags        []string `json:"flags"`
				Ldflags      []string `json:"ldflags"`
				Dependencies struct {
					Paths []string `json:"paths"`
				} `json:"dependencies"`
			} `json:"ko"`
		} `json:"artifacts"`
	} `json:"build"`
	Manifests *struct {
		RawYaml []string `json:"rawYaml"`
	} `json:"manifests"`
	Deploy *struct {
		Kubectl *struct{} `json:"kubectl"`
		Helm    *struct {
			Releases []struct {
				Name              string            `json:"name"`
				ChartPath         string            `json:"chartPath"`
				Namespace         string            `json:"namespace"`
				ValuesFiles       []string          `json:"valuesFiles"`
				SetValueTemplates map[string]string `json:"setValueTemplates"`
			} `json:"releases"`
		} `json:"helm"`
	} `json:"deploy"`
}

type koConfig struct {
	DefaultBaseImage string   `json:"defaultBaseImage"`
	DefaultPlatforms []string `json:"defaultPlatforms"`
	Builds           []struct {
		ID      string   `json:"id"`
		Dir     string   `json:"dir"`
		Main    string   `json:"main"`
		Env     []string `json:"env"`
		Flags   []string `json:"flags"`
		Ldflags []string `json:"ldflags"`
	} `json:"builds"`
}

// mainPackages returns the Go main packages deployed: every function of
// contract.Catalog and cmd/migrate, as ./relative paths.
func mainPackages() []string {
	var out []string
	for _, s := range contract.Catalog {
		out = append(out, "./functions/"+s.Function)
	}
	return append(out, "./cmd/migrate")
}

func readSkaffold(t *testing.T) []skaffoldConfig {
	t.Helper()
	data, err := os.ReadFile(repoRoot + "/skaffold.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []skaffoldConfig
	for i, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var c skaffoldConfig
		if err := strictYAML([]byte(doc), &c); err != nil {
			t.Fatalf("skaffold.yaml document %d: %v", i, err)
		}
		out = append(out, c)
	}
	return out
}

func readKo(t *testing.T) koConfig {
	t.Helper()
	data, err := os.ReadFile(repoRoot + "/.ko.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c koConfig
	if err := strictYAML(data, &c); err != nil {
		t.Fatalf(".ko.yaml: %v", err)
	}
	return c
}

// sanitize is how Skaffold turns an artifact name into the suffix of its
// template variables.
func sanitize(image string) string {
	return strings.NewReplacer(".", "_", "-", "_", "/", "_").Replace(image)
}

// TestKoConfig checks .ko.yaml: a small static non-root base and one build
// per deployed main package.
func TestKoConfig(t *testing.T) {
	t.Parallel()
	c := readKo(t)
	if !strings.HasPrefix(c.DefaultBaseImage, "cgr.dev/chainguard/static") &&
		!(strings.HasPrefix(c.DefaultBaseImage, "gcr.io/distroless/static") && strings.Contains(c.DefaultBaseImage, "nonroot")) {
		t.Errorf("defaultBaseImage %s is not a small static non-root image", c.DefaultBaseImage)
	}
	if len(c.DefaultPlatforms) == 0 {
		t.Error("no defaultPlatforms")
	}
	var mains []string
	for _, b := range c.Builds {
		mains = append(mains, b.Main)
		if !slices.Contains(b.Env, "CGO_ENABLED=0") {
			t.Errorf("build %s: not CGO_ENABLED=0 (the base image has no libc)", b.ID)
		}
	}
	slices.Sort(mains)
	want := mainPackages()
	slices.Sort(want)
	if !slices.Equal(mains, want) {
		t.Errorf(".ko.yaml builds %v, want %v", mains, want)
	}
}

// TestSkaffoldConfig checks skaffold.yaml: a ko artifact per deployed main
// package built like .ko.yaml says, the chart deployed with every image set
// through setValueTemplates, and a dev profile that applies k8s/ first.
func TestSkaffoldConfig(t *testing.T) {
	t.Parallel()
	cfgs := readSkaffold(t)
	ko := readKo(t)
	if len(cfgs) != 2 {
		t.Fatalf("%d configs in skaffold.yaml, want 2 (qinqing-cluster, qinqing)", len(cfgs))
	}
	for _, c := range cfgs {
		if c.APIVersion != skaffoldSchema || c.Kind != "Config" {
			t.Errorf("config %s: %s %s, want %s Config", c.Metadata.Name, c.APIVersion, c.Kind, skaffoldSchema)
		}
	}
	cluster, app := cfgs[0], cfgs[1]

	// qinqing-cluster: the namespace always; every k8s/ file with profile dev.
	k8sFiles, _ := readK8s(t)
	if cluster.Metadata.Name != "qinqing-cluster" || cluster.Deploy == nil || cluster.Deploy.Kubectl == nil || cluster.Manifests == nil {
		t.Fatalf("first config %q does not deploy k8s/ with kubectl", cluster.Metadata.Name)
	}
	if !slices.Equal(cluster.Manifests.RawYaml, []string{"k8s/100-namespace.yaml"}) {
		t.Errorf("qinqing-cluster applies %v, want only the namespace outside profile dev", cluster.Manifests.RawYaml)
	}
	devApplied := map[string]bool{}
	for _, p := range cluster.Profiles {
		if p.Name != "dev" || p.Manifests == nil {
			continue
		}
		for _, glob := range p.Manifests.RawYaml {
			matches, err := filepath.Glob(filepath.Join(repoRoot, glob))
			if err != nil || len(matches) == 0 {
				t.Errorf("profile dev: %s matches no file", glob)
			}
			for _, m := range matches {
				devApplied[filepath.Base(m)] = true
			}
		}
	}
	for _, f := range k8sFiles {
		if !devApplied[f] {
			t.Errorf("profile dev of qinqing-cluster does not apply k8s/%s", f)
		}
	}

	// qinqing: requires qinqing-cluster (deployed first), dev → dev.
	if app.Metadata.Name != "qinqing" || len(app.Requires) != 1 || !slices.Equal(app.Requires[0].Configs, []string{"qinqing-cluster"}) {
		t.Fatalf("second config %q must require qinqing-cluster", app.Metadata.Name)
	}
	if ap := app.Requires[0].ActiveProfiles; len(ap) != 1 || ap[0].Name != "dev" || !slices.Equal(ap[0].ActivatedBy, []string{"dev"}) {
		t.Errorf("qinqing does not activate profile dev of qinqing-cluster with its own: %+v", ap)
	}

	// Artifacts: one ko build per main package, as .ko.yaml builds it.
	if app.Build == nil {
		t.Fatal("qinqing builds nothing")
	}
	artifactOf := map[string]string{} // main package → artifact image
	for _, a := range app.Build.Artifacts {
		if a.Ko == nil {
			t.Errorf("artifact %s is not built with ko", a.Image)
			continue
		}
		artifactOf[a.Ko.Main] = a.Image
		if a.Ko.FromImage != ko.DefaultBaseImage {
			t.Errorf("artifact %s: fromImage %s, .ko.yaml says %s", a.Image, a.Ko.FromImage, ko.DefaultBaseImage)
		}
		for _, b := range ko.Builds {
			if b.Main == a.Ko.Main && (!slices.Equal(b.Env, a.Ko.Env) || !slices.Equal(b.Flags, a.Ko.Flags) || !slices.Equal(b.Ldflags, a.Ko.Ldflags)) {
				t.Errorf("artifact %s is built with other env/flags/ldflags than .ko.yaml build %s", a.Image, b.ID)
			}
		}
	}
	for _, main := range mainPackages() {
		if artifactOf[main] == "" {
			t.Errorf("no artifact builds %s", main)
		}
	}

	// The chart, with every image from its artifact.
	if app.Deploy == nil || app.Deploy.Helm == nil || len(app.Deploy.Helm.Releases) != 1 {
		t.Fatal("qinqing does not deploy one Helm release")
	}
	rel := app.Deploy.Helm.Releases[0]
	if filepath.Join(repoRoot, rel.ChartPath) != filepath.Clean(chartDir) || rel.Namespace != namespace {
		t.Errorf("release %s: chart %s in %s, want charts/qinqing in %s", rel.Name, rel.ChartPath, rel.Namespace, namespace)
	}
	wantTemplates := map[string]string{
		"migrations.image.repository": fmt.Sprintf("{{.IMAGE_FULLY_QUALIFIED_%s}}", sanitize(artifactOf["./cmd/migrate"])),
	}
	for _, s := range contract.Catalog {
		key := fmt.Sprintf("functions.%s.image.repository", s.Function)
		wantTemplates[key] = fmt.Sprintf("{{.IMAGE_FULLY_QUALIFIED_%s}}", sanitize(artifactOf["./functions/"+s.Function]))
	}
	for key, want := range wantTemplates {
		if got := rel.SetValueTemplates[key]; got != want {
			t.Errorf("setValueTemplates %s = %q, want %q", key, got, want)
		}
	}
	for key := range rel.SetValueTemplates {
		if _, ok := wantTemplates[key]; !ok {
			t.Errorf("setValueTemplates %s: unexpected", key)
		}
	}

	// Profile dev: the dev values, auto-activated by `skaffold dev`.
	var devValues []string
	for _, p := range app.Profiles {
		if p.Name != "dev" {
			continue
		}
		if !slices.ContainsFunc(p.Activation, func(a struct {
			Command string `json:"command"`
		}) bool {
			return a.Command == "dev"
		}) {
			t.Error("profile dev of qinqing is not activated by `skaffold dev`")
		}
		for _, patch := range p.Patches {
			if patch.Path == "/deploy/helm/releases/0/valuesFiles" {
				for _, v := range patch.Value.([]any) {
					devValues = append(devValues, v.(string))
				}
			}
		}
	}
	if len(devValues) == 0 {
		t.Fatal("profile dev of qinqing sets no values file")
	}

	// Install as skaffold dev would: dev values, then each setValueTemplate
	// executed and passed as --set.
	values := map[string]any{}
	for _, f := range devValues {
		if _, err := os.Stat(filepath.Join(repoRoot, f)); err != nil {
			t.Fatalf("profile dev: %v", err)
		}
		v, err := chartutil.ReadValuesFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		values = chartutil.CoalesceTables(v.AsMap(), values)
	}
	built := map[string]string{} // IMAGE_FULLY_QUALIFIED_<artifact> → reference
	for _, a := range app.Build.Artifacts {
		sum := sha256.Sum256([]byte(a.Image))
		built["IMAGE_FULLY_QUALIFIED_"+sanitize(a.Image)] = fmt.Sprintf("localhost:5001/%s:dev@sha256:%x", a.Image, sum)
	}
	for _, key := range sortedKeys(rel.SetValueTemplates) {
		tmpl, err := template.New(key).Option("missingkey=error").Parse(rel.SetValueTemplates[key])
		if err != nil {
			t.Fatalf("setValueTemplates %s: %v", key, err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, built); err != nil {
			t.Fatalf("setValueTemplates %s: %v", key, err)
		}
		if err := strvals.ParseInto(key+"="+b.String(), values); err != nil {
			t.Fatalf("--set %s=%s: %v", key, b.String(), err)
		}
	}
	r := mustRender(t, loadChart(t), values)
	objs, errs := decodeAll(r.Objects)
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		return
	}
	for _, p := range checkInvariants(r.Objects, objs, contract.Catalog, expectations{Timezone: "Asia/Shanghai"}) {
		t.Error(p)
	}
	for _, s := range objectsOf[*servingv1.Service](objs) {
		fn := s.Labels["app.kubernetes.io/component"]
		want := built["IMAGE_FULLY_QUALIFIED_"+sanitize(artifactOf["./functions/"+fn])]
		if got := s.Spec.Template.Spec.Containers[0].Image; got != want {
			t.Errorf("%s runs %s, want the image skaffold built: %s", fn, got, want)
		}
	}
	if strings.Contains(string(findDoc(t, r, "Job").YAML), "ko://") {
		t.Error("the migration Job still has a ko:// image under skaffold")
	}
}

// TestMainPackagesExist checks that every image the chart deploys has its
// Go main package in the repository.
func TestMainPackagesExist(t *testing.T) {
	t.Parallel()
	for _, main := range mainPackages() {
		files, _ := filepath.Glob(filepath.Join(repoRoot, main, "*.go"))
		found := false
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			pf, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly)
			if err == nil && pf.Name.Name == "main" {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no main package, but the chart deploys %s%s", main, koPrefix, strings.TrimPrefix(main, "./"))
		}
	}
}

// TestBinariesStaySmall checks that no deployed binary links the heavy
// validation graph: only this test package may import Knative's API
// packages and Helm.
func TestBinariesStaySmall(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, mainPackages()...)
	cmd := exec.Command(goTool, args...)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, heavy := range []string{"knative.dev/serving/", "knative.dev/eventing/", "helm.sh/"} {
			if strings.HasPrefix(pkg, heavy) {
				t.Errorf("a deployed binary links %s", pkg)
			}
		}
	}
}

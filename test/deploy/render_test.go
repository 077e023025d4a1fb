// Package deploy checks the deployment files offline with the code a
// cluster would run: Helm renders and lints the chart, Knative's own Go
// types decode, default and validate every Knative object, and the
// invariants no schema catches are checked against contract.Catalog.
//
// It is a test-only package so that knative.dev/serving,
// knative.dev/eventing and helm.sh never link into a function binary.
package deploy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/yaml"
)

const (
	repoRoot    = "../.."
	chartDir    = repoRoot + "/charts/qinqing"
	k8sDir      = repoRoot + "/k8s"
	releaseName = "qinqing"
	namespace   = "qinqing"
	// koPrefix is how the chart refers to an image that ko builds from a Go
	// main package of this module.
	koPrefix = "ko://github.com/qinqing/qinqing/"
)

// manifest is one YAML document of a rendered chart or of k8s/.
type manifest struct {
	Source     string // template or file it came from, with the document index
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	Labels     map[string]string
	Hooks      []string // helm.sh/hook annotation, split
	YAML       []byte
}

func (m manifest) String() string {
	return fmt.Sprintf("%s %s/%s (%s)", m.APIVersion, m.Kind, m.Name, m.Source)
}

// header is the part of every object the tests need to sort documents.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// splitManifests splits a multi-document YAML file and reads each
// document's header; empty documents are dropped.
func splitManifests(source string, data []byte) ([]manifest, error) {
	var out []manifest
	for i, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var h header
		if err := yaml.Unmarshal([]byte(doc), &h); err != nil {
			return nil, fmt.Errorf("%s document %d: %w", source, i, err)
		}
		if h.APIVersion == "" || h.Kind == "" {
			return nil, fmt.Errorf("%s document %d: no apiVersion or kind", source, i)
		}
		m := manifest{
			Source:     fmt.Sprintf("%s#%d", source, i),
			APIVersion: h.APIVersion,
			Kind:       h.Kind,
			Name:       h.Metadata.Name,
			Namespace:  h.Metadata.Namespace,
			Labels:     h.Metadata.Labels,
			YAML:       []byte(doc),
		}
		if hooks := h.Metadata.Annotations["helm.sh/hook"]; hooks != "" {
			m.Hooks = strings.Split(hooks, ",")
		}
		out = append(out, m)
	}
	return out, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// rendered is a rendered chart: its objects and its NOTES.txt.
type rendered struct {
	Objects []manifest
	Notes   string
}

// find returns the rendered objects of one kind.
func (r rendered) find(kind string) []manifest {
	var out []manifest
	for _, m := range r.Objects {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// readValues reads a values file of the chart's ci/ scenarios.
func readValues(t testing.TB, path string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return v.AsMap()
}

// parseValues parses inline values of a test case.
func parseValues(t testing.TB, s string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValues([]byte(s))
	if err != nil {
		t.Fatalf("parse values: %v\n%s", err, s)
	}
	return v.AsMap()
}

// render renders the chart the way `helm install` does (values coalesced
// with values.yaml and checked against values.schema.json), but with
// missing keys as errors.
func render(c *chart.Chart, values map[string]any) (rendered, error) {
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValues(c, values, opts, chartutil.DefaultCapabilities.Copy())
	if err != nil {
		return rendered{}, err
	}
	files, err := engine.Engine{Strict: true}.Render(c, vals)
	if err != nil {
		return rendered{}, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var out rendered
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			out.Notes = files[name]
			continue
		}
		ms, err := splitManifests(name, []byte(files[name]))
		if err != nil {
			return rendered{}, err
		}
		out.Objects = append(out.Objects, ms...)
	}
	return out, nil
}

func mustRender(t testing.TB, c *chart.Chart, values map[string]any) rendered {
	t.Helper()
	r, err := render(c, values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// scenario is one set of values the chart must install with.
type scenario struct {
	Name   string
	Values map[string]any
}

// koValues are the default values as `helm template --set image.ko=true |
// ko resolve -f -` renders them: without image.ko (or a registry) the chart
// refuses to render.
func koValues() map[string]any {
	return map[string]any{"image": map[string]any{"ko": true}}
}

// withKo lays values over koValues, so a test case states only what it
// changes.
func withKo(values map[string]any) map[string]any {
	if values == nil {
		values = map[string]any{}
	}
	return chartutil.CoalesceTables(values, koValues())
}

// scenarios returns the default values and every ci/*-values.yaml file,
// each with image.ko as ko resolve renders them.
func scenarios(t testing.TB) []scenario {
	t.Helper()
	out := []scenario{{Name: "default+image.ko", Values: koValues()}}
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no %s/ci/*-values.yaml scenarios", chartDir)
	}
	for _, f := range files {
		// Skaffold sets every image of ci/dev-values.yaml; ko resolve the
		// others'. A file's own image values win.
		out = append(out, scenario{Name: "ci/" + filepath.Base(f), Values: withKo(readValues(t, f))})
	}
	return out
}

var koRef = regexp.MustCompile(`ko://([A-Za-z0-9._/-]+)`)

// resolveKo replaces ko:// references by image digests the way `ko resolve`
// does before anything reaches a cluster (Knative's webhook rejects a ko://
// reference as an image name).
func resolveKo(doc []byte) []byte {
	return koRef.ReplaceAllFunc(doc, func(ref []byte) []byte {
		path := string(koRef.FindSubmatch(ref)[1])
		sum := sha256.Sum256([]byte(path))
		return fmt.Appendf(nil, "ko.local/%s@sha256:%x", filepath.Base(path), sum)
	})
}

// readK8s reads every manifest file of k8s/ in install order.
func readK8s(t testing.TB) (files []string, objects []manifest) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := splitManifests("k8s/"+filepath.Base(p), data)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Base(p))
		objects = append(objects, ms...)
	}
	return files, objects
}

// strictYAML decodes a YAML document into a Go type, rejecting unknown
// (misspelled) fields.
func strictYAML(doc []byte, into any) error {
	return yaml.UnmarshalStrict(bytes.TrimSpace(doc), into)
}

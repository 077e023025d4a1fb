package runtime_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// functionDeps returns, for each function (by name), the packages the
// linker is given for its main package.
func functionDeps(t *testing.T) map[string][]string {
	t.Helper()
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	dir := strings.TrimSpace(string(root))
	mains, err := exec.Command("go", "list", "-C", dir, "-f", `{{if eq .Name "main"}}{{.ImportPath}}{{end}}`, "./functions/...").Output()
	if err != nil {
		t.Fatalf("go list ./functions/...: %v", err)
	}
	fns := strings.Fields(string(mains))
	if len(fns) < 8 {
		t.Fatalf("found %d function main packages, want at least 8: %v", len(fns), fns)
	}
	deps := map[string][]string{}
	for _, fn := range fns {
		out, err := exec.Command("go", "list", "-C", dir, "-deps", "-f", "{{.ImportPath}}", fn).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", fn, err)
		}
		deps[fn[strings.LastIndex(fn, "/")+1:]] = strings.Fields(string(out))
	}
	return deps
}

// No function binary links a Kubernetes or Knative package, gRPC, the
// protobuf runtime, html/template, goose or the SDK's STS client: they
// cost start-up time and memory in every pod (logging and signals come
// from this package instead, the OTLP messages from shared/telemetry's
// own encoder, S3 spans from shared/docs, HTML from shared/htmltext:
// docs/runtime.md, "Documents without templates"; functions never
// migrate, so goose, with its templates parsed at init, lives in
// shared/postgres/migrate; the web identity's one STS call is
// shared/docs's own, webIdentity).
func TestFunctionsLinkNoKubernetes(t *testing.T) {
	t.Parallel()
	for fn, deps := range functionDeps(t) {
		var bad []string
		for _, p := range deps {
			if strings.HasPrefix(p, "k8s.io/") || strings.HasPrefix(p, "knative.dev/") ||
				strings.HasPrefix(p, "google.golang.org/grpc") || strings.HasPrefix(p, "google.golang.org/protobuf") ||
				strings.HasPrefix(p, "go.opentelemetry.io/contrib/instrumentation/github.com/aws/") || p == "html/template" ||
				strings.HasPrefix(p, "github.com/pressly/goose") || strings.HasPrefix(p, "github.com/aws/aws-sdk-go-v2/service/sts") {
				bad = append(bad, p)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s links %d Kubernetes, Knative, gRPC, protobuf, html/template, goose or STS packages: %s", fn, len(bad), strings.Join(bad, " "))
		}
	}
}

// documentFunctions are the functions that store documents in S3 (the
// chart's qinqing.needs documents).
var documentFunctions = []string{"forum-signup", "deadline-check", "recycling-trade", "award-ceremony"}

// The functions without documents link no AWS SDK package: the S3 client
// and its credential chain cost every pod start-up time and memory (the
// event contracts once pulled it in through a wire type).
func TestOnlyDocumentFunctionsLinkTheS3Client(t *testing.T) {
	t.Parallel()
	for fn, deps := range functionDeps(t) {
		aws := 0
		for _, p := range deps {
			if strings.HasPrefix(p, "github.com/aws/") {
				aws++
			}
		}
		needs := slices.Contains(documentFunctions, fn)
		if needs && aws == 0 {
			t.Errorf("%s stores documents but links no AWS package: is the list stale?", fn)
		}
		if !needs && aws > 0 {
			t.Errorf("%s stores no documents yet links %d AWS SDK packages", fn, aws)
		}
	}
}

// configFunctions are the functions that read a JSON or YAML file
// (shared/configfile): the routing table, the portals, the policies.
var configFunctions = []string{"appeal-router", "open311", "subsidy-disbursal", "webhook-egress", "webhook-ingress"}

// Only they link the YAML parser (its initialisation and size cost every
// pod start-up time): the event contracts name appeal's types, and the
// routing file's reader lives apart from them (shared/appeal/rulesfile).
func TestOnlyConfigFunctionsLinkYAML(t *testing.T) {
	t.Parallel()
	for fn, deps := range functionDeps(t) {
		yaml := slices.ContainsFunc(deps, func(p string) bool {
			return strings.HasPrefix(p, "go.yaml.in/") || strings.HasPrefix(p, "gopkg.in/yaml") || p == "sigs.k8s.io/yaml"
		})
		if want := slices.Contains(configFunctions, fn); yaml != want {
			t.Errorf("%s links a YAML parser: %v, want %v", fn, yaml, want)
		}
	}
}

// Every function with a database begins its connection while it
// initialises (shared/postgres/early, imported by its main.go; the one
// without, webhook-ingress, has none to begin).
func TestFunctionsWithADatabaseBeginItEarly(t *testing.T) {
	t.Parallel()
	for fn, deps := range functionDeps(t) {
		early := slices.Contains(deps, "github.com/qinqing/qinqing/shared/postgres/early")
		if want := fn != "webhook-ingress"; early != want {
			t.Errorf("%s links shared/postgres/early: %v, want %v", fn, early, want)
		}
	}
}

package deploy

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// The environment a function reads is declared with envconfig tags; the
// AWS SDK reads its credential variables itself.
var (
	envconfigTag = regexp.MustCompile(`envconfig:"([A-Z0-9_]+)"`)
	sdkEnv       = map[string]bool{"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true,
		// Read by the OpenTelemetry SDK (shared/telemetry, contract section 11).
		"OTEL_EXPORTER_OTLP_ENDPOINT": true, "OTEL_EXPORTER_OTLP_PROTOCOL": true, "OTEL_SERVICE_NAME": true,
		"OTEL_RESOURCE_ATTRIBUTES": true, "OTEL_TRACES_SAMPLER": true, "OTEL_TRACES_SAMPLER_ARG": true,
		"OTEL_METRIC_EXPORT_INTERVAL": true}
)

// codeEnv returns every variable named by an envconfig tag under
// functions/ and shared/.
func codeEnv(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range []string{"functions", "shared"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range envconfigTag.FindAllSubmatch(src, -1) {
				names[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !names["DATABASE_URL"] || !names["S3_BUCKET"] {
		t.Fatalf("envconfig tags not found in the code: %v", sortedKeys(names))
	}
	return names
}

// extraEnvNames returns the variables a scenario adds with extraEnv for
// one function: they are the operator's business, not the chart's.
func extraEnvNames(values map[string]any, fn string) map[string]bool {
	out := map[string]bool{}
	add := func(m any) {
		mm, _ := m.(map[string]any)
		list, _ := mm["extraEnv"].([]any)
		for _, e := range list {
			if em, ok := e.(map[string]any); ok {
				if n, ok := em["name"].(string); ok {
					out[n] = true
				}
			}
		}
	}
	add(values["functionDefaults"])
	if fns, ok := values["functions"].(map[string]any); ok {
		add(fns[fn])
	}
	return out
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// functionBinaries builds every function once (go build of ./functions/...
// into one directory) and returns the directory.
func functionBinaries(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "qinqing-deploy-bin-"); buildErr != nil {
			return
		}
		cmd := exec.Command(goTool, "build", "-o", binDir+string(os.PathSeparator), "./functions/...")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./functions/...: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// TestMain removes the function binaries after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startFunction runs a function binary with env and waits for GET /healthz.
// It returns an error with what the process printed when it exits first
// (a configuration it refuses) or does not answer in time.
func startFunction(t *testing.T, bin string, env []string) error {
	t.Helper()
	port := freePort(t)
	var out bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), fmt.Sprintf("PORT=%d", port)}, env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("exited (%v): %s", err, strings.TrimSpace(out.String()))
		default:
		}
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no GET /healthz 200 within 15s: %v: %s", err, strings.TrimSpace(out.String()))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// serviceEnv turns a rendered function Service into the environment and
// files the function would get in the cluster: literal values as they are,
// Secret references resolved against the Secrets the chart renders (a
// stand-in value for Secrets that exist beforehand; a parseable unreachable
// URL for DATABASE_URL and DATABASE_LISTEN_URL), and every ConfigMap or Secret volume the chart
// renders written under root. ok is false when a *_FILE variable points into
// a Secret the chart does not render (webhookIngress.existingSecret).
func serviceEnv(s *servingv1.Service, objs []any, root string) (env []string, ok bool, err error) {
	spec := s.Spec.Template.Spec.PodSpec
	c := spec.Containers[0]
	secretData := map[string]map[string][]byte{}
	for _, sec := range objectsOf[*corev1.Secret](objs) {
		secretData[sec.Name] = sec.Data
	}
	cmData := map[string]map[string]string{}
	for _, cm := range objectsOf[*corev1.ConfigMap](objs) {
		cmData[cm.Name] = cm.Data
	}
	// Files of the volumes the chart renders.
	mounted := map[string]bool{} // mount paths with rendered content
	for _, vm := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != vm.Name {
				continue
			}
			files := map[string][]byte{}
			switch {
			case v.ConfigMap != nil && cmData[v.ConfigMap.Name] != nil:
				for _, it := range v.ConfigMap.Items {
					files[it.Path] = []byte(cmData[v.ConfigMap.Name][it.Key])
				}
			case v.Secret != nil && secretData[v.Secret.SecretName] != nil:
				for _, it := range v.Secret.Items {
					files[it.Path] = secretData[v.Secret.SecretName][it.Key]
				}
			default:
				continue
			}
			mounted[vm.MountPath] = true
			for p, data := range files {
				dst := filepath.Join(root, vm.MountPath, p)
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return nil, false, err
				}
				if err := os.WriteFile(dst, data, 0o600); err != nil {
					return nil, false, err
				}
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.Name == "K_SINK":
			continue // no broker here; the relay would only log
		case e.Name == "DATABASE_URL" || e.Name == "DATABASE_LISTEN_URL":
			env = append(env, e.Name+"=postgres://qinqing:x@127.0.0.1:1/qinqing?connect_timeout=1")
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v := "stand-in-for-" + ref.Name + "-" + ref.Key
			if d, found := secretData[ref.Name]; found {
				v = string(d[ref.Key])
			}
			env = append(env, e.Name+"="+v)
		case e.ValueFrom != nil:
			return nil, false, fmt.Errorf("%s: valueFrom other than a Secret key", e.Name)
		case strings.HasSuffix(e.Name, "_FILE"):
			if !mounted[path.Dir(e.Value)] {
				return nil, false, nil
			}
			env = append(env, e.Name+"="+filepath.Join(root, e.Value))
		default:
			env = append(env, e.Name+"="+e.Value)
		}
	}
	return env, true, nil
}

// TestFunctionsStartWithRenderedConfig runs every function binary with the
// environment and the configuration files (ROUTING_RULES_FILE,
// POLICIES_FILE, PORTALS_FILE) the chart renders for it, in every scenario:
// each must pass its own configuration checks and answer GET /healthz. So
// the chart's files have the shapes the functions parse, every variable a
// function requires is set (S3_BUCKET for the document functions), and
// every value parses. Every variable the chart sets must also be one the
// code reads (an envconfig tag) or the AWS SDK's credentials: a misspelt
// optional variable would otherwise be ignored silently.
func TestFunctionsStartWithRenderedConfig(t *testing.T) {
	t.Parallel()
	known := codeEnv(t)
	bins := functionBinaries(t)
	c := loadChart(t)
	for _, sc := range scenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			r := mustRender(t, c, sc.Values)
			objs, errs := decodeAll(r.Objects)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			for _, s := range objectsOf[*servingv1.Service](objs) {
				fn := s.Labels["app.kubernetes.io/component"]
				extra := extraEnvNames(sc.Values, fn)
				for _, e := range s.Spec.Template.Spec.Containers[0].Env {
					if !known[e.Name] && !sdkEnv[e.Name] && !extra[e.Name] {
						t.Errorf("%s: the chart sets %s, which is no envconfig tag under functions/ or shared/", fn, e.Name)
					}
				}
				env, ok, err := serviceEnv(s, objs, t.TempDir())
				if err != nil {
					t.Fatalf("%s: %v", fn, err)
				}
				if !ok {
					t.Logf("%s: a configuration file comes from an existing Secret; not started", fn)
					continue
				}
				if err := startFunction(t, filepath.Join(bins, fn), env); err != nil {
					t.Errorf("%s does not start with the chart's configuration %v: %v", fn, env, err)
				}
			}
		})
	}
}

// TestStartupCheckFails shows that the check above can fail: a routing
// rules file in another shape than appeal-router parses stops it.
func TestStartupCheckFails(t *testing.T) {
	t.Parallel()
	bins := functionBinaries(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "routing-rules.json")
	// The rules one level too deep, as a values file might nest them.
	if err := os.WriteFile(file, []byte(`{"routingRules": {"defaultDepartment": "yingshang-office", "rules": []}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := startFunction(t, filepath.Join(bins, "appeal-router"), []string{
		"DATABASE_URL=postgres://qinqing:x@127.0.0.1:1/qinqing", "ROUTING_RULES_FILE=" + file})
	if err == nil || !strings.Contains(err.Error(), "ROUTING_RULES_FILE") {
		t.Fatalf("appeal-router started with a misshapen ROUTING_RULES_FILE: %v", err)
	}
}

// TestMigrationJobEnvIsRead runs cmd/migrate with the environment the
// chart's migration Job gives it, in every scenario and with a migrations
// URL and login roles of its own: every variable is one cmd/migrate or
// shared/ reads, and cmd/migrate gets past its flags and configuration (to
// a database it cannot reach) instead of refusing them.
func TestMigrationJobEnvIsRead(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	known := codeEnv(t)
	src, err := os.ReadFile(filepath.Join(repoRoot, "cmd", "migrate", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range envconfigTag.FindAllSubmatch(src, -1) {
		known[string(m[1])] = true
	}
	// -create-login-roles reads DATABASE_PASSWORD_<FUNCTION> with os.Getenv.
	roles, _ := os.ReadFile(filepath.Join(repoRoot, "shared", "postgres", "roles.go"))
	passwords := bytes.Contains(roles, []byte(`"DATABASE_PASSWORD_"`))
	bin := filepath.Join(t.TempDir(), "migrate")
	if out, err := exec.Command(goTool, "build", "-C", repoRoot, "-o", bin, "./cmd/migrate").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/migrate: %v\n%s", err, out)
	}
	c := loadChart(t)
	cases := scenarios(t)
	cases = append(cases,
		scenario{Name: "migrations.urlKey", Values: withKo(parseValues(t, "migrations: {urlKey: owner-url}"))},
		scenario{Name: "migrations.loginRoles", Values: withKo(parseValues(t, "migrations: {loginRoles: {existingSecret: pw}}"))})
	for _, sc := range cases {
		t.Run(sc.Name, func(t *testing.T) {
			r := mustRender(t, c, sc.Values)
			objs, errs := decodeAll(r.Objects)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			for _, j := range objectsOf[*batchv1.Job](objs) {
				var env []string
				for _, e := range j.Spec.Template.Spec.Containers[0].Env {
					if !known[e.Name] && !(passwords && strings.HasPrefix(e.Name, "DATABASE_PASSWORD_")) {
						t.Errorf("the migration Job sets %s, which is no envconfig tag of cmd/migrate or shared/", e.Name)
					}
					v := e.Value
					if e.ValueFrom != nil {
						v = "postgres://qinqing:x@127.0.0.1:1/qinqing?connect_timeout=1"
					}
					env = append(env, e.Name+"="+v)
				}
				cmd := exec.Command(bin, j.Spec.Template.Spec.Containers[0].Args...)
				cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
				out, err := cmd.CombinedOutput()
				if err == nil {
					t.Fatalf("cmd/migrate succeeded against an unreachable database: %s", out)
				}
				if bytes.Contains(out, []byte("required key")) || bytes.Contains(out, []byte("envconfig")) || bytes.Contains(out, []byte("flag provided but not defined")) {
					t.Errorf("cmd/migrate refuses the Job's environment %v: %s", env, out)
				}
			}
		})
	}
}

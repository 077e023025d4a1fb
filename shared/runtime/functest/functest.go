// Package functest runs a built function binary the way Knative would —
// with the contract's environment, on its own port — and speaks
// CloudEvents to it over HTTP. Contract tests use it; a recording Sink
// stands in for the broker at K_SINK.
package functest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
)

// Build compiles the main package in dir (usually ".") into a temporary
// directory and returns the binary's path. Call it from TestMain.
func Build(dir string) (string, error) {
	out, err := os.MkdirTemp("", "qinqing-bin-")
	if err != nil {
		return "", err
	}
	abs, _ := filepath.Abs(dir)
	bin := filepath.Join(out, filepath.Base(abs))
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", dir, err)
	}
	return bin, nil
}

// Instance is a running function process.
type Instance struct {
	URL    string
	cmd    *exec.Cmd
	mu     sync.Mutex
	output bytes.Buffer
	done   chan struct{}
}

type lockedWriter struct{ i *Instance }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.i.mu.Lock()
	defer w.i.mu.Unlock()
	return w.i.output.Write(p)
}

// Output returns what the process has logged so far.
func (i *Instance) Output() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.output.String()
}

// FreePort returns a free TCP port on the loopback interface.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// AsOwner, given among Start's env, keeps the database URLs connecting as
// the owner role instead of the function's own role.
const AsOwner = "FUNCTEST_AS_OWNER=true"

// Start runs bin with env (plus PORT) and waits until GET /healthz is 200.
// The process is stopped with SIGTERM in t.Cleanup; its log is printed
// when the test fails.
//
// A DATABASE_URL (or DATABASE_LISTEN_URL) of the test cluster's owner is
// changed to connect as the function's own login role (pgtest.FunctionURL;
// the function is the binary's name), so every contract test runs with the
// grants of migration 0090 as production does. AsOwner keeps the owner.
func Start(t testing.TB, bin string, env ...string) *Instance {
	t.Helper()
	env = withFunctionRole(t, filepath.Base(bin), env)
	port := FreePort(t)
	i := &Instance{URL: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	i.cmd = exec.Command(bin)
	i.cmd.Env = append(os.Environ(), env...)
	i.cmd.Env = append(i.cmd.Env, fmt.Sprintf("PORT=%d", port), "RELAY_INTERVAL=200ms")
	i.cmd.Stdout = lockedWriter{i}
	i.cmd.Stderr = lockedWriter{i}
	if err := i.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = i.cmd.Wait(); close(i.done) }()
	t.Cleanup(func() {
		i.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), i.Output())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(i.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return i
			}
		}
		select {
		case <-i.done:
			t.Fatalf("%s exited before serving:\n%s", filepath.Base(bin), i.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become healthy:\n%s", filepath.Base(bin), i.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// withFunctionRole rewrites the owner's database URLs in env to the
// function's login role, unless env holds AsOwner.
func withFunctionRole(t testing.TB, function string, env []string) []string {
	t.Helper()
	out := make([]string, 0, len(env))
	for _, e := range env {
		if e == AsOwner {
			return slices.DeleteFunc(slices.Clone(env), func(e string) bool { return e == AsOwner })
		}
	}
	for _, e := range env {
		name, value, _ := strings.Cut(e, "=")
		if (name == "DATABASE_URL" || name == "DATABASE_LISTEN_URL") && value != "" && pgtest.IsOwnerURL(value) {
			if u, ok := pgtest.FunctionURL(t, value, function); ok {
				e = name + "=" + u
			}
		}
		out = append(out, e)
	}
	return out
}

// Stop sends SIGTERM, as Kubernetes does when it stops a pod, and waits
// for the process to exit (killing it after 15 seconds).
func (i *Instance) Stop() {
	select {
	case <-i.done:
		return
	default:
	}
	i.Terminate()
	select {
	case <-i.done:
	case <-time.After(15 * time.Second):
		_ = i.cmd.Process.Kill()
		<-i.done
	}
}

// Terminate sends SIGTERM and returns at once; Wait or Exited tell when the
// process has gone.
func (i *Instance) Terminate() { _ = i.cmd.Process.Signal(syscall.SIGTERM) }

// Wait waits up to timeout for the process to exit and returns its exit
// code (-1 when it was killed by a signal), or false when it is still
// running.
func (i *Instance) Wait(timeout time.Duration) (int, bool) {
	select {
	case <-i.done:
		return i.cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// Kill stops the process at once, as a crash would.
func (i *Instance) Kill() {
	_ = i.cmd.Process.Kill()
	<-i.done
}

// Exited reports whether the process has exited.
func (i *Instance) Exited() bool {
	select {
	case <-i.done:
		return true
	default:
		return false
	}
}

// Event builds a CloudEvent with JSON data. t may be zero (no time attribute).
func Event(typ, source, id string, t time.Time, data any) cloudevents.Event {
	ev := cloudevents.NewEvent()
	ev.SetType(typ)
	ev.SetSource(source)
	ev.SetID(id)
	if !t.IsZero() {
		ev.SetTime(t)
	}
	if err := ev.SetData(cloudevents.ApplicationJSON, data); err != nil {
		panic(err)
	}
	return ev
}

// Response is a function's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	Event  *cloudevents.Event // the reply, when the answer carries one
}

// Problem decodes a problem+json body.
func (r *Response) Problem() map[string]any {
	var p map[string]any
	_ = json.Unmarshal(r.Body, &p)
	return p
}

// Data decodes the reply's data into a map.
func (r *Response) Data() map[string]any {
	var m map[string]any
	if r.Event != nil {
		_ = json.Unmarshal(r.Event.Data(), &m)
	}
	return m
}

// DataInto decodes the reply's data into v.
func (r *Response) DataInto(t testing.TB, v any) {
	t.Helper()
	if r.Event == nil {
		t.Fatalf("no reply event (status %d, body %s)", r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Event.Data(), v); err != nil {
		t.Fatalf("decode reply data: %v", err)
	}
}

// Type is the reply's type ("" without a reply).
func (r *Response) Type() string {
	if r.Event == nil {
		return ""
	}
	return r.Event.Type()
}

// Send POSTs ev in binary mode.
func (i *Instance) Send(t testing.TB, ev cloudevents.Event) *Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, i.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&ev), req); err != nil {
		t.Fatal(err)
	}
	return Do(t, req)
}

// Retry sends ev in binary mode until it is answered 200, as Knative's
// retries would, every 100 ms for at most timeout, and returns the last
// answer: after a fault, the redelivery that must succeed.
func (i *Instance) Retry(t testing.TB, ev cloudevents.Event, timeout time.Duration) *Response {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := i.Send(t, ev)
		if r.Status == http.StatusOK || time.Now().After(deadline) {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// SendStructured POSTs ev in structured mode.
func (i *Instance) SendStructured(t testing.TB, ev cloudevents.Event) *Response {
	t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return i.Post(t, "application/cloudevents+json", body)
}

// Post POSTs a raw body to /.
func (i *Instance) Post(t testing.TB, contentType string, body []byte) *Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, i.URL+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return Do(t, req)
}

// Do performs req and reads the answer, decoding a reply event if any.
func Do(t testing.TB, req *http.Request) *Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if resp.Header.Get("Ce-Id") != "" || resp.Header.Get("Content-Type") == "application/cloudevents+json" {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if ev, err := binding.ToEvent(context.Background(), cehttp.NewMessageFromHttpResponse(resp)); err == nil {
			r.Event = ev
		}
	}
	return r
}

// Sink records the CloudEvents POSTed to it, like a broker would accept
// them. SetDown makes it answer 503 until SetDown(false).
type Sink struct {
	URL    string
	mu     sync.Mutex
	events []cloudevents.Event
	down   bool
	cond   *sync.Cond
}

// NewSink starts a recording sink for one test.
func NewSink(t testing.TB) *Sink {
	s := &Sink{}
	s.cond = sync.NewCond(&s.mu)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		if down {
			http.Error(w, "sink down", http.StatusServiceUnavailable)
			return
		}
		ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.events = append(s.events, *ev)
		s.cond.Broadcast()
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// SetDown makes the sink refuse (503) or accept events.
func (s *Sink) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Events returns a copy of what was received so far.
func (s *Sink) Events() []cloudevents.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cloudevents.Event(nil), s.events...)
}

// OfType returns the received events of type typ.
func (s *Sink) OfType(typ string) []cloudevents.Event {
	var out []cloudevents.Event
	for _, e := range s.Events() {
		if e.Type() == typ {
			out = append(out, e)
		}
	}
	return out
}

// WaitFor waits until at least n events of type typ arrived, failing the
// test after timeout.
func (s *Sink) WaitFor(t testing.TB, typ string, n int, timeout time.Duration) []cloudevents.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.OfType(typ)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink: got %d events of type %s, want %d", len(got), typ, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Main is a contract test package's TestMain: it builds the main package of
// each directory into the variable given for it (build once per package,
// not per test), runs the tests and removes the binaries.
//
//	func TestMain(m *testing.M) { functest.Main(m, map[string]*string{".": &binary}) }
//
// m may also be wrapped, e.g. by pgtest.AlsoThroughPgBouncer.
func Main(m interface{ Run() int }, builds map[string]*string) {
	// A fuzz worker (go test -fuzz) runs only the fuzz target, in process:
	// it needs no binary, and building one per worker would stall it.
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		os.Exit(m.Run())
	}
	var dirs []string
	for dir, dst := range builds {
		bin, err := Build(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*dst = bin
		dirs = append(dirs, filepath.Dir(bin))
	}
	code := m.Run()
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
	os.Exit(code)
}

// MainTwice is Main for a package of functions with a database: its tests
// run twice, against Postgres, then through PgBouncer in transaction
// pooling mode with DATABASE_POOLER=pgbouncer-transaction
// (pgtest.AlsoThroughPgBouncer).
//
//	func TestMain(m *testing.M) { functest.MainTwice(m, map[string]*string{".": &binary}) }
func MainTwice(m pgtest.Runner, builds map[string]*string) {
	Main(pgtest.AlsoThroughPgBouncer(m), builds)
}

// RunConfigOnly runs bin with only PATH, PORT=0, the test pass's
// DATABASE_POOLER (MainTwice's pass through PgBouncer sets it) and env —
// no other configuration — and returns what it printed and how it ended.
// Tests of start-up refusals use it: a missing or malformed setting must
// stop the process with one line naming it. A binary still running after
// 20 s fails the test.
func RunConfigOnly(t testing.TB, bin string, env ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PORT=0"}
	if p, ok := os.LookupEnv("DATABASE_POOLER"); ok {
		cmd.Env = append(cmd.Env, "DATABASE_POOLER="+p)
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s kept running with %v:\n%s", filepath.Base(bin), env, out)
	}
	return out, err
}

var ids atomic.Int64

// NextID returns a CloudEvents id not used before in this test binary
// ("ev-1", "ev-2", …), safe from parallel tests.
func NextID() string { return fmt.Sprintf("ev-%d", ids.Add(1)) }

// WantInvalid fails the test unless r is a 400 application/problem+json
// naming field (its "field" member).
func WantInvalid(t testing.TB, r *Response, field string) {
	t.Helper()
	if r.Status != http.StatusBadRequest || r.Header.Get("Content-Type") != "application/problem+json" || r.Problem()["field"] != field {
		t.Fatalf("got %d %s %s, want 400 problem+json naming %s", r.Status, r.Header.Get("Content-Type"), r.Body, field)
	}
}

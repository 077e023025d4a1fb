package runtime_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// probe is the test-only function of testdata/probe.
var probe string

// TestMain builds the probe and runs the package's tests twice: against
// Postgres, then through PgBouncer in transaction pooling mode
// (pgbouncer_test.go).
func TestMain(m *testing.M) {
	functest.Main(pgtest.AlsoThroughPgBouncer(m), map[string]*string{"testdata/probe": &probe})
}

// TestPanicsRollBackAndTheFunctionKeepsServing: more panicking handlers than
// the pool has connections each answer 500 problem+json with their
// transaction rolled back, and the function still serves afterwards.
func TestPanicsRollBackAndTheFunctionKeepsServing(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	fn := functest.Start(t, probe, "DATABASE_URL="+dbURL, "DATABASE_MAX_CONNS=2")
	const panics = 6 // three times the pool
	for i := range panics {
		resp := fn.Send(t, functest.Event("test.probe.panic", "/test", fmt.Sprintf("panic-%d", i), time.Time{}, map[string]any{}))
		if resp.Status != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("panic %d: status %d %q, want 500 application/problem+json: %s", i, resp.Status, resp.Header.Get("Content-Type"), resp.Body)
		}
		if got := resp.Problem()["type"]; got != "urn:qinqing:problem:internal" {
			t.Fatalf("panic %d: problem type %v, want urn:qinqing:problem:internal", i, got)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, fn.URL+"/panic", nil)
	if resp := functest.Do(t, req); resp.Status != http.StatusInternalServerError {
		t.Fatalf("POST /panic: status %d, want 500", resp.Status)
	}
	resp := fn.Send(t, functest.Event("test.probe.ok", "/test", "ok-after-panics", time.Time{}, map[string]any{}))
	if resp.Status != http.StatusOK || resp.Type() != "test.probe.done" {
		t.Fatalf("after %d panics: status %d type %q, want 200 test.probe.done: %s", panics, resp.Status, resp.Type(), resp.Body)
	}

	pool := pgtest.PoolFor(t, dbURL)
	ctx := context.Background()
	var inbox, written, openTx int
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM qinqing.inbox WHERE type = 'test.probe.panic'),
		(SELECT count(*) FROM qinqing.calendar_years WHERE year = 1999),
		(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%')`).
		Scan(&inbox, &written, &openTx); err != nil {
		t.Fatal(err)
	}
	if inbox != 0 || written != 0 || openTx != 0 {
		t.Fatalf("after the panics: %d inbox rows, %d written rows, %d sessions idle in transaction; want 0, 0, 0", inbox, written, openTx)
	}
	out := fn.Output()
	if n := strings.Count(out, `"msg":"panic"`); n != panics+1 {
		t.Fatalf("%d panic log lines, want %d:\n%s", n, panics+1, out)
	}
	if !strings.Contains(out, `"stack":"goroutine`) || !strings.Contains(out, "probe: handler panics") {
		t.Fatalf("panic log line lacks the panic or its stack:\n%s", out)
	}
}

// TestFrozenDatabaseAnswers503WithinTheBound: with the database's
// connections frozen (open, but nothing answers), events answer 503
// problem+json within a few REQUEST_TIMEOUTs instead of hanging, and the
// function serves again once the database is back.
func TestFrozenDatabaseAnswers503WithinTheBound(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := functest.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	const bound = time.Second
	fn := functest.Start(t, probe, "DATABASE_URL="+u.String(), "DATABASE_MAX_CONNS=2",
		"REQUEST_TIMEOUT="+bound.String(), "DATABASE_CONNECT_TIMEOUT="+bound.String())
	if resp := fn.Send(t, functest.Event("test.probe.ok", "/test", "before", time.Time{}, map[string]any{})); resp.Status != http.StatusOK {
		t.Fatalf("before the freeze: status %d: %s", resp.Status, resp.Body)
	}

	proxy.SetFrozen(true)
	const requests = 5 // more than the pool: some wait for a connection
	var wg sync.WaitGroup
	statuses := make([]int, requests)
	types := make([]string, requests)
	took := make([]time.Duration, requests)
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			resp := fn.Send(t, functest.Event("test.probe.ok", "/test", fmt.Sprintf("frozen-%d", i), time.Time{}, map[string]any{}))
			statuses[i], types[i], took[i] = resp.Status, resp.Header.Get("Content-Type"), time.Since(start)
		}()
	}
	wg.Wait()
	proxy.SetFrozen(false)
	for i := range requests {
		if statuses[i] != http.StatusServiceUnavailable || types[i] != "application/problem+json" {
			t.Errorf("request %d during the freeze: status %d %q, want 503 application/problem+json", i, statuses[i], types[i])
		}
		if took[i] > 3*bound {
			t.Errorf("request %d answered after %v, want within 3×REQUEST_TIMEOUT (%v)", i, took[i], 3*bound)
		}
	}

	resp := fn.Send(t, functest.Event("test.probe.ok", "/test", "after", time.Time{}, map[string]any{}))
	if resp.Status != http.StatusOK || resp.Type() != "test.probe.done" {
		t.Fatalf("after the freeze: status %d type %q, want 200: %s", resp.Status, resp.Type(), resp.Body)
	}
}

// rawRequest writes head (and then nothing more) on a new connection to
// the instance and returns the status line and headers of the answer, and
// how long it took. It fails the test when no answer comes within wait.
func rawRequest(t *testing.T, fn *functest.Instance, head string, wait time.Duration) (*http.Response, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(fn.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", wait, err)
	}
	resp.Body.Close()
	return resp, time.Since(start)
}

// TestStalledBodyAnswers408: a client that sends part of the body it
// declared and then stalls gets 408 problem+json within the body timeout,
// not when it gives up.
func TestStalledBodyAnswers408(t *testing.T) {
	t.Parallel()
	const bound = time.Second
	fn := functest.Start(t, probe, "DATABASE_URL="+pgtest.URL(t), "BODY_READ_TIMEOUT="+bound.String())
	head := "POST / HTTP/1.1\r\nHost: probe\r\nContent-Type: application/cloudevents+json\r\nContent-Length: 100\r\n\r\n{\"specversion\":"
	resp, took := rawRequest(t, fn, head, 10*bound)
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("stalled body: status %d %q, want 408 application/problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if took > 3*bound {
		t.Fatalf("stalled body answered after %v, want within 3×BODY_READ_TIMEOUT (%v)", took, 3*bound)
	}
}

// TestDeclaredHugeBodyAnswers413AtOnce: a request declaring a 2 GB body
// is refused before any of it is sent. The body timeout is long, so an
// answer within the wait proves the body was not waited for.
func TestDeclaredHugeBodyAnswers413AtOnce(t *testing.T) {
	t.Parallel()
	fn := functest.Start(t, probe, "DATABASE_URL="+pgtest.URL(t), "BODY_READ_TIMEOUT=60s")
	head := "POST / HTTP/1.1\r\nHost: probe\r\nContent-Type: application/cloudevents+json\r\nContent-Length: 2147483648\r\n\r\n"
	resp, _ := rawRequest(t, fn, head, 10*time.Second)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("2 GB Content-Length: status %d %q, want 413 application/problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

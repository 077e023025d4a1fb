package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// SIGTERM while an event is in flight (Kubernetes stopping the pod): the
// process stops accepting connections, finishes the event (200 with its
// reply, the signup committed), closes its pool and exits 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 30, 10)

	// Hold the forum's row lock, so the signup waits inside its transaction.
	tx, err := f.Pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(t.Context()) }()
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM forum.forums WHERE forum_id = 'F1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	ev := functest.Event(contract.TypeSignupRequested, portalSrc, nextID(), week, signupData("F1", event.SampleUSCC(1), "self"))
	replied := make(chan *functest.Response, 1)
	go func() { replied <- f.Fn.Send(t, ev) }()
	waitUntil(t, "the signup waits for the forum lock", func() bool {
		return f.Count(t, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 1
	})

	f.Fn.Terminate()
	// It stops accepting: new connections are refused…
	noKeepAlive := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	waitUntil(t, "new connections are refused after SIGTERM", func() bool {
		resp, err := noKeepAlive.Get(f.Fn.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
	// …but it does not exit while the event is in flight.
	if code, exited := f.Fn.Wait(300 * time.Millisecond); exited {
		t.Fatalf("exited (code %d) with an event in flight:\n%s", code, f.Fn.Output())
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-replied:
		if r.Status != http.StatusOK || r.Type() != contract.TypeSignupConfirmed {
			t.Fatalf("in-flight event: %d %s %s", r.Status, r.Type(), r.Body)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no answer to the in-flight event")
	}
	code, exited := f.Fn.Wait(15 * time.Second)
	if !exited || code != 0 {
		t.Fatalf("after SIGTERM: exited %v, code %d:\n%s", exited, code, f.Fn.Output())
	}
	if n := f.Count(t, `SELECT count(*) FROM forum.signups WHERE status = 'confirmed'`); n != 1 {
		t.Fatalf("%d confirmed signups after shutdown, want 1", n)
	}
	// The log tells the order: the event's line, then the pool closed and
	// the process stopped.
	var eventAt, stoppedAt = -1, -1
	for i, line := range strings.Split(strings.TrimSpace(f.Fn.Output()), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		switch {
		case l["msg"] == "event" && l["id"] == ev.ID():
			eventAt = i
		case l["msg"] == "stopped" && l["error"] == nil:
			stoppedAt = i
		}
	}
	if eventAt < 0 || stoppedAt < eventAt {
		t.Fatalf("log lines: event at %d, stopped at %d:\n%s", eventAt, stoppedAt, f.Fn.Output())
	}
}

// waitUntil polls cond for up to 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package main

import (
	"context"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// A database outage answers 5xx and writes nothing; Knative's retry of the
// same event succeeds once the database is back.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	f := &fixture{functest.Setup(t, binary, functest.Parts{Sink: true, S3: true, ProxyDatabase: true})}
	fn, proxy := f.Fn, f.DatabaseProxy

	sched := functest.Event(contract.TypeForumScheduled, portalSrc, nextID(), week, scheduleData("F1", 30, 10))
	if r := fn.Send(t, sched); r.Status != 200 {
		t.Fatalf("schedule: %d %s", r.Status, r.Body)
	}
	proxy.SetDown(true)
	ev := functest.Event(contract.TypeSignupRequested, portalSrc, nextID(), week, signupData("F1", event.SampleUSCC(1), "self"))
	r := fn.Send(t, ev)
	if r.Status < 500 {
		t.Fatalf("status with the database down = %d, want 5xx (%s)", r.Status, r.Body)
	}
	proxy.SetDown(false)
	if n := f.Count(t, `SELECT count(*) FROM forum.signups`); n != 0 {
		t.Fatalf("%d signups after a failed delivery", n)
	}
	r = fn.Retry(t, ev, 10*time.Second) // Knative's retry
	if r.Type() != contract.TypeSignupConfirmed {
		t.Fatalf("retry: %d %s %s", r.Status, r.Type(), r.Body)
	}
}

// An S3 outage during the weekly close answers 5xx and leaves the forum
// open; the retry closes it and writes the roster.
func TestS3DownDuringClose(t *testing.T) {
	t.Parallel()
	f := &fixture{functest.Setup(t, binary, functest.Parts{S3: true, ProxyS3: true})}
	fn, proxy := f.Fn, f.S3Proxy
	fn.Send(t, functest.Event(contract.TypeForumScheduled, portalSrc, nextID(), week, scheduleData("F1", 30, 10)))
	fn.Send(t, functest.Event(contract.TypeSignupRequested, portalSrc, nextID(), week, signupData("F1", event.SampleUSCC(1), "self")))

	proxy.SetDown(true)
	ping := functest.Event("dev.knative.sources.ping", "/ping", nextID(), time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), map[string]any{"job": "forum-weekly"})
	if r := fn.Send(t, ping); r.Status < 500 {
		t.Fatalf("status with S3 down = %d, want 5xx (%s)", r.Status, r.Body)
	}
	if open := f.Count(t, `SELECT count(*) FROM forum.forums WHERE closed_at IS NULL`); open != 1 {
		t.Fatal("forum closed although its roster could not be written")
	}
	proxy.SetDown(false)
	r := fn.Send(t, ping)
	if r.Status != 200 || len(r.Data()["closed"].([]any)) != 1 {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	if _, err := f.Store.Get(context.Background(), "forums/F1/roster.csv"); err != nil {
		t.Fatal(err)
	}
}

// The signups of one forum take their turns in the process: while one
// waits for the forum's row (locked here by another transaction), the next
// waits for its turn without going to the database, and both give up at
// the request's deadline with a 503 that wrote nothing: the waiting
// statement's lock timeout ends its wait on the server before the
// deadline, so it is not left to commit once the row is free. Then
// Knative's retries are handled.
func TestSignupTurnEndsAtDeadline(t *testing.T) {
	t.Parallel()
	f := &fixture{functest.Setup(t, binary, functest.Parts{Sink: true, S3: true, Env: []string{"REQUEST_TIMEOUT=1s"}})}
	fn := f.Fn
	if r := fn.Send(t, functest.Event(contract.TypeForumScheduled, portalSrc, nextID(), week, scheduleData("F1", 30, 10))); r.Status != 200 {
		t.Fatalf("schedule: %d %s", r.Status, r.Body)
	}
	ctx := context.Background()
	tx, err := f.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // released below; a second rollback is a no-op
	if _, err := tx.Exec(ctx, `SELECT FROM forum.forums WHERE forum_id = 'F1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	waiting := func() int64 {
		return f.Count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
	}
	evA := functest.Event(contract.TypeSignupRequested, portalSrc, nextID(), week, signupData("F1", event.SampleUSCC(1), "self"))
	evB := functest.Event(contract.TypeSignupRequested, portalSrc, nextID(), week, signupData("F1", event.SampleUSCC(2), "self"))
	first := make(chan *functest.Response, 1)
	go func() { first <- fn.Send(t, evA) }()
	waitUntil(t, "the first signup waits for the forum's row", func() bool { return waiting() == 1 })
	second := make(chan *functest.Response, 1)
	start := time.Now()
	go func() { second <- fn.Send(t, evB) }()
	most := int64(0)
	var rB *functest.Response
	for rB == nil {
		most = max(most, waiting())
		select {
		case rB = <-second:
		case <-time.After(20 * time.Millisecond):
		}
	}
	took := time.Since(start)
	rA := <-first
	if rA.Status != 503 || rB.Status != 503 {
		t.Fatalf("answers while the row is locked: %d %s, %d %s; want 503 twice", rA.Status, rA.Body, rB.Status, rB.Body)
	}
	// Behind a transaction pooler signups are not queued in the process
	// (runtime.Decision.Serial): both wait for the row.
	if want := map[bool]int64{false: 1, true: 2}[pgtest.ThroughPgBouncer()]; most != want {
		t.Errorf("%d statements waited for the forum's row at once, want %d (the second signup waits its turn in the process, except behind a transaction pooler)", most, want)
	}
	if took > 3*time.Second {
		t.Errorf("the second signup was answered after %v, want within a few REQUEST_TIMEOUTs (1 s)", took)
	}
	// The statement answered 503 stopped waiting on the server: none still
	// waits for the row, to commit once it is free.
	if n := waiting(); n != 0 {
		t.Errorf("%d statements answered 503 still wait for the forum's row", n)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.Count(t, `SELECT count(*) FROM forum.signups`); n != 0 {
		t.Fatalf("%d signups written by answers of 503", n)
	}
	for _, ev := range []cloudevents.Event{evA, evB} {
		if r := fn.Retry(t, ev, 10*time.Second); r.Type() != contract.TypeSignupConfirmed {
			t.Fatalf("retry: %d %s %s", r.Status, r.Type(), r.Body)
		}
	}
}

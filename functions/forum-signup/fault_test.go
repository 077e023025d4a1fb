package main

import (
	"context"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
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

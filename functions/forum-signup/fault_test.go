package main

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// A database outage answers 5xx and writes nothing; Knative's retry of the
// same event succeeds once the database is back.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	u, _ := url.Parse(dbURL)
	proxy := functest.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	s3, _ := s3test.New(t)
	sink := functest.NewSink(t)
	fn := functest.Start(t, binary, append([]string{"DATABASE_URL=" + u.String(), "K_SINK=" + sink.URL}, s3.Env()...)...)
	pool := pgtest.PoolFor(t, dbURL)

	sched := functest.Event(TypeScheduled, portalSrc, nextID(), week, scheduleData("F1", 30, 10))
	if r := fn.Send(t, sched); r.Status != 200 {
		t.Fatalf("schedule: %d %s", r.Status, r.Body)
	}
	proxy.SetDown(true)
	ev := functest.Event(TypeSignupRequested, portalSrc, nextID(), week, signupData("F1", uscc(t, 1), "self"))
	r := fn.Send(t, ev)
	if r.Status < 500 {
		t.Fatalf("status with the database down = %d, want 5xx (%s)", r.Status, r.Body)
	}
	proxy.SetDown(false)
	var n int
	_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM forum.signups`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d signups after a failed delivery", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = fn.Send(t, ev) // Knative's retry
		if r.Status == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.Type() != TypeSignupConfirmed {
		t.Fatalf("retry: %d %s %s", r.Status, r.Type(), r.Body)
	}
}

// An S3 outage during the weekly close answers 5xx and leaves the forum
// open; the retry closes it and writes the roster.
func TestS3DownDuringClose(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	s3, store := s3test.New(t)
	su, _ := url.Parse(s3.URL)
	proxy := functest.NewProxy(t, su.Host)
	env := []string{"DATABASE_URL=" + dbURL}
	for _, kv := range s3.Env() {
		if len(kv) > 12 && kv[:12] == "S3_ENDPOINT=" {
			kv = "S3_ENDPOINT=http://" + proxy.Addr
		}
		env = append(env, kv)
	}
	fn := functest.Start(t, binary, env...)
	pool := pgtest.PoolFor(t, dbURL)
	fn.Send(t, functest.Event(TypeScheduled, portalSrc, nextID(), week, scheduleData("F1", 30, 10)))
	fn.Send(t, functest.Event(TypeSignupRequested, portalSrc, nextID(), week, signupData("F1", uscc(t, 1), "self")))

	proxy.SetDown(true)
	ping := functest.Event("dev.knative.sources.ping", "/ping", nextID(), time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), map[string]any{"job": "forum-weekly"})
	if r := fn.Send(t, ping); r.Status < 500 {
		t.Fatalf("status with S3 down = %d, want 5xx (%s)", r.Status, r.Body)
	}
	var open int
	_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM forum.forums WHERE closed_at IS NULL`).Scan(&open)
	if open != 1 {
		t.Fatal("forum closed although its roster could not be written")
	}
	proxy.SetDown(false)
	r := fn.Send(t, ping)
	if r.Status != 200 || len(r.Data()["closed"].([]any)) != 1 {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	if _, err := store.Get(context.Background(), "forums/F1/roster.csv"); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"bytes"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// TestBurstThroughPgBouncer is the shared-cluster case: two instances of
// the function behind PgBouncer in transaction pooling mode (pool 20, 10
// connections each), no LISTEN (the relays poll), 200 signups at once,
// then 50 of them redelivered at once. Every signup is answered on the
// first try, each redelivery answers the stored reply, and every
// follow-up leaves through the outbox exactly once.
func TestBurstThroughPgBouncer(t *testing.T) {
	if pgtest.ThroughPgBouncer() {
		t.Skip("runs in the first pass only: it sets up its own way through PgBouncer")
	}
	t.Parallel()
	direct := pgtest.URL(t)
	url := pgtest.PgBouncerURL(t, direct)
	s3, store := s3test.New(t)
	sink := functest.NewSink(t)
	env := append([]string{"DATABASE_URL=" + url, "DATABASE_POOLER=pgbouncer-transaction",
		"DATABASE_MAX_CONNS=10", "K_SINK=" + sink.URL}, s3.Env()...)
	f := &fixture{&functest.Fixture{Fn: functest.Start(t, binary, env...), Sink: sink, Pool: pgtest.PoolFor(t, direct), S3: s3, Store: store, Env: env}}
	fns := []*functest.Instance{f.Fn, functest.Start(t, binary, env...)}
	f.schedule(t, "F1", 100, 0)

	const signups, redeliveries = 200, 50
	events := make([]cloudevents.Event, signups)
	for i := range events {
		d := signupData("F1", event.SampleUSCC(5000+i), contract.ModeSelf)
		d["problems"] = []any{map[string]any{"title": "用电", "category": "energy"}}
		events[i] = functest.Event(contract.TypeSignupRequested, portalSrc, nextID(), week, d)
	}
	send := func(n int) []*functest.Response {
		replies := make([]*functest.Response, n)
		var wg sync.WaitGroup
		for i := range replies {
			wg.Add(1)
			go func() { defer wg.Done(); replies[i] = fns[i%2].Send(t, events[i]) }()
		}
		wg.Wait()
		return replies
	}
	first := send(signups)
	positions := map[int]bool{}
	confirmed := 0
	for i, r := range first {
		switch r.Type() {
		case contract.TypeSignupConfirmed:
			confirmed++
		case contract.TypeSignupWaitlisted:
			var reply contract.SignupReply
			r.DataInto(t, &reply)
			positions[reply.WaitlistPosition] = true
		default:
			t.Fatalf("signup %d: status %d, reply %q: %s", i, r.Status, r.Type(), r.Body)
		}
	}
	if confirmed != 100 || len(positions) != 100 || !positions[1] || !positions[100] {
		t.Fatalf("%d confirmed, %d distinct waitlist positions; want 100 and 1…100", confirmed, len(positions))
	}
	for i, r := range send(redeliveries) {
		if r.Status != 200 || r.Type() != first[i].Type() || !bytes.Equal(r.Event.Data(), first[i].Event.Data()) {
			t.Fatalf("redelivery %d: status %d %q %s, first answer %q %s", i, r.Status, r.Type(), r.Body, first[i].Type(), first[i].Event.Data())
		}
	}
	if n := f.Count(t, `SELECT count(*) FROM forum.signups`); n != signups {
		t.Fatalf("%d signups stored, want %d", n, signups)
	}
	got := sink.WaitFor(t, contract.TypeAppealSubmitted, signups, 60*time.Second)
	seen := map[string]bool{}
	for _, ev := range got {
		seen[ev.ID()] = true
	}
	time.Sleep(500 * time.Millisecond) // time for a second delivery to show
	if n := len(sink.OfType(contract.TypeAppealSubmitted)); len(seen) != signups || n != signups {
		t.Fatalf("%d follow-ups delivered with %d distinct ids, want %d once each", n, len(seen), signups)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.outbox WHERE delivered_at IS NULL`); n != 0 {
		t.Fatalf("%d follow-ups still pending", n)
	}
}

// An unknown DATABASE_POOLER or a malformed DATABASE_LISTEN_URL stops the
// function at start with one line naming the variable.
func TestPoolerConfigRefused(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]string{
		"DATABASE_POOLER":     "DATABASE_POOLER=pgbouncer",
		"DATABASE_LISTEN_URL": "DATABASE_LISTEN_URL=postgres://x@127.0.0.1:notaport/x",
	} {
		t.Run(name, func(t *testing.T) {
			out, err := functest.RunConfigOnly(t, binary, "DATABASE_URL=postgres://x@127.0.0.1:1/x", "S3_BUCKET=x", v)
			if err == nil || !bytes.Contains(out, []byte(name)) || bytes.Count(bytes.TrimSpace(out), []byte("\n")) != 0 {
				t.Fatalf("got %v: %q", err, out)
			}
		})
	}
}

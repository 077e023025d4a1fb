package runtime_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/postgres/migrate"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// Behind PgBouncer in session pooling mode (DATABASE_POOLER=
// pgbouncer-session) a function works as it does on Postgres directly: the
// server connection is the client's for its whole session, so cached
// prepared statements, LISTEN and the migrations' locks hold. The function
// handles events and redeliveries (replayed from the inbox), its relay is
// woken by NOTIFY through the pooler (the poll interval is an hour), and
// two migration runs at once through the pooler both succeed, then a rerun
// is a no-op.
func TestSessionPooler(t *testing.T) {
	t.Parallel()
	if pgtest.ThroughPgBouncer() {
		t.Skip("runs in the first pass only: it sets up its own way through PgBouncer")
	}
	direct := pgtest.URL(t)
	viaSession := pgtest.PgBouncerSessionURL(t, direct)
	sink := functest.NewSink(t)
	fn := functest.Start(t, probe, "DATABASE_URL="+viaSession, "DATABASE_POOLER=pgbouncer-session",
		"K_SINK="+sink.URL, "RELAY_INTERVAL=1h")

	first := functest.Event("test.probe.follow", "/test", "session-1", time.Time{}, map[string]any{})
	r := fn.Send(t, first)
	if r.Status != http.StatusOK || r.Type() != "test.probe.done" {
		t.Fatalf("event through the session pooler: %d %s", r.Status, r.Body)
	}
	again := fn.Send(t, first)
	if again.Status != http.StatusOK || string(again.Body) != string(r.Body) {
		t.Fatalf("redelivery: %d %s, want the stored reply %s", again.Status, again.Body, r.Body)
	}
	// The first follow-up is delivered when the relay starts; the second
	// only because the relay LISTENs through the pooler and is notified.
	sink.WaitFor(t, "test.probe.followed", 1, 20*time.Second)
	waitListening(t, direct)
	if r := fn.Send(t, functest.Event("test.probe.follow", "/test", "session-2", time.Time{}, map[string]any{})); r.Status != http.StatusOK {
		t.Fatalf("second event: %d %s", r.Status, r.Body)
	}
	got := sink.WaitFor(t, "test.probe.followed", 2, 20*time.Second)
	if len(got) != 2 {
		t.Fatalf("%d follow-ups delivered, want 2 (each once)", len(got))
	}

	// Migrations through the session pooler, twice at once, then again.
	empty := pgtest.PgBouncerSessionURL(t, pgtest.EmptyURL(t))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = migrate.Up(ctx, empty)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent migration %d through the session pooler: %v", i, err)
		}
	}
	if applied, err := migrate.Up(ctx, empty); err != nil || len(applied) != 0 {
		t.Fatalf("rerun through the session pooler: applied %v, %v", applied, err)
	}
}

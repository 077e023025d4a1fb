package main

import (
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// TestConnectionBegunAtInit: the binary's one session at start is the
// one package postgres/early began while the program initialised, taken
// by runtime.Main's pool: were it not taken, Main's own warm-up would open
// a second beside it. Counted before the relay starts (it waits 2 s for
// a first event) and before any event. Behind PgBouncer the server's
// sessions are PgBouncer's, so only the direct pass counts them.
func TestConnectionBegunAtInit(t *testing.T) {
	t.Parallel()
	if pgtest.ThroughPgBouncer() {
		t.Skip("behind PgBouncer the server's sessions are the pooler's")
	}
	f := functest.Setup(t, binary, functest.Parts{S3: true})
	sessions := func() int64 {
		return f.Count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	}
	deadline := time.Now().Add(time.Second)
	for sessions() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a second warm-up, if any, would be under way by now
	if n := sessions(); n != 1 {
		t.Fatalf("%d sessions of the function before its first event, want 1 (the connection begun at initialisation)", n)
	}
}

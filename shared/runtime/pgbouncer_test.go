package runtime_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// viaPgBouncer returns a new migrated database's direct URL and a pool on
// it through PgBouncer in transaction pooling mode.
func viaPgBouncer(t *testing.T) (string, *runtime.Relay) {
	t.Helper()
	if pgtest.ThroughPgBouncer() {
		t.Skip("runs in the first pass only: it sets up its own way through PgBouncer")
	}
	direct := pgtest.URL(t)
	pool := pgtest.PoolFor(t, pgtest.PgBouncerURL(t, direct))
	return direct, &runtime.Relay{Pool: pool, Log: zap.NewNop().Sugar(), TransactionPooled: true}
}

// Pruning through a transaction pooler leaves no advisory lock behind: a
// session lock would be taken on one server connection and released on
// another (or never), after which no relay prunes again.
func TestPruneLeavesNoLockThroughPgBouncer(t *testing.T) {
	t.Parallel()
	direct, r := viaPgBouncer(t)
	ctx := context.Background()
	check := pgtest.PoolFor(t, direct)
	if _, err := check.Exec(ctx, `INSERT INTO qinqing.outbox (id, producer, source, type, data, created_at, delivered_at)
		SELECT 'old-' || g, 't', '/t', 't', '{}', now() - interval '30 days', now() - interval '30 days' FROM generate_series(1, 40) g`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var pruned int64
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _, err := r.Prune(ctx)
			if err != nil {
				t.Errorf("prune: %v", err)
			}
			mu.Lock()
			pruned += out
			mu.Unlock()
		}()
	}
	wg.Wait()
	var held int
	if err := check.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
		WHERE l.locktype = 'advisory' AND d.datname = current_database()`).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Fatalf("%d advisory locks held after 20 prunes", held)
	}
	// The lock is free: one more prune finds nothing left to delete, and
	// every old row was deleted exactly once.
	if out, _, err := r.Prune(ctx); err != nil || out != 0 || pruned != 40 {
		t.Fatalf("pruned %d (+%d, %v) of 40", pruned, out, err)
	}
}

// waitListening waits until a backend of the database at url has run
// LISTEN qinqing_outbox.
func waitListening(t *testing.T, url string) {
	t.Helper()
	pool := pgtest.PoolFor(t, url)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN qinqing_outbox'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay never ran LISTEN")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// enqueue writes a follow-up and its NOTIFY the way the pipeline does,
// through the relay's (pooled) pool.
func enqueue(t *testing.T, r *runtime.Relay, id string) {
	t.Helper()
	ctx := context.Background()
	tx, err := r.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO qinqing.outbox (id, producer, source, type, data) VALUES ($1, 'test', '/qinqing/test', 'test.happened', '{}')`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify('qinqing_outbox', '')`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// With DATABASE_LISTEN_URL the relay behind a transaction pooler LISTENs
// on its own direct connection and is woken by the NOTIFY of a commit
// made through the pooler: with an hour's poll interval, only the
// notification can deliver the row while the test waits.
func TestRelayListensOnListenURL(t *testing.T) {
	t.Parallel()
	direct, r := viaPgBouncer(t)
	sink := functest.NewSink(t)
	r.Sink, r.ListenURL, r.Interval = sink.URL, direct, time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitListening(t, direct)
	enqueue(t, r, "woken")
	if got := sink.WaitFor(t, "test.happened", 1, 20*time.Second); got[0].ID() != "woken" {
		t.Fatalf("delivered %v", got)
	}
}

// Behind a transaction pooler without DATABASE_LISTEN_URL the relay does
// not LISTEN (nothing would arrive), says so once, and delivers by polling.
func TestRelayPollsBehindTransactionPooler(t *testing.T) {
	t.Parallel()
	direct, r := viaPgBouncer(t)
	core, logs := observer.New(zap.InfoLevel)
	sink := functest.NewSink(t)
	r.Sink, r.Log, r.Interval = sink.URL, zap.New(core).Sugar(), 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := 0; i < 3; i++ {
		enqueue(t, r, functest.NextID())
		sink.WaitFor(t, "test.happened", i+1, 20*time.Second)
	}
	said := 0
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "polls without LISTEN") {
			said++
		}
	}
	if said != 1 {
		t.Fatalf("said %d times that the relay polls, want once: %v", said, logs.All())
	}
	var listening int
	if err := pgtest.PoolFor(t, direct).QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN qinqing_outbox'`).Scan(&listening); err != nil {
		t.Fatal(err)
	}
	if listening != 0 {
		t.Fatalf("%d LISTEN sessions behind a transaction pooler", listening)
	}
}

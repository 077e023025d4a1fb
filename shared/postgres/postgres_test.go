package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/migrate"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
)

func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	url := pgtest.EmptyURL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	counts := make([]int, 3)
	errs := make([]error, 3)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied, err := migrate.Up(ctx, url)
			counts[i], errs[i] = len(applied), err
		}()
	}
	wg.Wait()
	total := 0
	for i := range counts {
		if errs[i] != nil {
			t.Fatalf("concurrent migrate %d: %v", i, errs[i])
		}
		total += counts[i]
	}
	applied, err := migrate.Up(ctx, url)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second run applied %v, %v; want nothing", applied, err)
	}
	pool := pgtest.PoolFor(t, url)
	var versions int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if total != versions {
		t.Fatalf("concurrent runs applied %d migrations in all, database has %d: some applied twice or lost", total, versions)
	}
}

func TestInTx(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE t (v int)`); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (1)`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	// Rollback still happens when the caller's context is cancelled mid-way.
	cctx, cancel := context.WithCancel(ctx)
	err = postgres.InTx(cctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(cctx, `INSERT INTO t VALUES (2)`); err != nil {
			return err
		}
		cancel()
		return cctx.Err()
	})
	if err == nil {
		t.Fatal("cancelled transaction committed")
	}
	v, err := postgres.InTxV(ctx, pool, func(tx pgx.Tx) (int, error) {
		var n int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n)
		return n, err
	})
	if err != nil || v != 0 {
		t.Fatalf("rows after rollbacks = %d, %v; want 0", v, err)
	}
	if st := pool.Stat(); st.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired", st.AcquiredConns())
	}
}

// TestInTxRollsBackOnPanic: a panic in fn rolls back and gives the
// connection back to the pool, then goes on up; more panics than the pool
// has connections leave it serving.
func TestInTxRollsBackOnPanic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, postgres.Config{URL: pgtest.URL(t), MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE t (v int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Fatalf("panic %d: recovered %v, want the panic to go on up", i, r)
				}
			}()
			_ = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (1)`); err != nil {
					return err
				}
				panic("boom")
			})
		}()
	}
	if st := pool.Stat(); st.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired after the panics", st.AcquiredConns())
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows after panics = %d, %v; want 0", n, err)
	}
}

// TestInTxTimeouts: transactions begun by InTx on a pool from Open carry
// DATABASE_STATEMENT_TIMEOUT and DATABASE_LOCK_TIMEOUT.
func TestInTxTimeouts(t *testing.T) {
	t.Parallel()
	checkTimeouts(t, pgtest.URL(t), postgres.PoolerNone)
}

// TestInTxTimeoutsThroughPgBouncer: the same through PgBouncer in
// transaction pooling mode, which refuses the timeouts as startup
// parameters.
func TestInTxTimeoutsThroughPgBouncer(t *testing.T) {
	t.Parallel()
	checkTimeouts(t, pgtest.PgBouncerURL(t, pgtest.URL(t)), postgres.PoolerPgBouncerTransaction)
}

func checkTimeouts(t *testing.T, url, pooler string) {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 2, Pooler: pooler,
		StatementTimeout: 300 * time.Millisecond, LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	code := func(err error) string {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pe.Code
		}
		return fmt.Sprint(err)
	}
	var settings string
	err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT current_setting('statement_timeout') || ' ' || current_setting('lock_timeout')`).Scan(&settings)
	})
	if err != nil || settings != "300ms 200ms" {
		t.Fatalf("settings in InTx = %q, %v; want \"300ms 200ms\"", settings, err)
	}
	// The event's transaction: begun in its first batch (QueueBegin).
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	postgres.QueueBegin(b, pool)
	settings = ""
	b.Queue(`SELECT current_setting('statement_timeout') || ' ' || current_setting('lock_timeout')`).
		QueryRow(func(r pgx.Row) error { return r.Scan(&settings) })
	br := conn.SendBatch(ctx, b)
	tx := br.Tx()
	err = br.Close()
	_ = tx.Rollback(ctx)
	conn.Release()
	if err != nil || settings != "300ms 200ms" {
		t.Fatalf("settings in a QueueBegin batch = %q, %v; want \"300ms 200ms\"", settings, err)
	}
	err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT pg_sleep(5)`)
		return err
	})
	if code(err) != "57014" {
		t.Fatalf("a 5 s statement: %v, want SQLSTATE 57014 (statement timeout)", err)
	}

	holder := pgtest.PoolFor(t, url)
	locked, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locked.Rollback(ctx)
	if _, err := locked.Exec(ctx, `SELECT pg_advisory_xact_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(4242)`)
		return err
	})
	if code(err) != "55P03" {
		t.Fatalf("waiting for a held lock: %v, want SQLSTATE 55P03 (lock timeout)", err)
	}
	// Outside a transaction: a direct session has them as its own (set
	// at its start, so no transaction spends a statement on them); behind
	// PgBouncer the session keeps the server's, and no SET LOCAL leaks
	// into the next transaction on it.
	want, what := "300ms 200ms", "the session's"
	if pooler != postgres.PoolerNone {
		want, what = "0 0", "the server's"
	}
	if err := pool.QueryRow(ctx, `SELECT current_setting('statement_timeout') || ' ' || current_setting('lock_timeout')`).Scan(&settings); err != nil || settings != want {
		t.Fatalf("timeouts outside a transaction = %q, %v; want %s %q", settings, err, what, want)
	}
	if got, want := postgres.SessionTimeouts(pool), pooler == postgres.PoolerNone; got != want {
		t.Errorf("SessionTimeouts = %v, want %v", got, want)
	}
	if got := postgres.Settings(pool); (got == "") != (pooler == postgres.PoolerNone) {
		t.Errorf("Settings = %q: want none to set on a direct session, the set_config calls behind a pooler", got)
	}
}

// TestSessionTimeoutsRefusedByPgBouncer: a pool opened as if on Postgres
// itself (DATABASE_POOLER=none) but pointed at PgBouncer cannot connect,
// since PgBouncer refuses the timeouts as startup parameters, and the
// error says so (RefusedStartupParameter, which the runtime turns into a
// hint at start).
func TestSessionTimeoutsRefusedByPgBouncer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, postgres.Config{URL: pgtest.PgBouncerURL(t, pgtest.URL(t)), MaxConns: 1,
		StatementTimeout: time.Second, LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	_, err = pool.Exec(ctx, `SELECT 1`)
	if !postgres.RefusedStartupParameter(err) {
		t.Fatalf("connecting to PgBouncer with DATABASE_POOLER=none: %v; want a refused startup parameter", err)
	}
	if postgres.RefusedStartupParameter(errors.New("unsupported startup parameter")) {
		t.Error("RefusedStartupParameter took an error that is not the server's")
	}
}

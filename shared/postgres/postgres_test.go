package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/postgres"
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
			applied, err := postgres.Migrate(ctx, url)
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
	applied, err := postgres.Migrate(ctx, url)
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

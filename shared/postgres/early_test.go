package postgres_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/telemetry"
)

// TestStartEarly: the pool StartEarly opened (package early's init) is the
// one the next Open with the same configuration returns, with its first
// connection made once and already under way; an Open with another
// configuration, or with a tracer, gets a pool of its own and leaves it.
func TestStartEarly(t *testing.T) {
	ctx := context.Background()
	named := func(name string) postgres.Config {
		u, err := url.Parse(pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("application_name", name)
		u.RawQuery = q.Encode()
		return postgres.Config{URL: u.String(), MaxConns: 2, StatementTimeout: time.Second}
	}
	sessions := func(name string) int64 {
		return countRow(t, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, name)
	}
	open := func(c postgres.Config, tracer ...pgx.QueryTracer) *pgxpool.Pool {
		pool, err := postgres.Open(ctx, c, tracer...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return pool
	}

	c := named("qinqing-early-1")
	postgres.StartEarly(c)
	other := open(named("qinqing-early-other"))
	traced := open(c, telemetry.PgxTracer(nil))
	if err := postgres.WarmUp(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := postgres.WarmUp(ctx, traced); err != nil {
		t.Fatal(err)
	}
	pool := open(c)
	if err := postgres.WarmUp(ctx, pool); err != nil {
		t.Fatal(err)
	}
	// The early pool's own connection, plus the traced pool's.
	if n := sessions("qinqing-early-1"); n != 2 {
		t.Errorf("%d sessions of the early configuration, want 2 (the early pool's one connection, the traced pool's)", n)
	}
	if got := pool.Stat().TotalConns(); got != 1 {
		t.Errorf("the early pool has %d connections after its warm-up, want 1", got)
	}
	var timeout string
	if err := pool.QueryRow(ctx, `SELECT current_setting('statement_timeout')`).Scan(&timeout); err != nil || timeout != "1s" {
		t.Errorf("statement_timeout on the early pool = %q, %v; want its configuration's 1s", timeout, err)
	}
	if got := pool.Stat().TotalConns(); got != 1 {
		t.Errorf("the early pool opened %d connections for one statement, want its 1", got)
	}
	// Taken once: the next Open makes a pool of its own.
	again := open(c)
	if again == pool {
		t.Error("a second Open returned the early pool again")
	}
}

func countRow(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pgtest.Pool(t).QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

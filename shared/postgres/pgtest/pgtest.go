// Package pgtest gives each test its own freshly migrated database on the
// server at TEST_DATABASE_URL: the migrations run once per test binary into
// a template database, and every test gets a clone of it (CREATE DATABASE …
// TEMPLATE), dropped when the test ends (after exposure-notifications-server
// and river's riverdbtest). Run tests through hack/with-postgres.sh (make
// test does) to get a throwaway server when TEST_DATABASE_URL is unset.
//
// hack/with-postgres.sh also starts a PgBouncer in transaction pooling mode
// in front of that server (TEST_PGBOUNCER_URL). PgBouncerURL routes one
// test's database through it; AlsoThroughPgBouncer runs a whole package a
// second time that way.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/migrate"
)

var (
	once     sync.Once
	template string
	baseURL  *url.URL
	initErr  error

	// through makes URL hand out URLs through PgBouncer (the second pass
	// of AlsoThroughPgBouncer).
	through atomic.Bool
)

// bouncerHost is the host:port of TEST_PGBOUNCER_URL, "" when unset.
func bouncerHost() string { return hostOf("TEST_PGBOUNCER_URL") }

// hostOf is the host:port of the URL in the environment variable v.
func hostOf(v string) string {
	raw := os.Getenv(v)
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

func adminConn(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, baseURL.String())
}

func dbURL(name string) string {
	u := *baseURL
	u.Path = "/" + name
	return u.String()
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func setupTemplate() {
	raw := os.Getenv("TEST_DATABASE_URL")
	if raw == "" {
		initErr = fmt.Errorf("TEST_DATABASE_URL is unset: run tests with `make test` or hack/with-postgres.sh")
		return
	}
	baseURL, initErr = url.Parse(raw)
	if initErr != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := adminConn(ctx)
	if err != nil {
		initErr = fmt.Errorf("connect TEST_DATABASE_URL: %w", err)
		return
	}
	defer conn.Close(ctx)
	template = randomName("qqtpl_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+template); err != nil {
		initErr = fmt.Errorf("create template: %w", err)
		return
	}
	if _, err := migrate.Up(ctx, dbURL(template)); err != nil {
		initErr = err
	}
}

// URL returns the URL of a new migrated database for this test, dropped in
// t.Cleanup. Tests that need a pool use Pool.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(setupTemplate)
	if initErr != nil {
		t.Fatalf("pgtest: %v", initErr)
	}
	u := create(t, template)
	if through.Load() {
		return PgBouncerURL(t, u)
	}
	return u
}

// PgBouncerURL returns u (a URL from URL or EmptyURL) routed through the
// PgBouncer at TEST_PGBOUNCER_URL, which reaches every database of the
// test server. Without TEST_PGBOUNCER_URL the test is skipped: make test
// always starts one, TEST_DATABASE_URL given by hand may come without.
func PgBouncerURL(t testing.TB, u string) string {
	t.Helper()
	return via(t, "TEST_PGBOUNCER_URL", "PgBouncer", u)
}

// PgBouncerSessionURL returns u routed through the PgBouncer in session
// pooling mode at TEST_PGBOUNCER_SESSION_URL (skipping the test without).
func PgBouncerSessionURL(t testing.TB, u string) string {
	t.Helper()
	return via(t, "TEST_PGBOUNCER_SESSION_URL", "session-mode PgBouncer", u)
}

// via returns u with the host of the URL in the variable v.
func via(t testing.TB, v, what, u string) string {
	t.Helper()
	host := hostOf(v)
	if host == "" {
		t.Skipf("pgtest: %s is unset (no %s beside TEST_DATABASE_URL); run through make test or hack/with-postgres.sh", v, what)
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	pu.Host = host
	return pu.String()
}

// IsPgBouncer reports whether u goes through the PgBouncer of
// TEST_PGBOUNCER_URL.
func IsPgBouncer(u string) bool {
	pu, err := url.Parse(u)
	return err == nil && pu.Host != "" && pu.Host == bouncerHost()
}

// ThroughPgBouncer reports whether this is the second pass of
// AlsoThroughPgBouncer, where URL and Pool go through PgBouncer.
func ThroughPgBouncer() bool { return through.Load() }

// Runner is what a TestMain runs: a *testing.M, or AlsoThroughPgBouncer's
// wrapper of one.
type Runner interface{ Run() int }

type bothWays struct{ m Runner }

// AlsoThroughPgBouncer wraps m so that Run runs the package's tests twice:
// first against Postgres directly, then — when TEST_PGBOUNCER_URL is set —
// again with URL and Pool going through PgBouncer in transaction pooling
// mode and DATABASE_POOLER=pgbouncer-transaction in the environment, which
// the function processes the tests start inherit. Run fails when either
// pass fails. With -test.bench (make bench) there is one pass only.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.AlsoThroughPgBouncer(m).Run()) }
func AlsoThroughPgBouncer(m Runner) Runner { return bothWays{m} }

func (b bothWays) Run() int {
	code := b.m.Run()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		return code // benchmarks compare the ways themselves; run them once
	}
	if bouncerHost() == "" {
		fmt.Fprintln(os.Stderr, "pgtest: TEST_PGBOUNCER_URL is unset: the second pass through PgBouncer is skipped")
		return code
	}
	fmt.Fprintln(os.Stderr, "pgtest: second pass, through PgBouncer (transaction pooling) with DATABASE_POOLER=pgbouncer-transaction")
	through.Store(true)
	prev, had := os.LookupEnv("DATABASE_POOLER")
	_ = os.Setenv("DATABASE_POOLER", postgres.PoolerPgBouncerTransaction)
	defer func() {
		through.Store(false)
		if had {
			_ = os.Setenv("DATABASE_POOLER", prev)
		} else {
			_ = os.Unsetenv("DATABASE_POOLER")
		}
	}()
	if c := b.m.Run(); c != 0 {
		fmt.Fprintln(os.Stderr, "pgtest: FAIL through PgBouncer")
		return c
	}
	return code
}

// EmptyURL returns the URL of a new database without migrations (for
// testing the migrations themselves), dropped in t.Cleanup.
func EmptyURL(t testing.TB) string {
	t.Helper()
	once.Do(setupTemplate)
	if initErr != nil {
		t.Fatalf("pgtest: %v", initErr)
	}
	return create(t, "template0")
}

func create(t testing.TB, template string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := adminConn(ctx)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	name := randomName("qqt_")
	// Clones from one template must not overlap: Postgres refuses a
	// template with other sessions, and each CREATE DATABASE is one.
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template))
		if err == nil || attempt == 50 {
			break
		}
		time.Sleep(time.Duration(20+attempt*10) * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("pgtest: clone template: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := adminConn(ctx)
		if err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
		}
	})
	return dbURL(name)
}

// Pool returns a pool on a new migrated database for this test.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return PoolFor(t, URL(t))
}

// PoolFor opens a pool on url, closed in t.Cleanup. A URL through
// PgBouncer gets the pooler query mode (DATABASE_POOLER=pgbouncer-transaction).
func PoolFor(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg := postgres.Config{URL: url, MaxConns: 20}
	if IsPgBouncer(url) {
		cfg.Pooler = postgres.PoolerPgBouncerTransaction
	}
	pool, err := postgres.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

var logins sync.Map // function → *loginOnce

type loginOnce struct {
	once sync.Once
	ok   bool
	err  error
}

// FunctionURL returns dbURL (a URL from URL, possibly through a proxy)
// connecting as the function's own login role instead of the owner:
// postgres.LoginRole(function), created once per cluster without a
// password (the test cluster trusts local connections) as a member of the
// function's group role from migration 0090. ok is false, and dbURL is
// returned unchanged, when the function has no group role (a function
// without its grants yet, or a test-only binary).
func FunctionURL(t testing.TB, dbURL, function string) (u string, ok bool) {
	t.Helper()
	once.Do(setupTemplate)
	if initErr != nil {
		t.Fatalf("pgtest: %v", initErr)
	}
	v, _ := logins.LoadOrStore(function, &loginOnce{})
	l := v.(*loginOnce)
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := adminConn(ctx)
		if err != nil {
			l.err = err
			return
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`,
			postgres.FunctionRole(function)).Scan(&l.ok); err != nil || !l.ok {
			l.err = err
			return
		}
		l.err = postgres.EnsureLoginRole(ctx, conn, function, "")
	})
	if l.err != nil {
		t.Fatalf("pgtest: login role of %s: %v", function, l.err)
	}
	if !l.ok {
		return dbURL, false
	}
	parsed, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	parsed.User = url.User(postgres.LoginRole(function))
	return parsed.String(), true
}

// IsOwnerURL reports whether dbURL connects as the owner role of the test
// cluster (the user of TEST_DATABASE_URL), as URL's URLs do.
func IsOwnerURL(dbURL string) bool {
	once.Do(setupTemplate)
	if initErr != nil {
		return false
	}
	u, err := url.Parse(dbURL)
	return err == nil && u.User.Username() == baseURL.User.Username()
}

// Querier is a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Rows returns the number of rows in every table of the database (the
// migrations' bookkeeping aside): tests of bad input assert that it does
// not change, i.e. nothing at all was written — no inbox row, no business
// row, no outbox row.
func Rows(t testing.TB, q Querier) int64 {
	t.Helper()
	var n int64
	err := q.QueryRow(context.Background(), `SELECT coalesce(sum((xpath('/row/c/text()',
			query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text::bigint), 0)
		FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
			AND table_name <> 'goose_db_version'`).Scan(&n)
	if err != nil {
		t.Fatalf("pgtest: count rows: %v", err)
	}
	return n
}

// Count returns the one number sql selects (a count(*), a sum, a column of
// one row), failing the test when the query fails: the row counts and
// totals that tests assert.
func Count(t testing.TB, q Querier, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := q.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

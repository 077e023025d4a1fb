// Package pgtest gives each test its own freshly migrated database on the
// server at TEST_DATABASE_URL: the migrations run once per test binary into
// a template database, and every test gets a clone of it (CREATE DATABASE …
// TEMPLATE), dropped when the test ends (after exposure-notifications-server
// and river's riverdbtest). Run tests through hack/with-postgres.sh (make
// test does) to get a throwaway server when TEST_DATABASE_URL is unset.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/postgres"
)

var (
	once     sync.Once
	template string
	baseURL  *url.URL
	initErr  error
)

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
	if _, err := postgres.Migrate(ctx, dbURL(template)); err != nil {
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
	return create(t, template)
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

// PoolFor opens a pool on url, closed in t.Cleanup.
func PoolFor(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(context.Background(), postgres.Config{URL: url, MaxConns: 20})
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

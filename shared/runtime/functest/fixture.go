package functest

import (
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
)

// Parts says what Setup starts beside the function.
type Parts struct {
	// Sink starts a recording Sink and gives its URL as K_SINK.
	Sink bool
	// S3 starts the S3 server of the tests (s3test) and gives its
	// environment (S3_BUCKET, S3_ENDPOINT, …).
	S3 bool
	// NoDatabase gives an empty DATABASE_URL instead of a new database:
	// for a function without one (webhook-ingress).
	NoDatabase bool
	// ProxyDatabase and ProxyS3 put a Proxy between the function and the
	// database or the S3 server, for the contract's transient faults; the
	// fixture's Pool and Store go direct.
	ProxyDatabase, ProxyS3 bool
	// Env is added last to the environment, so it may override the rest.
	Env []string
}

// Fixture is the common part of a contract test's fixture: a function
// binary running on its own migrated database, with the sink and the S3
// server asked for. A package's own fixture embeds it and adds what only
// that package needs.
type Fixture struct {
	// Fn is the running function.
	Fn *Instance
	// DatabaseURL is the owner's URL of the test's database ("" with
	// NoDatabase): start a second function on the same database with it.
	DatabaseURL string
	// Pool is a pool of the owner role on that database, for the test's
	// own queries (nil with NoDatabase).
	Pool *pgxpool.Pool
	// Sink records what the relay delivers (nil unless asked for).
	Sink *Sink
	// S3 and Store are the S3 server and a store on its bucket (nil
	// unless asked for).
	S3    *s3test.Server
	Store *docs.Store
	// DatabaseProxy and S3Proxy are the proxies asked for (nil otherwise).
	DatabaseProxy, S3Proxy *Proxy
	// Env is the environment Fn was started with (PORT aside): restart
	// the function with it to test a redelivery after a crash.
	Env []string
}

// Setup starts bin for one test on a new database (pgtest.URL), with the
// parts asked for; everything is stopped and removed when the test ends.
// The environment is DATABASE_URL, K_SINK, the S3 variables, then p.Env.
func Setup(t testing.TB, bin string, p Parts) *Fixture {
	t.Helper()
	f := &Fixture{}
	if p.NoDatabase {
		f.Env = append(f.Env, "DATABASE_URL=")
	} else {
		f.DatabaseURL = pgtest.URL(t)
		u := f.DatabaseURL
		if p.ProxyDatabase {
			f.DatabaseProxy, u = proxied(t, u)
		}
		f.Env = append(f.Env, "DATABASE_URL="+u)
	}
	if p.Sink {
		f.Sink = NewSink(t)
		f.Env = append(f.Env, "K_SINK="+f.Sink.URL)
	}
	if p.S3 {
		f.S3, f.Store = s3test.New(t)
		for _, kv := range f.S3.Env() {
			if endpoint, ok := strings.CutPrefix(kv, "S3_ENDPOINT="); ok && p.ProxyS3 {
				f.S3Proxy, endpoint = proxied(t, endpoint)
				kv = "S3_ENDPOINT=" + endpoint
			}
			f.Env = append(f.Env, kv)
		}
	}
	f.Env = append(f.Env, p.Env...)
	f.Fn = Start(t, bin, f.Env...)
	if !p.NoDatabase {
		f.Pool = pgtest.PoolFor(t, f.DatabaseURL)
	}
	return f
}

// proxied starts a Proxy to the host of rawURL and returns it with rawURL
// going through it.
func proxied(t testing.TB, rawURL string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, u.Host)
	u.Host = p.Addr
	return p, u.String()
}

// Count returns the one number sql selects on the test's database (a
// count(*), a sum, one row's column); see pgtest.Count.
func (f *Fixture) Count(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	return pgtest.Count(t, f.Pool, sql, args...)
}

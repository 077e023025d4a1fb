package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A function's first event waits for the database connection: on a cold
// start it is the longest thing the event waits for (the server forks and
// starts a backend, pgx prepares the session). StartEarly lets a program
// begin that connection while it is still initialising, before main, and
// hand the pool to the Open that asks for the same configuration
// (package postgres/early calls it from its init).

// earlyPool is the pool StartEarly opened, until Open takes it.
var earlyPool struct {
	sync.Mutex
	cfg  Config
	pool *pgxpool.Pool
}

// warmUps holds, per pool, the warm-up in progress or done (WarmUp).
var warmUps sync.Map // *pgxpool.Pool → *warmUp

type warmUp struct {
	done chan struct{}
	err  error
}

// earlyUnclaimed is how long a pool StartEarly opened waits for an Open
// with its configuration before it is closed: a program that imports a
// function's main package without running it (a tool, a test binary with
// DATABASE_URL set) does not keep a session open.
const earlyUnclaimed = 30 * time.Second

// StartEarly opens a pool on c and begins its first connection in the
// background (WarmUp). The next Open with the same configuration and no
// tracer returns that pool instead of a new one; unclaimed for
// earlyUnclaimed after its warm-up, it is closed. Errors are not reported
// here: the Open that follows reports them.
func StartEarly(c Config) {
	pool, err := Open(context.Background(), c)
	if err != nil {
		return
	}
	earlyPool.Lock()
	old := earlyPool.pool
	earlyPool.cfg, earlyPool.pool = c, pool
	earlyPool.Unlock()
	if old != nil {
		old.Close()
	}
	w := startWarmUp(pool)
	go func() {
		<-w.done
		time.Sleep(earlyUnclaimed)
		earlyPool.Lock()
		unclaimed := earlyPool.pool == pool
		if unclaimed {
			earlyPool.pool = nil
		}
		earlyPool.Unlock()
		if unclaimed {
			pool.Close()
		}
	}()
}

// claimEarly takes the early pool when want accepts its configuration,
// and returns it (nil when there is none or want refuses it: a refused
// pool stays for another Open, or is closed once unclaimed).
func claimEarly(want func(Config) bool) *pgxpool.Pool {
	earlyPool.Lock()
	defer earlyPool.Unlock()
	pool := earlyPool.pool
	if pool == nil || !want(earlyPool.cfg) {
		return nil
	}
	earlyPool.pool = nil
	return pool
}

// WarmUp opens pool's first connection and returns when it is made (or
// failed, with the error), within 5 s. The socket is opened before pgx
// prepares the connection (DialAhead). A pool from StartEarly is being
// warmed up already: WarmUp waits for that. Callers hold events back
// until it returns, so that the first event does not open a second
// connection while the first is still being made.
func WarmUp(ctx context.Context, pool *pgxpool.Pool) error {
	w := startWarmUp(pool)
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startWarmUp begins pool's warm-up once and returns it.
func startWarmUp(pool *pgxpool.Pool) *warmUp {
	if v, ok := warmUps.Load(pool); ok { // the common case: every later caller (dead-letter asks on each event)
		return v.(*warmUp)
	}
	v, loaded := warmUps.LoadOrStore(pool, &warmUp{done: make(chan struct{})})
	w := v.(*warmUp)
	if loaded {
		return w
	}
	go func() {
		defer close(w.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		DialAhead(ctx, pool) // the server starts the session while pgx prepares it
		c, err := pool.Acquire(ctx)
		if err == nil {
			c.Release()
		}
		w.err = err
		FinishDialAhead(pool)
	}()
	return w
}

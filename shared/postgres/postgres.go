// Package postgres holds the database plumbing every function shares: the
// pgx pool, transactions, and the embedded migrations.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is the database part of every function's configuration.
type Config struct {
	// URL is the Postgres connection URL.
	URL string `envconfig:"DATABASE_URL" required:"true"`
	// MaxConns bounds the pool; Knative's container concurrency should not exceed it by much.
	MaxConns int32 `envconfig:"DATABASE_MAX_CONNS" default:"10"`
	// ConnectTimeout bounds establishing one connection (TCP, TLS and
	// authentication); a connect_timeout in the URL wins over it.
	ConnectTimeout time.Duration `envconfig:"DATABASE_CONNECT_TIMEOUT" default:"5s"`
	// StatementTimeout is the statement_timeout of every statement in a
	// transaction begun by InTx on the pool; 0 leaves the server's.
	StatementTimeout time.Duration `envconfig:"DATABASE_STATEMENT_TIMEOUT" default:"30s"`
	// LockTimeout is the lock_timeout of those transactions: how long a
	// statement waits for a row, table or advisory lock; 0 leaves the server's.
	LockTimeout time.Duration `envconfig:"DATABASE_LOCK_TIMEOUT" default:"10s"`
	// Pooler says what URL points at: PoolerNone (Postgres itself),
	// PoolerPgBouncerTransaction or PoolerPgBouncerSession.
	Pooler string `envconfig:"DATABASE_POOLER" default:"none"`
	// ListenURL is a direct (or session-pooled) URL for the outbox relay's
	// LISTEN. Empty: the relay listens through URL, except behind a
	// transaction pooler, where it polls.
	ListenURL string `envconfig:"DATABASE_LISTEN_URL"`
}

// beginQueries holds, per pool opened by Open, the statement that begins
// InTx's transactions with their timeouts.
var beginQueries sync.Map // *pgxpool.Pool → string

// beginQuery is BEGIN followed by SET LOCAL of the configured timeouts, sent
// as one simple-protocol query: no extra round trip, and the settings end
// with the transaction, so they hold behind a transaction pooler too
// (PgBouncer 1.18 refuses them as startup parameters). Used behind a
// pooler only: a direct connection has them as session settings
// (sessionParams).
func (c Config) beginQuery() string {
	q := []string{"BEGIN"}
	if c.StatementTimeout > 0 {
		q = append(q, fmt.Sprintf("SET LOCAL statement_timeout = %d", c.StatementTimeout.Milliseconds()))
	}
	if c.LockTimeout > 0 {
		q = append(q, fmt.Sprintf("SET LOCAL lock_timeout = %d", c.LockTimeout.Milliseconds()))
	}
	return strings.Join(q, "; ")
}

// sessionParams are the configured timeouts as startup parameters, for a
// connection to Postgres itself: the server applies them to the session
// as it starts, so no statement of any transaction has to set them. (A
// pooler gets them per transaction instead: PgBouncer refuses them as
// startup parameters, and a pooled server session is not ours.)
func (c Config) sessionParams() map[string]string {
	p := map[string]string{}
	if c.StatementTimeout > 0 {
		p["statement_timeout"] = strconv.FormatInt(c.StatementTimeout.Milliseconds(), 10)
	}
	if c.LockTimeout > 0 {
		p["lock_timeout"] = strconv.FormatInt(c.LockTimeout.Milliseconds(), 10)
	}
	return p
}

// RefusedStartupParameter reports whether err is a server refusing a
// startup parameter (SQLSTATE 08P01, "unsupported startup parameter"), as
// PgBouncer refuses the session timeouts of a pool opened with
// DATABASE_POOLER=none.
func RefusedStartupParameter(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "08P01" && strings.Contains(pe.Message, "unsupported startup parameter")
}

// The values of DATABASE_POOLER.
const (
	PoolerNone                 = "none"
	PoolerPgBouncerTransaction = "pgbouncer-transaction"
	PoolerPgBouncerSession     = "pgbouncer-session"
)

// Check refuses a DATABASE_POOLER value it does not know and a
// DATABASE_LISTEN_URL that is not a Postgres URL.
func (c Config) Check() error {
	if c.ListenURL != "" {
		if _, err := pgx.ParseConfig(c.ListenURL); err != nil {
			return fmt.Errorf("DATABASE_LISTEN_URL: %w", err)
		}
	}
	switch c.Pooler {
	case "", PoolerNone, PoolerPgBouncerTransaction, PoolerPgBouncerSession:
		return nil
	}
	return fmt.Errorf("DATABASE_POOLER: unknown value %q (want %s, %s or %s)",
		c.Pooler, PoolerNone, PoolerPgBouncerTransaction, PoolerPgBouncerSession)
}

// TransactionPooled reports whether a server connection is only ours for
// one transaction: no session state, no named statements, no LISTEN and
// no session advisory locks survive it.
func (c Config) TransactionPooled() bool { return c.Pooler == PoolerPgBouncerTransaction }

// PoolerSafe makes cc work through a transaction pooler. No statement
// outlives the message sequence that created it: a query's argument and
// result types are described once with the unnamed statement (cached per
// connection), and every execution parses the SQL again in the same round
// trip as its Bind and Execute, so it never depends on which server
// connection the pooler hands out. Measured through PgBouncer 1.18: the
// exec and simple-protocol modes cannot encode a Go struct or map into a
// jsonb parameter (they do not know its type); this mode can.
func PoolerSafe(cc *pgx.ConnConfig) {
	cc.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	cc.StatementCacheCapacity = 0
	if cc.DescriptionCacheCapacity == 0 {
		cc.DescriptionCacheCapacity = 512
	}
}

// Open creates a pool. It does not connect: the first connection is made
// by WarmUp or when the first event needs one, so a database outage turns
// into 5xx answers rather than a crash loop. The pool StartEarly opened
// with the same configuration, when there is one and tracer is nil, is
// returned instead of a new one.
//
// Every statement on the pool runs with the configured statement and lock
// timeouts. Connected to Postgres itself (DATABASE_POOLER=none) they are
// the session's, set as startup parameters; behind PgBouncer each
// transaction sets them (InTx, QueueBegin, Settings), and statements
// outside a transaction keep the server's. Behind a transaction pooler
// (pgbouncer-transaction) the pool also uses PoolerSafe's query mode.
// tracer, when not nil, is set on every connection (the OpenTelemetry pgx
// tracer).
func Open(ctx context.Context, c Config, tracer ...pgx.QueryTracer) (*pgxpool.Pool, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	traced := len(tracer) > 0 && tracer[0] != nil
	if pool := claimEarly(func(e Config) bool { return e == c && !traced }); pool != nil {
		return pool, nil // opened by StartEarly, its first connection under way
	}
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if c.TransactionPooled() {
		PoolerSafe(pc.ConnConfig)
	}
	if c.MaxConns > 0 {
		pc.MaxConns = c.MaxConns
	}
	if pc.ConnConfig.ConnectTimeout == 0 && c.ConnectTimeout > 0 {
		pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	}
	pc.MaxConnIdleTime = 5 * time.Minute
	direct := c.Pooler == "" || c.Pooler == PoolerNone
	if direct {
		for k, v := range c.sessionParams() { // over any in the URL, as SET LOCAL would be
			pc.ConnConfig.RuntimeParams[k] = v
		}
	}
	ahead := &dialAhead{dial: pc.ConnConfig.DialFunc, lookup: pc.ConnConfig.LookupFunc}
	pc.ConnConfig.DialFunc, pc.ConnConfig.LookupFunc = ahead.Dial, ahead.Lookup
	if len(tracer) > 0 && tracer[0] != nil {
		pc.ConnConfig.Tracer = tracer[0]
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	dialsAhead.Store(pool, ahead)
	if c.TransactionPooled() {
		transactionPooled.Store(pool, true)
	}
	if q := c.beginQuery(); q != "BEGIN" {
		if direct {
			sessionTimeouts.Store(pool, true)
		} else {
			beginQueries.Store(pool, q)
			batchSettings.Store(pool, c.settingsQuery())
		}
		timeouts.Store(pool, [2]time.Duration{c.StatementTimeout, c.LockTimeout})
	}
	return pool, nil
}

// Beginner is what InTx needs: a pool, a connection or a transaction
// (which gives a savepoint).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn in a transaction and commits when fn returns nil. It rolls
// back when fn returns an error or panics (the panic then goes on up), on a
// context that is not cancelled, so neither a cancelled request nor a
// panicking handler leaves a connection stuck in an open transaction
// (after riverqueue/river rivershared/util/dbutil WithTx). On a pool from
// Open the transaction carries the configured statement and lock timeouts.
func InTx(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) (err error) {
	tx, err := begin(ctx, db)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// After a commit (successful or not) the rollback is a no-op.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// batchSettings holds, per pool opened by Open, the set_config calls that
// set the configured timeouts for the transaction (Settings).
var batchSettings sync.Map // *pgxpool.Pool → string

// transactionPooled holds the pools opened by Open behind a transaction
// pooler (TransactionPooled).
var transactionPooled sync.Map // *pgxpool.Pool → true

// TransactionPooled reports whether pool was opened by Open behind a
// transaction pooler (DATABASE_POOLER=pgbouncer-transaction), where no
// statement stays prepared: every execution is parsed and planned again.
func TransactionPooled(pool *pgxpool.Pool) bool {
	_, ok := transactionPooled.Load(pool)
	return ok
}

// timeouts holds, per pool opened by Open with timeouts, its statement
// and lock timeouts (Timeouts).
var timeouts sync.Map // *pgxpool.Pool → [2]time.Duration

// sessionTimeouts holds the pools opened by Open whose sessions carry the
// timeouts (SessionTimeouts).
var sessionTimeouts sync.Map // *pgxpool.Pool → true

// SessionTimeouts reports whether every session of pool already has
// Timeouts(pool) as its statement and lock timeouts (a pool from Open on
// a direct connection), so that a transaction needs to set them only to
// shorten them.
func SessionTimeouts(pool *pgxpool.Pool) bool {
	_, ok := sessionTimeouts.Load(pool)
	return ok
}

func (c Config) lockSetting() string {
	return fmt.Sprintf("set_config('lock_timeout', '%d', true)", c.LockTimeout.Milliseconds())
}

// Timeouts are the statement and lock timeouts of pool's transactions
// (0: none), for a caller that shortens them (SessionTimeouts says whether
// the session already has them).
func Timeouts(pool *pgxpool.Pool) (statement, lock time.Duration) {
	if t, ok := timeouts.Load(pool); ok {
		d := t.([2]time.Duration)
		return d[0], d[1]
	}
	return 0, 0
}

// settingsQuery is the SET LOCALs of beginQuery as set_config calls, for a
// select list.
func (c Config) settingsQuery() string {
	var q []string
	if c.StatementTimeout > 0 {
		q = append(q, fmt.Sprintf("set_config('statement_timeout', '%d', true)", c.StatementTimeout.Milliseconds()))
	}
	if c.LockTimeout > 0 {
		q = append(q, c.lockSetting())
	}
	return strings.Join(q, ", ")
}

// Settings returns the select list that gives the current transaction
// the statement and lock timeouts InTx gives transactions on pool (e.g.
// "set_config('statement_timeout', '30000', true), …"), or "" when there
// are none to set: none configured, or the session has them already (a
// direct connection). A transaction begun in a batch (pgx.Batch.BeginTx)
// runs it in its first statement, so the timeouts cost no statement of
// their own.
func Settings(pool *pgxpool.Pool) string {
	if q, ok := batchSettings.Load(pool); ok {
		return q.(string)
	}
	return ""
}

// QueueBegin makes b begin a transaction (pgx.Batch.BeginTx: no round trip
// of its own) with the statement and lock timeouts InTx gives transactions
// on pool, as one more statement in b. It must be called before anything
// else is queued. (The runtime's event transaction puts Settings into its
// inbox insert instead, saving that statement.)
func QueueBegin(b *pgx.Batch, pool *pgxpool.Pool) {
	b.BeginTx(pgx.TxOptions{})
	if q := Settings(pool); q != "" {
		b.Queue("SELECT " + q)
	}
}

func begin(ctx context.Context, db Beginner) (pgx.Tx, error) {
	if pool, ok := db.(*pgxpool.Pool); ok {
		if q, ok := beginQueries.Load(pool); ok {
			return pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: q.(string)})
		}
	}
	return db.Begin(ctx)
}

// InTxV is InTx for functions that return a value.
func InTxV[T any](ctx context.Context, db Beginner, fn func(tx pgx.Tx) (T, error)) (T, error) {
	var v T
	err := InTx(ctx, db, func(tx pgx.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v, err
}

// IsUniqueViolation reports whether err is a unique-constraint violation,
// optionally of the named constraint.
func IsUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return false
	}
	return constraint == "" || pe.ConstraintName == constraint
}

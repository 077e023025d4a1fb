package functest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
)

// OnTx calls a function's handlers directly on one transaction of the
// test database, with typed payloads: no HTTP, no inbox, no outbox, no
// relay. Tests of business rules use it (the style of knative/func's
// function_test.go and of river's tests); what the pipeline promises —
// status codes, redelivery, problem+json — stays with the contract tests
// over HTTP. The transaction is rolled back when the test ends: nothing a
// test does there is kept, and every test starts from the migrated
// database.
type OnTx struct {
	Tx pgx.Tx
	Fn *runtime.Function
	// Time is the event time of every call; Source its CloudEvents source.
	Time   time.Time
	Source string
}

// NewOnTx begins a transaction on pool for fn's handlers, with event time
// at; it is rolled back in t.Cleanup.
func NewOnTx(t testing.TB, pool *pgxpool.Pool, fn *runtime.Function, at time.Time) *OnTx {
	t.Helper()
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return &OnTx{Tx: tx, Fn: fn, Time: at, Source: "/functest/on-tx"}
}

// NewOnTxFor is NewOnTx on a new migrated database: build makes the
// function from its environment (Env: the database, the business time
// zone, its calendar).
func NewOnTxFor(t testing.TB, name string, at time.Time, build func(env *runtime.Env) *runtime.Function) *OnTx {
	t.Helper()
	env := Env(t, name)
	return NewOnTx(t, env.Pool, build(env), at)
}

// Handle calls the handler of typ with payload as the event's data and
// returns its result, failing the test on any error.
func (h *OnTx) Handle(t testing.TB, typ string, payload any) runtime.Result {
	t.Helper()
	res, err := h.Try(t, typ, payload)
	if err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	return res
}

// Try calls the handler of typ with payload as the event's data: payload
// is encoded as a sender encodes it, then decoded and validated by the
// handler as the server does (an EINVALID error for bad data). Each call
// has a new event id and runs in a savepoint, rolled back when it fails
// as the server rolls back its transaction, so a failed call leaves the
// transaction usable and unchanged.
func (h *OnTx) Try(t testing.TB, typ string, payload any) (runtime.Result, error) {
	t.Helper()
	handler, ok := h.Fn.Handlers[typ]
	if !ok {
		t.Fatalf("%s handles no %s", h.Fn.Name, typ)
	}
	data, err := json.Marshal(payload)
	if err != nil {
		t.Fatalf("encode %s payload: %v", typ, err)
	}
	m := runtime.Meta{ID: NextID(), Source: h.Source, Type: typ, Time: h.Time, HasTime: true, Function: h.Fn.Name}
	run, err := handler.Prepare(m, data)
	if err != nil {
		return runtime.Result{}, err
	}
	ctx := context.Background()
	sp, err := h.Tx.Begin(ctx) // a savepoint
	if err != nil {
		t.Fatal(err)
	}
	res, err := run(ctx, sp)
	if err != nil {
		_ = sp.Rollback(ctx)
		return runtime.Result{}, err
	}
	if err := sp.Commit(ctx); err != nil { // releases the savepoint
		t.Fatal(err)
	}
	return res, nil
}

// Count is pgtest.Count on the transaction: what the calls so far wrote.
func (h *OnTx) Count(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	return pgtest.Count(t, h.Tx, sql, args...)
}

// As decodes an outgoing event's data into a T as a receiver would: the
// data goes through JSON, so a test reads the reply the wire carries.
func As[T any](t testing.TB, o runtime.Outgoing) T {
	t.Helper()
	var v T
	b, err := json.Marshal(o.Data)
	if err != nil {
		t.Fatalf("encode %s data: %v", o.Type, err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s data %s: %v", o.Type, b, err)
	}
	return v
}

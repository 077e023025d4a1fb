package functest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"golang.org/x/text/width"

	"github.com/qinqing/qinqing/shared/calendar"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/testkit"
)

// InProcess runs a function's handlers in the test process on a real
// database, the way the server runs them (Prepare, then Run inside one
// transaction) but without HTTP: fuzz targets need thousands of payloads a
// second, which a binary over HTTP cannot give.
type InProcess struct {
	Pool *pgxpool.Pool
	Fn   *runtime.Function
	// Time is the event time of every payload.
	Time time.Time

	rows int64 // rows in the database before the first Check, -1 until then
}

// NewInProcess returns an InProcess running fn on pool with event time at.
func NewInProcess(pool *pgxpool.Pool, fn *runtime.Function, at time.Time) *InProcess {
	return &InProcess{Pool: pool, Fn: fn, Time: at, rows: -1}
}

// Env returns a function environment on a new migrated test database,
// with a no-op logger and the business time zone Asia/Shanghai.
func Env(t testing.TB, name string) *runtime.Env {
	t.Helper()
	loc := testkit.Shanghai
	return &runtime.Env{Name: name, Pool: pgtest.Pool(t), Log: zap.NewNop().Sugar(), Loc: loc, Calendar: calendar.NewCache(loc)}
}

func (p *InProcess) meta(typ string) runtime.Meta {
	return runtime.Meta{ID: "in-process", Source: "/functest/in-process", Type: typ, Time: p.Time, HasTime: true, Function: p.Fn.Name}
}

// Commit handles one event for real and commits it (a fixture for the
// payloads that follow, before the first Check); it fails the test unless
// the event is handled.
func (p *InProcess) Commit(t testing.TB, typ string, data any) {
	t.Helper()
	p.rows = -1
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	run, err := p.Fn.Handlers[typ].Prepare(p.meta(typ), b)
	if err != nil {
		t.Fatalf("%s %s: %v", typ, b, err)
	}
	if err := postgres.InTx(context.Background(), p.Pool, func(tx pgx.Tx) error {
		_, err := run(context.Background(), tx)
		return err
	}); err != nil {
		t.Fatalf("%s %s: %v", typ, b, err)
	}
}

// Check handles data as an event of type typ and fails the test unless the
// server's answer would be a 400 with nothing written or a 200 — never a
// 5xx, which Knative would retry until the event is dead-lettered. The
// transaction is always rolled back, so every input meets the same state.
func (p *InProcess) Check(t *testing.T, typ string, data []byte) {
	t.Helper()
	ctx := context.Background()
	if p.rows < 0 {
		p.rows = pgtest.Rows(t, p.Pool) // every Check rolls back: the state stays this
	}
	run, err := p.Fn.Handlers[typ].Prepare(p.meta(typ), data)
	if err != nil {
		if event.ErrorCode(err) != event.EINVALID {
			t.Fatalf("Prepare(%q) = %v: a 5xx, want EINVALID (400) or success", data, err)
		}
		if after := pgtest.Rows(t, p.Pool); after != p.rows {
			t.Fatalf("Prepare(%q) refused the event but %d rows were written", data, after-p.rows)
		}
		return
	}
	tx, err := p.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	res, err := run(ctx, tx)
	switch {
	case err != nil && event.ErrorCode(err) != event.EINVALID:
		t.Fatalf("Run(%q) = %v: a 5xx, want a reply or EINVALID", data, err)
	case err != nil:
		return // 400: the server rolls the transaction back
	case res.Reply.Type == "":
		t.Fatalf("Run(%q) returned no reply", data)
	}
	// The server stores the reply and the follow-ups as json columns in
	// the same transaction: they must encode and Postgres must take them.
	for _, o := range append([]runtime.Outgoing{res.Reply}, res.FollowUps...) {
		b, err := json.Marshal(o.Data)
		if err != nil {
			t.Fatalf("Run(%q): %s does not encode: %v", data, o.Type, err)
		}
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT $1::json IS NOT NULL`, string(b)).Scan(&ok); err != nil {
			t.Fatalf("Run(%q): Postgres refuses the %s data: %v", data, o.Type, err)
		}
	}
}

// Seeds returns the seed corpus of a fuzz target for a payload: valid
// itself, then for every string in it (at any depth, arrays included) the
// hostile spellings of issue 12 — a NUL inside, a trailing space, a
// zero-width space, U+2010 for '-', capitals, full-width forms, 100,000
// characters — and the value mistyped as a number.
func Seeds(valid map[string]any) []string {
	var out []string
	add := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		out = append(out, string(b))
	}
	add(valid)
	variants := func(s string) []any {
		return []any{s[:len(s)/2] + "\x00" + s[len(s)/2:], s + " ", s + "\u200b", strings.ReplaceAll(s, "-", "\u2010"),
			strings.ToUpper(s), width.Widen.String(s), strings.Repeat("长", 100000), 7, "\x1b[31m" + s}
	}
	var walk func(v any, set func(any))
	walk = func(v any, set func(any)) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(e, func(n any) { x[k] = n })
			}
		case []any:
			for i, e := range x {
				walk(e, func(n any) { x[i] = n })
			}
		case string:
			for _, n := range variants(x) {
				set(n)
				add(valid)
			}
			set(x)
		}
	}
	walk(valid, nil)
	return out
}

package runtime_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
)

// TestDecisionWithoutReplyWritesNothing: a decision whose answer chooses
// no reply (a NULL type, or no answer row at all) is a fault of the
// handler's SQL. Its statement fails whole: the rows its CTEs wrote, the
// inbox row and the follow-ups are not kept, and the event is answered
// 5xx (so Knative retries); a decision that does answer, on the same
// table, is kept.
func TestDecisionWithoutReplyWritesNothing(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE decided (id text)`); err != nil {
		t.Fatal(err)
	}
	decision := func(answer string) runtime.Handler {
		return runtime.OnDecision(func(ctx context.Context, m runtime.Meta, p *benchPayload) (runtime.Decision, error) {
			return runtime.Decision{
				With:      `ins AS (INSERT INTO decided VALUES ($1) RETURNING id), ` + answer,
				Args:      []any{m.ID},
				FollowUps: []runtime.Outgoing{{Type: "decided.next", Data: map[string]int{"n": p.N}}},
			}, nil
		})
	}
	fn := &runtime.Function{Name: "decided", Handlers: map[string]runtime.Handler{
		"null": decision(`answer AS (SELECT NULL::text AS reply_type, '' AS reply_subject,
			(SELECT '{"id":"' || id || '"}' FROM ins) AS reply_data, true AS follow_ups)`),
		"none": decision(`answer AS (SELECT 'x' AS reply_type, '' AS reply_subject, '{}' AS reply_data, true AS follow_ups
			FROM ins WHERE false)`),
		"ok": decision(`answer AS (SELECT 'decided.done' AS reply_type, '' AS reply_subject,
			(SELECT '{"id":"' || id || '"}' FROM ins) AS reply_data, true AS follow_ups)`),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	defer srv.Close()
	send := func(typ, id string) (int, string) {
		t.Helper()
		return postEvent(srv, typ, "/decided", id, `{"n":1}`)
	}
	count := func() string {
		t.Helper()
		var rows, inbox, outbox int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM decided),
			(SELECT count(*) FROM qinqing.inbox WHERE function = 'decided'),
			(SELECT count(*) FROM qinqing.outbox WHERE producer = 'decided')`).Scan(&rows, &inbox, &outbox); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d rows, %d inbox, %d outbox", rows, inbox, outbox)
	}
	for _, typ := range []string{"null", "none"} {
		if status, body := send(typ, typ+"-1"); status < 500 {
			t.Errorf("%s: answered %d %s, want 5xx", typ, status, body)
		}
		if got := count(); got != "0 rows, 0 inbox, 0 outbox" {
			t.Fatalf("after a decision without a reply (%s): %s, want nothing", typ, got)
		}
	}
	if status, body := send("ok", "ok-1"); status != 200 || body != `{"id":"ok-1"}` {
		t.Fatalf("ok: answered %d %s", status, body)
	}
	if got := count(); got != "1 rows, 1 inbox, 1 outbox" {
		t.Fatalf("after a decision with its reply: %s, want 1, 1, 1", got)
	}
}

// TestDecisionAfterItsResultTypeChanged: decision statements stay
// prepared on their connection (a redelivery's fails by design, and pgx
// would drop it from its own cache). When a migration changes the type
// of a column the statement returns, the server refuses the prepared
// statement ("cached plan must not change result type"): the runtime
// prepares it again and sends it again (it failed whole), so the event
// is answered and the ones after it too.
func TestDecisionAfterItsResultTypeChanged(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	pooler := postgres.PoolerNone
	if pgtest.IsPgBouncer(url) {
		pooler = postgres.PoolerPgBouncerTransaction
	}
	pool, err := postgres.Open(context.Background(), postgres.Config{URL: url, MaxConns: 1, Pooler: pooler})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	fn := &runtime.Function{Name: "changed", Handlers: map[string]runtime.Handler{
		"d": runtime.OnDecision(func(ctx context.Context, m runtime.Meta, p *benchPayload) (runtime.Decision, error) {
			return runtime.Decision{With: `answer AS (SELECT 'changed.done' AS reply_type, '' AS reply_subject,
				json_build_object('n', $1::int)::text AS reply_data, false AS follow_ups)`, Args: []any{p.N}}, nil
		}),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	defer srv.Close()
	send := func(id string, n int) {
		t.Helper()
		if status, body := postEvent(srv, "d", "/changed", id, fmt.Sprintf(`{"n":%d}`, n)); status != 200 || body != fmt.Sprintf(`{"n" : %d}`, n) {
			t.Fatalf("%s: %d %s", id, status, body)
		}
	}
	send("before", 1)
	admin := pgtest.PoolFor(t, url)
	if _, err := admin.Exec(context.Background(), `ALTER TABLE qinqing.inbox ALTER COLUMN reply_type TYPE varchar`); err != nil {
		t.Fatal(err)
	}
	send("after-1", 2)
	send("after-2", 3)
}

package runtime_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

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

package runtime_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
)

// TestDecisionsTakeTurnsTogether: decisions with one Serial that arrive
// while one of theirs is in flight are sent together in the next round
// trip, one transaction. Each still gets its own outcome: a redelivery
// inside the batch is answered the stored reply, and a decision that
// fails (no reply chosen) rolls the batch back, whose decisions are then
// sent one by one — the failing one answered 5xx with nothing kept, the
// others handled. (Not behind a transaction pooler: there decisions are
// not queued.)
func TestDecisionsTakeTurnsTogether(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	takeTurns(t, pool, pool, func(int) string { return "gate" }, 1, 6)
}

// TestDecisionsWaitingForAConnectionGoTogether: with every connection of
// the pool in a round trip, decisions for other keys (other forums) wait
// in line, and go together, one transaction, when a round trip ends;
// each with its own outcome as above.
func TestDecisionsWaitingForAConnectionGoTogether(t *testing.T) {
	t.Parallel()
	if pgtest.ThroughPgBouncer() {
		t.Skip("behind a transaction pooler decisions go straight to the database")
	}
	url := pgtest.URL(t)
	pool, err := postgres.Open(context.Background(), postgres.Config{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// Two go at once (the pool's two connections) and wait for the gate
	// in the database; the ten others, each for a key of its own, in
	// line: one transaction for them when the first two end (at most 4
	// in all; one by one, 12).
	takeTurns(t, pgtest.PoolFor(t, url), pool, func(i int) string { return fmt.Sprint("key-", i) }, 2, 4)
}

// takeTurns sends 12 decisions (and a redelivery of the fourth, and, in
// a second round, a decision that chooses no reply), the ith with Serial
// keyOf(i), while a gate row their statements lock is held: inDB of them
// must then wait for it in the database and the others in line; once
// the gate is let go, each must have its own outcome, in at most maxXids
// transactions. The function's server uses pool; the test holds the gate
// and looks on with admin.
func takeTurns(t *testing.T, admin, pool *pgxpool.Pool, keyOf func(int) string, inDB, maxXids int) {
	if pgtest.ThroughPgBouncer() {
		t.Skip("behind a transaction pooler decisions go straight to the database (every statement is planned again: queued, the planning would not run side by side)")
	}
	ctx := context.Background()
	if _, err := admin.Exec(ctx, `CREATE TABLE gate (id int); INSERT INTO gate VALUES (1);
		CREATE TABLE turned (id text, xid bigint)`); err != nil {
		t.Fatal(err)
	}
	decision := func(reply string) runtime.Handler {
		return runtime.OnDecision(func(ctx context.Context, m runtime.Meta, p *struct {
			Key string `json:"key"`
		}) (runtime.Decision, error) {
			return runtime.Decision{
				With: `g AS (SELECT id FROM gate FOR UPDATE),
					ins AS (INSERT INTO turned SELECT $1, txid_current() FROM g RETURNING id),
					answer AS (SELECT ` + reply + ` AS reply_type, '' AS reply_subject,
						(SELECT '{"id":"' || id || '"}' FROM ins) AS reply_data, false AS follow_ups)`,
				Args:   []any{m.ID},
				Serial: p.Key,
			}, nil
		})
	}
	fn := &runtime.Function{Name: "turned", Handlers: map[string]runtime.Handler{
		"ok":   decision(`'turned.done'`),
		"null": decision(`NULL::text`),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	defer srv.Close()
	send := func(typ, id, key string) (int, string) {
		return postEvent(srv, typ, "/turned", id, `{"key":"`+key+`"}`)
	}
	waiting := func() int {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	for round, withFailure := range []bool{false, true} {
		// The gate is held: the first decisions wait for it in the
		// database, the others in line.
		tx, err := admin.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT FROM gate FOR UPDATE`); err != nil {
			t.Fatal(err)
		}
		type answer struct {
			status int
			body   string
		}
		ids, keys := []string{}, []string{}
		for i := 0; i < 12; i++ {
			ids = append(ids, fmt.Sprintf("r%d-%d", round, i))
			keys = append(keys, keyOf(i))
		}
		ids, keys = append(ids, ids[3]), append(keys, keys[3]) // a redelivery in the same line
		answers := make([]answer, len(ids)+1)
		var wg sync.WaitGroup
		start := func(i int, typ, id, key string) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i].status, answers[i].body = send(typ, id, key)
			}()
		}
		for i := range inDB {
			start(i, "ok", ids[i], keys[i])
			for deadline := time.Now().Add(10 * time.Second); waiting() != i+1; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("decision %d does not wait for the gate in the database", i)
				}
			}
		}
		for i := inDB; i < len(ids); i++ {
			start(i, "ok", ids[i], keys[i])
		}
		if withFailure {
			start(len(ids), "null", fmt.Sprintf("r%d-null", round), keyOf(11))
		}
		time.Sleep(200 * time.Millisecond) // all in line
		if n := waiting(); n != inDB {
			t.Errorf("%d statements wait for the gate in the database, want %d: the others wait in line", n, inDB)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for i, id := range ids {
			if a := answers[i]; a.status != 200 || a.body != `{"id":"`+id+`"}` {
				t.Errorf("round %d, %s: %d %s", round, id, a.status, a.body)
			}
		}
		if withFailure && answers[len(ids)].status < 500 {
			t.Errorf("round %d: the decision without a reply answered %d %s, want 5xx", round, answers[len(ids)].status, answers[len(ids)].body)
		}
		var rows, xids int
		if err := admin.QueryRow(ctx, `SELECT count(*), count(DISTINCT xid) FROM turned WHERE id LIKE $1`, fmt.Sprintf("r%d-%%", round)).Scan(&rows, &xids); err != nil {
			t.Fatal(err)
		}
		if rows != 12 {
			t.Errorf("round %d: %d rows, want 12 (one per event, none for the redelivery or the failure)", round, rows)
		}
		// One by one they would take 12 transactions; together, the first
		// go alone and the ones in line in one or a few more (a slow
		// sender may come after a batch has left).
		if !withFailure && xids > maxXids {
			t.Errorf("round %d: the 12 decisions went in %d transactions, want the ones in line together (at most %d)", round, xids, maxXids)
		}
	}
}

// TestRedeliveryInABatch: a redelivery of an event handled before,
// waiting in line with other decisions of its Serial, fails their batch
// on the inbox's key (its statement runs again, rolled back with the
// rest). It is answered the stored reply, and the others are sent
// together again, one transaction, not one by one.
func TestRedeliveryInABatch(t *testing.T) {
	t.Parallel()
	if pgtest.ThroughPgBouncer() {
		t.Skip("behind a transaction pooler decisions go straight to the database")
	}
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE gate (id int); INSERT INTO gate VALUES (1);
		CREATE TABLE turned (id text, xid bigint)`); err != nil {
		t.Fatal(err)
	}
	fn := &runtime.Function{Name: "turned", Handlers: map[string]runtime.Handler{
		"ok": runtime.OnDecision(func(ctx context.Context, m runtime.Meta, p *struct{}) (runtime.Decision, error) {
			return runtime.Decision{
				With: `g AS (SELECT id FROM gate FOR UPDATE),
					ins AS (INSERT INTO turned SELECT $1, txid_current() FROM g RETURNING id),
					answer AS (SELECT 'turned.done' AS reply_type, '' AS reply_subject,
						(SELECT '{"id":"' || id || '"}' FROM ins) AS reply_data, false AS follow_ups)`,
				Args:   []any{m.ID},
				Serial: "gate",
			}, nil
		}),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	defer srv.Close()
	send := func(id string) (int, string) { return postEvent(srv, "ok", "/turned", id, `{}`) }
	if status, body := send("handled"); status != 200 || body != `{"id":"handled"}` {
		t.Fatalf("first delivery: %d %s", status, body)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT FROM gate FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	ids := []string{"b0", "b1", "b2", "b3", "b4", "b5", "handled"}
	answers := make([]string, len(ids))
	var wg sync.WaitGroup
	start := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body := send(ids[i])
			answers[i] = fmt.Sprint(status, " ", body)
		}()
	}
	start(0) // alone, waiting for the gate in the database
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first decision does not wait for the gate")
		}
	}
	for i := 1; i < len(ids); i++ {
		start(i) // in line behind it, the redelivery last
	}
	time.Sleep(200 * time.Millisecond)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, id := range ids {
		if want := `200 {"id":"` + id + `"}`; answers[i] != want {
			t.Errorf("%s: %s, want %s", id, answers[i], want)
		}
	}
	var rows, xids int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT xid) FROM turned WHERE id IN ('b1', 'b2', 'b3', 'b4', 'b5')`).Scan(&rows, &xids); err != nil {
		t.Fatal(err)
	}
	if rows != 5 || xids != 1 {
		t.Errorf("the five in line with the redelivery: %d rows in %d transactions, want 5 in 1", rows, xids)
	}
	var handled int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM turned WHERE id = 'handled'`).Scan(&handled); err != nil {
		t.Fatal(err)
	}
	if handled != 1 {
		t.Errorf("%d rows for the redelivered event, want 1 (its first delivery's)", handled)
	}
}

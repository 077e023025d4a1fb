package runtime_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
)

// tripCounter is a TCP proxy in front of Postgres that counts round
// trips: a round trip begins each time the client sends after the server
// has answered (or first). Postgres answers a pipelined batch only at its
// Sync, so a batch is one round trip however many statements it holds.
type tripCounter struct {
	addr  string
	mu    sync.Mutex
	trips int
}

func newTripCounter(t *testing.T, target string) *tripCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := &tripCounter{addr: ln.Addr().String()}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			go c.pipe(client, server)
		}
	}()
	return c
}

func (c *tripCounter) pipe(client, server net.Conn) {
	defer client.Close()
	defer server.Close()
	var mu sync.Mutex
	clientSpoke := false // the last bytes seen came from the client
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				mu.Lock()
				clientSpoke = false
				mu.Unlock()
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				client.Close()
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			mu.Lock()
			if !clientSpoke {
				c.mu.Lock()
				c.trips++
				c.mu.Unlock()
			}
			clientSpoke = true
			mu.Unlock()
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *tripCounter) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.trips
	c.trips = 0
	return n
}

// The pipeline costs three round trips per event for a one-statement
// handler (BEGIN + inbox insert; the handler; outbox + reply + COMMIT),
// follow-ups included, and two for a redelivery (BEGIN + inbox insert;
// ROLLBACK + stored reply); a job whose statement is queued with the
// inbox row (QueueJob) two, a redelivery to it two; a handler built with
// OnDecision costs one, a redelivery to it two (its statement fails on
// the inbox's key; the stored reply) and, behind PgBouncer, where pgx
// drops a failed statement's description, three but the first (the
// description read again before the statement); a StagedReply handler two
// (the lookup, the inbox row with the reply), a redelivery to it two.
// Counted at the wire, on one warm connection.
func TestPipelineRoundTrips(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	pooler := postgres.PoolerNone
	if pgtest.IsPgBouncer(u.String()) {
		pooler = postgres.PoolerPgBouncerTransaction
	}
	counter := newTripCounter(t, u.Host)
	u.Host = counter.addr
	// With the timeouts every event's transaction carries (the session's
	// on a direct connection; behind PgBouncer set in the first batch, no
	// round trip of their own).
	pool, err := postgres.Open(context.Background(), postgres.Config{URL: u.String(), MaxConns: 1, Pooler: pooler,
		StatementTimeout: 3 * time.Second, LockTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE trips (source text, id text, n int)`); err != nil {
		t.Fatal(err)
	}
	fn := &runtime.Function{Name: "trips", Handlers: map[string]runtime.Handler{
		"one": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			_, err := tx.Exec(ctx, `INSERT INTO trips VALUES ($1, $2, $3)`, m.Source, m.ID, p.N)
			return runtime.Reply("one.done", map[string]int{"n": p.N}), err
		}),
		"fanout": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			_, err := tx.Exec(ctx, `INSERT INTO trips VALUES ($1, $2, $3)`, m.Source, m.ID, p.N)
			res := runtime.Reply("fanout.done", nil)
			for i := 0; i < p.N; i++ {
				res.FollowUps = append(res.FollowUps, runtime.Outgoing{Type: "fanout.next", Data: map[string]int{"i": i}})
			}
			return res, err
		}),
		"settings": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			var got string
			err := tx.QueryRow(ctx, `SELECT current_setting('statement_timeout') || ' ' || current_setting('lock_timeout')`).Scan(&got)
			return runtime.Reply("settings.done", map[string]string{"settings": got}), err
		}),
		// The whole work in one statement, reply and follow-ups chosen in
		// SQL: one round trip with the inbox row.
		"decision": runtime.OnDecision(func(ctx context.Context, m runtime.Meta, p *benchPayload) (runtime.Decision, error) {
			return runtime.Decision{
				With: `ins AS (INSERT INTO trips SELECT $1, $2, $3 RETURNING n),
					answer AS (SELECT 'decision.done' AS reply_type, '' AS reply_subject,
						json_build_object('n', (SELECT n FROM ins))::text AS reply_data, (SELECT n % 2 = 1 FROM ins) AS follow_ups)`,
				Args: []any{m.Source, m.ID, p.N},
				FollowUps: []runtime.Outgoing{{Type: "decision.odd", Data: map[string]int{"n": p.N}},
					{Type: "decision.odd", Data: map[string]int{"n2": 2 * p.N}}},
			}, nil
		}),
		// A job whose statement goes with the inbox row (a QueueJob).
		"queued": runtime.Jobs(map[string]runtime.Job{"q": runtime.QueueJob(func(b *pgx.Batch, m runtime.Meta) runtime.Run {
			b.Queue(`INSERT INTO trips VALUES ($1, $2, 0)`, m.Source, m.ID)
			return func(context.Context, pgx.Tx) (runtime.Result, error) {
				return runtime.Reply("queued.done", map[string]string{"id": m.ID}), nil
			}
		})}),
		// A stage that is the whole of the work: the inbox row is written
		// once, with the reply, after the lookup that skips the stage
		// for a handled event.
		"reply": runtime.StagedReply(func(ctx context.Context, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			return runtime.Reply("reply.done", map[string]int{"n": p.N}), nil
		}),
		"decision-settings": runtime.OnDecision(func(ctx context.Context, m runtime.Meta, p *benchPayload) (runtime.Decision, error) {
			return runtime.Decision{With: `answer AS (SELECT 'settings.done' AS reply_type, '' AS reply_subject,
				json_build_object('settings', current_setting('statement_timeout') || ' ' || current_setting('lock_timeout'))::text AS reply_data,
				false AS follow_ups)`}, nil
		}),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	defer srv.Close()
	send := func(typ, id string, n int) string {
		t.Helper()
		status, body := postEvent(srv, typ, "/trips", id, fmt.Sprintf(`{"n":%d}`, n))
		if status != 200 {
			t.Fatalf("%s %s: status %d %s", typ, id, status, body)
		}
		return body
	}
	// Warm up: the connection is made and pgx prepares each statement once.
	send("one", "warm-1", 1)
	send("one", "warm-1", 1)
	send("fanout", "warm-2", 3)
	send("decision", "warm-3", 1)
	send("decision", "warm-3", 1)
	send("decision", "warm-3b", 1) // behind PgBouncer, described again after the redelivery
	counter.take()

	const events = 10
	for i := 0; i < events; i++ {
		send("one", fmt.Sprint("one-", i), i)
	}
	if got := counter.take(); got != 3*events {
		t.Errorf("one-statement handler: %d round trips for %d events, want %d", got, events, 3*events)
	}
	for i := 0; i < events; i++ {
		send("fanout", fmt.Sprint("fanout-", i), 1+i%4)
	}
	if got := counter.take(); got != 3*events {
		t.Errorf("handler with follow-ups: %d round trips for %d events, want %d", got, events, 3*events)
	}
	for i := 0; i < events; i++ {
		send("one", fmt.Sprint("one-", i), i)
	}
	if got := counter.take(); got != 2*events {
		t.Errorf("redeliveries: %d round trips for %d events, want %d", got, events, 2*events)
	}
	for i := 0; i < events; i++ {
		if got, want := send("decision", fmt.Sprint("decision-", i), i), fmt.Sprintf(`{"n" : %d}`, i); got != want {
			t.Errorf("decision %d answered %s, want %s", i, got, want)
		}
	}
	if got := counter.take(); got != events {
		t.Errorf("handler deciding in one statement: %d round trips for %d events, want %d", got, events, events)
	}
	for i := 0; i < events; i++ {
		if got, want := send("decision", fmt.Sprint("decision-", i), i), fmt.Sprintf(`{"n" : %d}`, i); got != want {
			t.Errorf("redelivered decision %d answered %s, want %s", i, got, want)
		}
	}
	// A redelivery's statement fails on the inbox's key; the stored
	// reply is then read.
	want := 2 * events
	if pooler != postgres.PoolerNone {
		want = 3*events - 1
	}
	if got := counter.take(); got != want {
		t.Errorf("redeliveries to it: %d round trips for %d events, want %d", got, events, want)
	}
	job := func(id string) {
		t.Helper()
		if status, body := postEvent(srv, "queued", "/trips", id, `{"job":"q"}`); status != 200 || body != fmt.Sprintf(`{"id":%q}`, id) {
			t.Fatalf("queued %s: status %d %s", id, status, body)
		}
	}
	job("warm-4")
	counter.take()
	for i := 0; i < events; i++ {
		job(fmt.Sprint("queued-", i))
	}
	if got := counter.take(); got != 2*events {
		t.Errorf("job with its statement queued with the inbox row: %d round trips for %d events, want %d", got, events, 2*events)
	}
	for i := 0; i < events; i++ {
		job(fmt.Sprint("queued-", i))
	}
	if got := counter.take(); got != 2*events {
		t.Errorf("redeliveries to it: %d round trips for %d events, want %d", got, events, 2*events)
	}
	send("reply", "warm-5", 1)
	send("reply", "warm-5", 1)
	counter.take()
	for i := 0; i < events; i++ {
		send("reply", fmt.Sprint("reply-", i), i)
	}
	if got := counter.take(); got != 2*events {
		t.Errorf("stage with its reply stored with the inbox row: %d round trips for %d events, want %d", got, events, 2*events)
	}
	for i := 0; i < events; i++ {
		if got, want := send("reply", fmt.Sprint("reply-", i), i), fmt.Sprintf(`{"n":%d}`, i); got != want {
			t.Errorf("redelivered reply %d answered %s, want %s", i, got, want)
		}
	}
	if got := counter.take(); got != 2*events {
		t.Errorf("redeliveries to it: %d round trips for %d events, want %d", got, events, 2*events)
	}
	if got := send("settings", "settings-1", 0); got != `{"settings":"3s 2s"}` {
		t.Errorf("statement and lock timeouts in an event's transaction: %s, want 3s 2s", got)
	}
	// A decision's statement gets both too, set by a statement sent
	// before it in the same round trip and implicit transaction (the
	// round trips counted above include it where it is sent).
	if got := send("decision-settings", "settings-2", 0); got != `{"settings" : "3s 2s"}` {
		t.Errorf("timeouts in a decision's statement: %s, want 3s 2s", got)
	}
	var rows, outbox int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM trips), (SELECT count(*) FROM qinqing.outbox)`).Scan(&rows, &outbox); err != nil {
		t.Fatal(err)
	}
	// warm-1 once, warm-2 with 3 follow-ups, warm-3 and warm-3b once
	// with 2 each (warm-3's redelivery wrote nothing), then 10 + 10 + 10
	// events with 23 follow-ups and 2 for each of the 5 odd decisions,
	// and warm-4 and 10 queued jobs once each (their redeliveries'
	// inserts rolled back).
	if rows != 34+11 || outbox != 3+4+23+10 {
		t.Fatalf("%d rows and %d outbox rows, want 45 and 40", rows, outbox)
	}
}

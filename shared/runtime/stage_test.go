package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
)

type stagePayload struct {
	N int `json:"n"`
}

func (p *stagePayload) Validate() error {
	if p.N < 0 {
		return event.Invalid("n", "must not be negative")
	}
	return nil
}

// A staged handler's stage runs before the transaction, with no
// transaction of the event open; its error is a 5xx with nothing written;
// invalid data is a 400 before the stage; a handled event skips the stage.
func TestStaged(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	var stages atomic.Int32
	fail := atomic.Bool{}
	fn := &runtime.Function{Name: "staged", Handlers: map[string]runtime.Handler{
		"t": runtime.Staged(func(ctx context.Context, m runtime.Meta, p *stagePayload) (runtime.Run, error) {
			stages.Add(1)
			// Nothing of this event is in the inbox yet, and no session of
			// the pool is inside a transaction.
			var inTx int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&inTx); err != nil {
				return nil, err
			}
			if inTx != 0 {
				return nil, errors.New("a transaction is open during the stage")
			}
			if fail.Load() {
				return nil, errors.New("portal down")
			}
			return func(ctx context.Context, tx pgx.Tx) (runtime.Result, error) {
				return runtime.Reply("t.done", map[string]int{"n": p.N}), nil
			}, nil
		}),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	defer srv.Close()
	send := func(id, data string) int {
		t.Helper()
		status, body := postEvent(srv, "t", "/test", id, data)
		if status == 0 {
			t.Fatal(body)
		}
		return status
	}
	inbox := func(id string) (n int) {
		_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM qinqing.inbox WHERE function = 'staged' AND id = $1`, id).Scan(&n)
		return n
	}
	if got := send("bad", `{"n": -1}`); got != 400 || stages.Load() != 0 || inbox("bad") != 0 {
		t.Fatalf("invalid: status %d, stages %d, inbox %d; want 400, 0, 0", got, stages.Load(), inbox("bad"))
	}
	fail.Store(true)
	if got := send("1", `{"n": 1}`); got != 500 || inbox("1") != 0 {
		t.Fatalf("failing stage: status %d, inbox %d; want 500, 0", got, inbox("1"))
	}
	fail.Store(false)
	if got := send("1", `{"n": 1}`); got != 200 || inbox("1") != 1 {
		t.Fatalf("retry: status %d, inbox %d; want 200, 1", got, inbox("1"))
	}
	before := stages.Load()
	if got := send("1", `{"n": 1}`); got != 200 || stages.Load() != before {
		t.Fatalf("redelivery: status %d, stages %d → %d; want 200 and no stage", got, before, stages.Load())
	}
}

// A StagedReply handler's stage is the whole of the work: invalid data is
// a 400 and a failing stage a 5xx, nothing written either way; its reply
// is stored with the inbox row, the reply's body and time answered again
// to a redelivery without the stage; deliveries of one event at once
// store it once and all answer it; a Result with follow-ups is stored in
// the event's transaction, its follow-ups in the outbox.
func TestStagedReply(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	var stages atomic.Int32
	fail := atomic.Bool{}
	fn := &runtime.Function{Name: "staged-reply", Handlers: map[string]runtime.Handler{
		"t": runtime.StagedReply(func(ctx context.Context, m runtime.Meta, p *stagePayload) (runtime.Result, error) {
			stages.Add(1)
			if fail.Load() {
				return runtime.Result{}, errors.New("portal down")
			}
			res := runtime.Reply("t.done", map[string]int{"n": p.N})
			for i := 0; i < p.N%10; i++ {
				res.FollowUps = append(res.FollowUps, runtime.Outgoing{Type: "t.next", Data: map[string]int{"i": i}})
			}
			return res, nil
		}),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	defer srv.Close()
	send := func(id, data string) (int, string) {
		t.Helper()
		status, body := postEvent(srv, "t", "/test", id, data)
		if status == 0 {
			t.Fatal(body)
		}
		return status, body
	}
	stored := func(id string) (n int, reply string) {
		t.Helper()
		if err := pool.QueryRow(context.Background(), `SELECT count(*), coalesce(max(reply_type || ' ' || reply_data::text), '')
			FROM qinqing.inbox WHERE function = 'staged-reply' AND id = $1`, id).Scan(&n, &reply); err != nil {
			t.Fatal(err)
		}
		return n, reply
	}
	outbox := func() (n int) { // only event 3 has follow-ups
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM qinqing.outbox WHERE producer = 'staged-reply'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, _ := send("bad", `{"n": -1}`); got != 400 || stages.Load() != 0 {
		t.Fatalf("invalid: status %d, stages %d; want 400, 0", got, stages.Load())
	}
	if n, _ := stored("bad"); n != 0 {
		t.Fatalf("invalid: %d inbox rows, want 0", n)
	}
	fail.Store(true)
	if got, _ := send("1", `{"n": 10}`); got != 500 {
		t.Fatalf("failing stage: status %d, want 500", got)
	}
	if n, _ := stored("1"); n != 0 {
		t.Fatalf("failing stage: %d inbox rows, want 0", n)
	}
	fail.Store(false)
	status, first := send("1", `{"n": 10}`)
	if n, reply := stored("1"); status != 200 || first != `{"n":10}` || n != 1 || reply != `t.done {"n":10}` {
		t.Fatalf("retry: status %d %s, inbox %d %q; want 200 {\"n\":10}, 1 row with the reply", status, first, n, reply)
	}
	before := stages.Load()
	if status, again := send("1", `{"n": 10}`); status != 200 || again != first || stages.Load() != before {
		t.Fatalf("redelivery: status %d %s, stages %d → %d; want 200 %s and no stage", status, again, before, stages.Load(), first)
	}

	// Deliveries of one event at once.
	const at = 8
	bodies := make(chan string, at)
	for i := 0; i < at; i++ {
		go func() {
			status, body := postEvent(srv, "t", "/test", "2", `{"n": 20}`)
			if status != 200 {
				body = fmt.Sprintf("status %d %s", status, body)
			}
			bodies <- body
		}()
	}
	for i := 0; i < at; i++ {
		if body := <-bodies; body != `{"n":20}` {
			t.Errorf("delivery at once %d: %s, want {\"n\":20}", i, body)
		}
	}
	if n, _ := stored("2"); n != 1 {
		t.Fatalf("deliveries at once: %d inbox rows, want 1", n)
	}

	// With follow-ups: in the event's transaction, the outbox beside.
	if status, body := send("3", `{"n": 3}`); status != 200 || body != `{"n":3}` {
		t.Fatalf("with follow-ups: status %d %s", status, body)
	}
	if n, reply := stored("3"); n != 1 || reply != `t.done {"n":3}` || outbox() != 3 {
		t.Fatalf("with follow-ups: inbox %d %q, outbox %d; want 1 row with the reply and 3 follow-ups", n, reply, outbox())
	}
}

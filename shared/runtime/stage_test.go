package runtime_test

import (
	"context"
	"errors"
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

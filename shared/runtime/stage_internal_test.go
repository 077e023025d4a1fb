package runtime

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
)

// A staged event's inbox lookup waits for the first connection of a cold
// start, as the event's transaction does: while warm-up has not finished
// it opens no connection of its own beside it, and the stage does not run.
func TestStagedWaitsForWarmUp(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var stages atomic.Int32
	h := Staged(func(context.Context, Meta, *struct{}) (Run, error) {
		stages.Add(1)
		return nil, nil
	})
	s := NewServer(&Function{Name: "warm", Handlers: map[string]Handler{"t": h}}, pool, zap.NewNop().Sugar())
	warm := make(chan struct{})
	s.warm = warm // a warm-up that has not finished
	m := Meta{Function: "warm", Source: "/test", ID: "1", Type: "t"}
	// The request gives up while it waits.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := s.prepare(ctx, h, m, []byte(`{}`)); err == nil || stages.Load() != 0 || pool.Stat().TotalConns() != 0 {
		t.Fatalf("before warm-up ended: err %v, stages %d, connections %d; want an error, 0, 0", err, stages.Load(), pool.Stat().TotalConns())
	}
	close(warm)
	if _, _, err := s.prepare(context.Background(), h, m, []byte(`{}`)); err != nil || stages.Load() != 1 {
		t.Fatalf("after warm-up: err %v, stages %d; want nil, 1", err, stages.Load())
	}
}

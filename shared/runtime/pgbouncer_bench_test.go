package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
)

// BenchmarkPoolerMode measures what DATABASE_POOLER=pgbouncer-transaction
// costs: the same pipeline as BenchmarkPipeline (HTTP, CloudEvent, inbox,
// a one-row handler, stored reply) on one database in one process, with 8
// concurrent senders, over three pools: the default query mode directly
// (the baseline), the pooler query mode directly, and the pooler query
// mode through PgBouncer in transaction pooling mode. The rounds
// alternate so drift in machine load hits all three alike. Reported:
// "x-pooler-mode" (pooler mode direct / default) and "x-pgbouncer"
// (pooler mode through PgBouncer / default), plus the baseline's
// events/s. One op is a burst of 8 events in each of the three modes, so
// the default benchtime already sends a few thousand events per mode.
// Ratios are reported, not enforced.
func BenchmarkPoolerMode(b *testing.B) {
	if pgtest.ThroughPgBouncer() {
		b.Skip("runs in the first pass only: it compares both ways itself")
	}
	direct := pgtest.URL(b)
	bouncer := pgtest.PgBouncerURL(b, direct)
	ctx := context.Background()
	open := func(url, pooler string) *pgxpool.Pool {
		pool, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 10, Pooler: pooler})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		return pool
	}
	base := open(direct, postgres.PoolerNone)
	if _, err := base.Exec(ctx, `CREATE TABLE bench (source text, id text, n int)`); err != nil {
		b.Fatal(err)
	}
	modes := []struct {
		name string
		send func(i int)
		took time.Duration
	}{
		{name: "default", send: pipelineSender(b, base, "d")},
		{name: "pooler-mode", send: pipelineSender(b, open(direct, postgres.PoolerPgBouncerTransaction), "e")},
		{name: "pgbouncer", send: pipelineSender(b, open(bouncer, postgres.PoolerPgBouncerTransaction), "p")},
	}
	// Warm every pool (connections, cached descriptions) before timing.
	for m := range modes {
		for i := 0; i < 16; i++ {
			modes[m].send(-1 - i)
		}
	}
	b.ResetTimer()
	const rounds, burst = 4, 8
	events := b.N * burst
	for r := 0; r < rounds; r++ {
		lo, hi := events*r/rounds, events*(r+1)/rounds
		for m := range modes {
			modes[m].took += inParallel(lo, hi, modes[m].send)
		}
	}
	b.ReportMetric(float64(modes[1].took)/float64(modes[0].took), "x-pooler-mode")
	b.ReportMetric(float64(modes[2].took)/float64(modes[0].took), "x-pgbouncer")
	b.ReportMetric(float64(events)/modes[0].took.Seconds(), "events/s")
}

// pipelineSender serves the benchmark function over pool and returns a
// sender of event i (ids are prefixed, so the pools never collide).
func pipelineSender(b *testing.B, pool *pgxpool.Pool, prefix string) func(i int) {
	fn := &runtime.Function{Name: "bench", Handlers: map[string]runtime.Handler{
		"bench": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			_, err := tx.Exec(ctx, `INSERT INTO bench VALUES ($1, $2, $3)`, m.Source, m.ID, p.N)
			return runtime.Reply("bench.done", map[string]int{"n": p.N}), err
		}),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	b.Cleanup(srv.Close)
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 16
	return func(i int) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader([]byte(fmt.Sprintf(`{"n":%d}`, i))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Type", "bench")
		req.Header.Set("Ce-Source", "/bench")
		req.Header.Set("Ce-Id", fmt.Sprintf("%s-%d-%d", prefix, b.N, i))
		resp, err := client.Do(req)
		if err != nil {
			panic(err) // b.Fatal is not allowed off the benchmark goroutine
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			panic(fmt.Sprintf("%s: status %d", prefix, resp.StatusCode))
		}
	}
}

// inParallel sends events lo…hi-1 with 8 concurrent senders and returns
// how long that took.
func inParallel(lo, hi int, send func(i int)) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				send(i)
			}
		}()
	}
	for i := lo; i < hi; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return time.Since(start)
}

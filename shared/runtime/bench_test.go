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
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
)

type benchPayload struct {
	N int `json:"n"`
}

// BenchmarkPipeline measures one event through the whole pipeline (HTTP,
// CloudEvent parsing, inbox, a one-row handler, reply stored, reply
// written) against a baseline in the same process: the same row inserted
// in its own transaction over the same pool. The ratio pipeline/baseline
// is reported as "x-baseline"; the target is that the pipeline costs no
// more than a few round trips more than the bare write (under 5×); the
// ratio is reported, not enforced (timings on a shared machine are noisy).
// b.Fatal is not allowed off the benchmark goroutine, so failures panic.
func BenchmarkPipeline(b *testing.B) {
	pool := pgtest.Pool(b)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE bench (source text, id text, n int)`); err != nil {
		b.Fatal(err)
	}
	fn := &runtime.Function{Name: "bench", Handlers: map[string]runtime.Handler{
		"bench": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			_, err := tx.Exec(ctx, `INSERT INTO bench VALUES ($1, $2, $3)`, m.Source, m.ID, p.N)
			return runtime.Reply("bench.done", map[string]int{"n": p.N}), err
		}),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 16 // keep-alive for every sender

	baseline := func(i int) {
		err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO bench VALUES ('base', $1, $2)`, fmt.Sprint(i), i)
			return err
		})
		if err != nil {
			panic(err)
		}
	}
	pipeline := func(i int) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader([]byte(fmt.Sprintf(`{"n":%d}`, i))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Type", "bench")
		req.Header.Set("Ce-Source", "/bench")
		req.Header.Set("Ce-Id", fmt.Sprintf("%d-%d", b.N, i))
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			panic(fmt.Sprintf("status %d", resp.StatusCode))
		}
	}
	// Both sides run with 8 concurrent senders, as a burst from the broker
	// would arrive.
	const senders = 8
	parallel := func(fn func(i int)) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < senders; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					fn(i)
				}
			}()
		}
		for i := 0; i < b.N; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		return time.Since(start)
	}
	b.ResetTimer()
	base := parallel(baseline)
	pipe := parallel(pipeline)
	b.ReportMetric(float64(pipe)/float64(base), "x-baseline")
	b.ReportMetric(float64(b.N)/pipe.Seconds(), "events/s")
}

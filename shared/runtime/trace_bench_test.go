package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/telemetry"
	"github.com/qinqing/qinqing/shared/telemetry/receiver"
)

// BenchmarkTracing measures the cost of tracing: the same pipeline (HTTP,
// CloudEvent, inbox, a one-row handler with a follow-up, stored reply)
// with telemetry off, and with every span sampled (100 %), the pgx tracer
// on the pool, the metrics recorded, and the spans exported over
// OTLP/HTTP to a receiver in the same process (which decodes them: the
// collector's work shares the 2 cores too). Both runs use 8 concurrent
// senders; "x-tracing-off" is on/off time, "loss-%" the throughput lost.
// Reported, not enforced; the goal is a loss under 10 %.
func BenchmarkTracing(b *testing.B) {
	ctx := context.Background()
	url := pgtest.URL(b)
	recv, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer recv.Close()
	saved := telemetry.Current()
	defer telemetry.SetCurrent(saved)

	fn := &runtime.Function{Name: "bench", Handlers: map[string]runtime.Handler{
		"bench": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			_, err := tx.Exec(ctx, `INSERT INTO bench VALUES ($1, $2, $3)`, m.Source, m.ID, p.N)
			res := runtime.Reply("bench.done", map[string]int{"n": p.N})
			res.FollowUps = []runtime.Outgoing{{Type: "bench.followed", Data: map[string]int{"n": p.N}}}
			return res, err
		}),
	}}
	var tel *telemetry.Telemetry
	setup := func(tracing bool) (*httptest.Server, func()) {
		var tracer pgx.QueryTracer
		if tracing {
			// Telemetry as runtime.Main sets it up from the OTEL_*
			// variables: the OTLP span and metric exporters, the pgx tracer.
			b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.Endpoint())
			var err error
			if tel, err = telemetry.Setup(ctx, telemetry.Options{Service: "bench"}); err != nil {
				b.Fatal(err)
			}
			tracer = telemetry.PgxTracer(nil)
		} else {
			telemetry.SetCurrent(telemetry.New(nil, nil, nil))
		}
		pool, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 10}, tracer)
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
		srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 16
		return srv, func() { srv.Close(); pool.Close() }
	}
	pool := pgtest.PoolFor(b, url)
	if _, err := pool.Exec(ctx, `CREATE TABLE bench (source text, id text, n int)`); err != nil {
		b.Fatal(err)
	}
	// cpu is this process's CPU time (user + system): the server, the
	// senders and, in the traced run, the exporters and the receiver.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var cpuOff, cpuOn time.Duration
	run := func(srv *httptest.Server, tag string) time.Duration {
		const senders = 8
		start, cpu0 := time.Now(), cpu()
		defer func() {
			if strings.HasPrefix(tag, "on") {
				cpuOn += cpu() - cpu0
			} else if strings.HasPrefix(tag, "off") {
				cpuOff += cpu() - cpu0
			}
		}()
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < senders; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader([]byte(fmt.Sprintf(`{"n":%d}`, i))))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Ce-Specversion", "1.0")
					req.Header.Set("Ce-Type", "bench")
					req.Header.Set("Ce-Source", "/bench")
					req.Header.Set("Ce-Id", fmt.Sprintf("%s-%d-%d", tag, b.N, i))
					req.Header.Set("Traceparent", fmt.Sprintf("00-%032x-%016x-01", i+1, i+1))
					resp, err := srv.Client().Do(req)
					if err != nil {
						panic(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						panic(fmt.Sprintf("status %d", resp.StatusCode))
					}
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
	on, closeOn := setup(true)
	defer closeOn()
	off, closeOff := setup(false)
	defer closeOff()
	run(off, "warm-off")
	run(on, "warm-on")
	b.ResetTimer()
	// Alternate the two, five times each, so drift in machine load hits
	// both; the ratio reported is the median of the five rounds' ratios,
	// which one disturbed round cannot move.
	const rounds = 5
	var tOff, tOn time.Duration
	ratios := make([]float64, 0, rounds)
	for round := 0; round < rounds; round++ {
		off := run(off, fmt.Sprintf("off%d", round))
		on := run(on, fmt.Sprintf("on%d", round))
		tOff, tOn = tOff+off, tOn+on
		ratios = append(ratios, float64(on)/float64(off))
	}
	b.StopTimer()
	traced := (rounds + 1) * b.N
	if err := tel.Shutdown(ctx); err != nil || len(recv.Spans()) < traced {
		b.Fatalf("the receiver got %d spans for %d traced events (%v)", len(recv.Spans()), traced, err)
	}
	slices.Sort(ratios)
	median := ratios[rounds/2]
	// Spans the receiver got per traced event (the server span and one per
	// round trip; fewer would mean the SDK dropped some), and the
	// process's CPU per event traced against untraced: less sensitive to
	// other load on the machine than the throughput.
	b.ReportMetric(float64(len(recv.Spans()))/float64(traced), "spans/event")
	b.ReportMetric(float64(cpuOn)/float64(cpuOff), "x-cpu-tracing-off")
	b.ReportMetric(median, "x-tracing-off")
	b.ReportMetric(100*(1-1/median), "loss-%")
	b.ReportMetric(float64(tOn)/float64(tOff), "x-tracing-off-total")
	b.ReportMetric(float64(rounds*b.N)/tOn.Seconds(), "events/s-traced")
}

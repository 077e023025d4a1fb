package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
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
// OTLP/HTTP to a receiver in the same process (which decodes every
// export: a collector's work shares the 2 cores too, its bookkeeping
// does not). Both runs use 8 concurrent senders; "x-tracing-off" is
// on/off time, "loss-%" the throughput lost. Reported, not enforced; the
// goal is a loss under 10 %.
//
// A run is always tracingEvents events, whatever b.N: rounds of a tenth of
// a second (what b.N gave) were as noisy as the effect measured. The two
// sides alternate, which one goes first changing every round, so drift in
// machine load hits both; each run starts after a collection (one side's
// garbage is not collected in the other's time), and a traced run ends
// when its spans are exported (the export is part of its time and CPU, as
// in production, where it runs beside the events). The CPU profile's
// samples carry a "side" label (on, off, recv, send) for comparing the two
// with pprof -tagfocus.
func BenchmarkTracing(b *testing.B) {
	const (
		tracingEvents = 2000
		rounds        = 7
	)
	ctx := context.Background()
	url := pgtest.URL(b)
	var recv *receiver.Receiver
	var err error
	pprof.Do(ctx, pprof.Labels("side", "recv"), func(context.Context) { recv, err = receiver.StartCounting("127.0.0.1:0") })
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
	// run sends tracingEvents events to srv and returns the time until the
	// last answer (and, traced, the last span exported).
	run := func(srv *httptest.Server, tag string, traced bool) time.Duration {
		const senders = 8
		goruntime.GC()
		start, cpu0 := time.Now(), cpu()
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < senders; w++ {
			wg.Add(1)
			go pprof.Do(ctx, pprof.Labels("side", "send"), func(context.Context) {
				defer wg.Done()
				for i := range next {
					req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader([]byte(fmt.Sprintf(`{"n":%d}`, i))))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Ce-Specversion", "1.0")
					req.Header.Set("Ce-Type", "bench")
					req.Header.Set("Ce-Source", "/bench")
					req.Header.Set("Ce-Id", fmt.Sprintf("%s-%d", tag, i))
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
			})
		}
		for i := 0; i < tracingEvents; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		if traced {
			if err := tel.FlushSpans(ctx); err != nil {
				panic(err)
			}
		}
		took, used := time.Since(start), cpu()-cpu0
		if traced {
			cpuOn += used
		} else {
			cpuOff += used
		}
		return took
	}
	// The servers' goroutines (and the span processor's) inherit the
	// label of the goroutine that started them.
	var on, off *httptest.Server
	var closeOn, closeOff func()
	pprof.Do(ctx, pprof.Labels("side", "on"), func(context.Context) { on, closeOn = setup(true) })
	defer closeOn()
	pprof.Do(ctx, pprof.Labels("side", "off"), func(context.Context) { off, closeOff = setup(false) })
	defer closeOff()
	// The same warm-up for both: connections, statement caches, the
	// exporter's connection to the receiver.
	run(off, "warm-off", false)
	run(on, "warm-on", true)
	cpuOff, cpuOn = 0, 0
	b.ResetTimer()
	// Alternate the two, which one first changing every round, so drift
	// in machine load hits both; the ratio reported is the median of the
	// rounds' ratios, which one or two disturbed rounds cannot move.
	var tOff, tOn time.Duration
	ratios := make([]float64, 0, rounds)
	for round := 0; round < rounds; round++ {
		var off1, on1 time.Duration
		if round%2 == 0 {
			off1 = run(off, fmt.Sprintf("off%d", round), false)
			on1 = run(on, fmt.Sprintf("on%d", round), true)
		} else {
			on1 = run(on, fmt.Sprintf("on%d", round), true)
			off1 = run(off, fmt.Sprintf("off%d", round), false)
		}
		tOff, tOn = tOff+off1, tOn+on1
		ratios = append(ratios, float64(on1)/float64(off1))
	}
	b.StopTimer()
	traced := (rounds + 1) * tracingEvents
	if err := tel.Shutdown(ctx); err != nil || recv.SpanCount() < traced {
		b.Fatalf("the receiver got %d spans for %d traced events (%v)", recv.SpanCount(), traced, err)
	}
	slices.Sort(ratios)
	median := ratios[rounds/2]
	// Spans the receiver got per traced event (the server span and one per
	// round trip; fewer would mean the SDK dropped some), and the
	// process's CPU per event traced against untraced: less sensitive to
	// other load on the machine than the throughput.
	b.ReportMetric(float64(recv.SpanCount())/float64(traced), "spans/event")
	b.ReportMetric(float64(cpuOn)/float64(cpuOff), "x-cpu-tracing-off")
	b.ReportMetric(median, "x-tracing-off")
	b.ReportMetric(100*(1-1/median), "loss-%")
	b.ReportMetric(float64(tOn)/float64(tOff), "x-tracing-off-total")
	b.ReportMetric(float64(rounds*tracingEvents)/tOn.Seconds(), "events/s-traced")
}

package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
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
// OTLP/HTTP to a receiver in the same process (which reads every export
// and counts its spans: a collector's decoding is its own CPU, on its own
// pod). Both sides use 8 concurrent senders; "x-tracing-off" is on/off
// time, "loss-%" the throughput lost. Reported, not enforced; the goal is
// a loss under 10 %.
//
// The events are always the same number, whatever b.N (rounds of a tenth
// of a second, what b.N gave, were as noisy as the effect measured). A
// round sends chunkEvents events to one side, then to the other, chunks
// times, which side goes first alternating chunk by chunk: the load of the
// other processes on the machine, which changes from one second to the
// next, hits both sides of a round alike (with rounds of 2,000 events per
// side in one piece, the rounds' ratios of one run went from 0.82 to
// 1.57). Each round
// starts after a collection and ends with the traced side's spans
// exported, that export counted in its time; within a round, a full
// batch of spans is exported as in production, beside the events. The
// ratio reported is the median of the rounds' ratios. The CPU profile's
// samples carry a "side" label (on, off, recv, send) for comparing the two
// with pprof -tagfocus.
func BenchmarkTracing(b *testing.B) {
	const (
		rounds      = 9
		chunks      = 8
		chunkEvents = 250
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
	// The servers' goroutines (and the span processor's) inherit the
	// label of the goroutine that started them.
	var on, off *httptest.Server
	var closeOn, closeOff func()
	pprof.Do(ctx, pprof.Labels("side", "on"), func(context.Context) { on, closeOn = setup(true) })
	defer closeOn()
	pprof.Do(ctx, pprof.Labels("side", "off"), func(context.Context) { off, closeOff = setup(false) })
	defer closeOff()
	var cpuOff, cpuOn time.Duration
	// allocated is the bytes the process allocated so far: garbage is
	// what a collection costs, and tracing's spans are garbage once
	// exported.
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	allocated := func() uint64 {
		metrics.Read(allocs)
		return allocs[0].Value.Uint64()
	}
	var allocOff, allocOn uint64
	// run sends n events to srv and returns the time until the last
	// answer; its CPU is added to the side's.
	sent := map[*httptest.Server]int{}
	// Event ids are one sequence for both sides, so both insert at the
	// same end of the inbox's primary key (ids "off…" and "on…" sorted
	// the untraced side's into the middle of the index, the traced side's
	// to its end, and the rounds' ratios drifted by 25 % as it grew).
	var ids atomic.Int64
	run := func(srv *httptest.Server, tag string, n int) time.Duration {
		const senders = 8
		start, cpu0, alloc0 := time.Now(), cpu(), allocated()
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
					req.Header.Set("Ce-Id", fmt.Sprintf("%010d", ids.Add(1)))
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
		for i := sent[srv]; i < sent[srv]+n; i++ {
			next <- i
		}
		sent[srv] += n
		close(next)
		wg.Wait()
		took, used, alloc := time.Since(start), cpu()-cpu0, allocated()-alloc0
		if srv == on {
			cpuOn, allocOn = cpuOn+used, allocOn+alloc
		} else {
			cpuOff, allocOff = cpuOff+used, allocOff+alloc
		}
		return took
	}
	// flush exports the traced side's queued spans: part of its time.
	flush := func() time.Duration {
		start, cpu0, alloc0 := time.Now(), cpu(), allocated()
		if err := tel.FlushSpans(ctx); err != nil {
			b.Fatal(err)
		}
		cpuOn, allocOn = cpuOn+cpu()-cpu0, allocOn+allocated()-alloc0
		return time.Since(start)
	}
	// round runs chunks pairs of chunks and returns each side's time.
	round := func(tag string) (tOff, tOn time.Duration) {
		goruntime.GC()
		for c := 0; c < chunks; c++ {
			if c%2 == 0 {
				tOff += run(off, "off"+tag, chunkEvents)
				tOn += run(on, "on"+tag, chunkEvents)
			} else {
				tOn += run(on, "on"+tag, chunkEvents)
				tOff += run(off, "off"+tag, chunkEvents)
			}
		}
		return tOff, tOn + flush()
	}
	// The same warm-up for both: connections, statement caches, the
	// exporter's connection to the receiver.
	round("warm")
	cpuOff, cpuOn, allocOff, allocOn = 0, 0, 0, 0
	b.ResetTimer()
	var tOff, tOn time.Duration
	ratios := make([]float64, 0, rounds)
	for r := 0; r < rounds; r++ {
		off1, on1 := round(fmt.Sprint(r))
		tOff, tOn = tOff+off1, tOn+on1
		ratios = append(ratios, float64(on1)/float64(off1))
	}
	b.StopTimer()
	b.Logf("on/off per round: %.3f", ratios)
	traced := (rounds + 1) * chunks * chunkEvents
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
	events := float64(rounds * chunks * chunkEvents)
	b.ReportMetric(float64(cpuOn.Microseconds())/events, "µs-cpu/event-traced")
	b.ReportMetric(float64(cpuOff.Microseconds())/events, "µs-cpu/event-untraced")
	b.ReportMetric(float64(allocOn)/events, "B/event-traced")
	b.ReportMetric(float64(allocOff)/events, "B/event-untraced")
	b.ReportMetric(median, "x-tracing-off")
	b.ReportMetric(100*(1-1/median), "loss-%")
	b.ReportMetric(float64(tOn)/float64(tOff), "x-tracing-off-total")
	b.ReportMetric(float64(rounds*chunks*chunkEvents)/tOn.Seconds(), "events/s-traced")
}

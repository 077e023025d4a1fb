package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
)

// bareSignup is the bare receiver's whole work in one statement: dedupe
// on source + id, lock the forum row, the same seat rule on the same
// counters, the signup inserted into the same table with the same indexes
// (one live signup per enterprise), the counters moved.
const bareSignup = `WITH dd AS (
		INSERT INTO bare.seen (source, id) VALUES ($14, $15) ON CONFLICT DO NOTHING RETURNING 1
	), f AS (
		SELECT capacity, reserved_for_nominated AS reserved, confirmed_self, confirmed_nominated,
			closed_at IS NULL AND $13::timestamptz <= signup_deadline AS open
		FROM forum.forums WHERE forum_id = $2 AND EXISTS (SELECT FROM dd) FOR NO KEY UPDATE
	), d AS (
		SELECT CASE WHEN confirmed_self + confirmed_nominated < capacity
				AND ($8::text = 'nominated' OR confirmed_self < capacity - reserved)
			THEN 'confirmed' ELSE 'waitlisted' END AS status
		FROM f WHERE open
	), ins AS (
		INSERT INTO forum.signups (signup_id, forum_id, uscc, enterprise_name, county, contact_name,
			contact_phone, mode, nominated_by, topic, problems, documents, status, requested_at, confirmed_at, source)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, NULLIF($9::text, ''), $10::text,
			$11::jsonb, $12::jsonb, d.status, $13::timestamptz, CASE WHEN d.status = 'confirmed' THEN $13::timestamptz END, $14::text
		FROM d
		ON CONFLICT (forum_id, uscc) WHERE status <> 'cancelled' DO NOTHING
		RETURNING status
	), upd AS (
		UPDATE forum.forums SET
			confirmed_self = confirmed_self + (ins.status = 'confirmed' AND $8 = 'self')::int,
			confirmed_nominated = confirmed_nominated + (ins.status = 'confirmed' AND $8 = 'nominated')::int,
			waitlisted = waitlisted + (ins.status = 'waitlisted')::int
		FROM ins WHERE forum_id = $2
		RETURNING waitlisted
	)
	SELECT EXISTS (SELECT FROM dd), coalesce((SELECT status FROM ins), ''), coalesce((SELECT waitlisted FROM upd), 0)`

// bareReceiver is net/http + the sdk-go binding + pgxpool and nothing
// else: the comparison for the real function. It answers the same replies
// for the benchmark's signups (confirmed or waitlisted with the position).
func bareReceiver(pool *pgxpool.Pool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ev, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var p contract.SignupRequested
		if err := json.Unmarshal(ev.Data(), &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := p.Validate(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		signupID := runtime.DeriveID("signup", ev.Source(), ev.ID())
		problems, _ := json.Marshal(nonNil(p.Problems))
		documents, _ := json.Marshal(nonNil(p.Documents))
		var fresh bool
		var status string
		var position int
		if err := pool.QueryRow(ctx, bareSignup, signupID, p.ForumID, p.Enterprise.USCC, p.Enterprise.Name, p.Enterprise.County,
			p.Contact.Name, p.Contact.Phone, p.Mode, p.NominatedBy, p.Topic, string(problems), string(documents), ev.Time(),
			ev.Source(), ev.ID()).Scan(&fresh, &status, &position); err != nil || !fresh || status == "" {
			http.Error(w, fmt.Sprintf("bare: fresh %v status %q: %v", fresh, status, err), http.StatusInternalServerError)
			return
		}
		typ := contract.TypeSignupConfirmed
		if status == StatusWaitlisted {
			typ = contract.TypeSignupWaitlisted
		} else {
			position = 0
		}
		reply := cloudevents.NewEvent()
		reply.SetID(runtime.DeriveID("reply", ev.Source(), ev.ID()))
		reply.SetSource("/bare")
		reply.SetType(typ)
		reply.SetTime(ev.Time())
		_ = reply.SetData(cloudevents.ApplicationJSON, contract.SignupReply{SignupID: signupID, ForumID: p.ForumID, USCC: p.Enterprise.USCC,
			Status: status, WaitlistPosition: position, Uploads: []docs.Upload{}})
		_ = cehttp.WriteResponseWriter(ctx, binding.ToMessage(&reply), http.StatusOK, w)
	}
}

// ingestSide is one receiver under test.
type ingestSide struct {
	url    string
	client *http.Client
	lat    []time.Duration
	mu     sync.Mutex
	took   time.Duration
	events int
}

var benchSeq atomic.Int64

// burst sends n signups for the forums (round robin) from senders
// goroutines over keep-alive connections.
func (s *ingestSide) burst(tb testing.TB, forums []string, n, senders int) {
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for i := range next {
				k := int(benchSeq.Add(1))
				mode := contract.ModeSelf
				if k%5 == 0 {
					mode = contract.ModeNominated
				}
				data, _ := json.Marshal(signupData(forums[i%len(forums)], event.SampleUSCC(100000+k), mode))
				req, _ := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(data))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Ce-Specversion", "1.0")
				req.Header.Set("Ce-Type", contract.TypeSignupRequested)
				req.Header.Set("Ce-Source", portalSrc)
				req.Header.Set("Ce-Id", fmt.Sprint("bench-", k))
				req.Header.Set("Ce-Time", week.Format(time.RFC3339))
				t0 := time.Now()
				resp, err := s.client.Do(req)
				if err != nil {
					panic(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || (resp.Header.Get("Ce-Type") != contract.TypeSignupConfirmed && resp.Header.Get("Ce-Type") != contract.TypeSignupWaitlisted) {
					panic(fmt.Sprintf("%s: status %d type %q", s.url, resp.StatusCode, resp.Header.Get("Ce-Type")))
				}
				lat = append(lat, time.Since(t0))
			}
			s.mu.Lock()
			s.lat = append(s.lat, lat...)
			s.mu.Unlock()
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	s.took += time.Since(start)
	s.events += n
}

func (s *ingestSide) rate() float64 { return float64(s.events) / s.took.Seconds() }

func (s *ingestSide) percentile(p float64) time.Duration {
	slices.Sort(s.lat)
	return s.lat[int(float64(len(s.lat)-1)*p)]
}

// BenchmarkIngest compares forum-signup (the whole runtime pipeline and
// the real handler) with a bare receiver doing the same work in one
// statement (bareReceiver), side by side on one database: 5,000 signups
// per side, for one forum (every signup contends for one row lock: the
// weekly burst) and for 200 forums, with 8 and 32 concurrent senders on
// keep-alive connections. The sides alternate in ten rounds of 500, each
// side first in every other round, so that load from elsewhere on the
// machine falls on both. Reported: events/s and p50/p99
// of each side and x-bare, the function's rate over the bare one (the
// goal: at least 0.8). A run is always 5,000 signups, whatever b.N.
func BenchmarkIngest(b *testing.B) {
	url := pgtest.URL(b)
	benchIngest(b, "direct", url, url, postgres.PoolerNone)
}

// BenchmarkIngestPgBouncer is BenchmarkIngest with both sides' pools going
// through PgBouncer in transaction pooling mode, with
// DATABASE_POOLER=pgbouncer-transaction's query mode (make bench starts a
// PgBouncer; without TEST_PGBOUNCER_URL it is skipped).
func BenchmarkIngestPgBouncer(b *testing.B) {
	url := pgtest.URL(b)
	benchIngest(b, "pgbouncer", url, pgtest.PgBouncerURL(b, url), postgres.PoolerPgBouncerTransaction)
}

// benchIngest runs the comparison on the database at adminURL, both
// sides' pools on url with the pooler setting.
func benchIngest(b *testing.B, label, adminURL, url, pooler string) {
	ctx := context.Background()
	admin := pgtest.PoolFor(b, adminURL)
	if _, err := admin.Exec(ctx, `CREATE SCHEMA bare; CREATE TABLE bare.seen (source text, id text, PRIMARY KEY (source, id))`); err != nil {
		b.Fatal(err)
	}
	open := func() *pgxpool.Pool {
		// The production default pool size for both sides.
		pool, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 10, Pooler: pooler})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		return pool
	}
	_, store := s3test.New(b)
	fnPool := open()
	// The function logs its JSON line per event as in production, to
	// nowhere.
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel)).Sugar()
	env := &runtime.Env{Name: name, Pool: fnPool, Log: log, Loc: time.UTC}
	fnSrv := httptest.NewServer(runtime.NewServer(New(env, store), fnPool, log))
	b.Cleanup(fnSrv.Close)
	bareSrv := httptest.NewServer(bareReceiver(open()))
	b.Cleanup(bareSrv.Close)

	const events, rounds = 5000, 10
	for _, forums := range []int{1, 200} {
		for _, senders := range []int{8, 32} {
			b.Run(fmt.Sprintf("forums=%d/senders=%d", forums, senders), func(b *testing.B) {
				sides := map[string]*ingestSide{}
				ids := map[string][]string{}
				for side, url := range map[string]string{"fn": fnSrv.URL, "bare": bareSrv.URL} {
					client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
					sides[side] = &ingestSide{url: url + "/", client: client}
					for i := 0; i < forums; i++ {
						id := fmt.Sprintf("%s-%d-%d-%d", side, forums, senders, i)
						ids[side] = append(ids[side], id)
						capacity := 30
						if forums == 1 {
							capacity = 200
						}
						if _, err := admin.Exec(ctx, `INSERT INTO forum.forums (forum_id, forum_date, theme, host_leader, venue, county,
								capacity, reserved_for_nominated, signup_deadline, scheduled_at)
							VALUES ($1, '2026-12-02', 'bench', 'host', 'venue', 'city', $2, $3, '2026-12-01T09:00:00Z', now())`,
							id, capacity, capacity/3); err != nil {
							b.Fatal(err)
						}
					}
					sides[side].burst(b, ids[side][:1], 20, senders) // warm connections and statements
					sides[side].took, sides[side].events, sides[side].lat = 0, 0, nil
				}
				b.ResetTimer()
				for r := 0; r < rounds; r++ {
					order := []string{"bare", "fn"}
					if r%2 == 1 {
						order[0], order[1] = "fn", "bare"
					}
					for _, side := range order {
						sides[side].burst(b, ids[side], events/rounds, senders)
					}
				}
				fn, bare := sides["fn"], sides["bare"]
				b.ReportMetric(fn.rate(), "fn-ev/s")
				b.ReportMetric(bare.rate(), "bare-ev/s")
				b.ReportMetric(fn.rate()/bare.rate(), "x-bare")
				b.ReportMetric(float64(fn.percentile(0.5).Microseconds())/1000, "fn-p50-ms")
				b.ReportMetric(float64(bare.percentile(0.5).Microseconds())/1000, "bare-p50-ms")
				fmt.Fprintf(os.Stdout, "ingest %s forums=%d senders=%d: forum-signup %.0f ev/s p50 %v p99 %v | bare %.0f ev/s p50 %v p99 %v | ratio %.2f\n",
					label, forums, senders, fn.rate(), fn.percentile(0.5).Round(100*time.Microsecond), fn.percentile(0.99).Round(100*time.Microsecond),
					bare.rate(), bare.percentile(0.5).Round(100*time.Microsecond), bare.percentile(0.99).Round(100*time.Microsecond), fn.rate()/bare.rate())
			})
		}
	}
}

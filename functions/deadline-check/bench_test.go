package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/calendar"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/testkit"
)

// seedAppeals fills a database for the scale benchmarks: old appeals
// (received in 2025, closed, four history rows each), the November 2026
// cohort of the review (1,000 appeals with their history, closed or
// replied), and 100 appeals overdue for assignment as of 1 December.
func seedAppeals(b testing.TB, pool *pgxpool.Pool, old int) {
	ctx := context.Background()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO appeal.appeals (appeal_id, uscc, enterprise_name, county, title, category, channel, status, department,
				routed_to, received_at, assign_due, first_reply_due, reply_due, updated_at, source, event_id)
			SELECT prefix || g, '91330500MA2B3C4D5B', 'e', 'wuxing', 't', 'land', 'portal', status, 'city-economy', 'city-economy',
				at, at + interval '1 day', at + interval '14 days', at + interval '14 days', at, '/bench', prefix || g
			FROM (SELECT g, 'old-' AS prefix, 'closed' AS status, timestamptz '2025-01-01 09:00+08' + (g % 300) * interval '1 day' AS at
				FROM generate_series(1, $1) g
			UNION ALL SELECT g, 'nov-', CASE WHEN g % 2 = 0 THEN 'closed' ELSE 'replied' END,
				timestamptz '2026-11-02 09:00+08' + (g % 25) * interval '1 day' FROM generate_series(1, 1000) g
			UNION ALL SELECT g, 'due-', 'assigned', timestamptz '2026-11-20 09:00+08' + (g % 5) * interval '1 hour'
				FROM generate_series(1, 100) g) s`, []any{old}},
		{`INSERT INTO appeal.history (appeal_id, at, action, actor, from_status, to_status, department, satisfaction, source, event_id)
			SELECT a.appeal_id, a.received_at + s.after, s.action, 'bench', s.from_status, s.to_status, 'city-economy',
				s.satisfaction, '/bench', a.appeal_id || '-' || s.n
			FROM appeal.appeals a CROSS JOIN LATERAL (VALUES
				(1, interval '0', 'submitted', NULL, 'assigned', NULL),
				(2, interval '2 hours', 'accepted', 'assigned', 'accepted', NULL),
				(3, interval '3 days', 'replied', 'accepted', 'replied', NULL),
				(4, interval '5 days', 'revisited', 'replied', 'closed', 'satisfied')
			) AS s(n, after, action, from_status, to_status, satisfaction)
			WHERE s.n = 1 OR a.status = 'closed' OR (a.status = 'replied' AND s.n <= 3)`, nil},
		{`VACUUM ANALYZE appeal.appeals, appeal.history`, nil},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppealScale measures the monthly review of November 2026 (1,000
// appeals) and the deadline sweep of 1 December (100 overdue) over 10,000
// and over 100,000 older appeals (40,000 and 400,000 history rows, spread
// over the table), each run rolled back so that it can be repeated, and
// reports the median of 15 runs at each size and the ratio 10×/1× (goal:
// at most 1.3: the cost follows the month's appeals and the overdue ones,
// not the history), also for the review's cohort query alone (the rest of
// the review is computing and rendering the month). Both sizes are seeded
// first and then measured in alternating rounds, so that load from
// elsewhere on the machine falls on both (a sweep takes milliseconds).
// One run of the whole comparison, whatever b.N.
func BenchmarkAppealScale(b *testing.B) {
	loc := testkit.Shanghai
	_, store := s3test.New(b)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, loc)
	m := runtime.Meta{ID: "bench", Source: "/bench", Type: "dev.knative.sources.ping", Time: at, HasTime: true, Function: name}
	type size struct {
		old                    int
		pool                   *pgxpool.Pool
		jobs                   runtime.Handler
		review, cohort, sweeps []time.Duration
	}
	sizes := []*size{{old: 10000}, {old: 100000}}
	for _, sz := range sizes {
		sz.pool = pgtest.Pool(b)
		seedAppeals(b, sz.pool, sz.old)
		env := &runtime.Env{Name: name, Pool: sz.pool, Log: zap.NewNop().Sugar(), Loc: loc, Calendar: calendar.NewCache(loc)}
		sz.jobs = New(env, store).Handlers[event.PingType]
	}
	cohort := func(sz *size) time.Duration {
		tx, err := sz.pool.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // every run is rolled back
		start := time.Now()
		recs, err := loadCohort(ctx, tx, time.Date(2026, 11, 1, 0, 0, 0, 0, loc), time.Date(2026, 12, 1, 0, 0, 0, 0, loc), at)
		took := time.Since(start)
		if err != nil || len(recs) != 1100 {
			b.Fatalf("cohort: %d appeals, %v", len(recs), err)
		}
		return took
	}
	run := func(sz *size, job string, log bool) time.Duration {
		tx, err := sz.pool.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // every run is rolled back
		start := time.Now()
		r, err := sz.jobs.Prepare(m, []byte(`{"job":"`+job+`"}`))
		if err != nil {
			b.Fatal(err)
		}
		res, err := r(ctx, tx)
		took := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if log {
			b.Logf("%d old appeals: %s %+v (%d follow-ups)", sz.old, res.Reply.Type, res.Reply.Data, len(res.FollowUps))
		}
		return took
	}
	const rounds = 15
	for i := 0; i < rounds; i++ {
		order := sizes
		if i%2 == 1 {
			order = []*size{sizes[1], sizes[0]}
		}
		for _, sz := range order {
			sz.cohort = append(sz.cohort, cohort(sz))
			sz.review = append(sz.review, run(sz, "monthly-review", i == 0))
			sz.sweeps = append(sz.sweeps, run(sz, "deadline-check", i == 0))
		}
	}
	median := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	r1, q1, s1 := median(sizes[0].review), median(sizes[0].cohort), median(sizes[0].sweeps)
	r10, q10, s10 := median(sizes[1].review), median(sizes[1].cohort), median(sizes[1].sweeps)
	fmt.Printf("appeal scale: monthly review %v at 10,000 old appeals, %v at 100,000: ratio %.2f\n", r1.Round(10*time.Microsecond), r10.Round(10*time.Microsecond), float64(r10)/float64(r1))
	fmt.Printf("appeal scale: its cohort query %v at 10,000 old appeals, %v at 100,000: ratio %.2f\n", q1.Round(10*time.Microsecond), q10.Round(10*time.Microsecond), float64(q10)/float64(q1))
	fmt.Printf("appeal scale: deadline sweep %v at 10,000 old appeals, %v at 100,000: ratio %.2f\n", s1.Round(10*time.Microsecond), s10.Round(10*time.Microsecond), float64(s10)/float64(s1))
	b.ReportMetric(float64(r10)/float64(r1), "review-x10")
	b.ReportMetric(float64(q10)/float64(q1), "cohort-x10")
	b.ReportMetric(float64(s10)/float64(s1), "sweep-x10")
}

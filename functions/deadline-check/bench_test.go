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
// reports the median of 5 runs at each size and the ratio 10×/1× (goal:
// at most 1.3: the cost follows the month's appeals and the overdue ones,
// not the history), also for the review's cohort query alone (the rest of
// the review is computing and rendering the month).
// One run of the whole comparison, whatever b.N.
func BenchmarkAppealScale(b *testing.B) {
	loc := testkit.Shanghai
	_, store := s3test.New(b)
	measure := func(old int) (review, cohort, sweep time.Duration) {
		pool := pgtest.Pool(b)
		seedAppeals(b, pool, old)
		env := &runtime.Env{Name: name, Pool: pool, Log: zap.NewNop().Sugar(), Loc: loc, Calendar: calendar.NewCache(loc)}
		jobs := New(env, store).Handlers[event.PingType]
		ctx := context.Background()
		at := time.Date(2026, 12, 1, 9, 0, 0, 0, loc)
		m := runtime.Meta{ID: "bench", Source: "/bench", Type: "dev.knative.sources.ping", Time: at, HasTime: true, Function: name}
		median := func(ds []time.Duration) time.Duration {
			slices.Sort(ds)
			return ds[len(ds)/2]
		}
		var qs []time.Duration
		for i := 0; i < 5; i++ {
			tx, err := pool.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			recs, err := loadCohort(ctx, tx, time.Date(2026, 11, 1, 0, 0, 0, 0, loc), time.Date(2026, 12, 1, 0, 0, 0, 0, loc), at)
			qs = append(qs, time.Since(start))
			_ = tx.Rollback(ctx)
			if err != nil || len(recs) != 1100 {
				b.Fatalf("cohort: %d appeals, %v", len(recs), err)
			}
		}
		run := func(job string) time.Duration {
			var ds []time.Duration
			for i := 0; i < 5; i++ {
				tx, err := pool.Begin(ctx)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				r, err := jobs.Prepare(m, []byte(`{"job":"`+job+`"}`))
				if err != nil {
					b.Fatal(err)
				}
				res, err := r(ctx, tx)
				ds = append(ds, time.Since(start))
				_ = tx.Rollback(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if i == 0 {
					b.Logf("%d old appeals: %s %+v (%d follow-ups)", old, res.Reply.Type, res.Reply.Data, len(res.FollowUps))
				}
			}
			return median(ds)
		}
		return run("monthly-review"), median(qs), run("deadline-check")
	}
	r1, q1, s1 := measure(10000)
	r10, q10, s10 := measure(100000)
	fmt.Printf("appeal scale: monthly review %v at 10,000 old appeals, %v at 100,000: ratio %.2f\n", r1.Round(10*time.Microsecond), r10.Round(10*time.Microsecond), float64(r10)/float64(r1))
	fmt.Printf("appeal scale: its cohort query %v at 10,000 old appeals, %v at 100,000: ratio %.2f\n", q1.Round(10*time.Microsecond), q10.Round(10*time.Microsecond), float64(q10)/float64(q1))
	fmt.Printf("appeal scale: deadline sweep %v at 10,000 old appeals, %v at 100,000: ratio %.2f\n", s1.Round(10*time.Microsecond), s10.Round(10*time.Microsecond), float64(s10)/float64(s1))
	b.ReportMetric(float64(r10)/float64(r1), "review-x10")
	b.ReportMetric(float64(q10)/float64(q1), "cohort-x10")
	b.ReportMetric(float64(s10)/float64(s1), "sweep-x10")
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/calendar"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/testkit"
)

// testCal is the contract tests' 2030 calendar.
func testCal() *calendar.Calendar {
	m := map[calendar.Date]calendar.Kind{}
	for d := 1; d <= 5; d++ {
		m[calendar.Date{Year: 2030, Month: time.May, Day: d}] = calendar.Holiday
	}
	m[calendar.Date{Year: 2030, Month: time.April, Day: 28}] = calendar.Workday
	m[calendar.Date{Year: 2030, Month: time.May, Day: 11}] = calendar.Workday
	return calendar.New(testkit.Shanghai, m)
}

func endOf(m time.Month, d int) time.Time {
	return time.Date(2030, m, d, 23, 59, 59, 0, testkit.Shanghai)
}

func TestLadderArithmetic(t *testing.T) {
	t.Parallel()
	cal := testCal()
	cases := []struct {
		name string
		due  time.Time
		asOf time.Time
		days int
		want []appeal.Level
	}{
		{"SameDay", endOf(time.May, 9), endOf(time.May, 9).Add(500 * time.Millisecond), 0, []appeal.Level{"reminder"}},
		{"NextDay", endOf(time.May, 9), endOf(time.May, 9).Add(time.Second), 1, []appeal.Level{"reminder"}},
		{"WeekendAfterDue", endOf(time.May, 17), time.Date(2030, 5, 19, 12, 0, 0, 0, testkit.Shanghai), 0, []appeal.Level{"reminder"}},
		{"FirstWorkingDay", endOf(time.May, 17), time.Date(2030, 5, 20, 8, 0, 0, 0, testkit.Shanghai), 1, []appeal.Level{"reminder"}},
		{"MakeUpSaturdayCounts", endOf(time.May, 10), time.Date(2030, 5, 13, 8, 0, 0, 0, testkit.Shanghai), 2, []appeal.Level{"reminder", "supervision"}},
		{"HolidayDoesNot", endOf(time.April, 30), time.Date(2030, 5, 6, 8, 0, 0, 0, testkit.Shanghai), 1, []appeal.Level{"reminder"}},
		{"AcrossHoliday", endOf(time.April, 26), time.Date(2030, 5, 7, 8, 0, 0, 0, testkit.Shanghai), 5, []appeal.Level{"reminder", "supervision", "exposure"}},
		// 23:30 UTC on 12 May is 07:30 on Monday 13 May in Huzhou.
		{"BusinessTimeZone", endOf(time.May, 10), time.Date(2030, 5, 12, 23, 30, 0, 0, time.UTC), 2, []appeal.Level{"reminder", "supervision"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Ladder(cal, []pastDue{{appealID: "X", department: "d", stage: appeal.StageReply, due: c.due}}, c.asOf)
			var levels []appeal.Level
			for _, a := range got {
				levels = append(levels, a.Level)
				if a.WorkingDaysOverdue != c.days {
					t.Errorf("workingDaysOverdue = %d, want %d", a.WorkingDaysOverdue, c.days)
				}
			}
			if fmt.Sprint(levels) != fmt.Sprint(c.want) {
				t.Errorf("levels = %v, want %v", levels, c.want)
			}
		})
	}
}

func TestReviewPeriod(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		asOf       time.Time
		period     string
		from, till string
	}{
		{time.Date(2026, 12, 1, 0, 0, 0, 0, testkit.Shanghai), "2026-11", "2026-11-01T00:00:00+08:00", "2026-12-01T00:00:00+08:00"},
		// 1 January 00:30 in Huzhou is still 31 December in UTC.
		{time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), "2026-12", "2026-12-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00"},
		{time.Date(2027, 3, 31, 12, 0, 0, 0, testkit.Shanghai), "2027-02", "2027-02-01T00:00:00+08:00", "2027-03-01T00:00:00+08:00"},
	} {
		p, from, to := reviewPeriod(c.asOf, testkit.Shanghai)
		if p != c.period || from.Format(time.RFC3339) != c.from || to.Format(time.RFC3339) != c.till {
			t.Errorf("reviewPeriod(%s) = %s %s %s", c.asOf, p, from, to)
		}
	}
}

// rec builds a record received at 9:00 on the given May day with the
// given dues and steps (at hours counted from receipt).
func rec(id string, assignDue, replyDue time.Time, steps ...transition) record {
	r := record{id: id, category: "land", channel: "portal", county: "city",
		received: time.Date(2030, 5, 6, 9, 0, 0, 0, testkit.Shanghai), assignDue: assignDue, replyDue: replyDue}
	r.steps = append([]transition{{at: r.received, action: appeal.Submit, to: appeal.Assigned, department: "d1"}}, steps...)
	return r
}

func at(d, h int) time.Time { return time.Date(2030, 5, d, h, 0, 0, 0, testkit.Shanghai) }

func TestOutcomes(t *testing.T) {
	t.Parallel()
	asOf := at(31, 12)
	cases := []struct {
		name          string
		r             record
		assign, reply outcome
	}{
		{"NothingDone", rec("a", endOf(time.May, 8), endOf(time.May, 17)), late, late},
		{"AcceptedOnDueDay", rec("b", endOf(time.May, 8), endOf(time.May, 17),
			transition{at: at(8, 23), action: appeal.Accept, to: appeal.Accepted, department: "d1"}), onTime, late},
		{"AcceptedThenReturnedBeforeDue", rec("c", endOf(time.May, 8), endOf(time.May, 17),
			transition{at: at(7, 9), action: appeal.Accept, to: appeal.Accepted, department: "d1"},
			transition{at: at(8, 9), action: appeal.Return, to: appeal.Assigned, department: appeal.DefaultDepartment}), late, late},
		{"ReturnedAfterDue", rec("d", endOf(time.May, 8), endOf(time.May, 17),
			transition{at: at(7, 9), action: appeal.Accept, to: appeal.Accepted, department: "d1"},
			transition{at: at(9, 9), action: appeal.Return, to: appeal.Assigned, department: appeal.DefaultDepartment}), onTime, late},
		{"RepliedOnDueDay", rec("e", endOf(time.May, 8), endOf(time.May, 17),
			transition{at: at(7, 9), action: appeal.Accept, to: appeal.Accepted, department: "d1"},
			transition{at: at(17, 23), action: appeal.Reply, to: appeal.Replied, department: "d1"}), onTime, onTime},
		{"FirstReplyLateSecondIrrelevant", rec("f", endOf(time.May, 8), endOf(time.May, 17),
			transition{at: at(7, 9), action: appeal.Accept, to: appeal.Accepted, department: "d1"},
			transition{at: at(20, 9), action: appeal.Reply, to: appeal.Replied, department: "d1"}), onTime, late},
		{"NotYetDue", rec("g", endOf(time.June, 3), endOf(time.June, 14)), pending, pending},
		{"NotYetDueButSignedFor", rec("h", endOf(time.June, 3), endOf(time.June, 14),
			transition{at: at(31, 10), action: appeal.Accept, to: appeal.Accepted, department: "d1"}), onTime, pending},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.r.assign(asOf); got != c.assign {
				t.Errorf("assign = %d, want %d", got, c.assign)
			}
			if got := c.r.reply(asOf); got != c.reply {
				t.Errorf("reply = %d, want %d", got, c.reply)
			}
		})
	}
}

func TestFiguresEmptyAndDeterministic(t *testing.T) {
	t.Parallel()
	from, to := time.Date(2030, 5, 1, 0, 0, 0, 0, testkit.Shanghai), time.Date(2030, 6, 1, 0, 0, 0, 0, testkit.Shanghai)
	empty := Figures(nil, "2030-05", from, to, to)
	if empty.Received != 0 || empty.AssignedOnTimeRate != 0 || empty.SatisfactionRate != 0 || empty.TopCategories == nil || empty.Departments == nil {
		t.Fatalf("empty review = %+v", empty)
	}
	recs := []record{
		rec("a", endOf(time.May, 8), endOf(time.May, 17)),
		rec("b", endOf(time.May, 8), endOf(time.May, 17)),
	}
	recs[1].category, recs[1].county = "Finance ", "anji"
	a, b := Figures(recs, "2030-05", from, to, to), Figures(recs, "2030-05", from, to, to)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("Figures is not deterministic")
	}
	if fmt.Sprint(a.TopCategories) != "[{finance 1} {land 1}]" {
		t.Fatalf("top categories %v", a.TopCategories)
	}
}

func TestRenderHTML(t *testing.T) {
	t.Parallel()
	from, to := time.Date(2030, 5, 1, 0, 0, 0, 0, testkit.Shanghai), time.Date(2030, 6, 1, 0, 0, 0, 0, testkit.Shanghai)
	r := rec("a", endOf(time.May, 8), endOf(time.May, 17))
	r.category = `<script>alert("x")</script>`
	r.steps[0].department = `dept"><img src=x onerror=alert(1)>`
	rv := Figures([]record{r, rec("b", endOf(time.May, 8), endOf(time.May, 17))}, "2030-05", from, to, to)
	page, err := RenderHTML(rv)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := RenderHTML(rv)
	if !bytes.Equal(page, again) {
		t.Fatal("same review, different bytes")
	}
	s := string(page)
	if strings.Contains(s, "<script") || strings.Contains(s, "<img") {
		t.Fatalf("unescaped input in the page:\n%s", s)
	}
	if !strings.Contains(s, "&lt;script&gt;") {
		t.Fatal("category not shown escaped")
	}
	// Self-contained: no external resources of any kind.
	external := regexp.MustCompile(`(?i)<[a-z][^>]*\s(src|href|xlink:href)\s*=|@import|url\(|<link|<script|<iframe|<object|https?://`)
	for _, m := range external.FindAllString(s, -1) {
		t.Errorf("external reference %q", m)
	}
	for _, want := range []string{`<html lang="zh-CN">`, `<meta charset="utf-8">`, "<svg", "主要指标", "常见问题", "各部门办理情况", "统计口径", "2030年5月"} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestOverduePlan shows that the deadline check reads only open appeals
// past a due time: with 20 000 closed appeals and a handful of open ones,
// every branch of the query is an index scan on its stage's partial index.
// docs/appeals.md shows the plan.
func TestOverduePlan(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO appeal.appeals (appeal_id, uscc, enterprise_name, county, title, channel, status,
			department, routed_to, received_at, assign_due, first_reply_due, reply_due, revisit_due, updated_at, source, event_id)
		SELECT 'A' || i, '91330500MA2B3C4D5B', 'e', 'city', 't', 'portal',
			CASE WHEN i % 4000 = 1 THEN 'assigned' WHEN i % 4000 = 2 THEN 'accepted' WHEN i % 4000 = 3 THEN 'replied' ELSE 'closed' END,
			'd', 'd', r, r + interval '2 days', r + interval '14 days', r + interval '14 days', r + interval '16 days', r, 's', 'A' || i
		FROM generate_series(1, 20000) AS i, LATERAL (SELECT timestamptz '2029-01-01' + i * interval '30 minutes') AS t(r)`)
	if err != nil {
		t.Fatal(err)
	}
	// Each appeal's history: its submission and, for the closed ones,
	// acceptance, reply and revisit, all before the check.
	_, err = pool.Exec(ctx, `INSERT INTO appeal.history (appeal_id, at, action, actor, to_status, department, source, event_id)
		SELECT appeal_id, received_at + s.o * interval '1 hour', s.action, 's', s.to_status, 'd', 's', appeal_id || s.action
		FROM appeal.appeals, (VALUES (0, 'submitted', 'assigned'), (1, 'accepted', 'accepted'), (2, 'replied', 'replied'),
			(3, 'revisited', 'closed')) AS s(o, action, to_status)
		WHERE s.o = 0 OR status = 'closed'`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE appeal.appeals; ANALYZE appeal.history`); err != nil {
		t.Fatal(err)
	}
	explain := func(t *testing.T, sql string, asOf time.Time) string {
		rows, err := pool.Query(ctx, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) `+sql, asOf)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		text := strings.Join(plan, "\n")
		t.Logf("plan:\n%s", text)
		if strings.Contains(text, "Seq Scan") {
			t.Error("plan scans a whole table")
		}
		return text
	}
	t.Run("OpenAppealsPastDue", func(t *testing.T) {
		text := explain(t, appeal.OverdueSQL, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		for _, idx := range []string{"appeals_open_due", "history_by_appeal"} {
			if !strings.Contains(text, "using "+idx) {
				t.Errorf("plan does not use %s", idx)
			}
		}
	})
	t.Run("ChangedSinceAsOf", func(t *testing.T) {
		// A check a few hours late: the handful of appeals answered
		// since are rebuilt from their history.
		asOf := time.Date(2030, 2, 21, 12, 0, 0, 0, time.UTC)
		if text := explain(t, appeal.ChangedSQL, asOf); !strings.Contains(text, "history_at") {
			t.Error("plan does not use history_at")
		}
	})
	t.Run("AnyChangedSinceAsOf", func(t *testing.T) {
		// Whether to rebuild any at all: one probe of history_at, in the
		// plan of the first runs and in the generic plan a prepared
		// statement may settle on after five (where an EXISTS over
		// at > $1 scans the table).
		asOf := time.Date(2030, 2, 21, 12, 0, 0, 0, time.UTC)
		if text := explain(t, appeal.ChangedSinceSQL, asOf); !strings.Contains(text, "history_at") {
			t.Error("plan does not use history_at")
		}
		if text := explainGeneric(t, pool, appeal.ChangedSinceSQL, asOf); !strings.Contains(text, "history_at") {
			t.Error("generic plan does not use history_at")
		}
	})
}

// explainGeneric returns the plan Postgres would run sql with as a
// prepared statement's generic plan (no parameter value known), run with
// $1 = asOf, and fails on a scan of a whole table.
func explainGeneric(t *testing.T, pool *pgxpool.Pool, sql string, asOf time.Time) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, q := range []string{"PREPARE qq_generic(timestamptz) AS " + sql, "SET plan_cache_mode = force_generic_plan"} {
		if _, err := conn.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		_, _ = conn.Exec(ctx, "RESET plan_cache_mode", pgx.QueryExecModeSimpleProtocol)
		_, _ = conn.Exec(ctx, "DEALLOCATE qq_generic", pgx.QueryExecModeSimpleProtocol)
	}()
	rows, err := conn.Query(ctx, fmt.Sprintf(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE qq_generic('%s')`,
		asOf.Format(time.RFC3339Nano)), pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(lines, "\n")
	t.Logf("generic plan:\n%s", text)
	if strings.Contains(text, "Seq Scan") {
		t.Error("generic plan scans a whole table")
	}
	return text
}

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
)

// horizonFromTables is the deadline horizon computed afresh from the
// tables it follows, written independently of migration 0094: per appeal
// its open_due and the later of updated_at and its latest transition; per
// disbursement its due_at unless settled, and its settledAt.
const horizonFromTables = `
SELECT 'appeal' AS kind, a.appeal_id AS item, a.open_due AS due,
	greatest(a.updated_at, (SELECT max(h.at) FROM appeal.history h WHERE h.appeal_id = a.appeal_id)) AS changed_at
FROM appeal.appeals a
UNION ALL
SELECT 'payment', d.disbursement_id, CASE WHEN s.settled_at IS NULL THEN d.due_at END, s.settled_at
FROM subsidy.disbursements d LEFT JOIN subsidy.settlements s USING (disbursement_id)`

// wantHorizon fails unless qinqing.deadlines holds exactly the rows
// horizonFromTables computes.
func wantHorizon(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var diff []string
	rows, err := pool.Query(context.Background(), `
		(SELECT 'missing or wrong', * FROM (`+horizonFromTables+`) want EXCEPT SELECT 'missing or wrong', * FROM qinqing.deadlines)
		UNION ALL
		(SELECT 'extra or wrong', * FROM qinqing.deadlines EXCEPT SELECT 'extra or wrong', * FROM (`+horizonFromTables+`) want)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var what, kind, item string
		var due, changed *time.Time
		if err := rows.Scan(&what, &kind, &item, &due, &changed); err != nil {
			t.Fatal(err)
		}
		diff = append(diff, fmt.Sprintf("%s: %s %s due %v changed %v", what, kind, item, due, changed))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(diff) > 0 {
		t.Fatalf("qinqing.deadlines differs from its tables:\n%s", strings.Join(diff, "\n"))
	}
}

// TestHorizonTriggers writes appeals, their history, disbursements and
// settlements every way the database allows and checks after each step
// that the triggers of migration 0094 kept the horizon exact.
func TestHorizonTriggers(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	appeal := func(id, status, at string) string {
		return fmt.Sprintf(`INSERT INTO appeal.appeals (appeal_id, uscc, enterprise_name, county, title, channel, status,
				department, routed_to, received_at, assign_due, first_reply_due, reply_due, updated_at, source, event_id)
			VALUES ('%[1]s', '91330500MA2B3C4D5B', 'e', 'city', 't', 'portal', '%[2]s', 'd', 'd', timestamptz '%[3]s',
				timestamptz '%[3]s' + interval '2 days', timestamptz '%[3]s' + interval '14 days',
				timestamptz '%[3]s' + interval '14 days', timestamptz '%[3]s', 's', '%[1]s')`, id, status, at)
	}
	history := func(id, at, to string) string {
		return fmt.Sprintf(`INSERT INTO appeal.history (appeal_id, at, action, actor, to_status, department, source, event_id)
			VALUES ('%[1]s', timestamptz '%[2]s', 'accepted', 's', '%[3]s', 'd', 's', '%[1]s-%[2]s')`, id, at, to)
	}
	steps := []string{
		appeal("A1", "assigned", "2030-05-13 09:00+08"),
		appeal("A2", "closed", "2030-05-13 09:00+08"),
		history("A1", "2030-05-13 09:00+08", "assigned"),
		// Accepted: only the reply stays open; the row changes with it.
		`UPDATE appeal.appeals SET status = 'accepted', updated_at = '2030-05-14 10:00+08' WHERE appeal_id = 'A1'`,
		history("A1", "2030-05-14 10:00+08", "accepted"),
		// A transition recorded with a time later than the row's updated_at.
		history("A2", "2030-05-20 10:00+08", "closed"),
		// An earlier transition recorded late keeps the latest time.
		history("A2", "2030-05-15 10:00+08", "closed"),
		`UPDATE appeal.appeals SET status = 'replied', revisit_due = '2030-05-27 23:59:59+08', updated_at = '2030-05-22 10:00+08'
			WHERE appeal_id = 'A1'`,
		`UPDATE appeal.appeals SET status = 'closed', updated_at = '2030-05-28 10:00+08' WHERE appeal_id = 'A1'`,
		appeal("A3", "assigned", "2030-06-03 09:00+08"),
		`DELETE FROM appeal.appeals WHERE appeal_id = 'A3'`,
		`INSERT INTO subsidy.policies (policy_id, name, trigger, budget_fen, definition, updated_at)
			VALUES ('P', 'p', 'honour', 1000, '{}', now())`,
		`INSERT INTO subsidy.disbursements (disbursement_id, policy_id, uscc, basis, amount_fen, approval_year, approved_at, due_at,
				event_type, event_source, event_id)
			VALUES ('D1', 'P', 'u', 'b1', 100, 2030, '2030-06-03 10:00+08', '2030-06-17 23:59:59+08', 't', 's', 'e1'),
				('D2', 'P', 'u', 'b2', 100, 2030, '2030-06-03 10:00+08', '2030-06-17 23:59:59+08', 't', 's', 'e2')`,
		`INSERT INTO subsidy.settlements (disbursement_id, attempt, bank_ref, settled_at, recorded_at, event_source, event_id)
			VALUES ('D2', 1, 'HZB', '2030-06-20 10:00+08', now(), 's', 'e3')`,
		// A truncate, which row triggers do not see, rebuilds the kind.
		`TRUNCATE subsidy.settlements`,
		`TRUNCATE appeal.history`,
	}
	for i, q := range steps {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("step %d: %v\n%s", i, err, q)
		}
		wantHorizon(t, pool)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM qinqing.deadlines`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("%d horizon rows, %v; want 4 (A1, A2, D1, D2)", n, err)
	}
}

// TestHorizonSkipsTables shows the point of the horizon: a check with
// nothing due, and nothing changed after its time, reads none of the
// appeal and subsidy tables (the table statistics count no scan of them),
// and a check after a deadline reads them. The statistics of a backend's
// transactions reach pg_stat_user_tables within about a second of it
// going idle; each wait is for the check's own inbox row to be counted,
// which comes in the same report as its reads.
func TestHorizonSkipsTables(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.submit(t, "H", day(5, 13, 9), "tax", "city") // to be signed for by Wednesday 15 May
	scans := func(t *testing.T, inboxRows int) int64 {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var ins, n int64
			err := f.Pool.QueryRow(context.Background(), `SELECT
					(SELECT n_tup_ins FROM pg_stat_user_tables WHERE relid = 'qinqing.inbox'::regclass),
					(SELECT sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)) FROM pg_stat_user_tables
						WHERE relid IN ('appeal.appeals'::regclass, 'appeal.history'::regclass,
							'subsidy.disbursements'::regclass, 'subsidy.settlements'::regclass))`).Scan(&ins, &n)
			if err != nil {
				t.Fatal(err)
			}
			if ins >= int64(inboxRows) {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("the statistics count %d inbox rows after 20 s, want %d", ins, inboxRows)
			}
			time.Sleep(100 * time.Millisecond)
			_, _ = f.Pool.Exec(context.Background(), `SELECT pg_stat_clear_snapshot()`)
		}
	}
	// Inbox rows so far: the calendar, the submission (appeal-router's).
	before := scans(t, 2)
	if c := f.check(t, day(5, 14, 9)); c.Overdue != (contract.OverdueCounts{}) {
		t.Fatalf("check on Tuesday: %+v, want nothing overdue", c.Overdue)
	}
	if after := scans(t, 3); after != before {
		t.Fatalf("a check with nothing due scanned the appeal and subsidy tables %d times, want 0", after-before)
	}
	if c := f.check(t, day(5, 16, 9)); c.Overdue.Assign != 1 {
		t.Fatalf("check on Thursday: %+v, want H overdue for assignment", c.Overdue)
	}
	if after := scans(t, 4); after == before {
		t.Fatal("a check with an appeal past due read no appeal table")
	}
	wantHorizon(t, f.Pool)
}

// TestHorizonPlan: each probe of the horizon is an index scan of its
// partial index, also in a prepared statement's generic plan.
func TestHorizonPlan(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO qinqing.deadlines (kind, item, due, changed_at)
		SELECT CASE WHEN i % 2 = 0 THEN 'appeal' ELSE 'payment' END, 'I' || i,
			CASE WHEN i % 100 = 0 THEN timestamptz '2030-01-01' + i * interval '1 hour' END,
			timestamptz '2029-01-01' + i * interval '1 minute'
		FROM generate_series(1, 20000) i;
		ANALYZE qinqing.deadlines`); err != nil {
		t.Fatal(err)
	}
	sql := horizonSQL([]Check{{Kind: "appeal"}, {Kind: "payment"}})
	asOf := time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC)
	text := explainGeneric(t, pool, sql, asOf)
	for _, idx := range []string{"deadlines_due", "deadlines_changed"} {
		if strings.Count(text, "using "+idx) != 2 {
			t.Errorf("generic plan does not probe %s once per kind", idx)
		}
	}
}

// The contract suites' appeals and payments go through appeal-router and
// subsidy-disbursal with their own roles: the triggers write the horizon
// as its owner.
func TestHorizonThroughFunctions(t *testing.T) {
	t.Parallel()
	f := setup(t)
	dept := f.submit(t, "T", day(5, 13, 9), "land", "anji")
	f.act(t, contract.TypeAppealAccepted, day(5, 14, 10), map[string]any{"appealId": "T", "department": dept})
	f.act(t, contract.TypeAppealReplied, day(5, 16, 10), map[string]any{"appealId": "T", "department": dept, "reply": "已答复"})
	wantHorizon(t, f.Pool)
	var due, changed time.Time
	if err := f.Pool.QueryRow(context.Background(), `SELECT due, changed_at FROM qinqing.deadlines WHERE kind = 'appeal' AND item = 'T'`).
		Scan(&due, &changed); err != nil {
		t.Fatal(err)
	}
	if !changed.Equal(day(5, 16, 10)) {
		t.Fatalf("T changed_at %v, want the reply's time %v", changed, day(5, 16, 10))
	}
}

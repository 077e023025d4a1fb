package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime"
)

// recordAnnouncements inserts one row per (appeal, stage, level) and
// returns the keys of those that were not announced before. A check
// running at the same moment inserts the same keys in the same order, so
// it waits on the first conflicting row until this one commits, then
// skips what this one announced (ON CONFLICT DO NOTHING): no duplicates,
// no deadlock.
func recordAnnouncements(ctx context.Context, tx pgx.Tx, m runtime.Meta, due []contract.OverdueAnnounced) (map[string]bool, error) {
	ids := make([]string, len(due))
	stages := make([]string, len(due))
	levels := make([]string, len(due))
	depts := make([]string, len(due))
	dues := make([]time.Time, len(due))
	days := make([]int32, len(due))
	for i, a := range due {
		ids[i], stages[i], levels[i], depts[i], dues[i], days[i] =
			a.AppealID, string(a.Stage), string(a.Level), a.Department, a.DueAt, int32(a.WorkingDaysOverdue)
	}
	rows, err := tx.Query(ctx, `INSERT INTO appeal.overdue_announcements
			(appeal_id, stage, level, department, due_at, working_days_overdue, as_of, source, event_id)
		SELECT a, s, l, d, due, w, $7, $8, $9
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int[])
			WITH ORDINALITY AS u(a, s, l, d, due, w, n)
		ORDER BY n
		ON CONFLICT (appeal_id, stage, level) DO NOTHING
		RETURNING appeal_id, stage, level`, ids, stages, levels, depts, dues, days, m.Time, m.Source, m.ID)
	if err != nil {
		return nil, fmt.Errorf("record announcements: %w", err)
	}
	fresh := map[string]bool{}
	var id, stage, level string
	_, err = pgx.ForEachRow(rows, []any{&id, &stage, &level}, func() error {
		fresh[appeal.OverdueKey(id, appeal.Stage(stage), appeal.Level(level))] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record announcements: %w", err)
	}
	return fresh, nil
}

// horizonSQL reads, for each check's kind, whether anything of that kind
// may be overdue as of $1 (asOf): whether a row of the deadline horizon
// (qinqing.deadlines, kept by the triggers of migration 0094) has a
// deadline before asOf, or changed after it (then it may have stood past
// due at asOf, and the check rebuilds it). Each is one probe of a partial
// index, also in a prepared statement's generic plan: min and max, not
// EXISTS, whose generic plan expects a match within a few rows and scans.
func horizonSQL(checks []Check) string {
	cols := make([]string, len(checks))
	for i, c := range checks {
		k := strings.ReplaceAll(c.Kind, "'", "''")
		cols[i] = `coalesce((SELECT min(due) FROM qinqing.deadlines WHERE kind = '` + k + `') < $1
		OR (SELECT max(changed_at) FROM qinqing.deadlines WHERE kind = '` + k + `') > $1, false)`
	}
	return "SELECT " + strings.Join(cols, ",\n\t")
}

// queueHorizon queues on b the horizon read (horizonSQL) as of asOf, into
// due (one per check) once b is read.
func queueHorizon(b *pgx.Batch, sql string, asOf time.Time, due []bool) {
	b.Queue(sql, asOf).QueryRow(func(row pgx.Row) error {
		dst := make([]any, len(due))
		for i := range due {
			dst[i] = &due[i]
		}
		if err := row.Scan(dst...); err != nil {
			return fmt.Errorf("deadline horizon: %w", err)
		}
		return nil
	})
}

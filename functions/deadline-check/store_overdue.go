package main

import (
	"context"
	"fmt"
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

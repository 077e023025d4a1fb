package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// caseTraces returns, for the given appeals, the traceparent their case
// carried when appeal-router handled the event that created them: the
// inbox keeps it (for INBOX_RETENTION, 90 days by default) under that
// event's source and id, which the appeal row records. An appeal whose
// event was not traced, or was forgotten, is absent. One lookup by the
// inbox's primary key per appeal.
func caseTraces(ctx context.Context, tx pgx.Tx, appealIDs []string) (map[string]string, error) {
	out := map[string]string{}
	if len(appealIDs) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT a.appeal_id, i.traceparent
		FROM appeal.appeals a
		JOIN qinqing.inbox i ON i.function = 'appeal-router' AND i.source = a.source AND i.id = a.event_id
		WHERE a.appeal_id = ANY($1) AND i.traceparent IS NOT NULL`, appealIDs)
	if err != nil {
		return nil, fmt.Errorf("case traces: %w", err)
	}
	var id, tp string
	_, err = pgx.ForEachRow(rows, []any{&id, &tp}, func() error {
		out[id] = tp
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("case traces: %w", err)
	}
	return out, nil
}

package appeal

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/postgres"
)

// RequestQuery selects a portal's appeals for open311: by ids, or by
// received time, category and status.
type RequestQuery struct {
	Source     string // "/portals/<portal>": only the appeals it submitted
	IDs        []string
	Category   string
	Status     string // "", "open" or "closed"
	Start, End time.Time
	Limit      int
}

// RequestRow is what an Open311 request shows of an appeal, with its
// latest step (the last history entry) and its latest escalation (the
// last overdue announcement), if any.
type RequestRow struct {
	ID, Status, Category, Detail, Department, County string
	ReceivedAt, UpdatedAt, ReplyDue                  time.Time

	LastAction, LastDepartment string
	LastAt                     time.Time
	LastDetail                 []byte

	OverdueStage, OverdueLevel string
	OverdueAt                  *time.Time
	OverdueDays                int
}

// Requests reads the appeals rq selects, newest first, at most rq.Limit
// (open311; read-only). A portal's appeals are found by the source of
// the event that created them (index appeals_by_source, migration 0080).
func Requests(ctx context.Context, db postgres.Querier, rq RequestQuery) ([]RequestRow, error) {
	var where []string
	args := []any{rq.Source}
	where = append(where, "a.source = $1")
	if len(rq.IDs) > 0 {
		args = append(args, rq.IDs)
		where = append(where, fmt.Sprintf("a.appeal_id = ANY($%d)", len(args)))
	} else {
		args = append(args, rq.Start, rq.End)
		where = append(where, fmt.Sprintf("a.received_at >= $%d AND a.received_at <= $%d", len(args)-1, len(args)))
		if rq.Category != "" {
			args = append(args, rq.Category)
			where = append(where, fmt.Sprintf("lower(trim(a.category)) = $%d", len(args)))
		}
		switch rq.Status {
		case "closed":
			where = append(where, "a.status = 'closed'")
		case "open":
			where = append(where, "a.status <> 'closed'")
		}
	}
	sql := `SELECT a.appeal_id, a.status, lower(trim(a.category)), a.detail, a.department, a.county,
			a.received_at, a.updated_at, a.reply_due,
			h.action, h.department, h.at, h.detail::text,
			o.stage, o.level, o.as_of, o.working_days_overdue
		FROM appeal.appeals a
		LEFT JOIN LATERAL (SELECT action, department, at, detail FROM appeal.history
			WHERE appeal_id = a.appeal_id ORDER BY at DESC, seq DESC LIMIT 1) h ON true
		LEFT JOIN LATERAL (SELECT stage, level, as_of, working_days_overdue FROM appeal.overdue_announcements
			WHERE appeal_id = a.appeal_id ORDER BY as_of DESC,
				CASE level WHEN 'exposure' THEN 3 WHEN 'supervision' THEN 2 ELSE 1 END DESC LIMIT 1) o ON true
		WHERE ` + strings.Join(where, " AND ") + fmt.Sprintf(`
		ORDER BY a.received_at DESC, a.appeal_id LIMIT %d`, rq.Limit)
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read appeals: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (RequestRow, error) {
		var a RequestRow
		var action, dept, detail, stage, level *string
		var at *time.Time
		var days *int
		err := row.Scan(&a.ID, &a.Status, &a.Category, &a.Detail, &a.Department, &a.County,
			&a.ReceivedAt, &a.UpdatedAt, &a.ReplyDue, &action, &dept, &at, &detail,
			&stage, &level, &a.OverdueAt, &days)
		if action != nil {
			a.LastAction, a.LastDepartment, a.LastAt, a.LastDetail = *action, *dept, *at, []byte(*detail)
		}
		if stage != nil {
			a.OverdueStage, a.OverdueLevel, a.OverdueDays = *stage, *level, *days
		}
		return a, err
	})
}

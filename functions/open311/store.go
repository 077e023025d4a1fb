package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/appeal"
)

// query selects a portal's requests: by ids, or by received time, category
// and status.
type query struct {
	source     string // "/portals/<portal>": only the appeals it submitted
	ids        []string
	category   string
	status     string // "", "open" or "closed"
	start, end time.Time
}

// appealRow is what a request shows of an appeal, with its latest step
// (the last history entry) and its latest escalation (the last overdue
// announcement), if any.
type appealRow struct {
	id, status, category, detail, department, county string
	receivedAt, updatedAt, replyDue                  time.Time

	lastAction, lastDepartment string
	lastAt                     time.Time
	lastDetail                 []byte

	overdueStage, overdueLevel string
	overdueAt                  *time.Time
	overdueDays                int
}

// readAppeals reads appeal-router's tables (read-only). The portal's
// appeals are found by the source of the event that created them
// (index appeals_by_source, migration 0080).
func readAppeals(ctx context.Context, pool *pgxpool.Pool, q query) ([]appealRow, error) {
	var where []string
	args := []any{q.source}
	where = append(where, "a.source = $1")
	if len(q.ids) > 0 {
		args = append(args, q.ids)
		where = append(where, fmt.Sprintf("a.appeal_id = ANY($%d)", len(args)))
	} else {
		args = append(args, q.start, q.end)
		where = append(where, fmt.Sprintf("a.received_at >= $%d AND a.received_at <= $%d", len(args)-1, len(args)))
		if q.category != "" {
			args = append(args, q.category)
			where = append(where, fmt.Sprintf("lower(trim(a.category)) = $%d", len(args)))
		}
		switch q.status {
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
		ORDER BY a.received_at DESC, a.appeal_id LIMIT %d`, maxResults)
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read appeals: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (appealRow, error) {
		var a appealRow
		var action, dept, detail, stage, level *string
		var at *time.Time
		var days *int
		err := row.Scan(&a.id, &a.status, &a.category, &a.detail, &a.department, &a.county,
			&a.receivedAt, &a.updatedAt, &a.replyDue, &action, &dept, &at, &detail,
			&stage, &level, &a.overdueAt, &days)
		if action != nil {
			a.lastAction, a.lastDepartment, a.lastAt, a.lastDetail = *action, *dept, *at, []byte(*detail)
		}
		if stage != nil {
			a.overdueStage, a.overdueLevel, a.overdueDays = *stage, *level, *days
		}
		return a, err
	})
}

// Words for the escalation ladder and the deadline stages.
var (
	levelWords = map[string]string{
		string(appeal.Reminder):    "催办 reminder sent",
		string(appeal.Supervision): "督办 referred to the city supervision team (市监督专班)",
		string(appeal.Exposure):    "曝光 listed for public exposure (《看见》)",
	}
	stageWords = map[string]string{
		string(appeal.StageAssign):  "signing for the appeal",
		string(appeal.StageReply):   "the answer",
		string(appeal.StageRevisit): "the follow-up visit",
	}
)

// notes words the latest of the appeal's last step and last escalation.
func (a appealRow) notes(loc *time.Location) string {
	if a.overdueAt != nil && (a.lastAction == "" || !a.overdueAt.Before(a.lastAt)) {
		return fmt.Sprintf("Overdue (%s): %s, %d working day(s) past the due date, as of %s.",
			stageWords[a.overdueStage], levelWords[a.overdueLevel], a.overdueDays, a.overdueAt.In(loc).Format("2006-01-02"))
	}
	var d map[string]any
	_ = json.Unmarshal(a.lastDetail, &d)
	str := func(k string) string { s, _ := d[k].(string); return s }
	dept := appeal.DepartmentName(a.lastDepartment)
	switch appeal.Action(a.lastAction) {
	case appeal.Submit:
		return "Received and handed to " + dept + "."
	case appeal.Accept:
		return dept + " signed for the appeal and is working on it."
	case appeal.Return:
		return "Returned to " + appeal.DepartmentName(appeal.DefaultDepartment) + " for triage: " + str("reason")
	case appeal.Reply:
		return "Answered: " + str("reply")
	case appeal.Revisit:
		switch appeal.Satisfaction(str("satisfaction")) {
		case appeal.Unsatisfied:
			return "Follow-up visit: unsatisfied; reopened with " + dept + "."
		case appeal.BasicallySatisfied:
			return "Follow-up visit: basically satisfied; closed."
		default:
			return "Follow-up visit: satisfied; closed."
		}
	}
	return ""
}

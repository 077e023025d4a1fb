package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/appeal"
)

// query selects a portal's requests (its Limit is set by readAppeals).
type query = appeal.RequestQuery

// appealRow is what a request shows of an appeal.
type appealRow = appeal.RequestRow

// readAppeals reads appeal-router's tables (read-only) through the appeal
// domain's store, at most maxResults appeals.
func readAppeals(ctx context.Context, pool *pgxpool.Pool, q query) ([]appealRow, error) {
	q.Limit = maxResults
	return appeal.Requests(ctx, pool, q)
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
func notes(a appealRow, loc *time.Location) string {
	if a.OverdueAt != nil && (a.LastAction == "" || !a.OverdueAt.Before(a.LastAt)) {
		return fmt.Sprintf("Overdue (%s): %s, %d working day(s) past the due date, as of %s.",
			stageWords[a.OverdueStage], levelWords[a.OverdueLevel], a.OverdueDays, a.OverdueAt.In(loc).Format("2006-01-02"))
	}
	var d map[string]any
	_ = json.Unmarshal(a.LastDetail, &d)
	str := func(k string) string { s, _ := d[k].(string); return s }
	dept := appeal.DepartmentName(a.LastDepartment)
	switch appeal.Action(a.LastAction) {
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

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime"
)

// current is what a transition needs of a locked appeal row.
type current struct {
	status     appeal.Status
	department string
}

// lockAppeal reads an appeal and locks its row until the transaction
// ends: transitions of one appeal happen one after the other.
func lockAppeal(ctx context.Context, tx pgx.Tx, id string) (current, bool, error) {
	var c current
	err := tx.QueryRow(ctx, `SELECT status, department FROM appeal.appeals WHERE appeal_id = $1 FOR UPDATE`, id).
		Scan(&c.status, &c.department)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("lock appeal: %w", err)
	}
	return c, true, nil
}

// insertAppeal creates the appeal unless one with its id exists; it
// reports whether it did. A concurrent insert of the same id waits on the
// primary key until the other commits, then does nothing.
func insertAppeal(ctx context.Context, tx pgx.Tx, m runtime.Meta, id string, p *contract.AppealSubmitted, a contract.AppealAssignment) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO appeal.appeals (appeal_id, uscc, enterprise_name, county, title, detail, category,
			channel, forum_id, signup_id, status, department, routed_to, received_at, assign_due, first_reply_due, reply_due,
			updated_at, source, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9, ''), NULLIF($10, ''), 'assigned', $11, $11, $12, $13, $14, $14,
			$12, $15, $16)
		ON CONFLICT (appeal_id) DO NOTHING`,
		id, p.Enterprise.USCC, p.Enterprise.Name, p.County, p.Title, p.Detail, p.Category,
		p.Channel, p.ForumID, p.SignupID, a.Department, a.ReceivedAt, a.AssignDue, a.ReplyDue, m.Source, m.ID)
	if err != nil {
		return false, fmt.Errorf("insert appeal: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// assignment reads an existing appeal's current assignment.
func assignment(ctx context.Context, tx pgx.Tx, id string) (contract.AppealAssignment, error) {
	a := contract.AppealAssignment{AppealID: id}
	err := tx.QueryRow(ctx, `SELECT department, received_at, assign_due, reply_due FROM appeal.appeals WHERE appeal_id = $1`, id).
		Scan(&a.Department, &a.ReceivedAt, &a.AssignDue, &a.ReplyDue)
	if err != nil {
		return a, fmt.Errorf("read appeal: %w", err)
	}
	return a, nil
}

// step is one transition as the history records it.
type step struct {
	action       appeal.Action
	actor        string
	from, to     appeal.Status
	department   string // the assignee after the transition
	satisfaction appeal.Satisfaction
	detail       map[string]any
}

func addHistory(ctx context.Context, tx pgx.Tx, m runtime.Meta, id string, s step) error {
	detail, err := json.Marshal(s.detail)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO appeal.history (appeal_id, at, action, actor, from_status, to_status, department,
			satisfaction, detail, source, event_id)
		VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7, NULLIF($8, ''), $9, $10, $11)`,
		id, m.Time, s.action, s.actor, s.from, s.to, s.department, s.satisfaction, string(detail), m.Source, m.ID)
	if err != nil {
		return fmt.Errorf("insert history: %w", err)
	}
	return nil
}

// dues are the deadline columns a transition sets; nil leaves one as is.
type dues struct {
	replyDue   *time.Time
	revisitDue *time.Time
	reopened   bool
}

func updateAppeal(ctx context.Context, tx pgx.Tx, id string, s step, d dues, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE appeal.appeals SET status = $2, department = $3,
			reply_due = coalesce($4, reply_due), revisit_due = coalesce($5, revisit_due),
			reopened = reopened + CASE WHEN $6 THEN 1 ELSE 0 END, updated_at = $7
		WHERE appeal_id = $1`, id, s.to, s.department, d.replyDue, d.revisitDue, d.reopened, at)
	if err != nil {
		return fmt.Errorf("update appeal: %w", err)
	}
	return nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/runtime"
)

// ClosedForum is one entry of weekly.completed.
type ClosedForum struct {
	ForumID    string `json:"forumId"`
	Confirmed  int    `json:"confirmed"`
	Waitlisted int    `json:"waitlisted"`
	RosterKey  string `json:"rosterKey"`
}

// weekly closes, once, every forum whose signup deadline has passed as of
// the event time, and writes its roster. A second check finds them closed.
// Two checks at once: the second waits on the row locks, then sees the
// rows closed and skips them.
func (f *Function) weekly(ctx context.Context, tx pgx.Tx, m runtime.Meta) (runtime.Result, error) {
	rows, err := tx.Query(ctx, `SELECT forum_id FROM forum.forums
		WHERE closed_at IS NULL AND signup_deadline <= $1 ORDER BY signup_deadline, forum_id FOR UPDATE`, m.Time)
	if err != nil {
		return runtime.Result{}, fmt.Errorf("forums to close: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return runtime.Result{}, fmt.Errorf("forums to close: %w", err)
	}
	closed := make([]ClosedForum, 0, len(ids))
	for _, id := range ids {
		c, err := f.closeForum(ctx, tx, id, m.Time)
		if err != nil {
			return runtime.Result{}, err
		}
		closed = append(closed, c)
	}
	return runtime.Reply(TypeWeeklyCompleted, map[string]any{"closed": closed}), nil
}

// rosterHeader is the first row of roster.csv.
var rosterHeader = []string{"signupId", "status", "mode", "uscc", "enterpriseName", "county", "contactName",
	"contactPhone", "nominatedBy", "topic", "problems", "requestedAt"}

func (f *Function) closeForum(ctx context.Context, tx pgx.Tx, forumID string, at time.Time) (ClosedForum, error) {
	rows, err := tx.Query(ctx, `SELECT signup_id, status, mode, uscc, enterprise_name, county, contact_name, contact_phone,
			coalesce(nominated_by, ''), topic, problems::text, requested_at
		FROM forum.signups WHERE forum_id = $1
		ORDER BY CASE status WHEN 'confirmed' THEN 0 WHEN 'waitlisted' THEN 1 ELSE 2 END, seq`, forumID)
	if err != nil {
		return ClosedForum{}, fmt.Errorf("roster: %w", err)
	}
	defer rows.Close()
	var buf bytes.Buffer
	w := docs.NewCSVWriter(&buf)
	_ = w.Write(rosterHeader)
	c := ClosedForum{ForumID: forumID, RosterKey: path.Join("forums", forumID, "roster.csv")}
	for rows.Next() {
		var rec [11]string
		var problems string
		var requested time.Time
		if err := rows.Scan(&rec[0], &rec[1], &rec[2], &rec[3], &rec[4], &rec[5], &rec[6], &rec[7], &rec[8], &rec[9],
			&problems, &requested); err != nil {
			return ClosedForum{}, fmt.Errorf("roster: %w", err)
		}
		var ps []Problem
		if err := json.Unmarshal([]byte(problems), &ps); err != nil {
			return ClosedForum{}, fmt.Errorf("roster: %w", err)
		}
		titles := make([]string, len(ps))
		for i, p := range ps {
			titles[i] = p.Title
		}
		rec[10] = strings.Join(titles, "; ")
		_ = w.Write(append(rec[:], requested.UTC().Format(time.RFC3339)))
		switch rec[1] {
		case StatusConfirmed:
			c.Confirmed++
		case StatusWaitlisted:
			c.Waitlisted++
		}
	}
	if err := rows.Err(); err != nil {
		return ClosedForum{}, fmt.Errorf("roster: %w", err)
	}
	if err := w.Flush(); err != nil {
		return ClosedForum{}, fmt.Errorf("roster: %w", err)
	}
	// Written before the commit under a fixed key: a retry overwrites it.
	if err := f.docs.Put(ctx, c.RosterKey, "text/csv; charset=utf-8", buf.Bytes()); err != nil {
		return ClosedForum{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE forum.forums SET closed_at = $2, roster_key = $3 WHERE forum_id = $1`,
		forumID, at, c.RosterKey); err != nil {
		return ClosedForum{}, fmt.Errorf("close forum: %w", err)
	}
	return c, nil
}

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// lockForumsToClose returns the open forums whose signup deadline has
// passed at asOf, in deadline order, and locks their rows until the
// transaction ends (a second check at once waits, then finds them closed).
func lockForumsToClose(ctx context.Context, tx pgx.Tx, asOf time.Time) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT forum_id FROM forum.forums
		WHERE closed_at IS NULL AND signup_deadline <= $1 ORDER BY signup_deadline, forum_id FOR UPDATE`, asOf)
	if err != nil {
		return nil, fmt.Errorf("forums to close: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("forums to close: %w", err)
	}
	return ids, nil
}

// rosterEntry is one signup of a roster: fields holds the roster's
// columns from signupId to topic, and fields[10] is left for the caller
// (the problems' titles); problems is the signup's problems as JSON.
type rosterEntry struct {
	fields    [11]string
	problems  string
	requested time.Time
}

// eachRosterEntry calls fn for each signup of the forum, confirmed first,
// then waitlisted, then the others, each in signup order.
func eachRosterEntry(ctx context.Context, tx pgx.Tx, forumID string, fn func(e *rosterEntry) error) error {
	rows, err := tx.Query(ctx, `SELECT signup_id, status, mode, uscc, enterprise_name, county, contact_name, contact_phone,
			coalesce(nominated_by, ''), topic, problems::text, requested_at
		FROM forum.signups WHERE forum_id = $1
		ORDER BY CASE status WHEN 'confirmed' THEN 0 WHEN 'waitlisted' THEN 1 ELSE 2 END, seq`, forumID)
	if err != nil {
		return err
	}
	var e rosterEntry
	f := &e.fields
	_, err = pgx.ForEachRow(rows, []any{&f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9],
		&e.problems, &e.requested}, func() error { return fn(&e) })
	return err
}

// markForumClosed records that the forum closed at at with its roster
// under rosterKey.
func markForumClosed(ctx context.Context, tx pgx.Tx, forumID string, at time.Time, rosterKey string) error {
	if _, err := tx.Exec(ctx, `UPDATE forum.forums SET closed_at = $2, roster_key = $3 WHERE forum_id = $1`,
		forumID, at, rosterKey); err != nil {
		return fmt.Errorf("close forum: %w", err)
	}
	return nil
}

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

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/runtime"
)

// weekly closes, once, every forum whose signup deadline has passed as of
// the event time, and writes its roster. A second check finds them closed.
// Two checks at once: the second waits on the row locks, then sees the
// rows closed and skips them.
func (f *Function) weekly(ctx context.Context, tx pgx.Tx, m runtime.Meta) (runtime.Result, error) {
	ids, err := lockForumsToClose(ctx, tx, m.Time)
	if err != nil {
		return runtime.Result{}, err
	}
	closed := make([]contract.ClosedForum, 0, len(ids))
	for _, id := range ids {
		c, err := f.closeForum(ctx, tx, id, m.Time)
		if err != nil {
			return runtime.Result{}, err
		}
		closed = append(closed, c)
	}
	return runtime.Reply(contract.TypeForumWeeklyCompleted, contract.ForumWeeklyCompleted{Closed: closed}), nil
}

// rosterHeader is the first row of roster.csv.
var rosterHeader = []string{"signupId", "status", "mode", "uscc", "enterpriseName", "county", "contactName",
	"contactPhone", "nominatedBy", "topic", "problems", "requestedAt"}

func (f *Function) closeForum(ctx context.Context, tx pgx.Tx, forumID string, at time.Time) (contract.ClosedForum, error) {
	var buf bytes.Buffer
	w := docs.NewCSVWriter(&buf)
	_ = w.Write(rosterHeader)
	c := contract.ClosedForum{ForumID: forumID, RosterKey: path.Join("forums", forumID, "roster.csv")}
	err := eachRosterEntry(ctx, tx, forumID, func(e *rosterEntry) error {
		var ps []contract.Problem
		if err := json.Unmarshal([]byte(e.problems), &ps); err != nil {
			return err
		}
		titles := make([]string, len(ps))
		for i, p := range ps {
			titles[i] = p.Title
		}
		e.fields[10] = strings.Join(titles, "; ")
		_ = w.Write(append(e.fields[:], e.requested.UTC().Format(time.RFC3339)))
		switch e.fields[1] {
		case StatusConfirmed:
			c.Confirmed++
		case StatusWaitlisted:
			c.Waitlisted++
		}
		return nil
	})
	if err != nil {
		return contract.ClosedForum{}, fmt.Errorf("roster: %w", err)
	}
	if err := w.Flush(); err != nil {
		return contract.ClosedForum{}, fmt.Errorf("roster: %w", err)
	}
	// Written before the commit under a fixed key: a retry overwrites it.
	if err := f.docs.Put(ctx, c.RosterKey, "text/csv; charset=utf-8", buf.Bytes()); err != nil {
		return contract.ClosedForum{}, err
	}
	if err := markForumClosed(ctx, tx, forumID, at, c.RosterKey); err != nil {
		return contract.ClosedForum{}, err
	}
	return c, nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/runtime"
)

// forum is what seat decisions need of a locked forum row.
type forum struct {
	capacity int
	reserved int
	deadline time.Time
	closed   bool
}

// seats counts a forum's live signups.
type seats struct {
	self, nominated, waitlisted int
}

func (s seats) total() int { return s.self + s.nominated }

// mayTake applies the seat rule: self signups may take capacity −
// reservedForNominated seats, nominated signups any free seat, and never
// more confirmed than capacity.
func (f forum) mayTake(s seats, mode string) bool {
	if s.total() >= f.capacity {
		return false
	}
	return mode == ModeNominated || s.self < f.capacity-f.reserved
}

// lockForum reads a forum and locks its row until the transaction ends:
// every seat decision for the forum happens under this lock.
func lockForum(ctx context.Context, tx pgx.Tx, forumID string) (forum, bool, error) {
	var f forum
	var closedAt *time.Time
	err := tx.QueryRow(ctx, `SELECT capacity, reserved_for_nominated, signup_deadline, closed_at
		FROM forum.forums WHERE forum_id = $1 FOR UPDATE`, forumID).Scan(&f.capacity, &f.reserved, &f.deadline, &closedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, false, nil
	}
	if err != nil {
		return f, false, fmt.Errorf("lock forum: %w", err)
	}
	f.closed = closedAt != nil
	return f, true, nil
}

func countSeats(ctx context.Context, tx pgx.Tx, forumID string) (seats, error) {
	var s seats
	err := tx.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE status = 'confirmed' AND mode = 'self'),
			count(*) FILTER (WHERE status = 'confirmed' AND mode = 'nominated'),
			count(*) FILTER (WHERE status = 'waitlisted')
		FROM forum.signups WHERE forum_id = $1`, forumID).Scan(&s.self, &s.nominated, &s.waitlisted)
	if err != nil {
		return s, fmt.Errorf("count seats: %w", err)
	}
	return s, nil
}

func upsertForum(ctx context.Context, tx pgx.Tx, p *Scheduled, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO forum.forums (forum_id, forum_date, theme, host_leader, venue, county,
			capacity, reserved_for_nominated, signup_deadline, scheduled_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (forum_id) DO UPDATE SET forum_date = EXCLUDED.forum_date, theme = EXCLUDED.theme,
			host_leader = EXCLUDED.host_leader, venue = EXCLUDED.venue, county = EXCLUDED.county,
			capacity = EXCLUDED.capacity, reserved_for_nominated = EXCLUDED.reserved_for_nominated,
			signup_deadline = EXCLUDED.signup_deadline, scheduled_at = EXCLUDED.scheduled_at`,
		p.ForumID, p.date, p.Theme, p.HostLeader, p.Venue, p.County, p.Capacity, p.ReservedForNominated, p.deadline, at)
	if err != nil {
		return fmt.Errorf("upsert forum: %w", err)
	}
	return nil
}

// liveSignup returns the id of the enterprise's confirmed or waitlisted
// signup for the forum, or "".
func liveSignup(ctx context.Context, tx pgx.Tx, forumID, uscc string) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT signup_id FROM forum.signups WHERE forum_id = $1 AND uscc = $2 AND status <> 'cancelled'`,
		forumID, uscc).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find signup: %w", err)
	}
	return id, nil
}

func insertSignup(ctx context.Context, tx pgx.Tx, signupID string, p *SignupRequested, status string, at time.Time, source string) error {
	problems, err := json.Marshal(nonNil(p.Problems))
	if err != nil {
		return err
	}
	documents, err := json.Marshal(nonNil(p.Documents))
	if err != nil {
		return err
	}
	var confirmedAt *time.Time
	if status == StatusConfirmed {
		confirmedAt = &at
	}
	_, err = tx.Exec(ctx, `INSERT INTO forum.signups (signup_id, forum_id, uscc, enterprise_name, county, contact_name,
			contact_phone, mode, nominated_by, topic, problems, documents, status, requested_at, confirmed_at, source)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9, ''), $10, $11, $12, $13, $14, $15, $16)`,
		signupID, p.ForumID, p.Enterprise.USCC, p.Enterprise.Name, p.Enterprise.County, p.Contact.Name,
		p.Contact.Phone, p.Mode, p.NominatedBy, p.Topic, string(problems), string(documents), status, at, confirmedAt, source)
	if err != nil {
		return fmt.Errorf("insert signup: %w", err)
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// cancelSignup cancels the enterprise's live signup and returns its id, or
// "" when it has none.
func cancelSignup(ctx context.Context, tx pgx.Tx, forumID, uscc string, at time.Time) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `UPDATE forum.signups SET status = 'cancelled', cancelled_at = $3
		WHERE forum_id = $1 AND uscc = $2 AND status <> 'cancelled' RETURNING signup_id`, forumID, uscc, at).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cancel signup: %w", err)
	}
	return id, nil
}

// fillSeats gives free seats to the waitlist, first come first served,
// skipping signups whose mode may not take the seat (a self signup when the
// self seats are all taken), and returns a signup.confirmed follow-up per
// promotion. The caller holds the forum's row lock.
func fillSeats(ctx context.Context, tx pgx.Tx, forumID string, at time.Time) ([]runtime.Outgoing, error) {
	f, _, err := lockForum(ctx, tx, forumID)
	if err != nil {
		return nil, err
	}
	s, err := countSeats(ctx, tx, forumID)
	if err != nil {
		return nil, err
	}
	if s.waitlisted == 0 || s.total() >= f.capacity {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT signup_id, uscc, mode FROM forum.signups
		WHERE forum_id = $1 AND status = 'waitlisted' ORDER BY seq`, forumID)
	if err != nil {
		return nil, fmt.Errorf("read waitlist: %w", err)
	}
	type waiting struct{ id, uscc, mode string }
	var queue []waiting
	for rows.Next() {
		var w waiting
		if err := rows.Scan(&w.id, &w.uscc, &w.mode); err != nil {
			rows.Close()
			return nil, err
		}
		queue = append(queue, w)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []runtime.Outgoing
	for _, w := range queue {
		if !f.mayTake(s, w.mode) {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE forum.signups SET status = 'confirmed', confirmed_at = $2 WHERE signup_id = $1`, w.id, at); err != nil {
			return nil, fmt.Errorf("promote signup: %w", err)
		}
		if w.mode == ModeSelf {
			s.self++
		} else {
			s.nominated++
		}
		out = append(out, runtime.Outgoing{
			Key:  "promoted/" + w.id,
			Type: TypeSignupConfirmed,
			Data: SignupReply{SignupID: w.id, ForumID: forumID, USCC: w.uscc, Status: StatusConfirmed, Uploads: []docs.Upload{}},
		})
		if s.total() >= f.capacity {
			break
		}
	}
	return out, nil
}

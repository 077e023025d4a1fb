package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/runtime"
)

// forum is what seat decisions need of a locked forum row, its seat
// counters included.
type forum struct {
	capacity int
	reserved int
	deadline time.Time
	closed   bool
	seats    seats
}

// seats are a forum's live signups, as counted on its row
// (confirmed_self, confirmed_nominated, waitlisted).
type seats struct {
	self, nominated, waitlisted int
}

func (s seats) total() int { return s.self + s.nominated }

// mayTake applies the seat rule: self signups may take capacity −
// reservedForNominated seats, nominated signups any free seat, and never
// more confirmed than capacity. signupDecision is the same rule in SQL.
func (f forum) mayTake(mode string) bool {
	if f.seats.total() >= f.capacity {
		return false
	}
	return mode == contract.ModeNominated || f.seats.self < f.capacity-f.reserved
}

// lockForum reads a forum with its seat counters and locks its row until
// the transaction ends: every seat decision for the forum happens under
// this lock.
func lockForum(ctx context.Context, tx pgx.Tx, forumID string) (forum, bool, error) {
	var f forum
	var closedAt *time.Time
	err := tx.QueryRow(ctx, `SELECT capacity, reserved_for_nominated, signup_deadline, closed_at,
			confirmed_self, confirmed_nominated, waitlisted
		FROM forum.forums WHERE forum_id = $1 FOR NO KEY UPDATE`, forumID).Scan(&f.capacity, &f.reserved, &f.deadline, &closedAt,
		&f.seats.self, &f.seats.nominated, &f.seats.waitlisted)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, false, nil
	}
	if err != nil {
		return f, false, fmt.Errorf("lock forum: %w", err)
	}
	f.closed = closedAt != nil
	return f, true, nil
}

// storeSeats writes the counters of a forum whose row the transaction has
// locked.
func storeSeats(ctx context.Context, tx pgx.Tx, forumID string, s seats) error {
	_, err := tx.Exec(ctx, `UPDATE forum.forums SET confirmed_self = $2, confirmed_nominated = $3, waitlisted = $4
		WHERE forum_id = $1`, forumID, s.self, s.nominated, s.waitlisted)
	if err != nil {
		return fmt.Errorf("seat counters: %w", err)
	}
	return nil
}

func upsertForum(ctx context.Context, tx pgx.Tx, p *contract.ForumScheduled, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO forum.forums (forum_id, forum_date, theme, host_leader, venue, county,
			capacity, reserved_for_nominated, signup_deadline, scheduled_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (forum_id) DO UPDATE SET forum_date = EXCLUDED.forum_date, theme = EXCLUDED.theme,
			host_leader = EXCLUDED.host_leader, venue = EXCLUDED.venue, county = EXCLUDED.county,
			capacity = EXCLUDED.capacity, reserved_for_nominated = EXCLUDED.reserved_for_nominated,
			signup_deadline = EXCLUDED.signup_deadline, scheduled_at = EXCLUDED.scheduled_at`,
		p.ForumID, p.Day(), p.Theme, p.HostLeader, p.Venue, p.County, p.Capacity, p.ReservedForNominated, p.Deadline(), at)
	if err != nil {
		return fmt.Errorf("upsert forum: %w", err)
	}
	return nil
}

// signupDecision is a signup's whole work in one statement
// (runtime.Decision): it locks the forum row (FOR NO KEY UPDATE: the
// signup's foreign key check still passes) and decides from the row's
// counters whether the signup is open and which status it gets (the seat
// rule of forum.mayTake), inserts the signup unless the enterprise already
// has a live one (the partial unique index decides, also against a signup
// committed while this one waited for the lock: ON CONFLICT DO UPDATE, a
// write of the row as it is, returns that signup's id where a read of the
// statement's snapshot would not see it), moves the counters by what was
// inserted, and chooses the reply among the ones signupReplies encoded
// (the waitlist position is the locked row's count and this signup). The
// lock is held for this statement and its commit only. A redelivery runs
// it again and fails on the inbox's key, so what it wrote is rolled back
// (a cancelled signup's redelivery fails earlier, on signups_pkey).
//
// It is written for a new backend's first event, which parses and plans
// all of it (README, Speed): few CTEs (the forum's row gives the status
// itself), exact types (CASE, not a cast of a boolean to int; the
// position cast to text before it is concatenated), no RETURNING where
// nothing reads it.
const signupDecision = `f AS (
		SELECT waitlisted, CASE WHEN closed_at IS NOT NULL OR $13::timestamptz > signup_deadline THEN 'closed'
				WHEN confirmed_self + confirmed_nominated < capacity
					AND ($8::text = 'nominated' OR confirmed_self < capacity - reserved_for_nominated)
				THEN 'confirmed' ELSE 'waitlisted' END AS status
		FROM forum.forums WHERE forum_id = $2 FOR NO KEY UPDATE
	), ins AS (
		INSERT INTO forum.signups (signup_id, forum_id, uscc, enterprise_name, county, contact_name,
			contact_phone, mode, nominated_by, topic, problems, documents, status, requested_at, confirmed_at, source)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, NULLIF($9::text, ''), $10::text,
			$11::jsonb, $12::jsonb, f.status, $13::timestamptz, CASE WHEN f.status = 'confirmed' THEN $13::timestamptz END, $14::text
		FROM f WHERE f.status <> 'closed'
		ON CONFLICT (forum_id, uscc) WHERE status <> 'cancelled' DO UPDATE SET status = forum.signups.status
		RETURNING signup_id, status
	), upd AS (
		UPDATE forum.forums SET
			confirmed_self = confirmed_self + CASE WHEN ins.status = 'confirmed' AND $8 = 'self' THEN 1 ELSE 0 END,
			confirmed_nominated = confirmed_nominated + CASE WHEN ins.status = 'confirmed' AND $8 = 'nominated' THEN 1 ELSE 0 END,
			waitlisted = waitlisted + CASE WHEN ins.status = 'waitlisted' THEN 1 ELSE 0 END
		FROM ins WHERE forum_id = $2 AND ins.signup_id = $1::text
	), answer AS (
		SELECT CASE WHEN ins.signup_id = $1::text THEN CASE ins.status WHEN 'confirmed' THEN '` + contract.TypeSignupConfirmed + `'
					ELSE '` + contract.TypeSignupWaitlisted + `' END
				ELSE '` + contract.TypeSignupRejected + `' END AS reply_type,
			'' AS reply_subject,
			CASE WHEN f.status IS NULL THEN $15::text || 'forum_not_found"}'
				WHEN f.status = 'closed' THEN $15::text || 'signup_closed"}'
				WHEN ins.signup_id = $1::text AND ins.status = 'confirmed' THEN $16::text || '` + StatusConfirmed + `","waitlistPosition":0' || $17::text
				WHEN ins.signup_id = $1::text THEN $16::text || '` + StatusWaitlisted + `","waitlistPosition":' || (f.waitlisted + 1)::text || $17::text
				ELSE $15::text || 'already_registered","signupId":' || to_json(ins.signup_id)::text || '}' END AS reply_data,
			coalesce(ins.signup_id = $1::text, false) AS follow_ups
		FROM (SELECT) one LEFT JOIN f ON true LEFT JOIN ins ON true
	)`

// signupReplies are the replies a signup may get, encoded before its
// statement chooses one: the accepted reply's JSON before its status
// value and after its waitlist position (the statement writes
// `confirmed","waitlistPosition":0` or `waitlisted","waitlistPosition":`
// and the position, which only it knows, between them), and the
// rejections' JSON up to their reason, which the statement writes (with
// the existing signup's id for already_registered).
type signupReplies struct {
	acceptedHead, acceptedTail string
	rejectionHead              string
}

// encodeSignupReplies encodes a signup's replies with two json.Marshal
// calls. In encoding/json's output a quote inside a string is always
// escaped, so the keys cut at below, unescaped quotes and colon, occur
// once each: as the keys.
func encodeSignupReplies(signupID string, p *contract.SignupRequested, uploads []docs.Upload) (signupReplies, error) {
	var r signupReplies
	accepted, _ := json.Marshal(contract.SignupReply{SignupID: signupID, ForumID: p.ForumID, USCC: p.Enterprise.USCC,
		Status: StatusConfirmed, Uploads: nonNil(uploads)}) // plain structs: cannot fail
	const statusAt, confirmedAt = `"status":"`, StatusConfirmed + `","waitlistPosition":0`
	before, after, ok := strings.Cut(string(accepted), statusAt+confirmedAt)
	if !ok {
		return r, fmt.Errorf("signup reply: no %s in the encoded reply", statusAt+confirmedAt)
	}
	r.acceptedHead, r.acceptedTail = before+statusAt, after
	rejection, _ := json.Marshal(contract.SignupRejection{ForumID: p.ForumID, USCC: p.Enterprise.USCC})
	const reasonAt = `"reason":""}`
	head, ok := strings.CutSuffix(string(rejection), reasonAt)
	if !ok {
		return r, fmt.Errorf("signup rejection: no %s at the end of the encoded rejection", reasonAt)
	}
	r.rejectionHead = head + `"reason":"`
	return r, nil
}

// decideSignup is signupDecision's arguments for the signup signupID of
// the event from source, with its possible replies.
func decideSignup(signupID string, p *contract.SignupRequested, at time.Time, source string, r signupReplies) []any {
	problems, _ := json.Marshal(nonNil(p.Problems)) // plain structs: cannot fail
	documents, _ := json.Marshal(nonNil(p.Documents))
	return []any{signupID, p.ForumID, p.Enterprise.USCC, p.Enterprise.Name, p.Enterprise.County, p.Contact.Name,
		p.Contact.Phone, p.Mode, p.NominatedBy, p.Topic, string(problems), string(documents), at, source,
		r.rejectionHead, r.acceptedHead, r.acceptedTail}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// cancelSignup cancels the enterprise's live signup and returns its id
// and the status and mode it had, or "" when it has none.
func cancelSignup(ctx context.Context, tx pgx.Tx, forumID, uscc string, at time.Time) (id, status, mode string, err error) {
	err = tx.QueryRow(ctx, `UPDATE forum.signups s SET status = 'cancelled', cancelled_at = $3
		FROM (SELECT signup_id, status FROM forum.signups WHERE forum_id = $1 AND uscc = $2 AND status <> 'cancelled') old
		WHERE s.signup_id = old.signup_id RETURNING s.signup_id, old.status, s.mode`, forumID, uscc, at).Scan(&id, &status, &mode)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", "", nil
	}
	if err != nil {
		return "", "", "", fmt.Errorf("cancel signup: %w", err)
	}
	return id, status, mode, nil
}

// fillSeats gives free seats to the waitlist, first come first served,
// skipping signups whose mode may not take the seat (a self signup when the
// self seats are all taken), stores the forum's counters, and returns a
// signup.confirmed follow-up per promotion. The caller holds the forum's
// row lock; f carries its counters as they are now.
func fillSeats(ctx context.Context, tx pgx.Tx, forumID string, f forum, at time.Time) ([]runtime.Outgoing, error) {
	if f.seats.waitlisted == 0 || f.seats.total() >= f.capacity {
		return nil, storeSeats(ctx, tx, forumID, f.seats)
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
	var promoted []string
	for _, w := range queue {
		if !f.mayTake(w.mode) {
			continue
		}
		promoted = append(promoted, w.id)
		if w.mode == contract.ModeSelf {
			f.seats.self++
		} else {
			f.seats.nominated++
		}
		f.seats.waitlisted--
		out = append(out, runtime.Outgoing{
			Key:  "promoted/" + w.id,
			Type: contract.TypeSignupConfirmed,
			Data: contract.SignupReply{SignupID: w.id, ForumID: forumID, USCC: w.uscc, Status: StatusConfirmed, Uploads: []docs.Upload{}},
		})
		if f.seats.total() >= f.capacity {
			break
		}
	}
	if len(promoted) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE forum.signups SET status = 'confirmed', confirmed_at = $2 WHERE signup_id = ANY($1)`,
			promoted, at); err != nil {
			return nil, fmt.Errorf("promote signups: %w", err)
		}
	}
	return out, storeSeats(ctx, tx, forumID, f.seats)
}

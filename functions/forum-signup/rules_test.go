package main

import (
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit/sample"
)

// The seat rule of contract section 3 — self signups may take capacity −
// reservedForNominated seats, nominated signups any free seat, never more
// confirmed than capacity; the others wait, and a freed seat goes to the
// first waiting signup that may take it — called on the handlers with
// typed payloads (functest.OnTx). The pipeline's promises (status codes,
// redelivery, problem+json) are contract_test.go's.

// rules is the forum's handlers on a rolled-back transaction at week.
func rules(t *testing.T) *functest.OnTx {
	_, store := s3test.New(t)
	return functest.NewOnTxFor(t, name, week, func(env *runtime.Env) *runtime.Function { return New(env, store) })
}

// wantSeat fails the test unless res is a signup reply with that status
// (and waitlist position, when waitlisted).
func wantSeat(t *testing.T, res runtime.Result, status string, position int) contract.SignupReply {
	t.Helper()
	want := map[string]string{StatusConfirmed: contract.TypeSignupConfirmed, StatusWaitlisted: contract.TypeSignupWaitlisted}[status]
	got := functest.As[contract.SignupReply](t, res.Reply)
	if res.Reply.Type != want || got.Status != status || got.WaitlistPosition != position {
		t.Fatalf("got %s %+v, want %s at waitlist position %d", res.Reply.Type, got, status, position)
	}
	return got
}

// wantPromoted fails the test unless res announces exactly the promotion
// of signupID from the waitlist.
func wantPromoted(t *testing.T, res runtime.Result, signupID string) {
	t.Helper()
	if len(res.FollowUps) != 1 || res.FollowUps[0].Type != contract.TypeSignupConfirmed {
		t.Fatalf("follow-ups %+v, want one %s", res.FollowUps, contract.TypeSignupConfirmed)
	}
	if got := functest.As[contract.SignupReply](t, res.FollowUps[0]); got.SignupID != signupID || got.Status != StatusConfirmed {
		t.Fatalf("promoted %+v, want %s confirmed", got, signupID)
	}
}

// wantSeats fails the test unless the forum's counters are these.
func wantSeats(t *testing.T, h *functest.OnTx, forumID string, self, nominated, waitlisted int64) {
	t.Helper()
	for _, c := range []struct {
		column string
		want   int64
	}{{"confirmed_self", self}, {"confirmed_nominated", nominated}, {"waitlisted", waitlisted}} {
		if got := h.Count(t, `SELECT `+c.column+` FROM forum.forums WHERE forum_id = $1`, forumID); got != c.want {
			t.Errorf("%s = %d, want %d", c.column, got, c.want)
		}
	}
	if got := h.Count(t, `SELECT count(*) FROM forum.signups WHERE forum_id = $1 AND status = 'waitlisted'`, forumID); got != waitlisted {
		t.Errorf("%d waitlisted signups, want %d", got, waitlisted)
	}
}

// A seat is enterprise n's signup in a mode and the seat it must get.
type seat struct {
	n        int
	mode     string
	status   string
	position int // in the waitlist, when waitlisted
}

// take signs the enterprises up in order, checking each one's seat, and
// returns the replies.
func take(t *testing.T, h *functest.OnTx, forumID string, seats ...seat) []contract.SignupReply {
	t.Helper()
	var out []contract.SignupReply
	for _, s := range seats {
		out = append(out, wantSeat(t, h.Handle(t, contract.TypeSignupRequested, sample.Signup(forumID, s.n, s.mode)), s.status, s.position))
	}
	return out
}

func TestSeatRule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                        string
		capacity, reserved          int
		seats                       []seat
		self, nominated, waitlisted int64
	}{
		// One seat is free after two, but it is the nominated one.
		{"SelfLeavesReservedSeats", 3, 1, []seat{{1, contract.ModeSelf, StatusConfirmed, 0}, {2, contract.ModeSelf, StatusConfirmed, 0},
			{3, contract.ModeSelf, StatusWaitlisted, 1}}, 2, 0, 1},
		{"NominatedTakesAnyFreeSeat", 3, 1, []seat{{1, contract.ModeNominated, StatusConfirmed, 0}, {2, contract.ModeNominated, StatusConfirmed, 0},
			{3, contract.ModeNominated, StatusConfirmed, 0}}, 0, 3, 0},
		{"WaitlistedWhenFull", 2, 1, []seat{{1, contract.ModeSelf, StatusConfirmed, 0}, {2, contract.ModeNominated, StatusConfirmed, 0},
			{3, contract.ModeNominated, StatusWaitlisted, 1}, {4, contract.ModeSelf, StatusWaitlisted, 2}}, 1, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := rules(t)
			h.Handle(t, contract.TypeForumScheduled, sample.Forum("F1", tc.capacity, tc.reserved))
			take(t, h, "F1", tc.seats...)
			wantSeats(t, h, "F1", tc.self, tc.nominated, tc.waitlisted)
		})
	}
	t.Run("CancelPromotesFirstThatMayTake", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		h.Handle(t, contract.TypeForumScheduled, sample.Forum("F1", 2, 1))
		got := take(t, h, "F1", seat{1, contract.ModeSelf, StatusConfirmed, 0}, seat{2, contract.ModeNominated, StatusConfirmed, 0},
			seat{3, contract.ModeSelf, StatusWaitlisted, 1}, seat{4, contract.ModeNominated, StatusWaitlisted, 2})
		// The nominated seat is freed: the self signup first in line may
		// not take it, the nominated one after it may.
		res := h.Handle(t, contract.TypeSignupCancelled, sample.Cancel("F1", 2))
		if res.Reply.Type != contract.TypeSignupCancelAccepted {
			t.Fatalf("cancel: got %s %+v", res.Reply.Type, res.Reply.Data)
		}
		wantPromoted(t, res, got[3].SignupID)
		wantSeats(t, h, "F1", 1, 1, 1)
	})
	t.Run("RescheduleWithMoreSeatsPromotes", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		h.Handle(t, contract.TypeForumScheduled, sample.Forum("F1", 1, 0))
		got := take(t, h, "F1", seat{1, contract.ModeSelf, StatusConfirmed, 0}, seat{2, contract.ModeSelf, StatusWaitlisted, 1})
		res := h.Handle(t, contract.TypeForumScheduled, sample.Forum("F1", 2, 0))
		if res.Reply.Type != contract.TypeForumScheduledAccepted {
			t.Fatalf("reschedule: got %s %+v", res.Reply.Type, res.Reply.Data)
		}
		wantPromoted(t, res, got[1].SignupID)
		wantSeats(t, h, "F1", 2, 0, 0)
	})
	t.Run("ErrCapacityBelowConfirmed", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		h.Handle(t, contract.TypeForumScheduled, sample.Forum("F1", 2, 0))
		take(t, h, "F1", seat{1, contract.ModeSelf, StatusConfirmed, 0}, seat{2, contract.ModeSelf, StatusConfirmed, 0})
		res := h.Handle(t, contract.TypeForumScheduled, sample.Forum("F1", 1, 0))
		if got := functest.As[contract.SignupRejection](t, res.Reply); res.Reply.Type != contract.TypeForumScheduledRejected || got.Reason != "capacity_below_confirmed" {
			t.Fatalf("got %s %+v, want %s capacity_below_confirmed", res.Reply.Type, got, contract.TypeForumScheduledRejected)
		}
		if got := h.Count(t, `SELECT capacity FROM forum.forums WHERE forum_id = 'F1'`); got != 2 {
			t.Fatalf("capacity = %d after the refusal, want 2", got)
		}
	})
}

func TestSignupRefusals(t *testing.T) {
	t.Parallel()
	refused := func(t *testing.T, res runtime.Result, reason string) {
		t.Helper()
		if got := functest.As[contract.SignupRejection](t, res.Reply); res.Reply.Type != contract.TypeSignupRejected || got.Reason != reason {
			t.Fatalf("got %s %+v, want %s %s", res.Reply.Type, got, contract.TypeSignupRejected, reason)
		}
	}
	t.Run("ErrForumNotFound", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		refused(t, h.Handle(t, contract.TypeSignupRequested, sample.Signup("F-none", 1, contract.ModeSelf)), "forum_not_found")
	})
	t.Run("ErrAlreadyRegistered", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		h.Handle(t, contract.TypeForumScheduled, sample.Forum("F1", 30, 10))
		first := take(t, h, "F1", seat{1, contract.ModeSelf, StatusConfirmed, 0})[0]
		res := h.Handle(t, contract.TypeSignupRequested, sample.Signup("F1", 1, contract.ModeNominated))
		refused(t, res, "already_registered")
		if got := functest.As[contract.SignupRejection](t, res.Reply); got.SignupID != first.SignupID {
			t.Fatalf("rejection names signup %q, want the existing %s", got.SignupID, first.SignupID)
		}
		wantSeats(t, h, "F1", 1, 0, 0)
	})
	t.Run("ErrSignupClosed", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		h.Handle(t, contract.TypeForumScheduled, sample.Forum("F1", 30, 10))
		h.Time = time.Date(2026, 12, 1, 17, 0, 1, 0, time.FixedZone("CST", 8*3600)) // a second past the deadline
		refused(t, h.Handle(t, contract.TypeSignupRequested, sample.Signup("F1", 1, contract.ModeSelf)), "signup_closed")
		wantSeats(t, h, "F1", 0, 0, 0)
	})
	t.Run("ErrNotRegistered", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		h.Handle(t, contract.TypeForumScheduled, sample.Forum("F1", 30, 10))
		res := h.Handle(t, contract.TypeSignupCancelled, sample.Cancel("F1", 1))
		if got := functest.As[contract.SignupRejection](t, res.Reply); res.Reply.Type != contract.TypeSignupRejected || got.Reason != "not_registered" {
			t.Fatalf("got %s %+v, want %s not_registered", res.Reply.Type, got, contract.TypeSignupRejected)
		}
	})
}

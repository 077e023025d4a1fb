package main

import (
	"sync"
	"testing"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
)

// The seat counters on the forum row equal the counts of its signups
// after concurrent signups, concurrent cancellations (with promotions) and
// a reschedule that adds seats: every status change moves them in the same
// transaction.
func TestSeatCountersMatchSignups(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 30, 10)
	signupConcurrently(t, f, 1000, modes(60, 20))
	check := func(when string) {
		t.Helper()
		var cs, cn, w, rs, rn, rw int
		if err := f.Pool.QueryRow(t.Context(), `SELECT confirmed_self, confirmed_nominated, waitlisted,
				(SELECT count(*) FROM forum.signups WHERE forum_id = 'F1' AND status = 'confirmed' AND mode = 'self'),
				(SELECT count(*) FROM forum.signups WHERE forum_id = 'F1' AND status = 'confirmed' AND mode = 'nominated'),
				(SELECT count(*) FROM forum.signups WHERE forum_id = 'F1' AND status = 'waitlisted')
			FROM forum.forums WHERE forum_id = 'F1'`).Scan(&cs, &cn, &w, &rs, &rn, &rw); err != nil {
			t.Fatal(err)
		}
		if cs != rs || cn != rn || w != rw {
			t.Fatalf("%s: counters %d self, %d nominated, %d waitlisted; signups %d, %d, %d", when, cs, cn, w, rs, rn, rw)
		}
		if rs+rn > 30+5 {
			t.Fatalf("%s: %d confirmed", when, rs+rn)
		}
	}
	check("after the signups")
	var wg sync.WaitGroup
	for i := 0; i < 40; i += 3 { // confirmed and waitlisted ones, self and nominated
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.send(t, contract.TypeSignupCancelled, week, map[string]any{"forumId": "F1", "uscc": event.SampleUSCC(1000 + i*2)})
		}()
	}
	wg.Wait()
	check("after the cancellations")
	if r := f.send(t, contract.TypeForumScheduled, week, scheduleData("F1", 35, 10)); r.Type() != contract.TypeForumScheduledAccepted {
		t.Fatalf("reschedule: %s %s", r.Type(), r.Body)
	}
	check("after the reschedule")
	if n := f.Count(t, `SELECT count(*) FROM forum.signups WHERE status = 'confirmed'`); n != 35 {
		t.Fatalf("%d confirmed after adding seats with a waitlist, want 35", n)
	}
}

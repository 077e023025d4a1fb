package main

import (
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// Follow-ups survive a sink outage and a crash: they wait in the outbox,
// and the next process (any function's relay) delivers them with the ids
// they were given in the transaction.
func TestOutboxSurvivesSinkDownAndCrash(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 30, 10)
	f.Sink.SetDown(true)
	data := signupData("F1", event.SampleUSCC(1), "self")
	data["problems"] = []any{
		map[string]any{"title": "用地", "category": "land"},
		map[string]any{"title": "融资", "category": "finance"},
	}
	if r := f.send(t, contract.TypeSignupRequested, week, data); r.Type() != contract.TypeSignupConfirmed {
		t.Fatalf("signup: %s %s", r.Type(), r.Body)
	}
	// The relay tries, fails, and backs off; nothing is delivered or lost.
	deadline := time.Now().Add(10 * time.Second)
	for f.Count(t, `SELECT count(*) FROM qinqing.outbox WHERE attempts > 0 AND delivered_at IS NULL`) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("relay never attempted delivery")
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.Fn.Kill()
	if n := f.Count(t, `SELECT count(*) FROM qinqing.outbox WHERE delivered_at IS NULL`); n != 2 {
		t.Fatalf("%d pending after crash, want 2", n)
	}
	// Make the rows due now rather than after the backoff, as time would.
	if _, err := f.Pool.Exec(t.Context(), `UPDATE qinqing.outbox SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	f.Sink.SetDown(false)
	functest.Start(t, binary, f.Env...)
	got := f.Sink.WaitFor(t, contract.TypeAppealSubmitted, 2, 10*time.Second)
	ids := map[string]bool{}
	for _, ev := range got {
		ids[ev.ID()] = true
	}
	// The relay marks a row delivered after the sink answered, so wait for
	// the marks rather than reading them the moment the events arrive.
	deadline = time.Now().Add(10 * time.Second)
	for f.Count(t, `SELECT count(*) FROM qinqing.outbox WHERE delivered_at IS NOT NULL`) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("rows not marked delivered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rows, err := f.Pool.Query(t.Context(), `SELECT id FROM qinqing.outbox WHERE delivered_at IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		if !ids[id] {
			t.Fatalf("outbox id %s not among delivered %v", id, ids)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d rows marked delivered, want 2", n)
	}
}

// Without K_SINK, follow-ups stay queued in the outbox.
func TestOutboxWithoutSink(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.Fn.Stop()
	env := append([]string{}, f.Env...)
	env = append(env, "K_SINK=")
	fn := functest.Start(t, binary, env...)
	fn.Send(t, functest.Event(contract.TypeForumScheduled, portalSrc, nextID(), week, scheduleData("F1", 30, 10)))
	data := signupData("F1", event.SampleUSCC(1), "self")
	data["problems"] = []any{map[string]any{"title": "用地", "category": "land"}}
	fn.Send(t, functest.Event(contract.TypeSignupRequested, portalSrc, nextID(), week, data))
	time.Sleep(500 * time.Millisecond)
	if n := f.Count(t, `SELECT count(*) FROM qinqing.outbox WHERE delivered_at IS NULL AND attempts = 0`); n != 1 {
		t.Fatalf("%d untouched pending rows, want 1", n)
	}
	if len(f.Sink.Events()) != 0 {
		t.Fatal("events reached a sink that was not configured")
	}
}

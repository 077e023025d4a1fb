package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

var (
	subsidyOnce sync.Once
	subsidyBin  string
	subsidyErr  error
)

// TestPaymentOverdue drives the payment part of contract section 5 with
// the built subsidy-disbursal binary: an approved 金象金牛 award whose
// payment is not settled by its dueAt is announced once, by as many checks
// as run; a settled one is not overdue.
func TestPaymentOverdue(t *testing.T) {
	t.Parallel()
	subsidyOnce.Do(func() { subsidyBin, subsidyErr = functest.Build("../subsidy-disbursal") })
	if subsidyErr != nil {
		t.Fatal(subsidyErr)
	}
	f := setup(t)
	sub := functest.Start(t, subsidyBin, f.Env...)

	award := func(n int) (id string, due time.Time) {
		r := sub.Send(t, functest.Event("cn.huzhou.honour.awarded", "/portals/economy", nextID(), day(6, 3, 10), map[string]any{
			"uscc": event.SampleUSCC(n), "enterpriseName": fmt.Sprintf("湖州金象%d有限公司", n), "honour": "金象金牛", "year": 2030,
		}))
		var d struct {
			Approvals []struct {
				DisbursementID string    `json:"disbursementId"`
				DueAt          time.Time `json:"dueAt"`
			} `json:"approvals"`
		}
		r.DataInto(t, &d)
		if len(d.Approvals) != 1 {
			t.Fatalf("award: %s", r.Body)
		}
		return d.Approvals[0].DisbursementID, d.Approvals[0].DueAt
	}
	unpaid, due := award(1)
	paid, _ := award(2)
	if r := sub.Send(t, functest.Event("cn.huzhou.subsidy.payment.settled", "/portals/treasury", nextID(), day(6, 5, 10),
		map[string]any{"disbursementId": paid, "bankRef": "HZB-1", "settledAt": day(6, 5, 10).Format(time.RFC3339)})); r.Status != 200 {
		t.Fatalf("settle: %d %s", r.Status, r.Body)
	}

	check := func(at time.Time) contract.CheckCompleted {
		r := f.Fn.Send(t, functest.Event(event.PingType, pingSrc, nextID(), at, map[string]any{"job": "deadline-check"}))
		var c contract.CheckCompleted
		r.DataInto(t, &c)
		return c
	}
	if c := check(due); c.Overdue.Payment != 0 {
		t.Fatalf("at dueAt: %+v, want nothing overdue yet", c.Overdue)
	}
	var wg sync.WaitGroup
	results := make([]contract.CheckCompleted, 4)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = check(due.Add(time.Hour)) }()
	}
	wg.Wait()
	announced := 0
	for _, c := range results {
		if c.Overdue.Payment != 1 {
			t.Fatalf("after dueAt: %+v, want 1 payment overdue", c.Overdue)
		}
		announced += c.Announced
	}
	if announced != 1 {
		t.Fatalf("4 concurrent checks announced %d, want 1", announced)
	}
	got := f.Sink.WaitFor(t, contract.TypePaymentOverdue, 1, 10*time.Second)
	var p struct {
		DisbursementID string `json:"disbursementId"`
		USCC           string `json:"uscc"`
		AmountFen      int64  `json:"amountFen"`
		DueAt          time.Time
	}
	_ = got[0].DataAs(&p)
	if p.DisbursementID != unpaid || p.USCC != event.SampleUSCC(1) || p.AmountFen != 100_000_000 || !p.DueAt.Equal(due) {
		t.Fatalf("announcement = %+v, want %s due %v", p, unpaid, due)
	}
	if c := check(due.Add(48 * time.Hour)); c.Overdue.Payment != 1 || c.Announced != 0 {
		t.Fatalf("later check: %+v, want still 1 overdue and nothing announced again", c)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(f.Sink.OfType(contract.TypePaymentOverdue)); n != 1 {
		t.Fatalf("%d payment.overdue events at the sink, want 1", n)
	}
	// The approvals and the settlement went through subsidy-disbursal
	// with its role; the triggers kept the horizon (migration 0094).
	wantHorizon(t, f.Pool)
}

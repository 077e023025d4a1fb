package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

func TestHonourApproval(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	a := event.SampleUSCC(1)

	var d contract.SubsidyDecided
	t.Run("OK", func(t *testing.T) {
		// Tuesday 29 September 2026; 1–7 October are holidays and Saturday
		// 10 October is a make-up working day: 30 Sep, 8, 9, 10, 12 Oct.
		d = f.decide(t, contract.TypeHonourAwarded, at("2026-09-29 10:00"), honourData(a, "金象金牛", 2026))
		if d.USCC != a || len(d.Approvals) != 2 || len(d.Rejections) != 0 {
			t.Fatalf("decided = %+v, want two approvals", d)
		}
		for i, want := range []struct {
			policy string
			amount int64
		}{{"jxjn", 100000000}, {"jxjn-wuxing", 20000000}} {
			ap := d.Approvals[i]
			if ap.PolicyID != want.policy || ap.AmountFen != want.amount || ap.DisbursementID == "" {
				t.Errorf("approval %d = %+v, want %s %d fen", i, ap, want.policy, want.amount)
			}
		}
	})
	t.Run("DueAtAcrossHoliday", func(t *testing.T) {
		r := f.send(t, contract.TypeHonourAwarded, honourSource, at("2026-09-29 10:00"), honourData(event.SampleUSCC(2), "金象金牛", 2026))
		var raw struct {
			Approvals []struct {
				DueAt string `json:"dueAt"`
			} `json:"approvals"`
		}
		r.DataInto(t, &raw)
		if got := raw.Approvals[0].DueAt; got != "2026-10-12T23:59:59+08:00" {
			t.Fatalf("dueAt = %s, want 2026-10-12T23:59:59+08:00", got)
		}
	})
	t.Run("DueAtInBusinessTimeZone", func(t *testing.T) {
		// 17:30 UTC on Friday 4 December is 01:30 on Saturday in Huzhou:
		// the 5th working day after Saturday 5 December is Friday 11th.
		got := f.decide(t, contract.TypeHonourAwarded, time.Date(2026, 12, 4, 17, 30, 0, 0, time.UTC), honourData(event.SampleUSCC(3), "金象金牛", 2026))
		if due := got.Approvals[0].DueAt; !due.Equal(at("2026-12-11 23:59").Add(59 * time.Second)) {
			t.Fatalf("dueAt = %v, want 2026-12-11T23:59:59+08:00", due)
		}
	})
	t.Run("PaymentRequested", func(t *testing.T) {
		evs := f.Sink.WaitFor(t, contract.TypePaymentRequested, 6, 10*time.Second)
		var found int
		for _, ev := range evs {
			var p map[string]any
			_ = json.Unmarshal(ev.Data(), &p)
			if p["disbursementId"] != d.Approvals[0].DisbursementID {
				continue
			}
			found++
			want := map[string]any{"disbursementId": d.Approvals[0].DisbursementID, "uscc": a, "amountFen": float64(100000000)}
			if fmt.Sprint(p) != fmt.Sprint(want) || ev.Source() != "/qinqing/subsidy-disbursal" {
				t.Errorf("payment.requested = %v from %s, want %v", p, ev.Source(), want)
			}
		}
		if found != 1 {
			t.Fatalf("%d payment requests for the disbursement, want 1", found)
		}
	})
	t.Run("Ledger", func(t *testing.T) {
		b := f.budget(t, "jxjn")
		if b.configured != 1000000000 || b.allocated != 1000000000 || b.payable != 300000000 || b.remaining != 700000000 || b.paid != 0 {
			t.Fatalf("jxjn budget = %+v", b)
		}
		f.checkLedger(t)
	})
	t.Run("ErrDuplicate", func(t *testing.T) {
		// Another event (another id, another source) with the same business key.
		r := f.Fn.Send(t, functest.Event(contract.TypeHonourAwarded, "/portals/other", nextID(), at("2026-10-20 10:00"), honourData(a, "金象金牛", 2026)))
		var got contract.SubsidyDecided
		r.DataInto(t, &got)
		want := []contract.SubsidyRejection{{PolicyID: "jxjn", Reason: ReasonDuplicate}, {PolicyID: "jxjn-wuxing", Reason: ReasonDuplicate}}
		if len(got.Approvals) != 0 || fmt.Sprint(got.Rejections) != fmt.Sprint(want) {
			t.Fatalf("decided = %+v, want rejections %v", got, want)
		}
		if n := f.Count(t, `SELECT count(*) FROM subsidy.disbursements WHERE uscc = $1`, a); n != 2 {
			t.Fatalf("%d disbursements for %s, want 2", n, a)
		}
	})
	t.Run("AnotherYearIsAnotherBasis", func(t *testing.T) {
		got := f.decide(t, contract.TypeHonourAwarded, at("2027-03-01 10:00"), honourData(a, "金象金牛", 2027))
		if len(got.Approvals) != 2 {
			t.Fatalf("decided = %+v, want two approvals", got)
		}
	})
	t.Run("ErrNoMatchingPolicy", func(t *testing.T) {
		r := f.send(t, contract.TypeHonourAwarded, honourSource, at("2026-10-20 10:00"), honourData(a, "文明单位", 2026))
		if string(r.Event.Data()) != `{"uscc":"`+a+`","approvals":[],"rejections":[{"policyId":"","reason":"no_matching_policy"}]}` {
			t.Fatalf("reply = %s", r.Event.Data())
		}
	})
}

func TestRedelivery(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	ev := functest.Event(contract.TypeHonourAwarded, honourSource, "same-id", at("2026-11-30 10:00"), honourData(event.SampleUSCC(1), "金象金牛", 2026))
	first := f.Fn.Send(t, ev)
	second := f.Fn.SendStructured(t, ev)
	if first.Status != 200 || second.Status != 200 {
		t.Fatalf("status %d, %d", first.Status, second.Status)
	}
	if first.Type() != second.Type() || !bytes.Equal(first.Event.Data(), second.Event.Data()) || first.Event.ID() != second.Event.ID() {
		t.Fatalf("replies differ:\n%s %s\n%s %s", first.Type(), first.Event.Data(), second.Type(), second.Event.Data())
	}
	if !strings.Contains(string(first.Event.Data()), `"approvals":[{`) {
		t.Fatalf("first reply = %s, want approvals", first.Event.Data())
	}
	if n := f.Count(t, `SELECT count(*) FROM subsidy.disbursements`); n != 2 {
		t.Fatalf("%d disbursements, want 2", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.outbox WHERE type = $1`, contract.TypePaymentRequested); n != 2 {
		t.Fatalf("%d payment requests, want 2", n)
	}
	// Concurrent deliveries of one settlement: one effect, one reply.
	var id string
	if err := f.Pool.QueryRow(context.Background(), `SELECT disbursement_id FROM subsidy.disbursements WHERE policy_id = 'jxjn'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	settle := functest.Event(contract.TypePaymentSettled, treasurySource, "settle-1", at("2026-12-03 15:00"), settledData(id, "ICBC-1"))
	replies := make([]*functest.Response, 8)
	var wg sync.WaitGroup
	for i := range replies {
		wg.Add(1)
		go func() { defer wg.Done(); replies[i] = f.Fn.Send(t, settle) }()
	}
	wg.Wait()
	for _, r := range replies {
		if r.Status != 200 || !bytes.Equal(r.Event.Data(), replies[0].Event.Data()) {
			t.Fatalf("burst reply %d %s", r.Status, r.Body)
		}
	}
	if n := f.Count(t, `SELECT count(*) FROM subsidy.movements WHERE kind = 'settlement'`); n != 1 {
		t.Fatalf("%d settlements, want 1", n)
	}
	f.checkLedger(t)
}

func TestMilestoneRate(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	cases := []struct {
		name       string
		investment int64
		want       int64
	}{
		{"Floor", 123456789, 1851851},     // 1.5 % of 1,234,567.89 CNY = 18,518.51835 CNY
		{"Capped", 500000000000, 2000000}, // 1.5 % would be 7,500,000 CNY; the cap is 20,000 CNY
		{"NoOverflow", 9000000000000000000, 2000000},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := f.decide(t, contract.TypeMilestoneApproved, at("2026-12-01 10:00"), milestoneData(event.SampleUSCC(10+i), "P-"+tc.name, "production-started", tc.investment))
			if len(d.Approvals) != 1 || d.Approvals[0].AmountFen != tc.want || d.Approvals[0].PolicyID != "milestone" {
				t.Fatalf("decided = %+v, want %d fen", d, tc.want)
			}
		})
	}
	t.Run("ErrDuplicate", func(t *testing.T) {
		d := f.decide(t, contract.TypeMilestoneApproved, at("2026-12-02 10:00"), milestoneData(event.SampleUSCC(10), "P-Floor", "production-started", 999))
		if len(d.Rejections) != 1 || d.Rejections[0] != (contract.SubsidyRejection{PolicyID: "milestone", Reason: ReasonDuplicate}) {
			t.Fatalf("decided = %+v", d)
		}
	})
	t.Run("ErrDuplicateNothingDue", func(t *testing.T) {
		// The same milestone again with an investment whose rate is 0 fen:
		// still the entitlement already decided, not "no policy".
		d := f.decide(t, contract.TypeMilestoneApproved, at("2026-12-02 10:00"), milestoneData(event.SampleUSCC(10), "P-Floor", "production-started", 0))
		if len(d.Approvals) != 0 || fmt.Sprint(d.Rejections) != fmt.Sprint([]contract.SubsidyRejection{{PolicyID: "milestone", Reason: ReasonDuplicate}}) {
			t.Fatalf("decided = %+v, want a duplicate", d)
		}
	})
	t.Run("NothingDue", func(t *testing.T) {
		// 1.5 % of 66 fen is 0 fen: nothing to approve (docs/subsidy.md).
		d := f.decide(t, contract.TypeMilestoneApproved, at("2026-12-02 10:00"), milestoneData(event.SampleUSCC(20), "P-Tiny", "production-started", 66))
		if len(d.Approvals) != 0 || fmt.Sprint(d.Rejections) != fmt.Sprint([]contract.SubsidyRejection{{PolicyID: "", Reason: ReasonNoMatchingPolicy}}) {
			t.Fatalf("decided = %+v", d)
		}
	})
	t.Run("ErrNoMatchingPolicy", func(t *testing.T) {
		d := f.decide(t, contract.TypeMilestoneApproved, at("2026-12-02 10:00"), milestoneData(event.SampleUSCC(10), "P-Floor", "land-acquired", 123456789))
		if len(d.Approvals) != 0 || fmt.Sprint(d.Rejections) != fmt.Sprint([]contract.SubsidyRejection{{PolicyID: "", Reason: ReasonNoMatchingPolicy}}) {
			t.Fatalf("decided = %+v", d)
		}
	})
	f.checkLedger(t)
}

func TestSubsidyRequested(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	a := event.SampleUSCC(1)
	t.Run("OK", func(t *testing.T) {
		d := f.decide(t, contract.TypeSubsidyRequested, at("2026-12-01 10:00"), requestData("request", a, "housing-2026-001", 300000))
		if len(d.Approvals) != 1 || d.Approvals[0].AmountFen != 300000 || d.Approvals[0].PolicyID != "request" {
			t.Fatalf("decided = %+v", d)
		}
	})
	t.Run("AtMostThePolicyAmount", func(t *testing.T) {
		d := f.decide(t, contract.TypeSubsidyRequested, at("2026-12-01 10:00"), requestData("request", event.SampleUSCC(2), "housing-2026-002", 900000))
		if len(d.Approvals) != 1 || d.Approvals[0].AmountFen != 500000 {
			t.Fatalf("decided = %+v, want 500000 fen", d)
		}
	})
	t.Run("ErrCapExceeded", func(t *testing.T) {
		// 300000 approved this year; 300000 + 500000 fits the 800000 cap,
		// another 100000 does not.
		if d := f.decide(t, contract.TypeSubsidyRequested, at("2026-12-02 10:00"), requestData("request", a, "housing-2026-003", 500000)); len(d.Approvals) != 1 {
			t.Fatalf("decided = %+v", d)
		}
		d := f.decide(t, contract.TypeSubsidyRequested, at("2026-12-02 11:00"), requestData("request", a, "housing-2026-004", 100000))
		if len(d.Approvals) != 0 || fmt.Sprint(d.Rejections) != fmt.Sprint([]contract.SubsidyRejection{{PolicyID: "request", Reason: ReasonCapExceeded}}) {
			t.Fatalf("decided = %+v", d)
		}
	})
	t.Run("ErrDuplicate", func(t *testing.T) {
		d := f.decide(t, contract.TypeSubsidyRequested, at("2026-12-03 10:00"), requestData("request", event.SampleUSCC(2), "housing-2026-002", 1))
		if fmt.Sprint(d.Rejections) != fmt.Sprint([]contract.SubsidyRejection{{PolicyID: "request", Reason: ReasonDuplicate}}) {
			t.Fatalf("decided = %+v", d)
		}
	})
	for _, policy := range []string{"no-such-policy", "jxjn"} {
		t.Run("ErrNoMatchingPolicy/"+policy, func(t *testing.T) {
			// Only the named policy counts, and only if it is a request policy.
			d := f.decide(t, contract.TypeSubsidyRequested, at("2026-12-03 10:00"), requestData(policy, event.SampleUSCC(3), "b-1", 100))
			if len(d.Approvals) != 0 || fmt.Sprint(d.Rejections) != fmt.Sprint([]contract.SubsidyRejection{{PolicyID: "", Reason: ReasonNoMatchingPolicy}}) {
				t.Fatalf("decided = %+v", d)
			}
		})
	}
	f.checkLedger(t)
}

func TestYearlyCap(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	a := event.SampleUSCC(1)
	// specialised pays 300 fen, at most 500 fen per enterprise and year.
	decide := func(t *testing.T, when time.Time, year int) contract.SubsidyDecided {
		t.Helper()
		return f.decide(t, contract.TypeHonourAwarded, when, honourData(a, "专精特新", year))
	}
	if d := decide(t, at("2026-03-01 10:00"), 2025); len(d.Approvals) != 1 {
		t.Fatalf("first award: %+v", d)
	}
	t.Run("ErrCapExceeded", func(t *testing.T) {
		d := decide(t, at("2026-06-01 10:00"), 2026)
		if len(d.Approvals) != 0 || fmt.Sprint(d.Rejections) != fmt.Sprint([]contract.SubsidyRejection{{PolicyID: "specialised", Reason: ReasonCapExceeded}}) {
			t.Fatalf("decided = %+v", d)
		}
	})
	t.Run("ErrCapExceededLastMinuteOfTheYear", func(t *testing.T) {
		// 15:59 UTC on 31 December is 23:59 in Huzhou: still 2026.
		d := decide(t, time.Date(2026, 12, 31, 15, 59, 0, 0, time.UTC), 2026)
		if len(d.Approvals) != 0 || d.Rejections[0].Reason != ReasonCapExceeded {
			t.Fatalf("decided = %+v", d)
		}
	})
	t.Run("NewYearInBusinessTimeZone", func(t *testing.T) {
		// 16:30 UTC on 31 December is 00:30 on 1 January 2027 in Huzhou.
		d := decide(t, time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), 2026)
		if len(d.Approvals) != 1 || d.Approvals[0].AmountFen != 300 {
			t.Fatalf("decided = %+v", d)
		}
	})
	t.Run("OtherEnterprise", func(t *testing.T) {
		if d := f.decide(t, contract.TypeHonourAwarded, at("2026-06-01 10:00"), honourData(event.SampleUSCC(2), "专精特新", 2026)); len(d.Approvals) != 1 {
			t.Fatalf("decided = %+v", d)
		}
	})
	t.Run("ErrCapExceededConcurrently", func(t *testing.T) {
		// Eight honours of one enterprise (eight bases) decided at once in
		// one year: 300 fen each against a 500 fen cap, so exactly one fits.
		results := make([]contract.SubsidyDecided, 8)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i] = f.decide(t, contract.TypeHonourAwarded, at("2026-06-01 10:00"), honourData(event.SampleUSCC(3), "专精特新", 2018+i))
			}()
		}
		close(start)
		wg.Wait()
		approved := 0
		for _, d := range results {
			switch {
			case len(d.Approvals) == 1 && len(d.Rejections) == 0:
				approved++
			case len(d.Approvals) == 0 && fmt.Sprint(d.Rejections) == fmt.Sprint([]contract.SubsidyRejection{{PolicyID: "specialised", Reason: ReasonCapExceeded}}):
			default:
				t.Fatalf("unexpected decision %+v", d)
			}
		}
		if approved != 1 {
			t.Fatalf("%d approvals, want 1 (cap 500 fen, 300 fen each)", approved)
		}
		if n := f.Count(t, `SELECT coalesce(sum(amount_fen), 0) FROM subsidy.disbursements WHERE uscc = $1`, event.SampleUSCC(3)); n != 300 {
			t.Fatalf("%d fen approved to one enterprise, want 300", n)
		}
	})
	f.checkLedger(t)
}

func TestBudgetRace(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	// green's budget pays three awards; a dozen enterprises arrive at once.
	const n = 12
	results := make([]contract.SubsidyDecided, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = f.decide(t, contract.TypeHonourAwarded, at("2026-12-01 10:00"), honourData(event.SampleUSCC(100+i), "绿色工厂", 2026))
		}()
	}
	close(start)
	wg.Wait()
	approved, exhausted := 0, 0
	for _, d := range results {
		switch {
		case len(d.Approvals) == 1 && len(d.Rejections) == 0 && d.Approvals[0].AmountFen == 1000:
			approved++
		case len(d.Approvals) == 0 && fmt.Sprint(d.Rejections) == fmt.Sprint([]contract.SubsidyRejection{{PolicyID: "green", Reason: ReasonBudgetExhausted}}):
			exhausted++
		default:
			t.Fatalf("unexpected decision %+v", d)
		}
	}
	if approved != 3 || exhausted != n-3 {
		t.Fatalf("approved %d, budget_exhausted %d; want 3, %d", approved, exhausted, n-3)
	}
	if b := f.budget(t, "green"); b.remaining != 0 || b.payable != 3000 || b.allocated != 3000 {
		t.Fatalf("green budget = %+v", b)
	}
	if got := len(f.Sink.WaitFor(t, contract.TypePaymentRequested, 3, 10*time.Second)); got != 3 {
		t.Fatalf("%d payment requests, want 3", got)
	}
	f.checkLedger(t)

	t.Run("SameBasisConcurrently", func(t *testing.T) {
		// Eight events, each its own id, all meaning one entitlement.
		results := make([]contract.SubsidyDecided, 8)
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = f.decide(t, contract.TypeHonourAwarded, at("2026-12-01 10:00"), honourData(event.SampleUSCC(999), "专精特新", 2026))
			}()
		}
		wg.Wait()
		approved := 0
		for _, d := range results {
			if len(d.Approvals) == 1 {
				approved++
			} else if d.Rejections[0].Reason != ReasonDuplicate {
				t.Fatalf("unexpected decision %+v", d)
			}
		}
		if approved != 1 {
			t.Fatalf("%d approvals, want 1", approved)
		}
	})
}

func TestSettlement(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	d := f.decide(t, contract.TypeHonourAwarded, at("2026-11-30 10:00"), honourData(event.SampleUSCC(1), "金象金牛", 2026))
	id := d.Approvals[0].DisbursementID

	t.Run("OK", func(t *testing.T) {
		if got := f.payment(t, contract.TypePaymentSettled, settledData(id, "ICBC-20261203-0001")); got != StatusPaid {
			t.Fatalf("status = %s, want paid", got)
		}
		var status, bankRef string
		var paid int64
		if err := f.Pool.QueryRow(context.Background(), `SELECT status, paid_fen, bank_ref FROM subsidy.disbursement_status
			WHERE disbursement_id = $1`, id).Scan(&status, &paid, &bankRef); err != nil {
			t.Fatal(err)
		}
		if status != "paid" || paid != 100000000 || bankRef != "ICBC-20261203-0001" {
			t.Fatalf("disbursement %s: %s, paid %d, bank ref %s", id, status, paid, bankRef)
		}
		if b := f.budget(t, "jxjn"); b.paid != 100000000 || b.payable != 0 {
			t.Fatalf("jxjn budget = %+v", b)
		}
	})
	t.Run("SettledTwice", func(t *testing.T) {
		// Another callback (another event id) for the same payment: no second booking.
		if got := f.payment(t, contract.TypePaymentSettled, settledData(id, "ICBC-20261203-0001")); got != StatusPaid {
			t.Fatalf("status = %s, want paid", got)
		}
		if n := f.Count(t, `SELECT count(*) FROM subsidy.ledger_lines WHERE disbursement_id = $1 AND account = 'paid'`, id); n != 1 {
			t.Fatalf("%d paid lines, want 1", n)
		}
	})
	t.Run("FailedAfterSettled", func(t *testing.T) {
		if got := f.payment(t, contract.TypePaymentFailed, map[string]any{"disbursementId": id, "reason": "late bounce"}); got != StatusPaid {
			t.Fatalf("status = %s, want paid", got)
		}
		if n := f.Count(t, `SELECT count(*) FROM qinqing.outbox WHERE type = $1 AND data->>'disbursementId' = $2`, contract.TypePaymentRequested, id); n != 1 {
			t.Fatalf("%d payment requests, want 1", n)
		}
	})
	t.Run("UnknownDisbursement", func(t *testing.T) {
		for _, typ := range []string{contract.TypePaymentSettled, contract.TypePaymentFailed} {
			data := map[string]any{"disbursementId": "no-such-disbursement", "bankRef": "X", "settledAt": "2026-12-03T14:30:00+08:00", "reason": "x"}
			if got := f.payment(t, typ, data); got != StatusUnknown {
				t.Fatalf("%s: status = %s, want unknown", typ, got)
			}
		}
		if n := f.Count(t, `SELECT count(*) FROM subsidy.payment_failures`); n != 0 {
			t.Fatalf("%d failures recorded", n)
		}
	})
	f.checkLedger(t)
}

func TestPaymentFailure(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	a := event.SampleUSCC(1)
	d := f.decide(t, contract.TypeSubsidyRequested, at("2026-11-30 10:00"), requestData("request", a, "housing-1", 250000))
	id := d.Approvals[0].DisbursementID
	first := f.Sink.WaitFor(t, contract.TypePaymentRequested, 1, 10*time.Second)[0]

	// The failure, delivered twice (binary, then structured): one new
	// request, the same reply.
	failure := functest.Event(contract.TypePaymentFailed, treasurySource, nextID(), at("2026-12-01 15:00"),
		map[string]any{"disbursementId": id, "reason": "account closed"})
	r1, r2 := f.Fn.Send(t, failure), f.Fn.SendStructured(t, failure)
	if r1.Status != 200 || r1.Type() != contract.TypePaymentRecorded || r1.Data()["status"] != StatusPayable {
		t.Fatalf("failure: %d %s %s, want payment.recorded payable", r1.Status, r1.Type(), r1.Body)
	}
	if r2.Status != 200 || r2.Type() != r1.Type() || !bytes.Equal(r2.Event.Data(), r1.Event.Data()) {
		t.Fatalf("redelivered failure: %d %s %s; first %s", r2.Status, r2.Type(), r2.Event.Data(), r1.Event.Data())
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.outbox WHERE type = $1 AND data->>'disbursementId' = $2`, contract.TypePaymentRequested, id); n != 2 {
		t.Fatalf("%d payment requests after one failure delivered twice, want 2", n)
	}
	evs := f.Sink.WaitFor(t, contract.TypePaymentRequested, 2, 10*time.Second)
	second := evs[1]
	if second.ID() == first.ID() || !bytes.Equal(second.Data(), first.Data()) {
		t.Fatalf("re-request id %s data %s; first id %s data %s: want a new id and the same data", second.ID(), second.Data(), first.ID(), first.Data())
	}
	if want := `{"disbursementId":"` + id + `","uscc":"` + a + `","amountFen":250000}`; string(second.Data()) != want {
		t.Fatalf("data = %s, want %s", second.Data(), want)
	}
	if b := f.budget(t, "request"); b.payable != 250000 || b.paid != 0 || b.remaining != 10000000-250000 {
		t.Fatalf("after failure: budget %+v, want the money still payable", b)
	}
	// A second failure, a third request; then the settlement.
	f.payment(t, contract.TypePaymentFailed, map[string]any{"disbursementId": id, "reason": "bank timeout"})
	evs = f.Sink.WaitFor(t, contract.TypePaymentRequested, 3, 10*time.Second)
	if evs[2].ID() == evs[1].ID() || evs[2].ID() == first.ID() {
		t.Fatalf("third request reuses an id: %s", evs[2].ID())
	}
	if got := f.payment(t, contract.TypePaymentSettled, settledData(id, "ABC-9")); got != StatusPaid {
		t.Fatalf("status = %s, want paid", got)
	}
	var attempts int
	var lastFailure string
	if err := f.Pool.QueryRow(context.Background(), `SELECT attempts, last_failure FROM subsidy.disbursement_status WHERE disbursement_id = $1`, id).
		Scan(&attempts, &lastFailure); err != nil {
		t.Fatal(err)
	}
	if attempts != 3 || lastFailure != "bank timeout" {
		t.Fatalf("attempts %d, last failure %q", attempts, lastFailure)
	}
	if b := f.budget(t, "request"); b.payable != 0 || b.paid != 250000 {
		t.Fatalf("after settlement: budget %+v", b)
	}
	f.checkLedger(t)
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	type edit func(d map[string]any)
	set := func(k string, v any) edit { return func(d map[string]any) { d[k] = v } }
	del := func(k string) edit { return func(d map[string]any) { delete(d, k) } }
	cases := []struct {
		name  string
		typ   string
		good  func() map[string]any
		edit  edit
		field string
	}{
		{"HonourBadUSCC", contract.TypeHonourAwarded, nil, set("uscc", "91330500MA2B3C4D5X"), "uscc"},
		{"HonourNoYear", contract.TypeHonourAwarded, nil, del("year"), "year"},
		{"HonourYearString", contract.TypeHonourAwarded, nil, set("year", "2026"), "year"},
		{"HonourNoHonour", contract.TypeHonourAwarded, nil, set("honour", ""), "honour"},
		{"HonourNoName", contract.TypeHonourAwarded, nil, del("enterpriseName"), "enterpriseName"},
		{"MilestoneNegative", contract.TypeMilestoneApproved, nil, set("investmentFen", -1), "investmentFen"},
		{"MilestoneFraction", contract.TypeMilestoneApproved, nil, set("investmentFen", 1000.5), "investmentFen"},
		{"MilestoneString", contract.TypeMilestoneApproved, nil, set("investmentFen", "1000"), "investmentFen"},
		{"MilestoneMissingAmount", contract.TypeMilestoneApproved, nil, del("investmentFen"), "investmentFen"},
		{"MilestoneNoProject", contract.TypeMilestoneApproved, nil, del("projectId"), "projectId"},
		{"RequestNegative", contract.TypeSubsidyRequested, nil, set("amountFen", -5), "amountFen"},
		{"RequestZero", contract.TypeSubsidyRequested, nil, set("amountFen", 0), "amountFen"},
		{"RequestFraction", contract.TypeSubsidyRequested, nil, set("amountFen", 12.5), "amountFen"},
		{"RequestTooLarge", contract.TypeSubsidyRequested, nil, set("amountFen", 1e19), "amountFen"},
		{"RequestNoBasis", contract.TypeSubsidyRequested, nil, del("basisId"), "basisId"},
		{"RequestNoPolicy", contract.TypeSubsidyRequested, nil, del("policyId"), "policyId"},
		{"SettledBadTime", contract.TypePaymentSettled, nil, set("settledAt", "yesterday"), "settledAt"},
		{"SettledNoBankRef", contract.TypePaymentSettled, nil, del("bankRef"), "bankRef"},
		{"SettledNoDisbursement", contract.TypePaymentSettled, nil, del("disbursementId"), "disbursementId"},
		{"FailedNoReason", contract.TypePaymentFailed, nil, del("reason"), "reason"},
	}
	goods := map[string]func() map[string]any{
		contract.TypeHonourAwarded:     func() map[string]any { return honourData(event.SampleUSCC(1), "金象金牛", 2026) },
		contract.TypeMilestoneApproved: func() map[string]any { return milestoneData(event.SampleUSCC(1), "P-1", "production-started", 1000000) },
		contract.TypeSubsidyRequested:  func() map[string]any { return requestData("request", event.SampleUSCC(1), "b-1", 1000) },
		contract.TypePaymentSettled:    func() map[string]any { return settledData("d-1", "B-1") },
		contract.TypePaymentFailed:     func() map[string]any { return map[string]any{"disbursementId": "d-1", "reason": "x"} },
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := goods[tc.typ]()
			tc.edit(d)
			r := f.send(t, tc.typ, requestSource, at("2026-12-01 10:00"), d)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400 (%s)", r.Status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type = %q", ct)
			}
			if got := r.Problem()["field"]; got != tc.field {
				t.Fatalf("field = %v, want %s (%s)", got, tc.field, r.Body)
			}
		})
	}
	t.Run("NotJSON", func(t *testing.T) {
		ev := functest.Event(contract.TypeHonourAwarded, honourSource, nextID(), at("2026-12-01 10:00"), nil)
		_ = ev.SetData("application/json", []byte("{not json"))
		if r := f.Fn.Send(t, ev); r.Status != 400 {
			t.Fatalf("status = %d", r.Status)
		}
	})
	// Nothing written: no entitlement, no booking beyond the budgets'
	// allocation, no inbox or outbox row.
	for _, q := range []string{
		`SELECT count(*) FROM subsidy.disbursements`,
		`SELECT count(*) FROM subsidy.movements WHERE kind <> 'allocation'`,
		`SELECT count(*) FROM qinqing.inbox`,
		`SELECT count(*) FROM qinqing.outbox`,
	} {
		if n := f.Count(t, q); n != 0 {
			t.Errorf("%s = %d after bad input, want 0", q, n)
		}
	}
}

func TestLedgerIsAppendOnly(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	f.decide(t, contract.TypeHonourAwarded, at("2026-11-30 10:00"), honourData(event.SampleUSCC(1), "绿色工厂", 2026))
	ctx := context.Background()
	for _, sql := range []string{
		`UPDATE subsidy.ledger_lines SET amount_fen = amount_fen * 2`,
		`DELETE FROM subsidy.ledger_lines`,
		`TRUNCATE subsidy.ledger_lines CASCADE`,
		`UPDATE subsidy.movements SET memo = 'x'`,
		`DELETE FROM subsidy.disbursements`,
		`UPDATE subsidy.disbursements SET amount_fen = 1`,
	} {
		if _, err := f.Pool.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", sql, err)
		}
	}
	t.Run("ErrUnbalanced", func(t *testing.T) {
		tx, err := f.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `INSERT INTO subsidy.movements (movement_id, kind, policy_id, at) VALUES ('m-bad', 'allocation', 'green', now())`); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO subsidy.ledger_lines (movement_id, account, policy_id, amount_fen)
			VALUES ('m-bad', 'budget', 'green', 500), ('m-bad', 'funding', 'green', -499)`); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err == nil || !strings.Contains(err.Error(), "does not balance") {
			t.Fatalf("commit of an unbalanced movement: %v", err)
		}
	})
	f.checkLedger(t)
}

func TestBudgetChange(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	sink := functest.NewSink(t)
	policy := func(budget int) string {
		return fmt.Sprintf(`{"policies": [{"policyId": "green", "name": "绿色工厂奖励", "trigger": "cn.huzhou.honour.awarded",
			"match": {"honour": "绿色工厂"}, "amountFen": 1000, "budgetFen": %d}]}`, budget)
	}
	start := func(budget int) *fixture {
		env := []string{"DATABASE_URL=" + url, "K_SINK=" + sink.URL, "POLICIES_FILE=" + testkit.WriteFile(t, "policies.json", policy(budget))}
		return &fixture{&functest.Fixture{Fn: functest.Start(t, binary, env...), Sink: sink, Pool: pgtest.PoolFor(t, url)}}
	}
	award := func(f *fixture, n int) contract.SubsidyDecided {
		return f.decide(t, contract.TypeHonourAwarded, at("2026-12-01 10:00"), honourData(event.SampleUSCC(n), "绿色工厂", 2026))
	}
	f := start(3000)
	award(f, 1)
	award(f, 2)
	f.Fn.Stop()

	// Cut below what is approved: approved money stays, nothing is left.
	f = start(1500)
	if d := award(f, 3); len(d.Approvals) != 0 || d.Rejections[0].Reason != ReasonBudgetExhausted {
		t.Fatalf("after the cut: %+v", d)
	}
	if b := f.budget(t, "green"); b.configured != 1500 || b.allocated != 2000 || b.remaining != 0 || b.payable != 2000 {
		t.Fatalf("after the cut: %+v", b)
	}
	f.Fn.Stop()

	// Raise it: the new total less what is approved is left.
	f = start(4000)
	if d := award(f, 4); len(d.Approvals) != 1 {
		t.Fatalf("after the raise: %+v", d)
	}
	if b := f.budget(t, "green"); b.configured != 4000 || b.allocated != 4000 || b.remaining != 1000 || b.payable != 3000 {
		t.Fatalf("after the raise: %+v", b)
	}
	f.checkLedger(t)
}

func TestDefaultPolicies(t *testing.T) {
	t.Parallel()
	f := setup(t, "")
	d := f.decide(t, contract.TypeHonourAwarded, at("2026-11-30 10:00"), honourData(event.SampleUSCC(1), "金象金牛", 2026))
	if len(d.Approvals) != 1 || d.Approvals[0].PolicyID != "jinxiang-jinniu" || d.Approvals[0].AmountFen != 100000000 {
		t.Fatalf("decided = %+v", d)
	}
	if due := d.Approvals[0].DueAt.In(testkit.Shanghai).Format(time.RFC3339); due != "2026-12-07T23:59:59+08:00" {
		t.Fatalf("dueAt = %s", due)
	}
	m := f.decide(t, contract.TypeMilestoneApproved, at("2026-12-01 10:00"), milestoneData(event.SampleUSCC(2), "P-1", "production-started", 1234567890))
	if len(m.Approvals) != 1 || m.Approvals[0].AmountFen != 12345678 {
		t.Fatalf("milestone decided = %+v", m)
	}
	// Every built-in policy is written at start, before its first use.
	deadline := time.Now().Add(10 * time.Second)
	for f.Count(t, `SELECT count(*) FROM subsidy.policy_budgets WHERE allocated_fen = configured_budget_fen`) != 3 {
		if time.Now().After(deadline) {
			t.Fatal("the built-in policies were not written at start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, file, want string
	}{
		{"NotYAML", "policies: [ {", "POLICIES_FILE"},
		{"UnknownField", `{"policies": [{"policyId": "p", "name": "n", "trigger": "cn.huzhou.honour.awarded", "amountFenn": 1, "budgetFen": 1}]}`, "amountFenn"},
		{"NegativeAmount", `{"policies": [{"policyId": "p", "name": "n", "trigger": "cn.huzhou.honour.awarded", "amountFen": -1, "budgetFen": 1}]}`, "policies[0].amountFen"},
		{"FractionalAmount", `{"policies": [{"policyId": "p", "name": "n", "trigger": "cn.huzhou.honour.awarded", "amountFen": 1.5, "budgetFen": 1}]}`, "amountFen"},
		{"RateWithoutCap", "policies:\n  - {policyId: p, name: n, trigger: cn.huzhou.project.milestone.approved, rateBasisPoints: 100, budgetFen: 1}", "policies[0].capFen"},
		{"UnknownTrigger", "policies:\n  - {policyId: p, name: n, trigger: cn.huzhou.forum.scheduled, amountFen: 1, budgetFen: 1}", "policies[0].trigger"},
		{"UnknownMatchField", "policies:\n  - {policyId: p, name: n, trigger: cn.huzhou.honour.awarded, match: {title: x}, amountFen: 1, budgetFen: 1}", "policies[0].match.title"},
		{"NoBudget", "policies:\n  - {policyId: p, name: n, trigger: cn.huzhou.honour.awarded, amountFen: 1}", "policies[0].budgetFen"},
		{"DuplicateID", "policies:\n  - {policyId: p, name: n, trigger: cn.huzhou.honour.awarded, amountFen: 1, budgetFen: 1}\n  - {policyId: p, name: n, trigger: cn.huzhou.honour.awarded, amountFen: 1, budgetFen: 1}", "policies[1].policyId"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := runConfigOnly(t, "POLICIES_FILE="+testkit.WriteFile(t, "p.yaml", tc.file))
			if err == nil || !bytes.Contains(out, []byte(tc.want)) || bytes.Count(bytes.TrimSpace(out), []byte("\n")) != 0 {
				t.Fatalf("got %v: %q; want one line naming %s", err, out, tc.want)
			}
		})
	}
	t.Run("MissingFile", func(t *testing.T) {
		out, err := runConfigOnly(t, "POLICIES_FILE=/nonexistent/policies.yaml")
		if err == nil || !bytes.Contains(out, []byte("POLICIES_FILE")) {
			t.Fatalf("got %v: %q", err, out)
		}
	})
	t.Run("MissingDatabaseURL", func(t *testing.T) {
		out, err := functest.RunConfigOnly(t, binary)
		if err == nil || !bytes.Contains(out, []byte("DATABASE_URL")) {
			t.Fatalf("got %v: %q", err, out)
		}
	})
}

// The follow-up key of a re-request is what makes its event id new.
func TestPaymentRequestKeys(t *testing.T) {
	d := disbursement{id: "D", uscc: "U", amountFen: 5}
	a, b := paymentRequest(d, 1), paymentRequest(d, 2)
	if a.Key == b.Key || runtime.DeriveID(a.Key) == runtime.DeriveID(b.Key) {
		t.Fatalf("keys %q and %q", a.Key, b.Key)
	}
}

// TestSampleWeek plays cmd/devstack/week/30-subsidy.jsonl (the subsidy part
// of `make run`, on the built-in policies) and checks its story.
func TestSampleWeek(t *testing.T) {
	t.Parallel()
	f := setup(t, "")
	raw, err := os.ReadFile("../../cmd/devstack/week/30-subsidy.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var replies []string
	for n, text := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var l struct {
			Note, Type, Source, ID, Time string
			Data                         json.RawMessage
		}
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if l.Note != "" {
			continue
		}
		when, err := time.Parse(time.RFC3339, l.Time)
		if err != nil || when.Before(at("2026-11-30 00:00")) || !when.Before(at("2026-12-07 00:00")) {
			t.Fatalf("line %d: time %q is not in the sample week (%v)", n+1, l.Time, err)
		}
		r := f.Fn.Send(t, functest.Event(l.Type, l.Source, l.ID, when, l.Data))
		if r.Status != 200 {
			t.Fatalf("line %d: %d %s", n+1, r.Status, r.Body)
		}
		replies = append(replies, r.Type()+" "+string(r.Event.Data()))
	}
	honour, milestone := "35ed62f7-2e35-5dce-93e4-38b2b73f546e", "ffc5cbe9-8dad-56c8-8e9d-3eddffe7714a"
	want := []string{
		contract.TypeSubsidyDecided + ` {"uscc":"91330500MA2B3C4D5B","approvals":[{"disbursementId":"` + honour + `","policyId":"jinxiang-jinniu","amountFen":100000000,"dueAt":"2026-12-07T23:59:59+08:00"}],"rejections":[]}`,
		contract.TypeSubsidyDecided + ` {"uscc":"91330502MA28C1234X","approvals":[{"disbursementId":"` + milestone + `","policyId":"major-project-milestone","amountFen":18500000,"dueAt":"2026-12-08T23:59:59+08:00"}],"rejections":[]}`,
		contract.TypeSubsidyDecided + ` {"uscc":"91330500MA2B3C4D5B","approvals":[],"rejections":[{"policyId":"jinxiang-jinniu","reason":"duplicate"}]}`,
		contract.TypeSubsidyDecided + ` {"uscc":"91330500020261130M","approvals":[{"disbursementId":"`,
		contract.TypePaymentRecorded + ` {"disbursementId":"` + milestone + `","status":"payable"}`,
		contract.TypePaymentRecorded + ` {"disbursementId":"` + honour + `","status":"paid"}`,
		contract.TypePaymentRecorded + ` {"disbursementId":"` + milestone + `","status":"paid"}`,
	}
	if len(replies) != len(want) {
		t.Fatalf("%d replies, want %d:\n%s", len(replies), len(want), strings.Join(replies, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(replies[i], want[i]) {
			t.Errorf("reply %d:\n got %s\nwant %s", i+1, replies[i], want[i])
		}
	}
	// Three approvals, one re-request after the failure.
	f.Sink.WaitFor(t, contract.TypePaymentRequested, 4, 10*time.Second)
	f.checkLedger(t)
	if b := f.budget(t, "jinxiang-jinniu"); b.paid != 100000000 || b.payable != 0 || b.remaining != 3000000000-100000000 {
		t.Errorf("jinxiang-jinniu budget = %+v", b)
	}
	if n := f.Count(t, `SELECT count(*) FROM subsidy.disbursement_status WHERE status = 'payable'`); n != 1 {
		t.Errorf("%d unpaid disbursements, want 1 (the housing request)", n)
	}

	// The operator queries of docs/subsidy.md run.
	doc, err := os.ReadFile("../../docs/subsidy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(doc), "### Operator queries\n\n```sql\n")
	block, _, _ = strings.Cut(block, "```")
	queries := strings.Split(strings.TrimSpace(block), ";")
	if len(queries) < 5 {
		t.Fatalf("docs/subsidy.md: %d operator queries found", len(queries))
	}
	for _, q := range queries {
		if strings.TrimSpace(q) == "" {
			continue
		}
		rows, err := f.Pool.Query(context.Background(), q)
		if err == nil {
			for rows.Next() {
			}
			rows.Close()
			err = rows.Err()
		}
		if err != nil {
			t.Errorf("docs/subsidy.md query %s: %v", q, err)
		}
	}
}

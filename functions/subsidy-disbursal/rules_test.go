package main

import (
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

// The budget and cap rules (contract section 6), tested on the handlers
// directly, on a transaction rolled back at the end: an amount is approved
// whole or refused (budget_exhausted when the policy's budget cannot pay
// it whole, cap_exceeded when it would take the enterprise past the
// policy's yearly cap), the cap counts the business year of the event,
// and a refusal books nothing. What the pipeline promises (status codes,
// redelivery, problem+json, the ledger through restarts) is in
// contract_test.go.

// rulesPolicies: green pays two awards whole out of its budget, not a
// third; specialised caps each enterprise at 500 fen a year; request pays
// what is asked up to 500,000 fen, at most 800,000 fen a year.
const rulesPolicies = `
policies:
  - policyId: green
    name: 绿色工厂奖励
    trigger: cn.huzhou.honour.awarded
    match: { honour: 绿色工厂 }
    amountFen: 1000
    budgetFen: 2500
  - policyId: specialised
    name: 专精特新奖励
    trigger: cn.huzhou.honour.awarded
    match: { honour: 专精特新 }
    amountFen: 300
    budgetFen: 100000
    perEnterpriseYearCapFen: 500
  - policyId: request
    name: 人才安居补贴
    trigger: cn.huzhou.subsidy.requested
    amountFen: 500000
    budgetFen: 10000000
    perEnterpriseYearCapFen: 800000
`

// rules returns the function's handlers under rulesPolicies on a
// transaction of a new database, event time 1 December 2026 in Huzhou.
func rules(t *testing.T) *functest.OnTx {
	t.Helper()
	ps, err := ParsePolicies([]byte(rulesPolicies))
	if err != nil {
		t.Fatal(err)
	}
	env := functest.Env(t, name)
	return functest.NewOnTx(t, env.Pool, New(env, ps).Runtime(), at("2026-12-01 10:00"))
}

// honour is enterprise n's HonourAwarded payload.
func honour(n int, kind string, year int) *HonourAwarded {
	return &HonourAwarded{USCC: event.SampleUSCC(n), EnterpriseName: "湖州测试企业", Honour: kind, Year: &year}
}

// request is enterprise n's SubsidyRequested payload under policy request.
func request(n int, basisID string, amountFen int64) *SubsidyRequested {
	return &SubsidyRequested{PolicyID: "request", USCC: event.SampleUSCC(n), BasisID: basisID, AmountFen: &amountFen}
}

// decided handles a triggering event and returns its subsidy.decided
// reply.
func decided(t *testing.T, h *functest.OnTx, typ string, payload any) (Decided, runtime.Result) {
	t.Helper()
	res := h.Handle(t, typ, payload)
	if res.Reply.Type != TypeDecided {
		t.Fatalf("%s: reply %s, want %s", typ, res.Reply.Type, TypeDecided)
	}
	return functest.As[Decided](t, res.Reply), res
}

// wantApproved fails the test unless d approves amountFen under policyID
// alone and res asks the treasury to pay it.
func wantApproved(t *testing.T, d Decided, res runtime.Result, policyID string, amountFen int64) {
	t.Helper()
	if len(d.Approvals) != 1 || len(d.Rejections) != 0 || d.Approvals[0].PolicyID != policyID || d.Approvals[0].AmountFen != amountFen {
		t.Fatalf("decided %+v, want %d fen approved under %s", d, amountFen, policyID)
	}
	if len(res.FollowUps) != 1 || res.FollowUps[0].Type != TypePaymentRequested {
		t.Fatalf("follow-ups %+v, want one %s", res.FollowUps, TypePaymentRequested)
	}
	if p := functest.As[PaymentRequested](t, res.FollowUps[0]); p.DisbursementID != d.Approvals[0].DisbursementID || p.AmountFen != amountFen {
		t.Fatalf("payment requested %+v for approval %+v", p, d.Approvals[0])
	}
}

// wantRefused fails the test unless d refuses under policyID for reason
// and res asks for no payment.
func wantRefused(t *testing.T, d Decided, res runtime.Result, policyID, reason string) {
	t.Helper()
	if len(d.Approvals) != 0 || len(d.Rejections) != 1 || d.Rejections[0] != (Rejection{PolicyID: policyID, Reason: reason}) {
		t.Fatalf("decided %+v, want %s refused for %s", d, policyID, reason)
	}
	if len(res.FollowUps) != 0 {
		t.Fatalf("follow-ups %+v for a refusal", res.FollowUps)
	}
}

func TestBudgetRule(t *testing.T) {
	t.Parallel()
	t.Run("ErrBudgetExhausted", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		for n := 1; n <= 2; n++ {
			d, res := decided(t, h, TypeHonourAwarded, honour(n, "绿色工厂", 2026))
			wantApproved(t, d, res, "green", 1000)
		}
		// 500 fen are left: not enough for the whole 1000, and no part is paid.
		d, res := decided(t, h, TypeHonourAwarded, honour(3, "绿色工厂", 2026))
		wantRefused(t, d, res, "green", ReasonBudgetExhausted)
		if got := h.Count(t, `SELECT remaining_fen FROM subsidy.policy_budgets WHERE policy_id = 'green'`); got != 500 {
			t.Fatalf("remaining = %d fen, want 500", got)
		}
		if got := h.Count(t, `SELECT count(*) FROM subsidy.disbursements WHERE policy_id = 'green'`); got != 2 {
			t.Fatalf("%d disbursements, want 2", got)
		}
	})
	t.Run("ErrDuplicate", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		d, res := decided(t, h, TypeHonourAwarded, honour(1, "绿色工厂", 2026))
		wantApproved(t, d, res, "green", 1000)
		// The same honour of the same year again (another event): decided once.
		d, res = decided(t, h, TypeHonourAwarded, honour(1, "绿色工厂", 2026))
		wantRefused(t, d, res, "green", ReasonDuplicate)
		if got := h.Count(t, `SELECT remaining_fen FROM subsidy.policy_budgets WHERE policy_id = 'green'`); got != 1500 {
			t.Fatalf("remaining = %d fen, want 1500", got)
		}
	})
	t.Run("ErrNoMatchingPolicy", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		d, res := decided(t, h, TypeHonourAwarded, honour(1, "金象金牛", 2026))
		wantRefused(t, d, res, "", ReasonNoMatchingPolicy)
	})
}

func TestYearCapRule(t *testing.T) {
	t.Parallel()
	t.Run("ErrCapExceeded", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		d, res := decided(t, h, TypeHonourAwarded, honour(1, "专精特新", 2026))
		wantApproved(t, d, res, "specialised", 300)
		// Another basis (last year's honour) decided in the same business
		// year: 300 + 300 fen would pass the cap of 500.
		d, res = decided(t, h, TypeHonourAwarded, honour(1, "专精特新", 2025))
		wantRefused(t, d, res, "specialised", ReasonCapExceeded)
		// The cap is per enterprise.
		d, res = decided(t, h, TypeHonourAwarded, honour(2, "专精特新", 2026))
		wantApproved(t, d, res, "specialised", 300)
	})
	t.Run("NewBusinessYear", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		d, res := decided(t, h, TypeHonourAwarded, honour(1, "专精特新", 2026))
		wantApproved(t, d, res, "specialised", 300)
		// 1 January 2027 00:30 in Huzhou is still 2026 in UTC: the business
		// year is Huzhou's, and its cap starts again.
		h.Time = time.Date(2027, 1, 1, 0, 30, 0, 0, testkit.Shanghai)
		d, res = decided(t, h, TypeHonourAwarded, honour(1, "专精特新", 2025))
		wantApproved(t, d, res, "specialised", 300)
	})
	t.Run("RequestUpToPolicyAmount", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		// Asked 600,000 fen: the policy pays at most 500,000 a request.
		d, res := decided(t, h, TypeSubsidyRequested, request(1, "housing-1", 600_000))
		wantApproved(t, d, res, "request", 500_000)
		d, res = decided(t, h, TypeSubsidyRequested, request(1, "housing-2", 300_000))
		wantApproved(t, d, res, "request", 300_000)
		// 800,000 fen this year: one fen more passes the cap.
		d, res = decided(t, h, TypeSubsidyRequested, request(1, "housing-3", 1))
		wantRefused(t, d, res, "request", ReasonCapExceeded)
	})
}

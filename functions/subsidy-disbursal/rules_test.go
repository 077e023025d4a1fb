package main

import (
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
	"github.com/qinqing/qinqing/shared/testkit/sample"
)

// The budget and cap rules (contract section 6), tested on the handlers
// directly, on a transaction rolled back at the end: an amount is approved
// whole or refused (budget_exhausted when the policy's budget cannot pay
// it whole, cap_exceeded when it would take the enterprise past the
// policy's yearly cap), the cap counts the business year of the event,
// and a refusal books nothing. What the pipeline promises (status codes,
// redelivery, problem+json, the ledger through restarts) is in
// contract_test.go.

// rulesPolicies is testPolicies with green's budget cut to 2500 fen: two
// awards of 1000 fit whole, a third does not. specialised caps each
// enterprise at 500 fen a year; request pays what is asked up to 500,000
// fen, at most 800,000 fen a year.
var rulesPolicies = strings.Replace(testPolicies, "amountFen: 1000\n    budgetFen: 3000\n", "amountFen: 1000\n    budgetFen: 2500\n", 1)

// rules returns the function's handlers under rulesPolicies on a
// transaction of a new database, event time 1 December 2026 in Huzhou.
func rules(t *testing.T) *functest.OnTx {
	t.Helper()
	ps, err := ParsePolicies([]byte(rulesPolicies))
	if err != nil || !strings.Contains(rulesPolicies, "budgetFen: 2500") {
		t.Fatalf("rulesPolicies: %v", err)
	}
	return functest.NewOnTxFor(t, name, at("2026-12-01 10:00"), func(env *runtime.Env) *runtime.Function { return New(env, ps).Runtime() })
}

// decided handles a triggering event and returns its subsidy.decided
// reply.
func decided(t *testing.T, h *functest.OnTx, typ string, payload any) (contract.SubsidyDecided, runtime.Result) {
	t.Helper()
	res := h.Handle(t, typ, payload)
	if res.Reply.Type != contract.TypeSubsidyDecided {
		t.Fatalf("%s: reply %s, want %s", typ, res.Reply.Type, contract.TypeSubsidyDecided)
	}
	return functest.As[contract.SubsidyDecided](t, res.Reply), res
}

// approve handles a triggering event and fails the test unless it is
// decided with amountFen approved under policyID alone and the treasury
// asked to pay it.
func approve(t *testing.T, h *functest.OnTx, typ string, payload any, policyID string, amountFen int64) {
	t.Helper()
	d, res := decided(t, h, typ, payload)
	if len(d.Approvals) != 1 || len(d.Rejections) != 0 || d.Approvals[0].PolicyID != policyID || d.Approvals[0].AmountFen != amountFen {
		t.Fatalf("decided %+v, want %d fen approved under %s", d, amountFen, policyID)
	}
	if len(res.FollowUps) != 1 || res.FollowUps[0].Type != contract.TypePaymentRequested {
		t.Fatalf("follow-ups %+v, want one %s", res.FollowUps, contract.TypePaymentRequested)
	}
	if p := functest.As[contract.PaymentRequested](t, res.FollowUps[0]); p.DisbursementID != d.Approvals[0].DisbursementID || p.AmountFen != amountFen {
		t.Fatalf("payment requested %+v for approval %+v", p, d.Approvals[0])
	}
}

// refuse handles a triggering event and fails the test unless it is
// decided with policyID refused for reason and no payment asked for.
func refuse(t *testing.T, h *functest.OnTx, typ string, payload any, policyID, reason string) {
	t.Helper()
	d, res := decided(t, h, typ, payload)
	if len(d.Approvals) != 0 || len(d.Rejections) != 1 || d.Rejections[0] != (contract.SubsidyRejection{PolicyID: policyID, Reason: reason}) {
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
			approve(t, h, contract.TypeHonourAwarded, sample.Honour(n, "绿色工厂", 2026), "green", 1000)
		}
		// 500 fen are left: not enough for the whole 1000, and no part is paid.
		refuse(t, h, contract.TypeHonourAwarded, sample.Honour(3, "绿色工厂", 2026), "green", ReasonBudgetExhausted)
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
		approve(t, h, contract.TypeHonourAwarded, sample.Honour(1, "绿色工厂", 2026), "green", 1000)
		// The same honour of the same year again (another event): decided once.
		refuse(t, h, contract.TypeHonourAwarded, sample.Honour(1, "绿色工厂", 2026), "green", ReasonDuplicate)
		if got := h.Count(t, `SELECT remaining_fen FROM subsidy.policy_budgets WHERE policy_id = 'green'`); got != 1500 {
			t.Fatalf("remaining = %d fen, want 1500", got)
		}
	})
	t.Run("ErrNoMatchingPolicy", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		refuse(t, h, contract.TypeHonourAwarded, sample.Honour(1, "科技小巨人", 2026), "", ReasonNoMatchingPolicy)
	})
}

func TestYearCapRule(t *testing.T) {
	t.Parallel()
	t.Run("ErrCapExceeded", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		approve(t, h, contract.TypeHonourAwarded, sample.Honour(1, "专精特新", 2026), "specialised", 300)
		// Another basis (last year's honour) decided in the same business
		// year: 300 + 300 fen would pass the cap of 500.
		refuse(t, h, contract.TypeHonourAwarded, sample.Honour(1, "专精特新", 2025), "specialised", ReasonCapExceeded)
		// The cap is per enterprise.
		approve(t, h, contract.TypeHonourAwarded, sample.Honour(2, "专精特新", 2026), "specialised", 300)
	})
	t.Run("NewBusinessYear", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		approve(t, h, contract.TypeHonourAwarded, sample.Honour(1, "专精特新", 2026), "specialised", 300)
		// 1 January 2027 00:30 in Huzhou is still 2026 in UTC: the business
		// year is Huzhou's, and its cap starts again.
		h.Time = time.Date(2027, 1, 1, 0, 30, 0, 0, testkit.Shanghai)
		approve(t, h, contract.TypeHonourAwarded, sample.Honour(1, "专精特新", 2025), "specialised", 300)
	})
	t.Run("RequestUpToPolicyAmount", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		// Asked 600,000 fen: the policy pays at most 500,000 a request.
		approve(t, h, contract.TypeSubsidyRequested, sample.Request("request", 1, "housing-1", 600_000), "request", 500_000)
		approve(t, h, contract.TypeSubsidyRequested, sample.Request("request", 1, "housing-2", 300_000), "request", 300_000)
		// 800,000 fen this year: one fen more passes the cap.
		refuse(t, h, contract.TypeSubsidyRequested, sample.Request("request", 1, "housing-3", 1), "request", ReasonCapExceeded)
	})
}

package main

import (
	"context"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

var binary string

func TestMain(m *testing.M) { functest.MainTwice(m, map[string]*string{".": &binary}) }

// testPolicies is the POLICIES_FILE of most tests (YAML; other tests use
// JSON and the built-in defaults).
const testPolicies = `
policies:
  - policyId: jxjn
    name: 金象金牛企业奖励
    trigger: cn.huzhou.honour.awarded
    match: { honour: 金象金牛 }
    amountFen: 100000000
    budgetFen: 1000000000
  - policyId: jxjn-wuxing
    name: 吴兴区金象金牛配套奖励
    trigger: cn.huzhou.honour.awarded
    match: { honour: 金象金牛 }
    amountFen: 20000000
    budgetFen: 1000000000
  - policyId: specialised
    name: 专精特新奖励
    trigger: cn.huzhou.honour.awarded
    match: { honour: 专精特新 }
    amountFen: 300
    budgetFen: 100000
    perEnterpriseYearCapFen: 500
  - policyId: green
    name: 绿色工厂奖励 (budget for three)
    trigger: cn.huzhou.honour.awarded
    match: { honour: 绿色工厂 }
    amountFen: 1000
    budgetFen: 3000
  - policyId: milestone
    name: 重大项目投产奖励
    trigger: cn.huzhou.project.milestone.approved
    match: { milestone: production-started }
    rateBasisPoints: 150
    capFen: 2000000
    budgetFen: 100000000
  - policyId: request
    name: 人才安居补贴
    trigger: cn.huzhou.subsidy.requested
    amountFen: 500000
    budgetFen: 10000000
    perEnterpriseYearCapFen: 800000
`

type fixture struct{ *functest.Fixture }

// setup starts the function on a fresh database with policies as its
// POLICIES_FILE ("" for the built-in defaults).
func setup(t *testing.T, policies string) *fixture {
	t.Helper()
	var env []string
	if policies != "" {
		env = append(env, "POLICIES_FILE="+testkit.WriteFile(t, "policies.yaml", policies))
	}
	return &fixture{functest.Setup(t, binary, functest.Parts{Sink: true, Env: env})}
}

// at is a time in Huzhou.
func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, testkit.Shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

var nextID = functest.NextID

const (
	honourSource   = "/portals/honours"
	projectSource  = "/portals/projects"
	requestSource  = "/portals/enterprise"
	treasurySource = "/treasury/payments"
)

func honourData(code, honour string, year int) map[string]any {
	return map[string]any{"uscc": code, "enterpriseName": "湖州测试企业" + code[10:], "honour": honour, "year": year}
}

func milestoneData(code, project, milestone string, investmentFen int64) map[string]any {
	return map[string]any{"projectId": project, "uscc": code, "milestone": milestone, "investmentFen": investmentFen}
}

func requestData(policyID, code, basisID string, amountFen int64) map[string]any {
	return map[string]any{"policyId": policyID, "uscc": code, "basisId": basisID, "amountFen": amountFen}
}

func (f *fixture) send(t *testing.T, typ, source string, when time.Time, data any) *functest.Response {
	t.Helper()
	return f.Fn.Send(t, functest.Event(typ, source, nextID(), when, data))
}

// decide sends a triggering event and decodes the subsidy.decided reply.
func (f *fixture) decide(t *testing.T, typ string, when time.Time, data any) contract.SubsidyDecided {
	t.Helper()
	source := map[string]string{contract.TypeHonourAwarded: honourSource, contract.TypeMilestoneApproved: projectSource, contract.TypeSubsidyRequested: requestSource}[typ]
	r := f.send(t, typ, source, when, data)
	if r.Status != 200 || r.Type() != contract.TypeSubsidyDecided {
		t.Fatalf("%s: status %d type %q body %s", typ, r.Status, r.Type(), r.Body)
	}
	var d contract.SubsidyDecided
	r.DataInto(t, &d)
	return d
}

// payment sends a treasury callback and returns the recorded status.
func (f *fixture) payment(t *testing.T, typ string, data any) string {
	t.Helper()
	r := f.send(t, typ, treasurySource, at("2026-12-03 15:00"), data)
	if r.Status != 200 || r.Type() != contract.TypePaymentRecorded {
		t.Fatalf("%s: status %d type %q body %s", typ, r.Status, r.Type(), r.Body)
	}
	var rec contract.PaymentRecorded
	r.DataInto(t, &rec)
	return rec.Status
}

func settledData(id, bankRef string) map[string]any {
	return map[string]any{"disbursementId": id, "bankRef": bankRef, "settledAt": "2026-12-03T14:30:00+08:00"}
}

// budget is a row of subsidy.policy_budgets.
type budget struct{ configured, allocated, remaining, payable, paid int64 }

func (f *fixture) budget(t *testing.T, policyID string) budget {
	t.Helper()
	var b budget
	if err := f.Pool.QueryRow(context.Background(), `SELECT configured_budget_fen, allocated_fen, remaining_fen, payable_fen, paid_fen
		FROM subsidy.policy_budgets WHERE policy_id = $1`, policyID).Scan(&b.configured, &b.allocated, &b.remaining, &b.payable, &b.paid); err != nil {
		t.Fatalf("policy_budgets %s: %v", policyID, err)
	}
	return b
}

// checkLedger asserts the ledger's invariants: all lines sum to zero,
// every movement balances, no budget is overspent, and every policy's
// allocation is what is left plus what was approved.
func (f *fixture) checkLedger(t *testing.T) {
	t.Helper()
	if sum := f.Count(t, `SELECT coalesce(sum(amount_fen), 0) FROM subsidy.ledger_lines`); sum != 0 {
		t.Errorf("ledger lines sum to %d fen, want 0", sum)
	}
	if n := f.Count(t, `SELECT count(*) FROM (SELECT movement_id FROM subsidy.ledger_lines GROUP BY movement_id HAVING sum(amount_fen) <> 0) x`); n != 0 {
		t.Errorf("%d movements do not balance", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM subsidy.policy_budgets WHERE remaining_fen < 0 OR allocated_fen <> remaining_fen + payable_fen + paid_fen`); n != 0 {
		t.Errorf("%d policies overspent or out of balance", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM subsidy.disbursement_status WHERE payable_fen + paid_fen <> amount_fen
		OR (status = 'paid') <> (paid_fen = amount_fen)`); n != 0 {
		t.Errorf("%d disbursements whose ledger does not match their amount and status", n)
	}
}

// runConfigOnly runs the binary with a DATABASE_URL and the given
// environment and returns what it printed; it must refuse to start.
func runConfigOnly(t *testing.T, env ...string) ([]byte, error) {
	t.Helper()
	return functest.RunConfigOnly(t, binary, append([]string{"DATABASE_URL=postgres://x@127.0.0.1:1/x"}, env...)...)
}

package main

import (
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

// A database outage answers 5xx and books nothing; Knative's retry of the
// same event succeeds once the database is back, and the money is approved
// and settled exactly once.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	f := &fixture{functest.Setup(t, binary, functest.Parts{Sink: true, ProxyDatabase: true,
		Env: []string{"POLICIES_FILE=" + testkit.WriteFile(t, "policies.yaml", testPolicies)}})}
	proxy := f.DatabaseProxy
	code := event.SampleUSCC(1)

	award := functest.Event(contract.TypeHonourAwarded, honourSource, nextID(), at("2026-11-30 10:00"), honourData(code, "绿色工厂", 2026))
	proxy.SetDown(true)
	if r := f.Fn.Send(t, award); r.Status < 500 {
		t.Fatalf("award with the database down: status %d, want 5xx (%s)", r.Status, r.Body)
	}
	proxy.SetDown(false)
	for _, q := range []string{
		`SELECT count(*) FROM subsidy.disbursements`,
		`SELECT count(*) FROM subsidy.movements WHERE kind <> 'allocation'`,
		`SELECT count(*) FROM qinqing.inbox`,
		`SELECT count(*) FROM qinqing.outbox`,
	} {
		if n := f.Count(t, q); n != 0 {
			t.Fatalf("%s = %d after the failed delivery, want 0", q, n)
		}
	}
	r := f.Fn.Retry(t, award, 10*time.Second)
	if r.Status != 200 || r.Type() != contract.TypeSubsidyDecided {
		t.Fatalf("retry: %d %s %s", r.Status, r.Type(), r.Body)
	}
	var d contract.SubsidyDecided
	r.DataInto(t, &d)
	if len(d.Approvals) != 1 || d.Approvals[0].AmountFen != 1000 {
		t.Fatalf("retry decided %+v, want one approval of 1000 fen", d)
	}
	id := d.Approvals[0].DisbursementID

	settle := functest.Event(contract.TypePaymentSettled, treasurySource, nextID(), at("2026-12-03 15:00"), settledData(id, "ICBC-1"))
	proxy.SetDown(true)
	if r := f.Fn.Send(t, settle); r.Status < 500 {
		t.Fatalf("settlement with the database down: status %d, want 5xx (%s)", r.Status, r.Body)
	}
	proxy.SetDown(false)
	if n := f.Count(t, `SELECT count(*) FROM subsidy.settlements`); n != 0 {
		t.Fatalf("%d settlements after the failed delivery, want 0", n)
	}
	if r := f.Fn.Retry(t, settle, 10*time.Second); r.Status != 200 || r.Data()["status"] != StatusPaid {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	if b := f.budget(t, "green"); b.paid != 1000 || b.payable != 0 || b.remaining != 2000 {
		t.Fatalf("green budget = %+v, want 1000 paid once", b)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.outbox WHERE type = $1`, contract.TypePaymentRequested); n != 1 {
		t.Fatalf("%d payment requests, want 1", n)
	}
	f.checkLedger(t)
}

package main

import (
	"testing"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// Fuzz targets, one per payload type (issue 12): whatever the data, the
// answer is a 400 with nothing written or a 200, never a 5xx. Under plain
// go test the seeds run (the valid payload and, for each of its strings,
// the hostile spellings of functest.Seeds); go test -fuzz=FuzzX explores.

func fuzzPayload(f *testing.F, typ string, valid map[string]any) {
	for _, s := range functest.Seeds(valid) {
		f.Add(s)
	}
	env := functest.Env(f, name)
	ps, err := ParsePolicies([]byte(testPolicies))
	if err != nil {
		f.Fatal(err)
	}
	p := functest.NewInProcess(env.Pool, New(env, ps).Runtime(), at("2026-12-01 10:00"))
	f.Fuzz(func(t *testing.T, data string) { p.Check(t, typ, []byte(data)) })
}

func FuzzHonourAwarded(f *testing.F) {
	fuzzPayload(f, contract.TypeHonourAwarded, honourData(event.SampleUSCC(1), "金象金牛", 2026))
}

func FuzzMilestoneApproved(f *testing.F) {
	fuzzPayload(f, contract.TypeMilestoneApproved, milestoneData(event.SampleUSCC(1), "HZ-2026-0178", "production-started", 100_000_000))
}

func FuzzSubsidyRequested(f *testing.F) {
	fuzzPayload(f, contract.TypeSubsidyRequested, requestData("request", event.SampleUSCC(1), "talent-housing-2026-0042", 300000))
}

func FuzzPaymentSettled(f *testing.F) {
	fuzzPayload(f, contract.TypePaymentSettled, settledData("35ed62f7-2e35-5dce-93e4-38b2b73f546e", "B-1"))
}

func FuzzPaymentFailed(f *testing.F) {
	fuzzPayload(f, contract.TypePaymentFailed, map[string]any{"disbursementId": "35ed62f7-2e35-5dce-93e4-38b2b73f546e", "reason": "账户冻结"})
}

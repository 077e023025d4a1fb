package main

import (
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/contract"
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
	p := functest.NewInProcess(env.Pool, New(env, appeal.DefaultRules()), time.Date(2026, 12, 1, 10, 0, 0, 0, cst))
	p.Commit(f, contract.TypeAppealSubmitted, submitData("A-1", "land", "wuxing"))
	f.Fuzz(func(t *testing.T, data string) { p.Check(t, typ, []byte(data)) })
}

func FuzzCalendarPublished(f *testing.F) {
	fuzzPayload(f, contract.TypeCalendarPublished, testCalendar())
}

func FuzzSubmitted(f *testing.F) {
	d := submitData("A-2", "land", "wuxing")
	d["channel"], d["forumId"], d["signupId"] = "forum", "2026-W49", "s-1"
	fuzzPayload(f, contract.TypeAppealSubmitted, d)
}

func FuzzAccepted(f *testing.F) {
	fuzzPayload(f, contract.TypeAppealAccepted, map[string]any{"appealId": "A-1", "department": "natural-resources"})
}

func FuzzReturned(f *testing.F) {
	fuzzPayload(f, contract.TypeAppealReturned, map[string]any{"appealId": "A-1", "department": "natural-resources", "reason": "不属本部门职责"})
}

func FuzzReplied(f *testing.F) {
	fuzzPayload(f, contract.TypeAppealReplied, map[string]any{"appealId": "A-1", "department": "natural-resources", "reply": "已协调解决"})
}

func FuzzRevisited(f *testing.F) {
	fuzzPayload(f, contract.TypeAppealRevisited, map[string]any{"appealId": "A-1", "satisfaction": "satisfied", "comment": "满意"})
}

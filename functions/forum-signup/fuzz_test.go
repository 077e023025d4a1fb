package main

import (
	"testing"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// Fuzz targets, one per payload type (issue 12): whatever the data, the
// answer is a 400 with nothing written or a 200, never a 5xx. Under plain
// go test the seeds run (the valid payload and, for each of its strings,
// the hostile spellings of functest.Seeds); go test -fuzz=FuzzX explores.

func inProcess(f *testing.F) *functest.InProcess {
	env := functest.Env(f, name)
	_, store := s3test.New(f)
	p := functest.NewInProcess(env.Pool, New(env, store), week)
	p.Commit(f, contract.TypeForumScheduled, scheduleData("F1", 30, 10))
	return p
}

func fuzzPayload(f *testing.F, typ string, valid map[string]any) {
	for _, s := range functest.Seeds(valid) {
		f.Add(s)
	}
	p := inProcess(f)
	f.Fuzz(func(t *testing.T, data string) { p.Check(t, typ, []byte(data)) })
}

func FuzzScheduled(f *testing.F) {
	fuzzPayload(f, contract.TypeForumScheduled, scheduleData("F2", 30, 10))
}

func FuzzSignupRequested(f *testing.F) {
	d := signupData("F1", event.SampleUSCC(1), "nominated")
	d["problems"] = []any{map[string]any{"title": "用地", "detail": "扩建", "category": "land"}}
	d["documents"] = []any{map[string]any{"fileName": "a.pdf", "contentType": "application/pdf", "sizeBytes": 10}}
	fuzzPayload(f, contract.TypeSignupRequested, d)
}

func FuzzSignupCancelled(f *testing.F) {
	fuzzPayload(f, contract.TypeSignupCancelled, map[string]any{"forumId": "F1", "uscc": event.SampleUSCC(1)})
}

func FuzzWeeklyJob(f *testing.F) {
	fuzzPayload(f, event.PingType, map[string]any{"job": "forum-weekly"})
}

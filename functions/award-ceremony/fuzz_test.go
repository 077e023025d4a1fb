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

func fuzzPayload(f *testing.F, typ string, valid map[string]any) {
	for _, s := range functest.Seeds(valid) {
		f.Add(s)
	}
	env := functest.Env(f, name)
	_, store := s3test.New(f)
	p := functest.NewInProcess(env.Pool, New(env, store, 3), week)
	p.Commit(f, contract.TypeNominationSubmitted, nominationData("N1", contract.AwardGoodCase, "好案例"))
	f.Fuzz(func(t *testing.T, data string) { p.Check(t, typ, []byte(data)) })
}

func FuzzMetricsReported(f *testing.F) {
	fuzzPayload(f, contract.TypeMetricsReported, metricsData(1, "湖州测试企业", true, 1000, 100))
}

func FuzzNominationSubmitted(f *testing.F) {
	fuzzPayload(f, contract.TypeNominationSubmitted, nominationData("N2", contract.AwardContributor, "湖州贡献一号有限公司"))
}

func FuzzScoreRecorded(f *testing.F) {
	fuzzPayload(f, contract.TypeScoreRecorded, scoreData("N1", "judge-01", 85.5))
}

func FuzzCeremonyJob(f *testing.F) {
	fuzzPayload(f, event.PingType, map[string]any{"job": "award-ceremony"})
}

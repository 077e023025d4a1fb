package main

import (
	"testing"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs/s3test"
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
	p := functest.NewInProcess(env.Pool, New(env, store, ImportConfig{ChunkRows: 100, Prefix: "imports/"}), week)
	p.Commit(f, contract.TypeLicenceRegistered, licenceData("L-A", collectorA, "2026-01-01", "2026-12-31", 100000))
	f.Fuzz(func(t *testing.T, data string) { p.Check(t, typ, []byte(data)) })
}

func FuzzLicenceRegistered(f *testing.F) {
	fuzzPayload(f, contract.TypeLicenceRegistered, licenceData("L-B", collectorB, "2026-01-01", "2026-12-31T00:00:00+08:00", "1000.5"))
}

func FuzzTradeRecorded(f *testing.F) {
	d := tradeData("T1", "HW-2026-0001", collectorA, "L-A", 1, "10.000", "2026-11-20T10:00:00+08:00")
	d["documents"] = []any{map[string]any{"fileName": "a.pdf", "contentType": "application/pdf", "sizeBytes": 10}}
	fuzzPayload(f, contract.TypeTradeRecorded, d)
}

func FuzzTradesImported(f *testing.F) {
	fuzzPayload(f, contract.TypeTradesImported, map[string]any{"batchId": "B-1", "key": "imports/uploads/none.csv"})
}

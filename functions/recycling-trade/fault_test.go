package main

import (
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// An S3 outage during an import or the statistics answers 5xx and leaves
// nothing behind; the retries succeed once S3 is back.
func TestS3Down(t *testing.T) {
	t.Parallel()
	f := &fixture{functest.Setup(t, binary, functest.Parts{S3: true, ProxyS3: true})}
	proxy := f.S3Proxy
	f.licence(t, "L-A", collectorA, 1000)
	f.put(t, "imports/batch.csv", csvFile(t, recycling.CSVHeader,
		row("I2", "M2", collectorA, "L-A", "10", "150.250", "2026-11-20T10:00:00+08:00"),
		row("I3", "M3", collectorA, "L-A", "1", "1.2345", "2026-11-20T10:00:00+08:00")))

	proxy.SetDown(true)
	imp := functest.Event(contract.TypeTradesImported, portalSrc, nextID(), week, importData("B1", "imports/batch.csv"))
	if r := f.Fn.Send(t, imp); r.Status < 500 {
		t.Fatalf("import with S3 down: %d %s, want 5xx", r.Status, r.Body)
	}
	ping := functest.Event(event.PingType, pingSrc, nextID(), time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC), map[string]any{"job": "recycling-stats"})
	if r := f.Fn.Send(t, ping); r.Status < 500 {
		t.Fatalf("stats with S3 down: %d %s, want 5xx", r.Status, r.Body)
	}
	for _, q := range []string{`SELECT count(*) FROM recycling.batches`, `SELECT count(*) FROM recycling.trades`,
		`SELECT count(*) FROM recycling.stats`, `SELECT count(*) FROM qinqing.inbox WHERE type <> '` + contract.TypeLicenceRegistered + `'`} {
		if n := f.Count(t, q); n != 0 {
			t.Fatalf("%s = %d after failed deliveries", q, n)
		}
	}
	proxy.SetDown(false)

	r := f.Fn.Retry(t, imp, 10*time.Second)
	var rep contract.ImportCompleted
	r.DataInto(t, &rep)
	if r.Type() != contract.TypeImportCompleted || rep != (contract.ImportCompleted{BatchID: "B1", Accepted: 1, Rejected: 1, ErrorsKey: "imports/B1/errors.csv"}) {
		t.Fatalf("import retry: %d %s %s", r.Status, r.Type(), r.Body)
	}
	r = f.Fn.Retry(t, ping, 10*time.Second)
	var stats contract.RecyclingStatsPublished
	r.DataInto(t, &stats)
	if r.Type() != contract.TypeRecyclingStatsPublished || stats != (contract.RecyclingStatsPublished{Period: "2026-11", Producers: 1, BatterySets: 10, WeightKg: "150.250",
		AmountFen: 12000, Key: "recycling/stats/2026-11.json"}) {
		t.Fatalf("stats retry: %d %s %s", r.Status, r.Type(), r.Body)
	}
}

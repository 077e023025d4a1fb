package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// retry sends ev until it is answered 200 (Knative's retries), for at most
// 10 seconds.
func retry(t *testing.T, fn *functest.Instance, ev cloudevents.Event) *functest.Response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := fn.Send(t, ev)
		if r.Status == 200 || time.Now().After(deadline) {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// An S3 outage during an import or the statistics answers 5xx and leaves
// nothing behind; the retries succeed once S3 is back.
func TestS3Down(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	s3, store := s3test.New(t)
	su, _ := url.Parse(s3.URL)
	proxy := functest.NewProxy(t, su.Host)
	env := []string{"DATABASE_URL=" + dbURL}
	for _, kv := range s3.Env() {
		if strings.HasPrefix(kv, "S3_ENDPOINT=") {
			kv = "S3_ENDPOINT=http://" + proxy.Addr
		}
		env = append(env, kv)
	}
	f := &fixture{fn: functest.Start(t, binary, env...), pool: pgtest.PoolFor(t, dbURL), s3: s3, store: store}
	f.licence(t, "L-A", collectorA, 1000)
	f.put(t, "imports/batch.csv", csvFile(t, recycling.CSVHeader,
		row("I2", "M2", collectorA, "L-A", "10", "150.250", "2026-11-20T10:00:00+08:00"),
		row("I3", "M3", collectorA, "L-A", "1", "1.2345", "2026-11-20T10:00:00+08:00")))

	proxy.SetDown(true)
	imp := functest.Event(TypeTradesImported, portalSrc, nextID(), week, importData("B1", "imports/batch.csv"))
	if r := f.fn.Send(t, imp); r.Status < 500 {
		t.Fatalf("import with S3 down: %d %s, want 5xx", r.Status, r.Body)
	}
	ping := functest.Event(event.PingType, pingSrc, nextID(), time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC), map[string]any{"job": "recycling-stats"})
	if r := f.fn.Send(t, ping); r.Status < 500 {
		t.Fatalf("stats with S3 down: %d %s, want 5xx", r.Status, r.Body)
	}
	for _, q := range []string{`SELECT count(*) FROM recycling.batches`, `SELECT count(*) FROM recycling.trades`,
		`SELECT count(*) FROM recycling.stats`, `SELECT count(*) FROM qinqing.inbox WHERE type <> '` + TypeLicenceRegistered + `'`} {
		if n := f.count(t, q); n != 0 {
			t.Fatalf("%s = %d after failed deliveries", q, n)
		}
	}
	proxy.SetDown(false)

	r := retry(t, f.fn, imp)
	var rep ImportCompleted
	r.DataInto(t, &rep)
	if r.Type() != TypeImportCompleted || rep != (ImportCompleted{BatchID: "B1", Accepted: 1, Rejected: 1, ErrorsKey: "imports/B1/errors.csv"}) {
		t.Fatalf("import retry: %d %s %s", r.Status, r.Type(), r.Body)
	}
	r = retry(t, f.fn, ping)
	var stats StatsPublished
	r.DataInto(t, &stats)
	if r.Type() != TypeStatsPublished || stats != (StatsPublished{Period: "2026-11", Producers: 1, BatterySets: 10, WeightKg: "150.250",
		AmountFen: 12000, Key: "recycling/stats/2026-11.json"}) {
		t.Fatalf("stats retry: %d %s %s", r.Status, r.Type(), r.Body)
	}
}

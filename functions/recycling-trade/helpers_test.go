package main

import (
	"bytes"
	"encoding/csv"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

var binary string

func TestMain(m *testing.M) { functest.MainTwice(m, map[string]*string{".": &binary}) }

type fixture struct{ *functest.Fixture }

// setup starts the function on a fresh database and bucket; extra is added
// to its environment.
func setup(t *testing.T, extra ...string) *fixture {
	t.Helper()
	return &fixture{functest.Setup(t, binary, functest.Parts{Sink: true, S3: true, Env: extra})}
}

var (
	// week is the event time of most test events: Monday 2026-11-30 09:00 in Huzhou.
	week      = time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	portalSrc = "/portals/recycling"
	pingSrc   = "/apis/v1/namespaces/qinqing/pingsources/recycling-stats"

	collectorA = event.SampleUSCC(522001)
	collectorB = event.SampleUSCC(522002)
)

var nextID = functest.NextID

func (f *fixture) send(t *testing.T, typ string, at time.Time, data any) *functest.Response {
	t.Helper()
	return f.Fn.Send(t, functest.Event(typ, portalSrc, nextID(), at, data))
}

func licenceData(no, collector, from, to string, capacityKg any) map[string]any {
	return map[string]any{
		"licenceNo":        no,
		"collector":        map[string]any{"uscc": collector, "name": "长兴回收" + collector[12:]},
		"validFrom":        from,
		"validTo":          to,
		"annualCapacityKg": capacityKg,
	}
}

// licence registers a licence valid through 2026–2031.
func (f *fixture) licence(t *testing.T, no, collector string, capacityKg any) {
	t.Helper()
	f.licenceFor(t, no, collector, "2026-01-01", "2031-12-31", capacityKg)
}

func (f *fixture) licenceFor(t *testing.T, no, collector, from, to string, capacityKg any) {
	t.Helper()
	r := f.send(t, contract.TypeLicenceRegistered, week, licenceData(no, collector, from, to, capacityKg))
	if r.Status != 200 || r.Type() != contract.TypeLicenceAccepted || r.Data()["licenceNo"] != no {
		t.Fatalf("register licence %s: %d %s %s", no, r.Status, r.Type(), r.Body)
	}
}

// tradeData is a valid trade of the collector under the licence.
func tradeData(id, manifest, collector, licence string, sets int, weightKg, occurredAt string) map[string]any {
	return map[string]any{
		"tradeId":     id,
		"manifestNo":  manifest,
		"producer":    map[string]any{"uscc": event.SampleUSCC(1), "name": "长兴某汽修店", "county": "changxing"},
		"collector":   map[string]any{"uscc": collector, "licenceNo": licence},
		"wasteCode":   recycling.WasteCode,
		"batterySets": sets,
		"weightKg":    weightKg,
		"amountFen":   36000,
		"occurredAt":  occurredAt,
		"documents":   []any{},
	}
}

func (f *fixture) trade(t *testing.T, data map[string]any) *functest.Response {
	t.Helper()
	return f.send(t, contract.TypeTradeRecorded, week, data)
}

func wantAccepted(t *testing.T, r *functest.Response) {
	t.Helper()
	if r.Status != 200 || r.Type() != contract.TypeTradeAccepted {
		t.Fatalf("got %d %s %s, want %s", r.Status, r.Type(), r.Body, contract.TypeTradeAccepted)
	}
}

func wantRejected(t *testing.T, r *functest.Response, reason string) {
	t.Helper()
	if r.Status != 200 || r.Type() != contract.TypeTradeRejected || r.Data()["reason"] != reason {
		t.Fatalf("got %d %s %s, want %s with reason %s", r.Status, r.Type(), r.Body, contract.TypeTradeRejected, reason)
	}
}

// yearTotal is a collector's stored total for a year, in grams.
func (f *fixture) yearTotal(t *testing.T, collector string, year int) int64 {
	t.Helper()
	return f.Count(t, `SELECT coalesce((SELECT total_g FROM recycling.collector_years WHERE collector_uscc = $1 AND year = $2), 0)`,
		collector, year)
}

// csvFile writes records as a CSV file.
func csvFile(t testing.TB, records ...[]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.WriteAll(records); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// row is a valid CSV row of the collector under the licence.
func row(id, manifest, collector, licence, sets, weightKg, occurredAt string) []string {
	return []string{id, manifest, event.SampleUSCC(7), "长兴某电动车行", "changxing", collector, licence, recycling.WasteCode,
		sets, weightKg, "12000", occurredAt}
}

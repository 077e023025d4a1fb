package main

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// TestSampleWeek plays the recycling part of the sample week of `make run`
// and checks each answer and November's statistics.
func TestSampleWeek(t *testing.T) {
	t.Parallel()
	f := setup(t)
	fh, err := os.Open("../../cmd/devstack/week/40-recycling.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	want := []string{
		contract.TypeLicenceAccepted,
		contract.TypeTradeAccepted, contract.TypeTradeAccepted, contract.TypeTradeAccepted,
		contract.TypeTradeRejected + " implausible_weight",
		contract.TypeTradeRejected + " duplicate_manifest",
		contract.TypeRecyclingStatsPublished,
		contract.TypeTradeAccepted,
	}
	var got []string
	var stats contract.RecyclingStatsPublished
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var l struct {
			Note, Type, Source, ID, Time string
			Data                         json.RawMessage
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		if l.Note != "" {
			continue
		}
		at, err := time.Parse(time.RFC3339, l.Time)
		if err != nil {
			t.Fatal(err)
		}
		r := f.Fn.Send(t, functest.Event(l.Type, l.Source, l.ID, at, l.Data))
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", l.ID, r.Status, r.Body)
		}
		outcome := r.Type()
		if reason, ok := r.Data()["reason"].(string); ok {
			outcome += " " + reason
		}
		got = append(got, outcome)
		if r.Type() == contract.TypeRecyclingStatsPublished {
			r.DataInto(t, &stats)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d: %s, want %s", i+1, got[i], want[i])
		}
	}
	if stats != (contract.RecyclingStatsPublished{Period: "2026-11", Producers: 3, BatterySets: 77, WeightKg: "1761.650", AmountFen: 1409320,
		Key: "recycling/stats/2026-11.json"}) {
		t.Fatalf("November = %+v", stats)
	}
}

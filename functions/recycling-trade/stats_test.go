package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

func TestStats(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.licence(t, "L-A", collectorA, 1000000)
	// Recorded with an event time after the ping's below, but handled
	// before it: they count.
	recorded := time.Date(2031, 5, 2, 0, 0, 0, 0, time.UTC)
	p1, p2, p3 := event.SampleUSCC(31), event.SampleUSCC(32), event.SampleUSCC(33)
	trade := func(id, producer, county string, sets int, weight string, amount int, at string) {
		d := tradeData(id, "M-"+id, collectorA, "L-A", sets, weight, at)
		d["producer"] = map[string]any{"uscc": producer, "name": "产废单位" + id, "county": county}
		d["amountFen"] = amount
		wantAccepted(t, f.send(t, contract.TypeTradeRecorded, recorded, d))
	}
	trade("S1", p1, "changxing", 10, "150.250", 30000, "2031-03-31T16:10:00Z")    // 04-01 00:10 in Huzhou: April
	trade("S2", p1, "changxing", 5, "75.005", 15000, "2031-04-15T12:00:00+08:00") // April
	trade("S3", p2, "anji", 2, "30.100", 5000, "2031-04-30T23:59:59+08:00")       // April
	trade("S4", p3, "wuxing", 1, "10.000", 1000, "2031-03-31T23:59:59+08:00")     // March
	trade("S5", p3, "wuxing", 1, "10.000", 1000, "2031-04-30T16:00:30Z")          // 05-01 00:00:30 in Huzhou: May
	trade("S6", p1, "changxing", 1, "1.001", 7, "2031-04-30T15:59:59.999999999Z") // last instant of April

	// 2031-05-01 00:05 in Huzhou is still April in UTC: the month is the business zone's.
	ping := functest.Event(event.PingType, pingSrc, "stats-2031-05", time.Date(2031, 4, 30, 16, 5, 0, 0, time.UTC), map[string]any{"job": "recycling-stats"})
	r := f.Fn.Send(t, ping)
	if r.Status != 200 || r.Type() != contract.TypeRecyclingStatsPublished {
		t.Fatalf("got %d %s %s", r.Status, r.Type(), r.Body)
	}
	var rep contract.RecyclingStatsPublished
	r.DataInto(t, &rep)
	want := contract.RecyclingStatsPublished{Period: "2031-04", Producers: 2, BatterySets: 18, WeightKg: "256.356", AmountFen: 50007, Key: "recycling/stats/2031-04.json"}
	if rep != want {
		t.Fatalf("reply = %+v, want %+v", rep, want)
	}
	body, err := f.Store.Get(context.Background(), rep.Key)
	if err != nil {
		t.Fatal(err)
	}
	var doc StatsDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Period != "2031-04" || doc.From != "2031-04-01T00:00:00+08:00" || doc.To != "2031-05-01T00:00:00+08:00" ||
		doc.Trades != 4 || doc.Producers != 2 || doc.WeightKg != "256.356" || len(doc.Counties) != 6 {
		t.Fatalf("document:\n%s", body)
	}
	byCounty := map[string]CountyTotals{}
	for _, c := range doc.Counties {
		byCounty[c.County] = c
	}
	if c := byCounty["changxing"]; c.Producers != 1 || c.Trades != 3 || c.BatterySets != 16 || c.WeightKg != "226.256" || c.AmountFen != 45007 || c.Name != "长兴县" {
		t.Fatalf("changxing = %+v", c)
	}
	if c := byCounty["anji"]; c.Producers != 1 || c.BatterySets != 2 || c.WeightKg != "30.100" || c.AmountFen != 5000 {
		t.Fatalf("anji = %+v", c)
	}
	if c := byCounty["wuxing"]; c.Trades != 0 || c.WeightKg != "0.000" {
		t.Fatalf("wuxing = %+v", c)
	}

	t.Run("Redelivery", func(t *testing.T) {
		again := f.Fn.Send(t, ping)
		if !bytes.Equal(again.Event.Data(), r.Event.Data()) {
			t.Fatalf("redelivery: %s", again.Body)
		}
	})
	t.Run("AnotherRunSameMonth", func(t *testing.T) {
		later := f.Fn.Send(t, functest.Event(event.PingType, pingSrc, "stats-again", time.Date(2031, 5, 20, 0, 0, 0, 0, time.UTC), map[string]any{"job": "recycling-stats"}))
		if !bytes.Equal(later.Event.Data(), r.Event.Data()) {
			t.Fatalf("second run: %s, want %s", later.Event.Data(), r.Event.Data())
		}
		if again, _ := f.Store.Get(context.Background(), rep.Key); !bytes.Equal(again, body) {
			t.Fatalf("document changed:\n%s", again)
		}
	})
	t.Run("AsOfEventTime", func(t *testing.T) {
		// An April trade recorded after the first run: a replay of the
		// ping (a new id, the same time) still gives the first figures.
		late := tradeData("S7", "M-S7", collectorA, "L-A", 4, "40.000", "2031-04-20T10:00:00+08:00")
		late["producer"] = map[string]any{"uscc": event.SampleUSCC(34), "name": "产废单位S7", "county": "deqing"}
		late["amountFen"] = 3000
		wantAccepted(t, f.send(t, contract.TypeTradeRecorded, time.Date(2031, 5, 25, 0, 0, 0, 0, time.UTC), late))
		replay := f.Fn.Send(t, functest.Event(event.PingType, pingSrc, "stats-replay", ping.Time(), map[string]any{"job": "recycling-stats"}))
		if replay.Status != 200 || !bytes.Equal(replay.Event.Data(), r.Event.Data()) {
			t.Fatalf("replay as of %s: %d %s, want %s", ping.Time(), replay.Status, replay.Event.Data(), r.Event.Data())
		}
		if again, _ := f.Store.Get(context.Background(), rep.Key); !bytes.Equal(again, body) {
			t.Fatalf("document changed by the replay:\n%s", again)
		}
		// A run with another time counts it.
		later := f.Fn.Send(t, functest.Event(event.PingType, pingSrc, "stats-after-late", time.Date(2031, 5, 26, 0, 0, 0, 0, time.UTC), map[string]any{"job": "recycling-stats"}))
		var got contract.RecyclingStatsPublished
		later.DataInto(t, &got)
		want := contract.RecyclingStatsPublished{Period: "2031-04", Producers: 3, BatterySets: 22, WeightKg: "296.356", AmountFen: 53007, Key: "recycling/stats/2031-04.json"}
		if got != want {
			t.Fatalf("after the late trade: %+v, want %+v", got, want)
		}
		// The first time's figures stay what they were, document included.
		replay = f.Fn.Send(t, functest.Event(event.PingType, pingSrc, "stats-replay-2", ping.Time(), map[string]any{"job": "recycling-stats"}))
		if !bytes.Equal(replay.Event.Data(), r.Event.Data()) {
			t.Fatalf("second replay: %s, want %s", replay.Event.Data(), r.Event.Data())
		}
		if again, _ := f.Store.Get(context.Background(), rep.Key); !bytes.Equal(again, body) {
			t.Fatalf("document after the second replay:\n%s", again)
		}
	})
	t.Run("EmptyMonth", func(t *testing.T) {
		r := f.Fn.Send(t, functest.Event(event.PingType, pingSrc, "stats-empty", time.Date(2031, 2, 1, 0, 0, 0, 0, time.UTC), map[string]any{"job": "recycling-stats"}))
		var rep contract.RecyclingStatsPublished
		r.DataInto(t, &rep)
		if rep != (contract.RecyclingStatsPublished{Period: "2031-01", WeightKg: "0.000", Key: "recycling/stats/2031-01.json"}) {
			t.Fatalf("reply = %+v", rep)
		}
	})
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

func TestLicence(t *testing.T) {
	t.Parallel()
	f := setup(t)

	t.Run("OK", func(t *testing.T) {
		f.licence(t, "ZJ-HW-001", collectorA, 30000000)
		var from, to string
		var capacity int64
		if err := f.Pool.QueryRow(context.Background(), `SELECT valid_from::text, valid_to::text, capacity_g
			FROM recycling.licences WHERE licence_no = 'ZJ-HW-001'`).Scan(&from, &to, &capacity); err != nil {
			t.Fatal(err)
		}
		if from != "2026-01-01" || to != "2031-12-31" || capacity != 30000000000 {
			t.Fatalf("stored %s…%s capacity %d g", from, to, capacity)
		}
	})
	t.Run("ReRegisterReplaces", func(t *testing.T) {
		f.licenceFor(t, "ZJ-HW-001", collectorB, "2027-01-01", "2027-06-30", "1500.250")
		var holder, to string
		var capacity int64
		if err := f.Pool.QueryRow(context.Background(), `SELECT collector_uscc, valid_to::text, capacity_g
			FROM recycling.licences WHERE licence_no = 'ZJ-HW-001'`).Scan(&holder, &to, &capacity); err != nil {
			t.Fatal(err)
		}
		if holder != collectorB || to != "2027-06-30" || capacity != 1500250 {
			t.Fatalf("after replacing: holder %s to %s capacity %d g", holder, to, capacity)
		}
		if n := f.Count(t, `SELECT count(*) FROM recycling.licences`); n != 1 {
			t.Fatalf("%d licences, want 1", n)
		}
	})
	t.Run("TimestampDatesAndKeyForm", func(t *testing.T) {
		// RFC 3339 timestamps are read as their calendar date in Huzhou;
		// the licence number is stored (and quoted) in its key form.
		d := licenceData("ｚｊ-hw-ts", collectorA, "2025-12-31T16:00:00Z", "2026-12-31T23:59:59+08:00", 1000)
		r := f.send(t, contract.TypeLicenceRegistered, week, d)
		if r.Status != 200 || r.Data()["licenceNo"] != "ZJ-HW-TS" {
			t.Fatalf("got %d %s, want 200 with licenceNo ZJ-HW-TS", r.Status, r.Body)
		}
		var from, to string
		if err := f.Pool.QueryRow(context.Background(), `SELECT valid_from::text, valid_to::text
			FROM recycling.licences WHERE licence_no = 'ZJ-HW-TS'`).Scan(&from, &to); err != nil {
			t.Fatal(err)
		}
		if from != "2026-01-01" || to != "2026-12-31" {
			t.Fatalf("stored %s…%s, want 2026-01-01…2026-12-31", from, to)
		}
	})
	cases := []struct {
		name  string
		edit  func(d map[string]any)
		field string
	}{
		{"NoLicenceNo", func(d map[string]any) { d["licenceNo"] = "" }, "licenceNo"},
		{"BadUSCC", func(d map[string]any) { d["collector"].(map[string]any)["uscc"] = "91330500MA2B3C4D5C" }, "collector.uscc"},
		{"NoName", func(d map[string]any) { delete(d["collector"].(map[string]any), "name") }, "collector.name"},
		{"ValidFromNotADate", func(d map[string]any) { d["validFrom"] = "2026/01/01" }, "validFrom"},
		{"ValidFromBadOffset", func(d map[string]any) { d["validFrom"] = "2026-01-01T00:00:00+24:00" }, "validFrom"},
		{"LicenceNoZeroWidthSpace", func(d map[string]any) { d["licenceNo"] = "ZJ-HW-BAD\u200b" }, "licenceNo"},
		{"LicenceNoTrailingSpace", func(d map[string]any) { d["licenceNo"] = "ZJ-HW-BAD " }, "licenceNo"},
		{"NameNUL", func(d map[string]any) { d["collector"].(map[string]any)["name"] = "长兴\x00回收" }, "collector.name"},
		{"NoValidTo", func(d map[string]any) { delete(d, "validTo") }, "validTo"},
		{"ValidToBeforeFrom", func(d map[string]any) { d["validTo"] = "2025-12-31" }, "validTo"},
		{"NoCapacity", func(d map[string]any) { delete(d, "annualCapacityKg") }, "annualCapacityKg"},
		{"ZeroCapacity", func(d map[string]any) { d["annualCapacityKg"] = 0 }, "annualCapacityKg"},
		{"NegativeCapacity", func(d map[string]any) { d["annualCapacityKg"] = -5 }, "annualCapacityKg"},
		{"CapacityExponent", func(d map[string]any) { d["annualCapacityKg"] = 1e30 }, "annualCapacityKg"},
		{"CapacityText", func(d map[string]any) { d["annualCapacityKg"] = "abc" }, "annualCapacityKg"},
		{"CapacityFourDecimals", func(d map[string]any) { d["annualCapacityKg"] = "1.2345" }, "annualCapacityKg"},
		{"CapacityBoolean", func(d map[string]any) { d["annualCapacityKg"] = true }, "annualCapacityKg"},
	}
	for _, tc := range cases {
		t.Run("Err"+tc.name, func(t *testing.T) {
			d := licenceData("ZJ-HW-BAD", collectorA, "2026-01-01", "2026-12-31", 1000)
			tc.edit(d)
			r := f.send(t, contract.TypeLicenceRegistered, week, d)
			if r.Status != 400 || r.Problem()["field"] != tc.field {
				t.Fatalf("got %d %s, want 400 naming %s", r.Status, r.Body, tc.field)
			}
		})
	}
	if n := f.Count(t, `SELECT count(*) FROM recycling.licences WHERE licence_no = 'ZJ-HW-BAD'`); n != 0 {
		t.Fatalf("bad input registered a licence")
	}
}

func TestTradeInvalid(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.licence(t, "L1", collectorA, 1000000)
	good := func() map[string]any {
		return tradeData("T1", "M1", collectorA, "L1", 10, "150.250", "2026-11-20T10:00:00+08:00")
	}
	cases := []struct {
		name  string
		edit  func(d map[string]any)
		field string
	}{
		{"WeightFourDecimals", func(d map[string]any) { d["weightKg"] = "1.2345" }, "weightKg"},
		{"WeightNegative", func(d map[string]any) { d["weightKg"] = "-1" }, "weightKg"},
		{"WeightText", func(d map[string]any) { d["weightKg"] = "abc" }, "weightKg"},
		{"WeightEmpty", func(d map[string]any) { d["weightKg"] = "" }, "weightKg"},
		{"WeightMissing", func(d map[string]any) { delete(d, "weightKg") }, "weightKg"},
		{"WeightNumber", func(d map[string]any) { d["weightKg"] = 150.25 }, "weightKg"},
		{"WeightInteger", func(d map[string]any) { d["weightKg"] = 150 }, "weightKg"},
		{"WeightExponent", func(d map[string]any) { d["weightKg"] = "1.5e2" }, "weightKg"},
		{"WeightSpaces", func(d map[string]any) { d["weightKg"] = " 150.250" }, "weightKg"},
		{"WeightBareDot", func(d map[string]any) { d["weightKg"] = ".5" }, "weightKg"},
		{"SetsZero", func(d map[string]any) { d["batterySets"] = 0 }, "batterySets"},
		{"SetsNegative", func(d map[string]any) { d["batterySets"] = -3 }, "batterySets"},
		{"SetsMissing", func(d map[string]any) { delete(d, "batterySets") }, "batterySets"},
		{"SetsFraction", func(d map[string]any) { d["batterySets"] = 1.5 }, "batterySets"},
		{"SetsString", func(d map[string]any) { d["batterySets"] = "10" }, "batterySets"},
		{"AmountNegative", func(d map[string]any) { d["amountFen"] = -1 }, "amountFen"},
		{"AmountFraction", func(d map[string]any) { d["amountFen"] = 10.5 }, "amountFen"},
		{"AmountString", func(d map[string]any) { d["amountFen"] = "100" }, "amountFen"},
		{"AmountMissing", func(d map[string]any) { delete(d, "amountFen") }, "amountFen"},
		{"WasteCode", func(d map[string]any) { d["wasteCode"] = "900-044-49" }, "wasteCode"},
		{"WasteCodeMissing", func(d map[string]any) { delete(d, "wasteCode") }, "wasteCode"},
		{"OccurredAfterEventTime", func(d map[string]any) { d["occurredAt"] = "2026-11-30T09:00:01+08:00" }, "occurredAt"},
		{"OccurredAtNotRFC3339", func(d map[string]any) { d["occurredAt"] = "2026-11-20 10:00" }, "occurredAt"},
		{"ProducerUSCC", func(d map[string]any) { d["producer"].(map[string]any)["uscc"] = "91330500MA2B3C4D5C" }, "producer.uscc"},
		{"ProducerCounty", func(d map[string]any) { d["producer"].(map[string]any)["county"] = "hangzhou" }, "producer.county"},
		{"ProducerName", func(d map[string]any) { d["producer"].(map[string]any)["name"] = "  " }, "producer.name"},
		{"CollectorUSCC", func(d map[string]any) { d["collector"].(map[string]any)["uscc"] = "123" }, "collector.uscc"},
		{"LicenceNo", func(d map[string]any) { delete(d["collector"].(map[string]any), "licenceNo") }, "collector.licenceNo"},
		{"TradeIDSlash", func(d map[string]any) { d["tradeId"] = "a/../b" }, "tradeId"},
		{"ManifestMissing", func(d map[string]any) { d["manifestNo"] = "" }, "manifestNo"},
		{"ManifestNUL", func(d map[string]any) { d["manifestNo"] = "M\u0000" }, "manifestNo"},
		{"DocumentType", func(d map[string]any) {
			d["documents"] = []any{map[string]any{"fileName": "a.exe", "contentType": "application/x-msdownload", "sizeBytes": 10}}
		}, "documents[0].contentType"},
	}
	for _, tc := range cases {
		t.Run("Err"+tc.name, func(t *testing.T) {
			d := good()
			tc.edit(d)
			r := f.trade(t, d)
			if r.Status != 400 {
				t.Fatalf("status = %d, want 400 (%s)", r.Status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type = %q", ct)
			}
			if got := r.Problem()["field"]; got != tc.field {
				t.Fatalf("field = %v, want %s (%s)", got, tc.field, r.Body)
			}
		})
	}
	t.Run("ErrNoTimeAttributeFutureTrade", func(t *testing.T) {
		// Without a time attribute the receipt time is "now".
		d := good()
		d["occurredAt"] = time.Now().Add(time.Hour).Format(time.RFC3339)
		if r := f.Fn.Send(t, functest.Event(contract.TypeTradeRecorded, portalSrc, nextID(), time.Time{}, d)); r.Status != 400 || r.Problem()["field"] != "occurredAt" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	for _, q := range []string{`SELECT count(*) FROM recycling.trades`, `SELECT count(*) FROM recycling.collector_years`} {
		if n := f.Count(t, q); n != 0 {
			t.Fatalf("%s = %d after bad input", q, n)
		}
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.inbox WHERE type = $1`, contract.TypeTradeRecorded); n != 0 {
		t.Fatalf("%d inbox rows written by bad input", n)
	}
}

func TestTradeFlow(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.licenceFor(t, "L1", collectorA, "2026-01-01", "2026-12-31", 1000000)

	t.Run("OK", func(t *testing.T) {
		d := tradeData("T1", "HW-2026-0001", collectorA, "L1", 10, "150.257", "2026-11-20T10:00:00+08:00")
		d["documents"] = []any{map[string]any{"fileName": "manifest.pdf", "contentType": "application/pdf", "sizeBytes": 17}}
		r := f.trade(t, d)
		wantAccepted(t, r)
		var rep contract.TradeAccepted
		r.DataInto(t, &rep)
		if rep.TradeID != "T1" || rep.ManifestNo != "HW-2026-0001" || len(rep.Uploads) != 1 {
			t.Fatalf("reply = %+v", rep)
		}
		if k := rep.Uploads[0].Key; k != "recycling/trades/T1/1-manifest.pdf" {
			t.Fatalf("upload key = %s", k)
		}
		if exp := rep.Uploads[0].ExpiresAt; exp.Before(time.Now().Add(14*time.Minute)) || exp.After(time.Now().Add(16*time.Minute)) {
			t.Fatalf("expiresAt = %v, want ~15 minutes from now", exp)
		}
		// The URL signs the declared size: an S3 server that checks SigV4
		// (AWS, MinIO, versitygw) refuses a body of any other length.
		if u, err := url.Parse(rep.Uploads[0].URL); err != nil || !strings.Contains(";"+u.Query().Get("X-Amz-SignedHeaders")+";", ";content-length;") {
			t.Fatalf("upload URL %s does not sign content-length", rep.Uploads[0].URL)
		}
		req, _ := http.NewRequest(http.MethodPut, rep.Uploads[0].URL, bytes.NewReader([]byte("%PDF-1.4 manifest")))
		req.Header.Set("Content-Type", "application/pdf")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("presigned PUT: %v %v", err, resp)
		}
		resp.Body.Close()
		if got, err := f.Store.Get(context.Background(), rep.Uploads[0].Key); err != nil || string(got) != "%PDF-1.4 manifest" {
			t.Fatalf("stored object = %q, %v", got, err)
		}
		// Exact grams, no float anywhere.
		if g := f.Count(t, `SELECT weight_g FROM recycling.trades WHERE manifest_no = 'HW-2026-0001'`); g != 150257 {
			t.Fatalf("weight_g = %d, want 150257", g)
		}
		if g := f.yearTotal(t, collectorA, 2026); g != 150257 {
			t.Fatalf("year total = %d g, want 150257", g)
		}
	})
	t.Run("ErrDuplicateManifest", func(t *testing.T) {
		wantRejected(t, f.trade(t, tradeData("T2", "HW-2026-0001", collectorA, "L1", 10, "150.000", "2026-11-21T10:00:00+08:00")), "duplicate_manifest")
	})
	t.Run("ErrDuplicateTradeID", func(t *testing.T) {
		r := f.trade(t, tradeData("T1", "HW-2026-0002", collectorA, "L1", 10, "150.000", "2026-11-21T10:00:00+08:00"))
		wantRejected(t, r, "duplicate_manifest")
		if r.Data()["tradeId"] != "T1" || r.Data()["manifestNo"] != "HW-2026-0002" {
			t.Fatalf("reply = %s", r.Body)
		}
	})
	t.Run("ErrUnknownLicence", func(t *testing.T) {
		wantRejected(t, f.trade(t, tradeData("T3", "HW-2026-0003", collectorA, "L404", 10, "150.000", "2026-11-21T10:00:00+08:00")), "unknown_licence")
	})
	t.Run("ErrLicenceOfAnotherCollector", func(t *testing.T) {
		wantRejected(t, f.trade(t, tradeData("T4", "HW-2026-0004", collectorB, "L1", 10, "150.000", "2026-11-21T10:00:00+08:00")), "unknown_licence")
	})
	t.Run("ErrLicenceNotValid", func(t *testing.T) {
		// 2025-12-31 23:59:59 in Huzhou is before validFrom.
		wantRejected(t, f.trade(t, tradeData("T5", "HW-2026-0005", collectorA, "L1", 10, "150.000", "2025-12-31T15:59:59Z")), "licence_not_valid")
		f.licenceFor(t, "L-OLD", collectorA, "2020-01-01", "2026-11-19", 1000000)
		wantRejected(t, f.trade(t, tradeData("T6", "HW-2026-0006", collectorA, "L-OLD", 10, "150.000", "2026-11-20T00:00:00+08:00")), "licence_not_valid")
	})
	t.Run("ValidityBoundsInclusive", func(t *testing.T) {
		// 2026-01-01 00:00 in Huzhou is 2025-12-31 16:00 UTC: the first valid instant.
		wantAccepted(t, f.trade(t, tradeData("T7", "HW-2026-0007", collectorA, "L1", 1, "1.000", "2025-12-31T16:00:00Z")))
		wantAccepted(t, f.trade(t, tradeData("T8", "HW-2026-0008", collectorA, "L-OLD", 1, "1.000", "2026-11-19T23:59:59+08:00")))
	})
	t.Run("ErrImplausibleWeight", func(t *testing.T) {
		wantRejected(t, f.trade(t, tradeData("T9", "HW-2026-0009", collectorA, "L1", 10, "9.999", "2026-11-21T10:00:00+08:00")), "implausible_weight")
		wantRejected(t, f.trade(t, tradeData("T10", "HW-2026-0010", collectorA, "L1", 10, "1000.001", "2026-11-21T10:00:00+08:00")), "implausible_weight")
		wantRejected(t, f.trade(t, tradeData("T11", "HW-2026-0011", collectorA, "L1", 3, "0", "2026-11-21T10:00:00+08:00")), "implausible_weight")
	})
	t.Run("PlausibleBounds", func(t *testing.T) {
		wantAccepted(t, f.trade(t, tradeData("T12", "HW-2026-0012", collectorA, "L1", 10, "10.000", "2026-11-21T10:00:00+08:00")))
		wantAccepted(t, f.trade(t, tradeData("T13", "HW-2026-0013", collectorA, "L1", 10, "1000", "2026-11-21T10:00:00+08:00")))
	})
	t.Run("ErrCapacityExceeded", func(t *testing.T) {
		f.licenceFor(t, "L-SMALL", collectorB, "2026-01-01", "2027-12-31", "100.500")
		wantAccepted(t, f.trade(t, tradeData("T20", "HW-2026-0020", collectorB, "L-SMALL", 1, "60.000", "2026-03-01T10:00:00+08:00")))
		wantRejected(t, f.trade(t, tradeData("T21", "HW-2026-0021", collectorB, "L-SMALL", 1, "40.501", "2026-11-01T10:00:00+08:00")), "capacity_exceeded")
		// Exactly up to the capacity is allowed.
		wantAccepted(t, f.trade(t, tradeData("T22", "HW-2026-0022", collectorB, "L-SMALL", 1, "40.500", "2026-11-01T10:00:00+08:00")))
		wantRejected(t, f.trade(t, tradeData("T23", "HW-2026-0023", collectorB, "L-SMALL", 1, "1.000", "2026-11-29T23:59:59+08:00")), "capacity_exceeded")
		if g := f.yearTotal(t, collectorB, 2026); g != 100500 {
			t.Fatalf("2026 total = %d g, want 100500", g)
		}
	})
	t.Run("CapacityPerCalendarYearInBusinessZone", func(t *testing.T) {
		// 2027-01-01 00:30 in Huzhou is still 2026 in UTC: it counts for 2027.
		week2027 := time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)
		r := f.send(t, contract.TypeTradeRecorded, week2027, tradeData("T24", "HW-2027-0001", collectorB, "L-SMALL", 1, "1.000", "2026-12-31T16:30:00Z"))
		wantAccepted(t, r)
		if g := f.yearTotal(t, collectorB, 2027); g != 1000 {
			t.Fatalf("2027 total = %d g, want 1000", g)
		}
	})
	t.Run("RefusalsWriteNothing", func(t *testing.T) {
		if n := f.Count(t, `SELECT count(*) FROM recycling.trades`); n != 8 {
			t.Fatalf("%d trades on record, want 8", n)
		}
		var sum int64
		if err := f.Pool.QueryRow(context.Background(), `SELECT (SELECT sum(weight_g) FROM recycling.trades)
			- (SELECT sum(total_g) FROM recycling.collector_years)`).Scan(&sum); err != nil || sum != 0 {
			t.Fatalf("year totals differ from the trades by %d g (%v)", sum, err)
		}
	})
}

// TestCapacityRace sends trades that together pass a collector's capacity
// at the same time: exactly as many are accepted as fit.
func TestCapacityRace(t *testing.T) {
	t.Parallel()
	f := setup(t)
	t.Run("Pairs", func(t *testing.T) {
		for round := 0; round < 10; round++ {
			collector := event.SampleUSCC(600000 + round)
			lic := fmt.Sprintf("L-RACE-%d", round)
			f.licence(t, lic, collector, 100)
			types := make([]string, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range types {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d := tradeData(fmt.Sprintf("R%d-%d", round, i), fmt.Sprintf("M-R%d-%d", round, i), collector, lic, 1, "60.000", "2026-11-20T10:00:00+08:00")
					ev := functest.Event(contract.TypeTradeRecorded, portalSrc, nextID(), week, d)
					<-start
					types[i] = f.Fn.Send(t, ev).Type()
				}()
			}
			close(start)
			wg.Wait()
			accepted := 0
			for _, ty := range types {
				if ty == contract.TypeTradeAccepted {
					accepted++
				}
			}
			if accepted != 1 {
				t.Fatalf("round %d: replies %v, want exactly one accepted", round, types)
			}
			if g := f.yearTotal(t, collector, 2026); g != 60000 {
				t.Fatalf("round %d: total %d g, want 60000", round, g)
			}
		}
	})
	t.Run("Burst", func(t *testing.T) {
		collector := event.SampleUSCC(700000)
		f.licence(t, "L-BURST", collector, "205.000")
		replies := make([]string, 40)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 20)
		for i := range replies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				d := tradeData(fmt.Sprintf("B%d", i), fmt.Sprintf("M-B%d", i), collector, "L-BURST", 1, "10.000", "2026-11-20T10:00:00+08:00")
				r := f.send(t, contract.TypeTradeRecorded, week, d)
				replies[i] = r.Type() + " " + fmt.Sprint(r.Data()["reason"])
			}()
		}
		wg.Wait()
		counts := map[string]int{}
		for _, r := range replies {
			counts[r]++
		}
		if counts[contract.TypeTradeAccepted+" <nil>"] != 20 || counts[contract.TypeTradeRejected+" capacity_exceeded"] != 20 {
			t.Fatalf("replies %v, want 20 accepted and 20 capacity_exceeded", counts)
		}
		if g := f.yearTotal(t, collector, 2026); g != 200000 {
			t.Fatalf("total %d g, want 200000", g)
		}
		if n := f.Count(t, `SELECT count(*) FROM recycling.trades WHERE collector_uscc = $1`, collector); n != 20 {
			t.Fatalf("%d trades stored, want 20", n)
		}
	})
	t.Run("SameManifestAtOnce", func(t *testing.T) {
		collector := event.SampleUSCC(800000)
		f.licence(t, "L-DUP", collector, 1000)
		replies := make([]string, 8)
		var wg sync.WaitGroup
		for i := range replies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := tradeData(fmt.Sprintf("D%d", i), "M-SAME", collector, "L-DUP", 1, "10.000", "2026-11-20T10:00:00+08:00")
				r := f.send(t, contract.TypeTradeRecorded, week, d)
				replies[i] = r.Type() + " " + fmt.Sprint(r.Data()["reason"])
			}()
		}
		wg.Wait()
		counts := map[string]int{}
		for _, r := range replies {
			counts[r]++
		}
		if counts[contract.TypeTradeAccepted+" <nil>"] != 1 || counts[contract.TypeTradeRejected+" duplicate_manifest"] != 7 {
			t.Fatalf("replies %v, want 1 accepted and 7 duplicate_manifest", counts)
		}
		if g := f.yearTotal(t, collector, 2026); g != 10000 {
			t.Fatalf("total %d g, want 10000: a refused duplicate must not count", g)
		}
	})
}

func TestRedelivery(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.licence(t, "L1", collectorA, 1000)
	d := tradeData("T1", "M1", collectorA, "L1", 2, "30.000", "2026-11-20T10:00:00+08:00")
	d["documents"] = []any{map[string]any{"fileName": "photo.jpg", "contentType": "image/jpeg", "sizeBytes": 2048}}
	ev := functest.Event(contract.TypeTradeRecorded, portalSrc, "same-id", week, d)
	first := f.Fn.Send(t, ev)
	second := f.Fn.SendStructured(t, ev)
	if first.Status != 200 || second.Status != 200 || first.Type() != contract.TypeTradeAccepted {
		t.Fatalf("status %d %s, %d", first.Status, first.Type(), second.Status)
	}
	if first.Type() != second.Type() || !bytes.Equal(first.Event.Data(), second.Event.Data()) || first.Event.ID() != second.Event.ID() {
		t.Fatalf("replies differ:\n%s %s\n%s %s", first.Type(), first.Event.Data(), second.Type(), second.Event.Data())
	}
	if n := f.Count(t, `SELECT count(*) FROM recycling.trades`); n != 1 {
		t.Fatalf("%d trades, want 1", n)
	}
	if g := f.yearTotal(t, collectorA, 2026); g != 30000 {
		t.Fatalf("total %d g, want 30000", g)
	}
	// A refusal is answered the same way again.
	rej := functest.Event(contract.TypeTradeRecorded, portalSrc, "refused-id", week, tradeData("T2", "M2", collectorA, "L404", 2, "30.000", "2026-11-20T10:00:00+08:00"))
	a, b := f.Fn.Send(t, rej), f.Fn.Send(t, rej)
	if a.Type() != contract.TypeTradeRejected || !bytes.Equal(a.Event.Data(), b.Event.Data()) {
		t.Fatalf("refusal replies: %s / %s", a.Body, b.Body)
	}
	// Concurrent deliveries of one event: one effect, one reply.
	ev2 := functest.Event(contract.TypeTradeRecorded, portalSrc, "burst-id", week, tradeData("T3", "M3", collectorA, "L1", 2, "30.000", "2026-11-20T10:00:00+08:00"))
	var wg sync.WaitGroup
	replies := make([]*functest.Response, 8)
	for i := range replies {
		wg.Add(1)
		go func() { defer wg.Done(); replies[i] = f.Fn.Send(t, ev2) }()
	}
	wg.Wait()
	for _, r := range replies {
		if r.Status != 200 || r.Type() != contract.TypeTradeAccepted || !bytes.Equal(r.Event.Data(), replies[0].Event.Data()) {
			t.Fatalf("burst reply %d %s", r.Status, r.Body)
		}
	}
	if g := f.yearTotal(t, collectorA, 2026); g != 60000 {
		t.Fatalf("total %d g, want 60000", g)
	}
}

func TestHealthAndConfig(t *testing.T) {
	t.Parallel()
	f := setup(t)
	resp, err := http.Get(f.Fn.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
	t.Run("ErrMissingDatabaseURL", func(t *testing.T) {
		out, err := functest.RunConfigOnly(t, binary, "S3_BUCKET=x")
		if err == nil || !bytes.Contains(out, []byte("DATABASE_URL")) || bytes.Count(bytes.TrimSpace(out), []byte("\n")) != 0 {
			t.Fatalf("got %v: %q", err, out)
		}
	})
	t.Run("ErrMissingBucket", func(t *testing.T) {
		out, err := functest.RunConfigOnly(t, binary, "DATABASE_URL=postgres://x@127.0.0.1:1/x")
		if err == nil || !bytes.Contains(out, []byte("S3_BUCKET")) {
			t.Fatalf("got %v: %q", err, out)
		}
	})
	t.Run("ErrChunkRows", func(t *testing.T) {
		out, err := functest.RunConfigOnly(t, binary, "DATABASE_URL=postgres://x@127.0.0.1:1/x", "S3_BUCKET=x", "RECYCLING_IMPORT_CHUNK_ROWS=0")
		if err == nil || !strings.Contains(string(out), "RECYCLING_IMPORT_CHUNK_ROWS") {
			t.Fatalf("got %v: %q", err, out)
		}
	})
	t.Run("ErrUnknownJob", func(t *testing.T) {
		r := f.Fn.Send(t, functest.Event(event.PingType, pingSrc, nextID(), week, map[string]any{"job": "forum-weekly"}))
		if r.Status != 400 || r.Problem()["field"] != "job" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
}

package main

import (
	"testing"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// TestManifestOneKey is finding 1 of issue 12 for "one trade per
// manifest": the manifest number is normalised (NFKC, upper case) before
// it is a key — in the single trade and in the CSV import alike — and the
// spellings that only look the same (a trailing space, U+200B, U+2010)
// are refused, so one manifest carries one trade at most.
func TestManifestOneKey(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.licence(t, "L-A", collectorA, 100000)
	at := "2026-11-20T10:00:00+08:00"
	wantAccepted(t, f.trade(t, tradeData("T1", "HW-2026-0001", collectorA, "L-A", 1, "10.000", at)))
	for i, m := range []string{"hw-2026-0001", "ＨＷ-２０２６-０００１"} {
		r := f.trade(t, tradeData("T-same-"+string(rune('a'+i)), m, collectorA, "l-a", 1, "10.000", at))
		wantRejected(t, r, recycling.ReasonDuplicateManifest)
		if r.Data()["manifestNo"] != "HW-2026-0001" {
			t.Fatalf("%q replied as manifestNo %v, want the key form HW-2026-0001", m, r.Data()["manifestNo"])
		}
	}
	for i, m := range []string{"HW-2026-0001 ", " HW-2026-0001", "HW-2026-0001\u200b", "HW\u20102026-0001", "HW-2026-0001\x00"} {
		before := pgtest.Rows(t, f.Pool)
		functest.WantInvalid(t, f.trade(t, tradeData("T-bad-"+string(rune('a'+i)), m, collectorA, "L-A", 1, "10.000", at)), "manifestNo")
		if after := pgtest.Rows(t, f.Pool); after != before {
			t.Fatalf("%q: %d rows written by a 400", m, after-before)
		}
	}
	// The import judges its rows by the same rules.
	rows := [][]string{recycling.CSVHeader,
		row("I1", "hw-2026-0001", collectorA, "L-A", "1", "10.000", at),
		row("I2", "HW-2026-0001\u200b", collectorA, "L-A", "1", "10.000", at),
		row("I3", "HW-2026-0003", collectorA, "l-a", "1", "10.000", at),
	}
	f.put(t, "imports/uploads/manifest-keys.csv", csvFile(t, rows...))
	r := f.Fn.Send(t, functest.Event(contract.TypeTradesImported, portalSrc, nextID(), week, importData("B-KEYS", "imports/uploads/manifest-keys.csv")))
	var done contract.ImportCompleted
	r.DataInto(t, &done)
	if done.Accepted != 1 || done.Rejected != 2 {
		t.Fatalf("import = %+v, want 1 accepted (I3) and 2 rejected", done)
	}
	if n := f.Count(t, `SELECT count(*) FROM recycling.trades WHERE manifest_no = 'HW-2026-0001'`); n != 1 {
		t.Fatalf("%d trades on one manifest, want 1", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM recycling.trades WHERE manifest_no = 'HW-2026-0003' AND licence_no = 'L-A'`); n != 1 {
		t.Fatalf("imported row not stored in key form")
	}
}

// TestTradeTextAndKeysAreBadInput: control characters in the trade's
// text, the identifier rule on its ids, strict timestamps and indexed
// field paths — each a 400 naming the field, nothing written.
func TestTradeTextAndKeysAreBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.licence(t, "L-A", collectorA, 100000)
	good := func() map[string]any {
		d := tradeData("T1", "M1", collectorA, "L-A", 1, "10.000", "2026-11-20T10:00:00+08:00")
		d["documents"] = []any{
			map[string]any{"fileName": "a.pdf", "contentType": "application/pdf", "sizeBytes": 1},
			map[string]any{"fileName": "b.pdf", "contentType": "application/pdf", "sizeBytes": 1},
			map[string]any{"fileName": "c.pdf", "contentType": "application/pdf", "sizeBytes": 1},
		}
		return d
	}
	cases := []struct {
		name  string
		edit  func(d map[string]any)
		field string
	}{
		{"ProducerNameNUL", func(d map[string]any) { d["producer"].(map[string]any)["name"] = "汽修\x00店" }, "producer.name"},
		{"TradeIDZeroWidth", func(d map[string]any) { d["tradeId"] = "T1\u200b" }, "tradeId"},
		{"TradeIDNUL", func(d map[string]any) { d["tradeId"] = "T\x001" }, "tradeId"},
		{"LicenceNoTrailingSpace", func(d map[string]any) { d["collector"].(map[string]any)["licenceNo"] = "L-A " }, "collector.licenceNo"},
		{"OccurredAtOffset24", func(d map[string]any) { d["occurredAt"] = "2026-11-20T10:00:00+24:00" }, "occurredAt"},
		{"SizeBytesMistyped", func(d map[string]any) { d["documents"].([]any)[2].(map[string]any)["sizeBytes"] = "1" }, "documents[2].sizeBytes"},
		{"SizeBytesTooLarge", func(d map[string]any) { d["documents"].([]any)[1].(map[string]any)["sizeBytes"] = 25 << 20 }, "documents[1].sizeBytes"},
		{"FileNameSlash", func(d map[string]any) { d["documents"].([]any)[0].(map[string]any)["fileName"] = "../x.pdf" }, "documents[0].fileName"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := good()
			tc.edit(d)
			before := pgtest.Rows(t, f.Pool)
			functest.WantInvalid(t, f.trade(t, d), tc.field)
			if after := pgtest.Rows(t, f.Pool); after != before {
				t.Fatalf("%d rows written by a 400", after-before)
			}
		})
	}
}

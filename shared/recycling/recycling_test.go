package recycling

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/testkit"
)

func TestParseWeight(t *testing.T) {
	t.Parallel()
	ok := map[string]int64{
		"1234.500":            1234500,
		"1234.5":              1234500,
		"1234.05":             1234050,
		"0.001":               1,
		"0":                   0,
		"12":                  12000,
		"007.1":               7100,
		"999999999999999.999": 999999999999999999,
	}
	for s, want := range ok {
		got, err := ParseWeight(s)
		if err != nil || got != want {
			t.Errorf("ParseWeight(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "1.2345", "-1", "+1", "abc", "1e3", "1.", ".5", " 1", "1 ", "1,000", "1.2.3",
		"0x10", "１２", "NaN", "1000000000000000", "1_000", "١"} {
		if got, err := ParseWeight(s); err == nil {
			t.Errorf("ParseWeight(%q) = %d, want an error", s, got)
		}
	}
}

func TestFormatWeight(t *testing.T) {
	t.Parallel()
	for g, want := range map[int64]string{0: "0.000", 1: "0.001", 1234500: "1234.500", 1000: "1.000", -1500: "-1.500",
		math.MaxInt64: "9223372036854775.807"} {
		if got := FormatWeight(g); got != want {
			t.Errorf("FormatWeight(%d) = %q, want %q", g, got, want)
		}
	}
}

// FuzzParseWeight checks that every accepted string is a plain decimal of
// at most 3 decimals and that formatting the grams gives the same number
// back, so weights are stored exactly.
func FuzzParseWeight(f *testing.F) {
	for _, s := range []string{"1234.500", "0.001", "1.2345", "-1", "abc", "", "1e3", ".5", "999999999999999.999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseWeight(s)
		if err != nil {
			return
		}
		if g < 0 {
			t.Fatalf("ParseWeight(%q) = %d < 0", s, g)
		}
		intPart, frac, _ := strings.Cut(s, ".")
		if len(frac) > 3 || intPart == "" || strings.Trim(intPart+frac, "0123456789") != "" {
			t.Fatalf("accepted %q", s)
		}
		// Same value: compare without leading zeros and trailing zeros.
		want := strings.TrimLeft(intPart, "0") + "." + (frac + "000")[:3]
		if want[0] == '.' {
			want = "0" + want
		}
		if got := FormatWeight(g); got != want {
			t.Fatalf("ParseWeight(%q) = %d, formats as %q, want %q", s, g, got, want)
		}
		back, err := ParseWeight(FormatWeight(g))
		if err != nil || back != g {
			t.Fatalf("round trip of %q: %d, %v", s, back, err)
		}
	})
}

func TestPlausibleWeight(t *testing.T) {
	t.Parallel()
	cases := []struct {
		sets, grams int64
		want        bool
	}{
		{1, 1000, true}, {1, 999, false}, {1, 100000, true}, {1, 100001, false},
		{10, 10000, true}, {10, 9999, false}, {10, 1000000, true}, {10, 1000001, false},
		{3, 0, false}, {math.MaxInt64, math.MaxInt64, false}, {math.MaxInt64 / 1000, math.MaxInt64, true},
	}
	for _, c := range cases {
		tr := Trade{BatterySets: c.sets, WeightGrams: c.grams}
		if got := tr.PlausibleWeight(); got != c.want {
			t.Errorf("PlausibleWeight(sets %d, grams %d) = %v, want %v", c.sets, c.grams, got, c.want)
		}
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	loc := testkit.Shanghai
	collector := event.SampleUSCC(522001)
	lic := &Licence{LicenceNo: "L1", CollectorUSCC: collector, ValidFrom: "2026-01-01", ValidTo: "2026-12-31", CapacityGrams: 1e9}
	trade := func(at string, sets, grams int64) *Trade {
		ts, err := time.Parse(time.RFC3339, at)
		if err != nil {
			t.Fatal(err)
		}
		return &Trade{CollectorUSCC: collector, LicenceNo: "L1", BatterySets: sets, WeightGrams: grams, OccurredAt: ts}
	}
	other := *lic
	other.CollectorUSCC = event.SampleUSCC(522002)
	cases := []struct {
		name string
		t    *Trade
		lic  *Licence
		want string
	}{
		{"OK", trade("2026-06-01T10:00:00+08:00", 2, 30000), lic, ""},
		{"FirstDayInBusinessZone", trade("2025-12-31T16:00:00Z", 1, 1000), lic, ""},
		{"LastDayInBusinessZone", trade("2026-12-31T23:59:59+08:00", 1, 1000), lic, ""},
		{"ErrBeforeValidFrom", trade("2025-12-31T23:59:59+08:00", 1, 1000), lic, ReasonLicenceNotValid},
		{"ErrAfterValidTo", trade("2026-12-31T16:00:00Z", 1, 1000), lic, ReasonLicenceNotValid},
		{"ErrNoLicence", trade("2026-06-01T10:00:00+08:00", 1, 1000), nil, ReasonUnknownLicence},
		{"ErrOtherCollector", trade("2026-06-01T10:00:00+08:00", 1, 1000), &other, ReasonUnknownLicence},
		{"ErrImplausible", trade("2026-06-01T10:00:00+08:00", 2, 1999), lic, ReasonImplausibleWeight},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Judge(c.t, c.lic, loc); got != c.want {
				t.Fatalf("Judge = %q, want %q", got, c.want)
			}
		})
	}
}

func TestParseRow(t *testing.T) {
	t.Parallel()
	asOf := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	good := func() []string {
		return []string{"T1", "M-1", event.SampleUSCC(1), "长兴某汽修店", "changxing", event.SampleUSCC(522001), "L1",
			WasteCode, "10", "150.250", "36000", "2026-11-20T10:00:00+08:00"}
	}
	tr, err := ParseRow(good(), asOf)
	if err != nil || tr.WeightGrams != 150250 || tr.BatterySets != 10 || tr.AmountFen != 36000 || tr.ProducerCounty != "changxing" {
		t.Fatalf("ParseRow = %+v, %v", tr, err)
	}
	cases := []struct {
		col   int
		value string
		field string
	}{
		{colTradeID, "", "tradeId"}, {colTradeID, "a/b", "tradeId"},
		{colManifestNo, " M", "manifestNo"},
		{colProducerUSCC, "91330500MA2B3C4D5C", "producerUscc"},
		{colProducerName, "", "producerName"},
		{colProducerCounty, "hangzhou", "producerCounty"},
		{colCollectorUSCC, "x", "collectorUscc"},
		{colLicenceNo, "", "licenceNo"},
		{colWasteCode, "900-041-49", "wasteCode"},
		{colBatterySets, "0", "batterySets"}, {colBatterySets, "-2", "batterySets"}, {colBatterySets, "1.5", "batterySets"},
		{colBatterySets, "+2", "batterySets"},
		{colWeightKg, "1.2345", "weightKg"}, {colWeightKg, "-1", "weightKg"}, {colWeightKg, "abc", "weightKg"}, {colWeightKg, "", "weightKg"},
		{colAmountFen, "-1", "amountFen"}, {colAmountFen, "1.5", "amountFen"},
		{colOccurredAt, "2026-11-20", "occurredAt"}, {colOccurredAt, "2026-12-01T08:00:01+08:00", "occurredAt"},
	}
	for _, c := range cases {
		t.Run(CSVHeader[c.col]+"="+strconv.Quote(c.value), func(t *testing.T) {
			rec := good()
			rec[c.col] = c.value
			_, err := ParseRow(rec, asOf)
			var e *event.Error
			if err == nil || !asError(err, &e) || e.Field != c.field {
				t.Fatalf("ParseRow error = %v, want field %s", err, c.field)
			}
		})
	}
	if _, err := ParseRow(good()[:11], asOf); err == nil {
		t.Fatal("short row accepted")
	}
}

func asError(err error, e **event.Error) bool {
	v, ok := err.(*event.Error)
	*e = v
	return ok
}

func TestCheckHeader(t *testing.T) {
	t.Parallel()
	if err := CheckHeader(append([]string{}, CSVHeader...)); err != nil {
		t.Fatal(err)
	}
	bom := append([]string{"\ufeff" + CSVHeader[0]}, CSVHeader[1:]...)
	if err := CheckHeader(bom); err != nil {
		t.Fatalf("BOM: %v", err)
	}
	swapped := append([]string{}, CSVHeader...)
	swapped[8], swapped[9] = swapped[9], swapped[8]
	for _, bad := range [][]string{nil, CSVHeader[:11], swapped} {
		if err := CheckHeader(bad); err == nil {
			t.Errorf("CheckHeader(%v) = nil", bad)
		}
	}
}

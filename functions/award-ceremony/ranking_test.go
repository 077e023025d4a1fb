package main

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
)

func TestRankWinners(t *testing.T) {
	t.Parallel()
	at := func(m int) time.Time { return week.Add(time.Duration(m) * time.Minute) }
	cands := []candidate{
		// Means 85 (170/2) and 85 (85/1): the earlier nomination first.
		{NominationID: "r-late", Category: contract.AwardRunner, submittedAt: at(2), sum: 8500, count: 1},
		{NominationID: "r-early", Category: contract.AwardRunner, submittedAt: at(1), sum: 17000, count: 2},
		// Mean 85.01 beats both.
		{NominationID: "r-top", Category: contract.AwardRunner, submittedAt: at(9), sum: 8501, count: 1},
		{NominationID: "c1", Name: "甲", Category: contract.AwardContributor, submittedAt: at(1), sum: 9000, count: 1},
		{NominationID: "g1", Category: contract.AwardGoodCase, submittedAt: at(1), sum: 9000, count: 1},
		{NominationID: "g2", Category: contract.AwardGoodCase, submittedAt: at(2), sum: 8000, count: 1},
	}
	w := rankWinners(cands, 2)
	var got []string
	for _, x := range w {
		p := ""
		if x.Presenter != nil {
			p = x.Presenter.Name
		}
		got = append(got, x.Category+"/"+strconv.Itoa(x.Rank)+"/"+x.NominationID+"/"+p)
	}
	want := []string{"runner/1/r-top/", "runner/2/r-early/", "contributor/1/c1/", "good_case/1/g1/甲", "good_case/2/g2/甲"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// No contributor winner: good_case winners have no presenter.
	for _, x := range rankWinners(cands[4:], 3) {
		if x.Presenter != nil {
			t.Fatalf("presenter without contributors: %+v", x)
		}
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for centi, want := range map[int64]string{0: "0", 10000: "100", 8550: "85.5", 7225: "72.25", 5: "0.05", 9999: "99.99"} {
		if got := contract.FormatScore(centi); got != want {
			t.Errorf("formatScore(%d) = %q, want %q", centi, got, want)
		}
	}
	for fen, want := range map[int64]string{0: "0.00", 4999: "0.00", 5000: "0.01", 1_000_000: "1.00", 1_234_567_890_000: "1,234,567.89"} {
		if got := wan(fen); got != want {
			t.Errorf("wan(%d) = %q, want %q", fen, got, want)
		}
	}
}

// FuzzParseScore: any JSON value either parses to 0–10000 hundredths that
// format back to the same number, or is refused; it never panics or hangs.
func FuzzParseScore(f *testing.F) {
	for _, s := range []string{"85.5", "100", "0", "-1", "100.001", "1e2", "1e999999999", `"90"`, "null", "99.99", "0.5e1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			return
		}
		centi, err := contract.ParseScore("score", json.RawMessage(s))
		if err != nil {
			return
		}
		if centi < 0 || centi > 10000 {
			t.Fatalf("parseScore(%q) = %d out of range", s, centi)
		}
		back, err := contract.ParseScore("score", json.RawMessage(contract.FormatScore(centi)))
		if err != nil || back != centi {
			t.Fatalf("round trip %q → %d → %q → %d, %v", s, centi, contract.FormatScore(centi), back, err)
		}
	})
}

package docs

import (
	"bytes"
	"encoding/csv"
	"slices"
	"testing"
)

func TestSafeCell(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"=SUM(A1)":                 "'=SUM(A1)",
		`=HYPERLINK("http://x")`:   `'=HYPERLINK("http://x")`,
		"+cmd|' /C calc'!A0":       "'+cmd|' /C calc'!A0",
		"+86 572 1234567":          "'+86 572 1234567",
		"-1":                       "'-1",
		"@SUM(1)":                  "'@SUM(1)",
		"\t=1":                     "'\t=1",
		"\r=1":                     "'\r=1",
		"＝SUM(A1)":                 "'＝SUM(A1)",
		"＋1":                       "'＋1",
		"－1":                       "'－1",
		"＠SUM(1)":                  "'＠SUM(1)",
		"湖州":                       "湖州",
		"a=b":                      "a=b",
		"91330500MA2B3C4D5B":       "91330500MA2B3C4D5B",
		"2026-12-01T10:00:00Z":     "2026-12-01T10:00:00Z",
		"":                         "",
		"'already quoted":          "'already quoted",
		" =1 (leading space kept)": " =1 (leading space kept)",
	} {
		if got := SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCSVWriterGuardsEveryCell(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := NewCSVWriter(&buf)
	in := []string{"=1", "plain", "+86 139", "@x"}
	if err := w.Write([]string{"-header", "name"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in, []string{"=1", "plain", "+86 139", "@x"}) {
		t.Fatalf("Write changed its argument: %q", in)
	}
	r := csv.NewReader(&buf)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"'-header", "name"}, {"'=1", "plain", "'+86 139", "'@x"}}
	if len(recs) != 2 || !slices.Equal(recs[0], want[0]) || !slices.Equal(recs[1], want[1]) {
		t.Fatalf("records = %q, want %q", recs, want)
	}
}

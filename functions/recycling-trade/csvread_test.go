package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// readAll reads every record with encoding/csv as the import once did:
// records as fields, malformed ones as the parse error's kind.
func readAllStd(in string) []string {
	r := csv.NewReader(strings.NewReader(in))
	r.FieldsPerRecord = -1
	var out []string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			out = append(out, "error: "+pe.Err.Error())
			continue
		}
		if err != nil {
			return append(out, "read error: "+err.Error())
		}
		out = append(out, fmt.Sprintf("%q", rec))
	}
}

func readAllOurs(in string) []string {
	r := newCSVReader(strings.NewReader(in))
	var out []string
	var buf []byte
	var ends []int
	for {
		var err error
		buf, ends, err = r.readRecord(buf[:0], ends[:0])
		if errors.Is(err, io.EOF) {
			return out
		}
		if err == csv.ErrBareQuote || err == csv.ErrQuote {
			out = append(out, "error: "+err.Error())
			continue
		}
		if err != nil {
			return append(out, "read error: "+err.Error())
		}
		out = append(out, fmt.Sprintf("%q", fields(nil, string(buf), 0, ends)))
	}
}

var csvSeeds = []string{
	"", "\n", "a,b\n", "a,b", "a,b\r\n", "a,b\r", "\r\n\r\n", "a\n\nb\n", ",\n", ",,\n",
	`"a","b"` + "\n", `"a""b",c` + "\n", `"a,b",c`, "\"a\nb\",c\n", "\"a\r\nb\",c\r\n", `a"b,c` + "\n",
	`"a"b,c` + "\n" + "d,e\n", `"abc`, "\"abc\n", "\"abc\ndef", `"a",`, `a,"`, `""`, `"",""` + "\n",
	"x,\"y\nz\n", "\ufeffh1,h2\n1,2\n", `"a""`, "a,b\nc,\"d\n", "\"\"\"\",x\n", "a\r\r\nb\n", "\"a\"\r\n",
	"\"a\"\rb\n", strings.Repeat("x", 300000) + ",y\n" + "z\n", "\"" + strings.Repeat("q", 300000) + "\"\n",
}

// TestCSVReader checks the import's CSV reader against encoding/csv on
// hand-picked inputs: quoting, line ends, empty lines, malformed records
// and what follows them, lines longer than the read buffer.
func TestCSVReader(t *testing.T) {
	for _, in := range csvSeeds {
		if got, want := readAllOurs(in), readAllStd(in); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("input %.60q:\n got %.200v\nwant %.200v", in, got, want)
		}
	}
}

// FuzzCSVReader checks the import's CSV reader against encoding/csv on
// any input.
func FuzzCSVReader(f *testing.F) {
	for _, s := range csvSeeds {
		if len(s) < 1000 {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		if got, want := readAllOurs(in), readAllStd(in); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("input %q:\n got %v\nwant %v", in, got, want)
		}
	})
}

package docs

import (
	"encoding/csv"
	"io"
	"strings"
)

// formulaStarts are the characters that make a spreadsheet program read a
// cell as a formula (OWASP "CSV injection"): = + - @, tab and carriage
// return, and the full-width forms ＝ ＋ － ＠ that some spreadsheets treat
// alike.
const formulaStarts = "=+-@\t\r＝＋－＠"

// SafeCell returns s so that no spreadsheet program reads it as a formula:
// a cell starting with one of = + - @ tab CR (or ＝ ＋ － ＠) gets a leading
// apostrophe, which spreadsheets take as "this is text" and do not show.
// There are no exceptions: "+86 572 …" becomes "'+86 572 …" too, since a
// cell like "+86-1" is a formula.
func SafeCell(s string) string {
	for _, c := range s {
		if strings.ContainsRune(formulaStarts, c) {
			return "'" + s
		}
		break
	}
	return s
}

// CSVWriter writes CSV for people who open it in a spreadsheet: every
// cell of every record (header rows too) passes through SafeCell. It is
// the one writer of qinqing's exports (forum rosters, top50.csv, import
// error lists); use it for every new one.
type CSVWriter struct {
	w   *csv.Writer
	rec []string
}

// NewCSVWriter writes comma-separated records with "\n" line ends to w.
func NewCSVWriter(w io.Writer) *CSVWriter { return &CSVWriter{w: csv.NewWriter(w)} }

// Write writes one record, every cell guarded. The record itself is not
// changed.
func (c *CSVWriter) Write(record []string) error {
	c.rec = c.rec[:0]
	for _, s := range record {
		c.rec = append(c.rec, SafeCell(s))
	}
	return c.w.Write(c.rec)
}

// Flush writes any buffered data and returns the first error of any
// Write or Flush.
func (c *CSVWriter) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

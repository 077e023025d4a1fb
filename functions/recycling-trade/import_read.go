package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/recycling"
)

// csvRows reads an import file chunk by chunk, never holding more than
// the chunk: the object is streamed from S3.
type csvRows struct {
	r   *csvReader
	row int64 // number of the last record read; the header is row 1
}

func newCSVRows(body io.Reader) *csvRows { return &csvRows{r: newCSVReader(body)} }

func (c *csvRows) header() error {
	buf, ends, err := c.r.readRecord(nil, nil)
	switch {
	case errors.Is(err, io.EOF):
		return event.Invalid("key", "the file is empty; want the header row %s", strings.Join(recycling.CSVHeader, ","))
	case err == csv.ErrBareQuote || err == csv.ErrQuote:
		return event.Invalid("key", "the header row is not CSV: %v", err)
	case err != nil:
		return fmt.Errorf("read import file: %w", err)
	}
	c.row = 1
	if err := recycling.CheckHeader(fields(nil, string(buf), 0, ends)); err != nil {
		return event.Invalid("key", "%v", err)
	}
	return nil
}

// fields appends to rec the fields of a record that starts at start in s
// and whose fields end at ends.
func fields(rec []string, s string, start int, ends []int) []string {
	for _, e := range ends {
		rec = append(rec, s[start:e])
		start = e
	}
	return rec
}

// importRow is one data row and its verdict.
type importRow struct {
	no    int64
	trade recycling.Trade
	// Set when the row is malformed (reason invalid).
	invalid       bool
	field, detail string
	// Raw ids for errors.csv, whatever the row's state.
	tradeID, manifestNo string
	// Verdict of the last judgement: "" accepted.
	reason string
}

// chunk is a run of consecutive rows stored in one transaction.
type chunk struct {
	rows []importRow
	last int64 // number of the chunk's last row
}

// chunks sends the rows after done in chunks of size rows.
func (c *csvRows) chunks(ctx context.Context, done int64, asOf time.Time, size int, out chan<- *chunk) error {
	for {
		ch, err := c.chunk(done, asOf, size)
		if err != nil || ch == nil {
			return err
		}
		select {
		case out <- ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// chunk reads the next size rows after done (fewer at the end of the
// file, nil after it) and parses them. The records are read into one
// buffer that becomes one string: the rows' fields are slices of it, so
// a chunk costs a few allocations whatever its number of rows.
func (c *csvRows) chunk(done int64, asOf time.Time, size int) (*chunk, error) {
	type span struct {
		no       int64
		start    int // offset of the record in buf
		from, to int // its fields' ends in ends
		bad      error
	}
	buf := make([]byte, 0, size*160)
	ends := make([]int, 0, size*len(recycling.CSVHeader))
	spans := make([]span, 0, size)
	for len(spans) < size {
		start, from := len(buf), len(ends)
		var err error
		buf, ends, err = c.r.readRecord(buf, ends)
		if errors.Is(err, io.EOF) {
			break
		}
		var bad error
		switch {
		case err == csv.ErrBareQuote || err == csv.ErrQuote:
			bad, buf, ends = err, buf[:start], ends[:from]
		case err != nil:
			return nil, fmt.Errorf("read import file after row %d: %w", c.row, err)
		}
		c.row++
		if c.row <= done {
			buf, ends = buf[:start], ends[:from]
			continue
		}
		spans = append(spans, span{no: c.row, start: start, from: from, to: len(ends), bad: bad})
	}
	if len(spans) == 0 {
		return nil, nil
	}
	s := string(buf)
	ch := &chunk{rows: make([]importRow, len(spans)), last: spans[len(spans)-1].no}
	rec := make([]string, 0, 2*len(recycling.CSVHeader))
	for i, sp := range spans {
		r := &ch.rows[i]
		r.no = sp.no
		if sp.bad != nil {
			r.invalid, r.detail = true, "malformed CSV: "+sp.bad.Error()
			continue
		}
		rec = fields(rec[:0], s, sp.start, ends[sp.from:sp.to])
		r.tradeID, r.manifestNo = field(rec, 0), field(rec, 1)
		t, err := recycling.ParseRow(rec, asOf)
		if err != nil {
			var e *event.Error
			if errors.As(err, &e) {
				r.invalid, r.field, r.detail = true, e.Field, e.Message
			} else {
				r.invalid, r.detail = true, err.Error()
			}
		}
		r.trade = t
	}
	return ch, nil
}

func field(rec []string, i int) string {
	if i < len(rec) {
		return rec[i]
	}
	return ""
}

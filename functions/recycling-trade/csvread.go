package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"io"
)

// csvReader reads CSV records exactly as encoding/csv's Reader does with
// the import's settings (comma, no comments, no lazy quotes, any number of
// fields per record: RFC 4180 with "\r\n" or "\n", empty lines skipped),
// but into the caller's buffer, so a chunk of records costs one
// allocation instead of one per record (encoding/csv makes a string of
// every record). FuzzCSVReader checks it against encoding/csv.
type csvReader struct {
	r   *bufio.Reader
	raw []byte // a line longer than the bufio buffer
}

func newCSVReader(r io.Reader) *csvReader {
	return &csvReader{r: bufio.NewReaderSize(r, 256<<10)}
}

// readLine is encoding/csv's readLine: the next line with "\r\n"
// normalised to "\n", a trailing "\r" before EOF dropped.
func (c *csvReader) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		c.raw = append(c.raw[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = c.r.ReadSlice('\n')
			c.raw = append(c.raw, line...)
		}
		line = c.raw
	}
	if n := len(line); n > 0 && err == io.EOF {
		err = nil
		if line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
		line[n-2] = '\n'
		line = line[:n-1]
	}
	return line, err
}

// lengthNL is 1 when b ends in a newline.
func lengthNL(b []byte) int {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		return 1
	}
	return 0
}

// readRecord appends the next record's fields to buf and the end offset
// of each in buf to ends. It returns io.EOF when no record is left,
// csv.ErrBareQuote or csv.ErrQuote for a malformed record (consumed; what
// it appended is to be dropped), or the error of reading.
func (c *csvReader) readRecord(buf []byte, ends []int) ([]byte, []int, error) {
	var line []byte
	var errRead error
	for errRead == nil {
		line, errRead = c.readLine()
		if errRead == nil && len(line) == lengthNL(line) {
			continue // empty line
		}
		break
	}
	if errRead == io.EOF {
		return buf, ends, errRead
	}
	var err error
parseField:
	for {
		if len(line) == 0 || line[0] != '"' {
			i := bytes.IndexByte(line, ',')
			field := line
			if i >= 0 {
				field = field[:i]
			} else {
				field = field[:len(field)-lengthNL(field)]
			}
			if bytes.IndexByte(field, '"') >= 0 {
				err = csv.ErrBareQuote
				break parseField
			}
			buf = append(buf, field...)
			ends = append(ends, len(buf))
			if i >= 0 {
				line = line[i+1:]
				continue parseField
			}
			break parseField
		}
		line = line[1:] // quoted field
		for {
			if i := bytes.IndexByte(line, '"'); i >= 0 {
				buf = append(buf, line[:i]...)
				line = line[i+1:]
				switch {
				case len(line) > 0 && line[0] == '"': // "" is a quote
					buf = append(buf, '"')
					line = line[1:]
				case len(line) > 0 && line[0] == ',': // end of field
					line = line[1:]
					ends = append(ends, len(buf))
					continue parseField
				case lengthNL(line) == len(line): // end of record
					ends = append(ends, len(buf))
					break parseField
				default: // a quote inside a quoted field
					err = csv.ErrQuote
					break parseField
				}
			} else if len(line) > 0 { // the field goes on on the next line
				buf = append(buf, line...)
				if errRead != nil {
					break parseField
				}
				line, errRead = c.readLine()
				if errRead == io.EOF {
					errRead = nil
				}
			} else { // end of file inside the quotes
				if errRead == nil {
					err = csv.ErrQuote
					break parseField
				}
				ends = append(ends, len(buf))
				break parseField
			}
		}
	}
	if err == nil {
		err = errRead
	}
	return buf, ends, err
}

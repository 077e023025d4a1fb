package runtime

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// pathAt returns the JSON path of the value that ends at byte off of data
// (or, for an object or array, whose opening bracket ends there), with
// array indexes: "documents[2].sizeBytes". encoding/json's own
// UnmarshalTypeError.Field drops the indexes ("documents.sizeBytes"); its
// Offset is where the value was read, so a second pass over the bytes up
// to there recovers the full path. It returns "" when data up to off does
// not end in a value (then the caller keeps the decoder's field).
func pathAt(data []byte, off int64) string {
	if off <= 0 || off > int64(len(data)) {
		return ""
	}
	type frame struct {
		array   bool
		index   int
		key     string
		wantKey bool
	}
	var stack []*frame
	render := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.array {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		}
		return b.String()
	}
	advance := func() {
		if len(stack) == 0 {
			return
		}
		if top := stack[len(stack)-1]; top.array {
			top.index++
		} else {
			top.wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data[:off]))
	dec.UseNumber()
	path := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			return path
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			advance()
			continue
		}
		if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].wantKey {
			stack[n-1].key, _ = tok.(string)
			stack[n-1].wantKey = false
			continue
		}
		path = render()
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{array: true})
		default:
			advance()
		}
	}
}

// Package htmltext writes HTML documents by hand: markup as written in
// the page source, and text escaped exactly as html/template escapes it
// in element text, <title> and quoted attribute values.
//
// The functions render their documents with it rather than with
// html/template or text/template: template execution calls
// reflect.Value.MethodByName, which makes the linker keep every exported
// method of every linked type (megabytes of unused AWS SDK code), and a
// larger binary starts slower and resides larger (docs/runtime.md).
package htmltext

import (
	"bytes"
	"fmt"
	"strconv"
)

// Markup is HTML as written in the page source. Only constants convert
// to it implicitly, so text from data cannot reach a page unescaped by
// mistake: a string variable must go through Text or Printf.
type Markup string

// Writer accumulates one document.
type Writer struct{ buf bytes.Buffer }

// Raw writes markup as it is.
func (w *Writer) Raw(m Markup) { w.buf.WriteString(string(m)) }

// Text writes s escaped (see Escape).
func (w *Writer) Text(s string) { escapeTo(&w.buf, s) }

// Int writes n in decimal.
func (w *Writer) Int(n int64) { w.buf.WriteString(strconv.FormatInt(n, 10)) }

// Printf writes format with its verbs filled in, every argument
// formatted first and then escaped (see Escape).
func (w *Writer) Printf(format Markup, args ...any) {
	escaped := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case int:
			escaped[i] = v
		case int64:
			escaped[i] = v
		case string:
			escaped[i] = Escape(v)
		default:
			escaped[i] = Escape(fmt.Sprint(v))
		}
	}
	fmt.Fprintf(&w.buf, string(format), escaped...)
}

// Bytes is the document written so far.
func (w *Writer) Bytes() []byte { return w.buf.Bytes() }

// Escape is s for element text, RCDATA (<title>) or a quoted attribute
// value: the replacements of html/template's HTML escaper, so "<>&'\"+"
// become entities and U+0000 becomes U+FFFD; everything else, invalid
// UTF-8 included, is kept as it is. It is not for URL, script or style
// contexts, which no document here fills from data.
func Escape(s string) string {
	for i := 0; i < len(s); i++ {
		if replacement[s[i]] != "" {
			var b bytes.Buffer
			b.Grow(len(s) + 16)
			escapeTo(&b, s)
			return b.String()
		}
	}
	return s
}

// replacement is html/template's htmlReplacementTable. Every byte it
// replaces is ASCII, so scanning bytes rather than runes finds the same
// characters: no byte of a multi-byte UTF-8 sequence is below 0x80.
var replacement = [256]string{
	0:    "\uFFFD",
	'"':  "&#34;",
	'&':  "&amp;",
	'\'': "&#39;",
	'+':  "&#43;",
	'<':  "&lt;",
	'>':  "&gt;",
}

func escapeTo(b *bytes.Buffer, s string) {
	written := 0
	for i := 0; i < len(s); i++ {
		if r := replacement[s[i]]; r != "" {
			b.WriteString(s[written:i])
			b.WriteString(r)
			written = i + 1
		}
	}
	b.WriteString(s[written:])
}

package htmltext

import (
	"bytes"
	"html/template"
	"testing"
)

// oracle is html/template filling the three contexts the documents use:
// <title> (RCDATA), a quoted attribute value and element text.
var oracle = template.Must(template.New("").Parse(`<title>{{.}}</title><p title="{{.}}" class='{{.}}'>{{.}}</p>`))

func fromTemplate(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := oracle.Execute(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func fromWriter(s string) string {
	var w Writer
	w.Printf(`<title>%s</title><p title="%s" `, s, s)
	w.Raw(`class='`)
	w.Text(s)
	w.Raw(`'>`)
	w.Raw(Markup(Escape(s)))
	w.Raw(`</p>`)
	return string(w.Bytes())
}

var hostile = []string{
	"", "plain 文本", `<script>alert("x")</script>`, `"><img src=x onerror=alert(1)>`, `' onmouseover='x`,
	"a & b + c", "&amp;&#60;&lt;", "nul\x00byte\x00", "bad utf-8 \xff\xfe\xc3", "\ufffd\ufdd0\uffff\u2028\u0085",
	"{{.}}", "</title><script>", "<!-- -->", "]]>", "\x1b[31m\t\r\n",
}

// TestSameAsHTMLTemplate shows that Escape replaces what html/template
// replaces, in each context, and nothing else.
func TestSameAsHTMLTemplate(t *testing.T) {
	t.Parallel()
	for _, s := range hostile {
		if got, want := fromWriter(s), fromTemplate(t, s); got != want {
			t.Errorf("%q:\n got %q\nwant %q", s, got, want)
		}
	}
}

func TestEscape(t *testing.T) {
	t.Parallel()
	if got, want := Escape(`<a href="x">'1'+2 & 3</a>`+"\x00"), "&lt;a href=&#34;x&#34;&gt;&#39;1&#39;&#43;2 &amp; 3&lt;/a&gt;\ufffd"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	var w Writer
	w.Printf(`<td>%d</td><td>%s</td><td>%v</td>`, 7, "<b>", 1.5)
	w.Int(-3)
	if got, want := string(w.Bytes()), "<td>7</td><td>&lt;b&gt;</td><td>1.5</td>-3"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// FuzzSameAsHTMLTemplate explores beyond the seeds: go test -fuzz=Fuzz.
func FuzzSameAsHTMLTemplate(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := fromWriter(s), fromTemplate(t, s); got != want {
			t.Errorf("%q:\n got %q\nwant %q", s, got, want)
		}
	})
}

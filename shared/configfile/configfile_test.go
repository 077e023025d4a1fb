package configfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type doc struct {
	Name  string         `json:"name"`
	Items []item         `json:"items"`
	Extra map[string]int `json:"extra,omitempty"`
}

type item struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

func TestDecode(t *testing.T) {
	t.Parallel()
	for name, src := range map[string]string{
		"JSON": `{"name": "thing", "items": [{"key": "a", "count": 2}]}`,
		"YAML": "name: thing\nitems:\n  - key: a\n    count: 2\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var d doc
			if err := Decode([]byte(src), &d); err != nil {
				t.Fatal(err)
			}
			if d.Name != "thing" || len(d.Items) != 1 || d.Items[0] != (item{"a", 2}) {
				t.Fatalf("got %+v", d)
			}
		})
	}
}

// Every error is one line; none quotes a value of the file (the secret
// stands where a careless file might put one).
func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	const secret = "whsec_c2VjcmV0LWtleS0wMTIz"
	cases := []struct{ name, src, want string }{
		{"UnknownField", `{"name": "n", "itemz": []}`, `unknown field "itemz"`},
		{"UnknownNestedField", "items:\n  - key: a\n    cuont: 1\n", `unknown field "cuont"`},
		{"WrongType", `{"items": {"key": "` + secret + `"}}`, "items"},
		{"WrongTypeOfSecret", `{"name": ["` + secret + `"]}`, "name"},
		{"NotYAML", "items: [ {", "not valid JSON or YAML (yaml: line 1"},
		{"AnchorNamedLikeASecret", "name: *" + secret + "\n", "not valid JSON or YAML (yaml: "},
		{"DuplicateKey", "name: a\nname: " + secret + "\n", "not valid JSON or YAML (yaml: line"},
		{"TabIndent", "name: n\n\titems: []\n", "not valid JSON or YAML (yaml: line 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d doc
			err := Decode([]byte(tc.src), &d)
			if err == nil {
				t.Fatalf("Decode accepted %q", tc.src)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q, want one line containing %q", msg, tc.want)
			}
			if strings.Contains(msg, "c2VjcmV0") {
				t.Fatalf("error quotes the file's value: %q", msg)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	parse := func(b []byte) (*doc, error) {
		var d doc
		if err := Decode(b, &d); err != nil {
			return nil, err
		}
		if d.Name == "" {
			return nil, errors.New("name: is\n required")
		}
		return &d, nil
	}
	t.Run("OK", func(t *testing.T) {
		d, err := Load("THINGS_FILE", write("ok.yaml", "name: thing\n"), parse)
		if err != nil || d.Name != "thing" {
			t.Fatalf("got %+v, %v", d, err)
		}
	})
	t.Run("ErrMissing", func(t *testing.T) {
		_, err := Load("THINGS_FILE", filepath.Join(dir, "nope.yaml"), parse)
		if err == nil || !strings.HasPrefix(err.Error(), "THINGS_FILE: open ") || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("ErrParse", func(t *testing.T) {
		p := write("bad.yaml", "extra: {a: 1}\n")
		_, err := Load("THINGS_FILE", p, parse)
		if err == nil || err.Error() != "THINGS_FILE "+p+": name: is required" {
			t.Fatalf("got %v, want the variable, the path and the parser's error on one line", err)
		}
	})
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	if got := OneLine(" a\n\tb  c\r\n"); got != "a b c" {
		t.Fatalf("OneLine = %q", got)
	}
}

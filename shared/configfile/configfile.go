// Package configfile reads qinqing's configuration files — the routing
// rules (ROUTING_RULES_FILE), the subsidy policies (POLICIES_FILE), the
// portals (PORTALS_FILE) and the next one — all the same way: JSON or
// YAML, strict (an unknown field is an error: a misspelt key must not
// silently fall back to a default), and every error one line naming the
// variable and the file, which never quotes a value of the file.
package configfile

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

// Load reads the file at path, named by variable (say POLICIES_FILE),
// and parses it with parse. A file that cannot be read is "<variable>:
// <error>"; one parse refuses is "<variable> <path>: <error>", on one
// line (OneLine). An empty path is the caller's to handle (most files have
// a built-in default).
func Load[T any](variable, path string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", variable, err)
	}
	v, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %s", variable, path, OneLine(err.Error()))
	}
	return v, nil
}

// Decode decodes data, JSON or YAML, into v, which must name every field
// the file may have (JSON tags; YAML is converted to JSON first). Its
// errors: an unknown field or a value of the wrong type names the field
// (`unknown field "departement"`); a file that is not JSON or YAML at all
// is reported by its line, with the parser's own words only when they
// quote nothing of the file (they may quote an anchor or a key, which
// could be a secret pasted in the wrong place).
func Decode(data []byte, v any) error {
	err := yaml.UnmarshalStrict(data, v)
	if err == nil {
		return nil
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "error converting YAML to JSON: "); ok {
		rest = OneLine(rest)
		if strings.ContainsAny(rest, "'\"`") {
			rest = "yaml: unreadable"
			if line := yamlLine().FindString(msg); line != "" {
				rest = "yaml: " + line
			}
		}
		return fmt.Errorf("not valid JSON or YAML (%s)", rest)
	}
	for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return fmt.Errorf("%s", OneLine(msg))
}

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`line \d+`) })

// OneLine folds s onto one line, every run of white space one space.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

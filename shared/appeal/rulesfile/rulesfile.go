// Package rulesfile reads the appeal routing table from its file
// (ROUTING_RULES_FILE, JSON or YAML). It is apart from shared/appeal so
// that the functions which only name appeal's types (through the event
// contracts) do not link the YAML parser: appeal-router and open311 read
// the file, no other function does.
package rulesfile

import (
	"errors"
	"strings"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/configfile"
)

// Load reads the routing table from path (shared/configfile), or returns
// the built-in table when path is empty.
func Load(path string) (*appeal.Rules, error) {
	if path == "" {
		return appeal.DefaultRules(), nil
	}
	return configfile.Load("ROUTING_RULES_FILE", path, Parse)
}

// Parse parses and checks a routing table (appeal.Checked). Unknown
// fields are errors: a misspelt "counties" must not silently route
// everything to the default.
func Parse(data []byte) (*appeal.Rules, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, errors.New("the file is empty")
	}
	var r appeal.Rules
	if err := configfile.Decode(data, &r); err != nil {
		return nil, err
	}
	return appeal.Checked(r)
}

package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// secretPrefix starts every Standard Webhooks signing secret.
const secretPrefix = "whsec_"

// Portal is one existing portal that feeds qinqing over signed webhooks:
// its signing keys (several during a rotation) and the event types it may
// send.
type Portal struct {
	Name    string
	keys    [][]byte
	allowed map[string]bool
}

// Allows reports whether the portal may send events of type t.
func (p *Portal) Allows(t string) bool { return p.allowed[t] }

// AllowedTypes returns the portal's allow-list, sorted.
func (p *Portal) AllowedTypes() []string {
	out := make([]string, 0, len(p.allowed))
	for t := range p.allowed {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Portals maps a portal's name (the <portal> of POST /webhooks/<portal>) to
// its configuration.
type Portals map[string]*Portal

// portalsFile is the shape of PORTALS_FILE (contract section 1).
type portalsFile struct {
	Portals *map[string]portalEntry `json:"portals"`
}

type portalEntry struct {
	Secrets      []string `json:"secrets"`
	AllowedTypes []string `json:"allowedTypes"`
}

// portalName keeps names usable as one URL path segment.
var portalName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// LoadPortals reads PORTALS_FILE. Errors name the file and the offending
// entry, never a secret's value.
func LoadPortals(path string) (Portals, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("PORTALS_FILE: %w", err)
	}
	ps, err := ParsePortals(b)
	if err != nil {
		return nil, fmt.Errorf("PORTALS_FILE %s: %s", path, oneLine(redactSecrets(err.Error())))
	}
	return ps, nil
}

// ParsePortals parses the portals configuration, JSON or YAML. Unknown
// fields are errors: a misspelled "allowedtypes" must not silently leave a
// portal without types.
func ParsePortals(b []byte) (Portals, error) {
	var f portalsFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, parseError(err)
	}
	if f.Portals == nil {
		return nil, fmt.Errorf("portals: is required (shape: {\"portals\": {\"<name>\": {\"secrets\": [\"whsec_…\"], \"allowedTypes\": [\"…\"]}}})")
	}
	ps := Portals{}
	for name, e := range *f.Portals {
		field := "portals." + name
		if !portalName.MatchString(name) {
			return nil, fmt.Errorf("%s: portal name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", field)
		}
		p := &Portal{Name: name, allowed: map[string]bool{}}
		if len(e.Secrets) == 0 {
			return nil, fmt.Errorf("%s.secrets: at least one whsec_ secret is required", field)
		}
		for i, s := range e.Secrets {
			key, err := decodeSecret(s)
			if err != nil {
				return nil, fmt.Errorf("%s.secrets[%d]: %v", field, i, err)
			}
			p.keys = append(p.keys, key)
		}
		if len(e.AllowedTypes) == 0 {
			return nil, fmt.Errorf("%s.allowedTypes: at least one event type is required", field)
		}
		for i, t := range e.AllowedTypes {
			if t == "" || strings.ContainsAny(t, " \t\r\n") {
				return nil, fmt.Errorf("%s.allowedTypes[%d]: must be a non-empty event type without spaces", field, i)
			}
			p.allowed[t] = true
		}
		ps[name] = p
	}
	return ps, nil
}

// decodeSecret returns the HMAC key of a whsec_ secret: the base64-decoded
// part after the prefix. Its error never contains the secret.
func decodeSecret(s string) ([]byte, error) {
	if !strings.HasPrefix(s, secretPrefix) {
		return nil, fmt.Errorf("must start with %q", secretPrefix)
	}
	enc := strings.TrimPrefix(s, secretPrefix)
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(enc); err != nil {
			return nil, fmt.Errorf("the part after %q is not valid base64", secretPrefix)
		}
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("the key after %q is empty", secretPrefix)
	}
	return key, nil
}

// weakKeys names the portals with a key shorter than the 24 bytes the
// Standard Webhooks specification asks for (they are accepted, with a
// warning at start).
func (ps Portals) weakKeys() []string {
	var out []string
	for name, p := range ps {
		for _, k := range p.keys {
			if len(k) < 24 {
				out = append(out, name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

var (
	yamlLine   = regexp.MustCompile(`line \d+`)
	secretLike = regexp.MustCompile(`whsec_[A-Za-z0-9+/=_-]+`)
)

// parseError reports a file that is not valid YAML (or JSON) by its line
// only: the YAML parser quotes pieces of the input (anchor names, keys),
// which could be a secret.
func parseError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "converting YAML to JSON") {
		where := yamlLine.FindString(msg)
		if where != "" {
			where = " (at " + where + ")"
		}
		return fmt.Errorf("not valid JSON or YAML%s", where)
	}
	return errors.New(redactSecrets(msg))
}

// redactSecrets hides anything shaped like a whsec_ secret in a message
// (say, a secret pasted where a portal name or field name belongs).
func redactSecrets(s string) string {
	return secretLike.ReplaceAllString(s, "whsec_…")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

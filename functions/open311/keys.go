package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// minKeyLen is the shortest api_key accepted in the configuration: keys
// are bearer secrets sent with every call.
const minKeyLen = 16

// Keys maps each portal's Open311 api_keys to the portal. Keys are
// compared by their SHA-256 in constant time, so neither the map lookup
// nor the comparison depends on how much of a guessed key is right.
type Keys map[[32]byte]string

// Portal returns the portal an api_key belongs to.
func (k Keys) Portal(apiKey string) (string, bool) {
	sum := sha256.Sum256([]byte(apiKey))
	for h, portal := range k {
		if subtle.ConstantTimeCompare(h[:], sum[:]) == 1 {
			return portal, true
		}
	}
	return "", false
}

// Portals returns the names of the portals with at least one key.
func (k Keys) Portals() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range k {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// LoadKeys reads the apiKeys of PORTALS_FILE. Errors name the file and
// the entry, never a key.
func LoadKeys(path string) (Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("PORTALS_FILE: %w", err)
	}
	k, err := ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("PORTALS_FILE %s: %v", path, err)
	}
	return k, nil
}

// ParseKeys reads { "portals": { "<name>": { "apiKeys": [ "…" ] } } }
// (JSON or YAML). The other members of a portal (secrets, allowedTypes,
// notify) belong to webhook-ingress and webhook-egress and are ignored.
// A key given to two portals is an error: it could not say whose
// requests a caller may read.
func ParseKeys(b []byte) (Keys, error) {
	var f struct {
		Portals map[string]struct {
			APIKeys []string `json:"apiKeys"`
		} `json:"portals"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("not valid JSON or YAML")
	}
	names := make([]string, 0, len(f.Portals))
	for n := range f.Portals {
		names = append(names, n)
	}
	sort.Strings(names)
	k := Keys{}
	for _, n := range names {
		for i, key := range f.Portals[n].APIKeys {
			field := fmt.Sprintf("portals.%s.apiKeys[%d]", n, i)
			if len(key) < minKeyLen || strings.ContainsAny(key, " \t\r\n") {
				return nil, fmt.Errorf("%s: an api key must be at least %d characters without spaces", field, minKeyLen)
			}
			h := sha256.Sum256([]byte(key))
			if other, dup := k[h]; dup && other != n {
				return nil, fmt.Errorf("%s: the same key is given to portal %q", field, other)
			}
			k[h] = n
		}
	}
	return k, nil
}

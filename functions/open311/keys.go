package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"sort"

	"github.com/qinqing/qinqing/shared/portals"
)

// Keys maps each portal's Open311 api_keys (PORTALS_FILE `apiKeys`, read by
// shared/portals) to the portal. Keys are compared by their SHA-256 in
// constant time, so neither the look-up nor the comparison tells a caller
// how much of a guessed key is right.
type Keys map[[32]byte]string

// KeysOf collects the api_keys of every portal.
func KeysOf(set portals.Set) Keys {
	k := Keys{}
	for name, p := range set {
		for _, key := range p.APIKeys {
			k[sha256.Sum256([]byte(key))] = name
		}
	}
	return k
}

// Portal returns the portal an api_key belongs to.
func (k Keys) Portal(apiKey string) (string, bool) {
	sum := sha256.Sum256([]byte(apiKey))
	portal, found := "", false
	for h, p := range k {
		if subtle.ConstantTimeCompare(h[:], sum[:]) == 1 {
			portal, found = p, true
		}
	}
	return portal, found
}

// Portals returns the names of the portals with at least one key.
func (k Keys) Portals() []string {
	seen := map[string]bool{}
	out := []string{}
	for _, p := range k {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

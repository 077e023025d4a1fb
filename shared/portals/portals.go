// Package portals reads PORTALS_FILE, the one configuration of the portals
// that talk to qinqing (contract sections 1, 9, 12 and 13): what each
// portal may send us (its whsec_ secrets and allowed types, for
// webhook-ingress), where and what we send it (notify, for
// webhook-egress), and its API keys (for open311). Every function that
// reads the file reads it with Load, so they all accept and refuse the
// same files.
package portals

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/qinqing/qinqing/shared/configfile"
)

// secretPrefix starts every Standard Webhooks signing secret.
const secretPrefix = "whsec_"

// Portal is one existing portal: its signing keys for the webhooks it
// sends us (several during a rotation) and the event types it may send,
// where we notify it, and its API keys.
type Portal struct {
	Name    string
	keys    [][]byte
	allowed map[string]bool
	// Notify is where the portal receives its signed updates; nil when it
	// receives none.
	Notify *Notify
	// APIKeys are the keys the portal presents to the Open311 API (each
	// belongs to exactly one portal).
	APIKeys []string
}

// Inbound reports whether the portal sends us webhooks (it has secrets
// and allowed types).
func (p *Portal) Inbound() bool { return len(p.keys) > 0 }

// Allows reports whether the portal may send events of type t.
func (p *Portal) Allows(t string) bool { return p.allowed[t] }

// AllowedTypes returns the portal's allow-list, sorted.
func (p *Portal) AllowedTypes() []string { return sortedKeys(p.allowed) }

// Notify is a portal's outbound endpoint (contract section 12).
type Notify struct {
	// URL is the endpoint each update is POSTed to.
	URL *url.URL
	// keys sign the updates: the first signs, the others are kept for the
	// record of a rotation (Standard Webhooks signs with the current key).
	keys  [][]byte
	types map[string]bool
	// Insecure allows a plain http URL (development only).
	Insecure bool
	// AllowPrivate allows loopback, link-local, private and other
	// non-public addresses (development, or a portal inside the cluster).
	AllowPrivate bool
}

// Subscribes reports whether the portal receives events of type t.
func (n *Notify) Subscribes(t string) bool { return n.types[t] }

// Types returns the subscribed event types, sorted.
func (n *Notify) Types() []string { return sortedKeys(n.types) }

// Sign returns the webhook-signature header value for one update: "v1,"
// and the signature under the first notify secret.
func (n *Notify) Sign(id, timestamp string, body []byte) string {
	return signatureVersion + "," + Sign(n.keys[0], id, timestamp, body)
}

// Set maps a portal's name (the <portal> of POST /webhooks/<portal> and of
// the source /portals/<portal>) to its configuration.
type Set map[string]*Portal

// Subscribers returns the portals that receive events of type t, by name.
func (s Set) Subscribers(t string) []*Portal {
	var out []*Portal
	for _, p := range s {
		if p.Notify != nil && p.Notify.Subscribes(t) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ByAPIKey returns the portal an API key belongs to.
func (s Set) ByAPIKey(key string) (*Portal, bool) {
	for _, p := range s {
		for _, k := range p.APIKeys {
			if k == key {
				return p, true
			}
		}
	}
	return nil, false
}

// WeakKeys names the portals with a key (inbound or notify) shorter than
// the 24 bytes the Standard Webhooks specification asks for; they are
// accepted, with a warning at start. The names are for that log line, so
// a name shaped like a whsec_ secret (one pasted in the wrong place) is
// redacted.
func (s Set) WeakKeys() []string {
	var out []string
	for name, p := range s {
		keys := p.keys
		if p.Notify != nil {
			keys = append(append([][]byte(nil), keys...), p.Notify.keys...)
		}
		for _, k := range keys {
			if len(k) < 24 {
				out = append(out, Redact(name))
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// file is the shape of PORTALS_FILE.
type file struct {
	Portals *map[string]entry `json:"portals"`
}

type entry struct {
	Secrets      []string     `json:"secrets"`
	AllowedTypes []string     `json:"allowedTypes"`
	Notify       *notifyEntry `json:"notify"`
	APIKeys      []string     `json:"apiKeys"`
	// Insecure and AllowPrivate may also stand on the portal itself, as
	// contract section 12 words it ("the portal has "insecure": true");
	// either place sets them.
	Insecure     bool `json:"insecure"`
	AllowPrivate bool `json:"allowPrivate"`
}

type notifyEntry struct {
	URL          string   `json:"url"`
	Secrets      []string `json:"secrets"`
	Types        []string `json:"types"`
	Insecure     bool     `json:"insecure"`
	AllowPrivate bool     `json:"allowPrivate"`
}

// MinAPIKeyLen is the shortest Open311 api_key accepted: keys are bearer
// secrets sent with every call.
const MinAPIKeyLen = 16

// validPortalName keeps names usable as one URL path segment: 1 to 63
// ASCII letters, digits, '.', '_' or '-', the first a letter or digit.
// (A regular expression with {0,62} compiles to 62 copies of its class,
// about 0.1 ms of every start of the three functions that read portals.)
func validPortalName(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// Load reads PORTALS_FILE (shared/configfile). Errors are one line naming
// the file and the offending entry, never a secret's or key's value.
func Load(path string) (Set, error) {
	return configfile.Load("PORTALS_FILE", path, Parse)
}

// Parse parses the portals configuration, JSON or YAML. Unknown fields are
// errors: a misspelled "allowedtypes" must not silently leave a portal
// without types. A portal sends us webhooks (secrets and allowedTypes,
// both required together), receives them (notify), uses the Open311 API
// (apiKeys), or any of these; a portal with none of them is an error.
// Anything shaped like a whsec_ secret in an error (a secret pasted as a
// portal's name or a key) is redacted.
func Parse(b []byte) (Set, error) {
	ps, err := parse(b)
	if err != nil {
		return nil, errors.New(redactSecrets(err.Error()))
	}
	return ps, nil
}

func parse(b []byte) (Set, error) {
	var f file
	if err := configfile.Decode(b, &f); err != nil {
		return nil, err
	}
	if f.Portals == nil {
		return nil, fmt.Errorf("portals: is required (shape: {\"portals\": {\"<name>\": {\"secrets\": [\"whsec_…\"], \"allowedTypes\": [\"…\"]}}})")
	}
	ps := Set{}
	owner := map[string]string{} // API key → portal
	for _, name := range sortedKeys(*f.Portals) {
		e := (*f.Portals)[name]
		field := "portals." + name
		if !validPortalName(name) {
			return nil, fmt.Errorf("%s: portal name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", field)
		}
		p := &Portal{Name: name, allowed: map[string]bool{}}
		inbound := e.Secrets != nil || e.AllowedTypes != nil || (e.Notify == nil && e.APIKeys == nil)
		if inbound {
			if len(e.Secrets) == 0 {
				return nil, fmt.Errorf("%s.secrets: at least one whsec_ secret is required (a portal that only receives updates has notify instead)", field)
			}
			keys, err := decodeSecrets(field+".secrets", e.Secrets)
			if err != nil {
				return nil, err
			}
			p.keys = keys
			if len(e.AllowedTypes) == 0 {
				return nil, fmt.Errorf("%s.allowedTypes: at least one event type is required", field)
			}
			if err := addTypes(p.allowed, field+".allowedTypes", e.AllowedTypes); err != nil {
				return nil, err
			}
		}
		if e.Notify != nil {
			n, err := parseNotify(field+".notify", *e.Notify, e.Insecure, e.AllowPrivate)
			if err != nil {
				return nil, err
			}
			p.Notify = n
		} else if e.Insecure || e.AllowPrivate {
			return nil, fmt.Errorf("%s: insecure and allowPrivate concern the notify endpoint; the portal has no notify", field)
		}
		if e.APIKeys != nil {
			if len(e.APIKeys) == 0 {
				return nil, fmt.Errorf("%s.apiKeys: give at least one key or leave apiKeys out", field)
			}
			for i, k := range e.APIKeys {
				if len(k) < MinAPIKeyLen || strings.ContainsAny(k, " \t\r\n") || len(k) > 256 {
					return nil, fmt.Errorf("%s.apiKeys[%d]: must be %d-256 characters without spaces", field, i, MinAPIKeyLen)
				}
				if other, dup := owner[k]; dup {
					return nil, fmt.Errorf("%s.apiKeys[%d]: the same key is also given to portal %q; each key must identify one portal", field, i, other)
				}
				owner[k] = name
			}
			p.APIKeys = append([]string(nil), e.APIKeys...)
		}
		ps[name] = p
	}
	return ps, nil
}

// parseNotify checks a notify block: an absolute https URL (http only with
// insecure) without credentials, at least one secret and one type, and no
// literal non-public IP address unless allowPrivate. Host names are
// checked again when each connection is made (their addresses can change).
func parseNotify(field string, e notifyEntry, insecure, allowPrivate bool) (*Notify, error) {
	n := &Notify{types: map[string]bool{}, Insecure: e.Insecure || insecure, AllowPrivate: e.AllowPrivate || allowPrivate}
	if e.URL == "" {
		return nil, fmt.Errorf("%s.url: is required (the portal's https endpoint)", field)
	}
	u, err := url.Parse(e.URL)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%s.url: must be an absolute URL such as https://portal.example.com/qinqing/webhooks", field)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !n.Insecure {
			return nil, fmt.Errorf("%s.url: must be https; plain http is allowed only with \"insecure\": true (development)", field)
		}
	default:
		return nil, fmt.Errorf("%s.url: scheme must be https (or http with \"insecure\": true)", field)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s.url: must not carry a user name or password; updates are authenticated by their signature", field)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%s.url: must not have a #fragment", field)
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !n.AllowPrivate && !PublicAddr(ip) {
		return nil, fmt.Errorf("%s.url: is a loopback, link-local, private or other non-public address; allowed only with \"allowPrivate\": true", field)
	}
	n.URL = u
	if len(e.Secrets) == 0 {
		return nil, fmt.Errorf("%s.secrets: at least one whsec_ secret is required (the first signs)", field)
	}
	if n.keys, err = decodeSecrets(field+".secrets", e.Secrets); err != nil {
		return nil, err
	}
	if len(e.Types) == 0 {
		return nil, fmt.Errorf("%s.types: at least one event type is required", field)
	}
	if err := addTypes(n.types, field+".types", e.Types); err != nil {
		return nil, err
	}
	return n, nil
}

func decodeSecrets(field string, secrets []string) ([][]byte, error) {
	keys := make([][]byte, 0, len(secrets))
	for i, s := range secrets {
		key, err := DecodeSecret(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %v", field, i, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

func addTypes(set map[string]bool, field string, types []string) error {
	for i, t := range types {
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			return fmt.Errorf("%s[%d]: must be a non-empty event type without spaces", field, i)
		}
		set[t] = true
	}
	return nil
}

// DecodeSecret returns the HMAC key of a whsec_ secret: the base64-decoded
// part after the prefix (padded or not). Its error never contains the
// secret.
func DecodeSecret(s string) ([]byte, error) {
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

// PublicAddr reports whether ip is an ordinary public unicast address:
// not loopback, link-local, private (RFC 1918, fc00::/7), shared
// (100.64.0.0/10, where clusters often put pods and services),
// unspecified, multicast, broadcast, documentation, benchmarking or
// reserved. IPv4-mapped IPv6 addresses are judged as IPv4.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsPrivate() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"64:ff9b:1::/48", "100::/64", "2001:db8::/32", "2002::/16",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// secretLike is compiled on first use: only error messages and log
// lines that name a portal need it, not a start.
var secretLike = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`whsec_[A-Za-z0-9+/=_-]+`) })

// redactSecrets hides anything shaped like a whsec_ secret in a message
// (say, a secret pasted where a portal name or field name belongs).
func redactSecrets(s string) string {
	return secretLike().ReplaceAllString(s, "whsec_…")
}

// Redact hides anything shaped like a whsec_ secret in s, for log lines
// that name a portal (a name may be a secret pasted in the wrong place).
func Redact(s string) string { return redactSecrets(s) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

package portals

import (
	"net/netip"
	"strings"
	"testing"
)

const (
	testSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherSecret = "whsec_c2Vjb25kIGtleQ=="
)

func TestParseNotify(t *testing.T) {
	t.Parallel()
	ps, err := Parse([]byte(`
portals:
  enterprise:
    secrets: [` + testSecret + `]
    allowedTypes: [cn.huzhou.appeal.submitted]
    notify:
      url: https://portal.example.com/qinqing/webhooks?channel=7
      secrets: [` + otherSecret + `, ` + testSecret + `]
      types: [cn.huzhou.appeal.updated, cn.huzhou.appeal.assigned]
    apiKeys: [open311-key-enterprise]
  receiver-only:
    notify: {url: "http://localhost:9999/hook", insecure: true, allowPrivate: true, secrets: [` + testSecret + `], types: [cn.huzhou.appeal.updated]}
  flags-on-the-portal:
    insecure: true
    notify: {url: "http://portal.example.com/", secrets: [` + testSecret + `], types: [t]}
`))
	if err != nil {
		t.Fatal(err)
	}
	e := ps["enterprise"]
	if !e.Inbound() || !e.Allows("cn.huzhou.appeal.submitted") || e.Notify == nil || e.Notify.URL.Host != "portal.example.com" ||
		e.Notify.Insecure || e.Notify.AllowPrivate || strings.Join(e.Notify.Types(), ",") != "cn.huzhou.appeal.assigned,cn.huzhou.appeal.updated" {
		t.Fatalf("enterprise: %+v %+v", e, e.Notify)
	}
	// The first notify secret signs.
	key, _ := DecodeSecret(otherSecret)
	if got, want := e.Notify.Sign("id", "1", []byte("b")), "v1,"+Sign(key, "id", "1", []byte("b")); got != want {
		t.Fatalf("signed %s, want %s (the first secret)", got, want)
	}
	r := ps["receiver-only"]
	if r.Inbound() || !r.Notify.Insecure || !r.Notify.AllowPrivate {
		t.Fatalf("receiver-only: %+v %+v", r, r.Notify)
	}
	if !ps["flags-on-the-portal"].Notify.Insecure {
		t.Fatal("insecure on the portal itself was not applied to its notify endpoint")
	}
	if p, ok := ps.ByAPIKey("open311-key-enterprise"); !ok || p.Name != "enterprise" {
		t.Fatalf("ByAPIKey: %v %v", p, ok)
	}
	if _, ok := ps.ByAPIKey("nope"); ok {
		t.Fatal("unknown key found")
	}
	var names []string
	for _, p := range ps.Subscribers("cn.huzhou.appeal.updated") {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "enterprise,receiver-only" {
		t.Fatalf("subscribers %v", names)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	n := func(body string) string {
		return `{"portals": {"p": {"notify": ` + strings.ReplaceAll(body, "S", `"`+testSecret+`"`) + `}}}`
	}
	for name, tc := range map[string]struct{ file, want string }{
		"ErrHTTP":          {n(`{"url": "http://example.com/", "secrets": [S], "types": ["t"]}`), "portals.p.notify.url: must be https"},
		"ErrScheme":        {n(`{"url": "ftp://example.com/", "secrets": [S], "types": ["t"]}`), "scheme must be https"},
		"ErrRelative":      {n(`{"url": "/hook", "secrets": [S], "types": ["t"]}`), "absolute URL"},
		"ErrLoopback":      {n(`{"url": "https://127.0.0.1:8443/", "secrets": [S], "types": ["t"]}`), "non-public"},
		"ErrMappedPrivate": {n(`{"url": "https://[::ffff:10.0.0.1]/", "secrets": [S], "types": ["t"]}`), "non-public"},
		"ErrCGNAT":         {n(`{"url": "https://100.64.1.1/", "secrets": [S], "types": ["t"]}`), "non-public"},
		"ErrNoURL":         {n(`{"secrets": [S], "types": ["t"]}`), "notify.url: is required"},
		"ErrNoSecrets":     {n(`{"url": "https://example.com/", "types": ["t"]}`), "notify.secrets"},
		"ErrBadSecret":     {n(`{"url": "https://example.com/", "secrets": ["whsec_***"], "types": ["t"]}`), "notify.secrets[0]"},
		"ErrNoTypes":       {n(`{"url": "https://example.com/", "secrets": [S]}`), "notify.types"},
		"ErrFlagsNoNotify": {`{"portals": {"p": {"insecure": true, "apiKeys": ["k"]}}}`, "has no notify"},
		"ErrEmptyPortal":   {`{"portals": {"p": {}}}`, "portals.p.secrets"},
		"ErrSharedAPIKey":  {`{"portals": {"a": {"apiKeys": ["k1-0123456789abcdef"]}, "b": {"apiKeys": ["k1-0123456789abcdef"]}}}`, "also given to portal"},
		"ErrShortAPIKey":   {`{"portals": {"a": {"apiKeys": ["k1"]}}}`, "apiKeys[0]: must be 16-256"},
		"ErrEmptyAPIKeys":  {`{"portals": {"a": {"apiKeys": []}}}`, "apiKeys"},
		"ErrSpaceInAPIKey": {`{"portals": {"a": {"apiKeys": ["a b-0123456789abcdef"]}}}`, "apiKeys[0]"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "MfKQ9r8") || strings.Contains(err.Error(), "k1") && name != "ErrSharedAPIKey" {
				t.Fatalf("error reveals a secret: %v", err)
			}
		})
	}
}

func TestPublicAddr(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2001:4860:4860::8888": true, "114.114.114.114": true,
		"127.0.0.1": false, "::1": false, "10.96.0.1": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fd00::1": false, "100.64.0.1": false, "0.0.0.0": false,
		"::": false, "224.0.0.1": false, "::ffff:127.0.0.1": false, "255.255.255.255": false, "192.0.2.1": false,
	} {
		if got := PublicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

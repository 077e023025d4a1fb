package portals

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseSignatures(t *testing.T) {
	t.Parallel()
	sig := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	cases := []struct {
		name   string
		header string
		want   int
	}{
		{"One", "v1," + sig, 1},
		{"Several", "v1," + sig + " v1," + sig, 2},
		{"ExtraSpaces", "  v1," + sig + "   v1," + sig + " ", 2},
		{"OtherVersionsSkipped", "v1a,AAAA v2," + sig + " v1," + sig, 1},
		{"BadBase64Skipped", "v1,***** v1," + sig, 1},
		{"ErrEmpty", "", 0},
		{"ErrOnlySpaces", "   ", 0},
		{"ErrNoComma", "v1" + sig, 0},
		{"ErrOnlyOtherVersions", "v1a," + sig, 0},
		{"ErrEmptySignature", "v1,", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSignatures(tc.header)
			if len(got) != tc.want || (tc.want == 0) != (err != nil) {
				t.Fatalf("got %d signatures, err %v; want %d", len(got), err, tc.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	// The worked example of docs/webhooks.md.
	p, err := Parse([]byte(`{"portals": {"enterprise": {"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "allowedTypes": ["cn.huzhou.appeal.submitted"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	portal := p["enterprise"]
	id, ts := "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "1796284800"
	body := []byte(`{"type":"cn.huzhou.appeal.submitted","data":{"title":"用地指标"}}`)
	now := time.Unix(1796284800, 0).Add(30 * time.Second)
	sig := "v1," + Sign(portal.keys[0], id, ts, body)
	if sig != docExampleSignature {
		t.Fatalf("signature = %s, want the documented %s", sig, docExampleSignature)
	}
	if got, err := portal.Verify(id, ts, sig, body, now); err != nil || got.Unix() != 1796284800 {
		t.Fatalf("Verify = %v, %v", got, err)
	}
	for name, tc := range map[string]struct{ id, ts, sig string }{
		"ErrID":       {"msg_other", ts, sig},
		"ErrTS":       {id, "1796284801", sig},
		"ErrStale":    {id, ts, sig},
		"ErrNoHeader": {id, ts, ""},
	} {
		at := now
		if name == "ErrStale" {
			at = now.Add(5 * time.Minute)
		}
		if _, err := portal.Verify(tc.id, tc.ts, tc.sig, body, at); err == nil {
			t.Errorf("%s: verified, want an error", name)
		} else if strings.Contains(err.Error(), "MfKQ9r8") {
			t.Errorf("%s: error reveals the secret: %v", name, err)
		}
	}
}

// docExampleSignature is the signature shown in docs/webhooks.md.
const docExampleSignature = "v1,UbRkQAsr87arBsBtZeOvMFi03PB7SsodRRBG9kdpSOw="

// FuzzParseSignatures checks the header parser never panics, returns
// only non-empty v1 signatures, and finds every well-formed entry.
func FuzzParseSignatures(f *testing.F) {
	for _, s := range []string{
		"", " ", "v1,", ",", "v1,,", "v1,AAAA", "v1,AAA=", "v1,AA==  v1a,BBBB",
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,bm9wZQ==",
		"v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
		"\tv1,AAAA\nv1,BBBB\r", "v1,AAAA,BBBB", "V1,AAAA", "v1 ,AAAA",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		sigs, err := ParseSignatures(header)
		if (err == nil) != (len(sigs) > 0) {
			t.Fatalf("%q: %d signatures with err %v", header, len(sigs), err)
		}
		for _, s := range sigs {
			if len(s) == 0 {
				t.Fatalf("%q: empty signature", header)
			}
		}
		// Re-encoding what was found parses to the same signatures.
		parts := make([]string, len(sigs))
		for i, s := range sigs {
			parts[i] = "v1," + base64.StdEncoding.EncodeToString(s)
		}
		again, err := ParseSignatures(strings.Join(parts, " "))
		if len(sigs) > 0 && (err != nil || len(again) != len(sigs)) {
			t.Fatalf("%q: round trip gave %d signatures (%v), want %d", header, len(again), err, len(sigs))
		}
		for i := range again {
			if string(again[i]) != string(sigs[i]) {
				t.Fatalf("%q: round trip changed signature %d", header, i)
			}
		}
	})
}

// FuzzVerify checks that whatever the id, timestamp offset and body, a
// webhook signed with a portal's key verifies, and the same webhook with
// one byte of the body changed does not.
func FuzzVerify(f *testing.F) {
	f.Add("msg_1", int64(0), []byte(`{"type":"t","data":{}}`), byte(0))
	f.Add("", int64(299), []byte{}, byte(7))
	f.Add("msg.with.dots", int64(-301), []byte("\x00\xff"), byte(255))
	ps, err := Parse([]byte(`{"portals": {"p": {"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kIGtleQ=="], "allowedTypes": ["t"]}}}`))
	if err != nil {
		f.Fatal(err)
	}
	p := ps["p"]
	now := time.Unix(1796284800, 0)
	f.Fuzz(func(t *testing.T, id string, offset int64, body []byte, flip byte) {
		offset %= 3600
		ts := now.Add(time.Duration(offset) * time.Second).Unix()
		tss := strconv.FormatInt(ts, 10)
		sig := "v1," + Sign(p.keys[1], id, tss, body)
		_, err := p.Verify(id, tss, sig, body, now)
		fresh := offset >= -300 && offset <= 300
		if id == "" || !fresh {
			if err == nil {
				t.Fatalf("verified id %q offset %d", id, offset)
			}
			return
		}
		if err != nil {
			t.Fatalf("id %q offset %d: %v", id, offset, err)
		}
		if len(body) > 0 {
			tampered := append([]byte(nil), body...)
			tampered[int(flip)%len(tampered)] ^= 0x01
			if _, err := p.Verify(id, tss, sig, tampered, now); err == nil {
				t.Fatalf("tampered body verified")
			}
		}
	})
}

// FuzzParse checks the PORTALS_FILE parser never panics, that
// what it accepts is usable (a portal that sends webhooks has a key and a
// type, one that is notified has a URL, a key and a type, and every portal
// does at least one of these or has API keys), and that the error Load
// prints never shows anything shaped like a secret.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"portals": {"p": {"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "allowedTypes": ["t"]}}}`))
	f.Add([]byte("portals:\n  p:\n    secrets: [whsec_c2Vjb25kIGtleQ]\n    allowedTypes: [a, b]\n"))
	f.Add([]byte(`{"portals": {"p": {"secrets": ["whsec_secret-not-base64"], "allowedTypes": ["t"]}}}`))
	f.Add([]byte(`{"portals": {"p": {"secrets": ["plain-secret-value"], "allowedTypes": ["t"]}}}`))
	f.Add([]byte(`{"portals": null}`))
	f.Add([]byte("{*whsec_c2Vjb25kIGtleQ"))
	f.Add([]byte(`{"portals": {"whsec_c2Vjb25kIGtleQ": {}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := Parse(b)
		if err != nil {
			// What Load prints: nothing shaped like a secret.
			if msg := redactSecrets(err.Error()); regexp.MustCompile(`whsec_[A-Za-z0-9+/=_-]`).MatchString(msg) {
				t.Fatalf("error repeats a secret: %v", msg)
			}
			return
		}
		for name, p := range ps {
			inbound := len(p.keys) > 0 && len(p.allowed) > 0
			notified := p.Notify != nil && p.Notify.URL != nil && len(p.Notify.keys) > 0 && len(p.Notify.types) > 0
			if p.Name != name || !(inbound || notified || len(p.APIKeys) > 0) || (len(p.keys) > 0) != (len(p.allowed) > 0) || !portalNameRule.MatchString(name) {
				t.Fatalf("accepted unusable portal %q: %+v", name, p)
			}
			for _, k := range p.keys {
				if len(k) == 0 {
					t.Fatalf("portal %q has an empty key", name)
				}
			}
		}
	})
}

package main

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeErrorData(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct{ name, raw, want string }{
		{"Base64Text", b64(`{"error":"database is down"}`), `{"error":"database is down"}`},
		{"Base64Chinese", b64("数据库不可用"), "数据库不可用"},
		{"PlainText", "upstream connect error", "upstream connect error"},
		{"PlainWordThatIsBase64", "test", "test"},
		{"Binary", base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff}), base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff})},
		{"Empty", "", ""},
		{"PlainWordDecodingToAPrefix", "abcd", "abcd"},
		{"CutByKnative", base64.StdEncoding.EncodeToString([]byte("ab" + strings.Repeat("数据库", 100)))[:1024], "ab" + strings.Repeat("数据库", 85)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := decodeErrorData(tc.raw); got != tc.want {
				t.Fatalf("decodeErrorData(%q) = %q, want %q", tc.raw, got, tc.want)
			}
		})
	}
}

// FuzzDecodeErrorData checks that decoding knativeerrordata never panics,
// always gives valid text or the raw value, and recovers any printable
// text Knative encoded (also when the encoding was cut at 1024 characters).
func FuzzDecodeErrorData(f *testing.F) {
	for _, s := range []string{"", "test", "upstream connect error", "eyJlcnJvciI6ImRvd24ifQ==", "5pWw5o2u5bqT", "AAEC/w==", "====", "a==="} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, encode bool) {
		raw := s
		if encode {
			raw = base64.StdEncoding.EncodeToString([]byte(s))
			if len(raw) > 1024 {
				raw = raw[:1024]
			}
		}
		got := decodeErrorData(raw)
		if got != raw && !utf8.ValidString(got) {
			t.Fatalf("decodeErrorData(%q) = %q: neither raw nor text", raw, got)
		}
		if encode && s != "" && utf8.ValidString(s) && printable(s) && len(raw) < 1024 && got != s {
			t.Fatalf("decodeErrorData(base64(%q)) = %q", s, got)
		}
		if encode && got != raw && !strings.HasPrefix(s, got) {
			t.Fatalf("decodeErrorData(base64(%q)) = %q, not a prefix", s, got)
		}
	})
}

package portals

import (
	"regexp"
	"strings"
	"testing"
)

// portalNameRule is the regular expression validPortalName replaced.
var portalNameRule = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// TestValidPortalName: the hand-written rule accepts exactly what the
// regular expression it replaced accepted.
func TestValidPortalName(t *testing.T) {
	names := []string{"", "a", "Z", "0", "enterprise", "gov-portal", "x-1.b_c", "a.", "a-", "a_",
		"-a", ".a", "_a", "a b", "a/b", "a\n", "名", "a名", "a%2F", "A" + strings.Repeat("b", 62), "A" + strings.Repeat("b", 63),
		strings.Repeat("-", 5), "a\x00", "a+b", "a~b", "a:b"}
	for c := 0; c < 256; c++ {
		names = append(names, string(rune(c)), "a"+string([]byte{byte(c)}), string([]byte{byte(c)})+"a")
	}
	for _, n := range names {
		if got, want := validPortalName(n), portalNameRule.MatchString(n); got != want {
			t.Errorf("validPortalName(%q) = %v, the rule says %v", n, got, want)
		}
	}
}

package appeal

import (
	"testing"
)

func TestDefaultRules(t *testing.T) {
	t.Parallel()
	r := DefaultRules()
	cases := []struct{ category, county, want string }{
		{"land", "anji", "anji-natural-resources"},
		{"land", "city", "natural-resources"},
		{"  Land ", "deqing", "deqing-natural-resources"},
		{"finance", "anji", "financial-work"},
		{"energy", "changxing", "power-supply"},
		{"licensing", "nanxun", "nanxun-market-supervision"},
		{"", "city", "yingshang-office"},
		{"unheard-of", "wuxing", "yingshang-office"},
	}
	for _, c := range cases {
		if got := r.Route(c.category, c.county); got != c.want {
			t.Errorf("Route(%q, %q) = %q, want %q", c.category, c.county, got, c.want)
		}
	}
}

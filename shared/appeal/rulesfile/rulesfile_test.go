package rulesfile

import (
	"strings"
	"testing"
)

const rulesJSON = `{ "defaultDepartment": "triage-desk", "rules": [
  { "category": "land", "department": "natural-resources", "counties": { "anji": "anji-natural-resources" } },
  { "category": "tax", "department": "tax" } ] }`

const rulesYAML = `
defaultDepartment: triage-desk
rules:
  - category: land
    department: natural-resources
    counties:
      anji: anji-natural-resources
  - category: tax
    department: tax
`

func TestParse(t *testing.T) {
	t.Parallel()
	for name, src := range map[string]string{"JSON": rulesJSON, "YAML": rulesYAML} {
		t.Run(name, func(t *testing.T) {
			r, err := Parse([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct{ category, county, want string }{
				{"land", "anji", "anji-natural-resources"}, {"land", "wuxing", "natural-resources"},
				{"tax", "anji", "tax"}, {"energy", "city", "triage-desk"},
			} {
				if got := r.Route(c.category, c.county); got != c.want {
					t.Errorf("Route(%q, %q) = %q, want %q", c.category, c.county, got, c.want)
				}
			}
		})
	}
	t.Run("DefaultDepartmentWhenOmitted", func(t *testing.T) {
		r, err := Parse([]byte(`{"rules": []}`))
		if err != nil || r.Route("land", "city") != "yingshang-office" {
			t.Fatalf("got %v, %v", r, err)
		}
	})
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, src, want string }{
		{"Empty", "  \n", "empty"},
		{"NotYAML", "rules: [ {", "yaml"},
		{"UnknownField", `{"rules": [{"category": "land", "department": "x", "county": {"anji": "y"}}]}`, "unknown field"},
		{"MistypedRules", `{"rules": {"land": "x"}}`, "rules"},
		{"MissingCategory", `{"rules": [{"department": "x"}]}`, "rules[0].category"},
		{"MissingDepartment", `{"rules": [{"category": "land"}]}`, "rules[0].department"},
		{"DuplicateCategory", `{"rules": [{"category": "land", "department": "x"}, {"category": "LAND", "department": "y"}]}`, "rules[1].category"},
		{"UnknownCounty", `{"rules": [{"category": "land", "department": "x", "counties": {"hangzhou": "y"}}]}`, "rules[0].counties"},
		{"EmptyOverride", `{"rules": [{"category": "land", "department": "x", "counties": {"anji": ""}}]}`, "rules[0].counties.anji"},
		{"BadDepartmentCode", `{"rules": [{"category": "land", "department": "自然资源局 x"}]}`, "rules[0].department"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src))
			if err == nil {
				t.Fatalf("Parse accepted %s", c.src)
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, want one line mentioning %q", err, c.want)
			}
		})
	}
}

// A rule may describe its category as an Open311 service; Lookup finds
// it as Route matches categories.
func TestRuleServiceFields(t *testing.T) {
	t.Parallel()
	r, err := Parse([]byte(`rules:
  - category: Land
    department: natural-resources
    name: 用地 Land use
    description: Land-use certificates and approvals
    keywords: [land, 用地]
    group: planning and land
`))
	if err != nil {
		t.Fatal(err)
	}
	rule, ok := r.Lookup(" land ")
	if !ok || rule.Code() != "land" || rule.Name != "用地 Land use" || rule.Group != "planning and land" ||
		len(rule.Keywords) != 2 || rule.Description == "" {
		t.Fatalf("Lookup = %+v, %v", rule, ok)
	}
	if _, ok := r.Lookup("tax"); ok {
		t.Fatal("Lookup found a category without a rule")
	}
}

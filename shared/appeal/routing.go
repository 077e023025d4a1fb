package appeal

import (
	"fmt"
	"sort"
	"strings"

	"github.com/qinqing/qinqing/shared/event"
)

// Rules is the routing table (ROUTING_RULES_FILE): category → department,
// with per-county overrides; what matches no rule goes to
// DefaultDepartment for manual triage.
type Rules struct {
	DefaultDepartment string `json:"defaultDepartment"`
	Rules             []Rule `json:"rules"`

	byCategory map[string]Rule
}

// Rule routes one category. Name, Description, Keywords and Group are
// optional and describe the category as an Open311 service
// (functions/open311); without them the service is named by
// CategoryName.
type Rule struct {
	Category    string            `json:"category"`
	Department  string            `json:"department"`
	Counties    map[string]string `json:"counties,omitempty"`
	Name        string            `json:"name,omitempty"`
	Description string            `json:"description,omitempty"`
	Keywords    []string          `json:"keywords,omitempty"`
	Group       string            `json:"group,omitempty"`
}

// Lookup returns the rule of a category, matched as Route matches it.
func (r *Rules) Lookup(category string) (Rule, bool) {
	rule, ok := r.byCategory[normCategory(category)]
	return rule, ok
}

// Code is the rule's category as a service code: trimmed, lower case.
func (rule Rule) Code() string { return normCategory(rule.Category) }

// Route returns the department for an appeal's category and county.
// Categories match case-insensitively after trimming spaces.
func (r *Rules) Route(category, county string) string {
	rule, ok := r.byCategory[normCategory(category)]
	if !ok {
		return r.DefaultDepartment
	}
	if d, ok := rule.Counties[county]; ok {
		return d
	}
	return rule.Department
}

func normCategory(c string) string { return strings.ToLower(strings.TrimSpace(c)) }

// Checked returns the routing table r checked and ready for Route and
// Lookup (shared/appeal/rulesfile reads one from a file). A missing
// DefaultDepartment is the business environment office; duplicate
// categories, unknown counties and empty departments are errors.
func Checked(r Rules) (*Rules, error) {
	if r.DefaultDepartment == "" {
		r.DefaultDepartment = DefaultDepartment
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *Rules) check() error {
	if err := event.ValidateID("defaultDepartment", r.DefaultDepartment); err != nil {
		return err
	}
	r.byCategory = make(map[string]Rule, len(r.Rules))
	for i, rule := range r.Rules {
		f := fmt.Sprintf("rules[%d]", i)
		c := normCategory(rule.Category)
		if c == "" {
			return fmt.Errorf("%s.category: is required", f)
		}
		if _, dup := r.byCategory[c]; dup {
			return fmt.Errorf("%s.category: %q has a rule already", f, rule.Category)
		}
		if err := event.ValidateID(f+".department", rule.Department); err != nil {
			return err
		}
		counties := make([]string, 0, len(rule.Counties))
		for county := range rule.Counties {
			counties = append(counties, county)
		}
		sort.Strings(counties)
		for _, county := range counties {
			if err := event.ValidateCounty(f+".counties", county); err != nil {
				return err
			}
			if err := event.ValidateID(f+".counties."+county, rule.Counties[county]); err != nil {
				return err
			}
		}
		r.byCategory[c] = rule
	}
	return nil
}

// DefaultRules is the built-in table of Huzhou's departments, used when
// ROUTING_RULES_FILE is unset. Land and market registration are county
// matters, so the counties' own bureaus take those from their county.
func DefaultRules() *Rules {
	countyBureaus := func(suffix string) map[string]string {
		m := map[string]string{}
		for _, c := range []string{"wuxing", "nanxun", "deqing", "changxing", "anji"} {
			m[c] = c + "-" + suffix
		}
		return m
	}
	r := &Rules{DefaultDepartment: DefaultDepartment, Rules: []Rule{
		{Category: "land", Department: "natural-resources", Counties: countyBureaus("natural-resources")},
		{Category: "planning", Department: "natural-resources", Counties: countyBureaus("natural-resources")},
		{Category: "construction", Department: "housing-construction"},
		{Category: "finance", Department: "financial-work"},
		{Category: "tax", Department: "tax"},
		{Category: "energy", Department: "power-supply"},
		{Category: "project", Department: "development-reform"},
		{Category: "policy", Department: "economy-information"},
		{Category: "talent", Department: "human-resources"},
		{Category: "employment", Department: "human-resources"},
		{Category: "market", Department: "market-supervision", Counties: countyBureaus("market-supervision")},
		{Category: "licensing", Department: "market-supervision", Counties: countyBureaus("market-supervision")},
		{Category: "environment", Department: "ecology-environment"},
		{Category: "transport", Department: "transport"},
		{Category: "trade", Department: "commerce"},
		{Category: "technology", Department: "science-technology"},
		{Category: "water", Department: "water-resources"},
		{Category: "safety", Department: "emergency-management"},
		{Category: "legal", Department: "justice"},
		{Category: "data", Department: "data-bureau"},
	}}
	if err := r.check(); err != nil {
		panic("built-in routing table: " + err.Error())
	}
	return r
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strconv"

	"github.com/qinqing/qinqing/shared/configfile"
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
)

// Policy is one subsidy policy of POLICIES_FILE (contract section 6): which
// event triggers it, which of the event's fields must hold which values,
// how much it pays, its total budget and the most one enterprise may get
// from it in a calendar year.
type Policy struct {
	PolicyID string `json:"policyId"`
	Name     string `json:"name"`
	Trigger  string `json:"trigger"`
	// Match maps a field of the trigger's data to the value it must have.
	Match map[string]any `json:"match,omitempty"`
	// AmountFen is the fixed amount; for cn.huzhou.subsidy.requested the
	// most one request may be paid.
	AmountFen *int64 `json:"amountFen,omitempty"`
	// RateBasisPoints pays ⌊investmentFen × rate / 10000⌋, at most CapFen.
	RateBasisPoints *int64 `json:"rateBasisPoints,omitempty"`
	CapFen          *int64 `json:"capFen,omitempty"`
	// BudgetFen is the policy's total budget; what is left of it is a
	// ledger balance.
	BudgetFen *int64 `json:"budgetFen"`
	// PerEnterpriseYearCapFen bounds what one enterprise gets from the
	// policy per calendar year of approval; absent or 0: no yearly cap.
	PerEnterpriseYearCapFen *int64 `json:"perEnterpriseYearCapFen,omitempty"`
}

// PolicyFile is the shape of POLICIES_FILE.
type PolicyFile struct {
	Policies []Policy `json:"policies"`
}

// triggerFields are the data fields each trigger offers to match on.
var triggerFields = map[string]map[string]string{
	contract.TypeHonourAwarded:     {"uscc": "string", "enterpriseName": "string", "honour": "string", "year": "integer"},
	contract.TypeMilestoneApproved: {"projectId": "string", "uscc": "string", "milestone": "string", "investmentFen": "integer"},
	contract.TypeSubsidyRequested:  {"policyId": "string", "uscc": "string", "basisId": "string", "amountFen": "integer"},
}

// DefaultPolicies are used when POLICIES_FILE is unset (docs/subsidy.md).
func DefaultPolicies() []Policy {
	fen := func(v int64) *int64 { return &v }
	return []Policy{
		{
			PolicyID:                "jinxiang-jinniu",
			Name:                    "金象金牛企业奖励 (Golden Elephant & Golden Ox enterprise award)",
			Trigger:                 contract.TypeHonourAwarded,
			Match:                   map[string]any{"honour": "金象金牛"},
			AmountFen:               fen(100_000_000), // 1,000,000 CNY
			BudgetFen:               fen(3_000_000_000),
			PerEnterpriseYearCapFen: fen(100_000_000),
		},
		{
			PolicyID:                "major-project-milestone",
			Name:                    "重大项目节点奖励 (major project milestone reward)",
			Trigger:                 contract.TypeMilestoneApproved,
			RateBasisPoints:         fen(100), // 1 % of the investment
			CapFen:                  fen(50_000_000),
			BudgetFen:               fen(10_000_000_000),
			PerEnterpriseYearCapFen: fen(100_000_000),
		},
		{
			PolicyID:                "enterprise-support",
			Name:                    "惠企政策申请兑现 (requested enterprise support)",
			Trigger:                 contract.TypeSubsidyRequested,
			AmountFen:               fen(20_000_000), // at most 200,000 CNY per request
			BudgetFen:               fen(1_000_000_000),
			PerEnterpriseYearCapFen: fen(50_000_000),
		},
	}
}

// LoadPolicies reads and validates POLICIES_FILE (shared/configfile: JSON
// or YAML, unknown keys refused); an empty path gives DefaultPolicies. The
// error is one line naming the file and the offending field.
func LoadPolicies(path string) ([]Policy, error) {
	if path == "" {
		return DefaultPolicies(), nil
	}
	return configfile.Load("POLICIES_FILE", path, ParsePolicies)
}

// ParsePolicies parses and validates a policies document.
func ParsePolicies(raw []byte) ([]Policy, error) {
	var f PolicyFile
	if err := configfile.Decode(raw, &f); err != nil {
		return nil, err
	}
	if f.Policies == nil {
		return nil, errors.New("policies: is required (a list, possibly empty)")
	}
	seen := map[string]bool{}
	for i := range f.Policies {
		p := &f.Policies[i]
		if err := p.Validate(); err != nil {
			return nil, event.Prefix("policies["+strconv.Itoa(i)+"]", err)
		}
		if seen[p.PolicyID] {
			return nil, event.Invalid("policies["+strconv.Itoa(i)+"].policyId", "%q appears twice", p.PolicyID)
		}
		seen[p.PolicyID] = true
	}
	return f.Policies, nil
}

// Validate checks one policy.
func (p *Policy) Validate() error {
	if err := event.ValidateID("policyId", p.PolicyID); err != nil {
		return err
	}
	if err := event.FirstError(event.Required("name", p.Name), event.MaxLen("name", p.Name, 200)); err != nil {
		return err
	}
	fields, ok := triggerFields[p.Trigger]
	if !ok {
		return event.Invalid("trigger", "%q is not a subsidy trigger (want %s, %s or %s)",
			p.Trigger, contract.TypeHonourAwarded, contract.TypeMilestoneApproved, contract.TypeSubsidyRequested)
	}
	keys := make([]string, 0, len(p.Match))
	for k := range p.Match {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kind, ok := fields[k]
		if !ok {
			return event.Invalid("match."+k, "%s has no field %q", p.Trigger, k)
		}
		v, err := normaliseMatch(kind, p.Match[k])
		if err != nil {
			return event.Invalid("match."+k, "%v", err)
		}
		if form, ok := contract.SubsidyKeyForms[k]; ok {
			str := v.(string)
			if err := form("match."+k, &str); err != nil {
				return err
			}
			v = str
		}
		p.Match[k] = v
	}
	for _, a := range []struct {
		field string
		v     *int64
	}{{"amountFen", p.AmountFen}, {"capFen", p.CapFen}} {
		if a.v != nil && *a.v <= 0 {
			return event.Invalid(a.field, "must be a positive number of fen, got %d", *a.v)
		}
	}
	if p.RateBasisPoints != nil && (*p.RateBasisPoints < 1 || *p.RateBasisPoints > 10000) {
		return event.Invalid("rateBasisPoints", "must be between 1 and 10000, got %d", *p.RateBasisPoints)
	}
	switch p.Trigger {
	case contract.TypeHonourAwarded:
		if p.RateBasisPoints != nil {
			return event.Invalid("rateBasisPoints", "an honour has no amount to take a rate of: give amountFen")
		}
		if p.CapFen != nil {
			return event.Invalid("capFen", "an honour pays a fixed amountFen: capFen has no meaning")
		}
		if p.AmountFen == nil {
			return event.Invalid("amountFen", "is required")
		}
	case contract.TypeMilestoneApproved:
		switch {
		case p.AmountFen != nil && (p.RateBasisPoints != nil || p.CapFen != nil):
			return event.Invalid("amountFen", "give either amountFen or rateBasisPoints with capFen, not both")
		case p.AmountFen == nil && p.RateBasisPoints == nil:
			return event.Invalid("amountFen", "is required (or rateBasisPoints with capFen)")
		case p.RateBasisPoints != nil && p.CapFen == nil:
			return event.Invalid("capFen", "is required with rateBasisPoints")
		case p.RateBasisPoints == nil && p.CapFen != nil:
			return event.Invalid("rateBasisPoints", "is required with capFen")
		}
	case contract.TypeSubsidyRequested:
		if p.RateBasisPoints != nil {
			return event.Invalid("rateBasisPoints", "a requested subsidy pays the requested amount: give amountFen or capFen as its maximum")
		}
		if p.AmountFen != nil && p.CapFen != nil {
			return event.Invalid("capFen", "give amountFen or capFen as the maximum, not both")
		}
	}
	if p.BudgetFen == nil {
		return event.Invalid("budgetFen", "is required")
	}
	if *p.BudgetFen < 0 {
		return event.Invalid("budgetFen", "must not be negative, got %d", *p.BudgetFen)
	}
	if c := p.PerEnterpriseYearCapFen; c != nil && *c < 0 {
		return event.Invalid("perEnterpriseYearCapFen", "must not be negative, got %d", *c)
	}
	return nil
}

// normaliseMatch checks a match value against the field's kind and
// returns it in the form fits compares: a string, an int64 or a bool.
func normaliseMatch(kind string, v any) (any, error) {
	switch kind {
	case "string":
		if s, ok := v.(string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("must be a string, got %v", v)
	case "integer":
		if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), nil
		}
		return nil, fmt.Errorf("must be an integer, got %v", v)
	}
	return nil, fmt.Errorf("cannot match on a %s", kind)
}

// fits reports whether the policy applies to an event of type typ whose
// data has the given fields (strings and int64s).
func (p *Policy) fits(typ string, fields map[string]any) bool {
	if p.Trigger != typ {
		return false
	}
	for k, want := range p.Match {
		if fields[k] != want {
			return false
		}
	}
	return true
}

// amount is what the policy pays for an event: the fixed amount, the
// capped rate of basisFen, or (for requests) the requested amount at most
// the policy's maximum.
func (p *Policy) amount(basisFen int64) int64 {
	switch {
	case p.Trigger == contract.TypeSubsidyRequested:
		a := basisFen
		for _, max := range []*int64{p.AmountFen, p.CapFen} {
			if max != nil && a > *max {
				a = *max
			}
		}
		return a
	case p.AmountFen != nil:
		return *p.AmountFen
	default:
		return min(rate(basisFen, *p.RateBasisPoints), *p.CapFen)
	}
}

// rate is ⌊fen × basisPoints / 10000⌋ without overflow (fen ≥ 0,
// basisPoints ≤ 10000, so the result fits).
func rate(fen, basisPoints int64) int64 {
	hi, lo := bits.Mul64(uint64(fen), uint64(basisPoints))
	q, _ := bits.Div64(hi, lo, 10000)
	return int64(q)
}

// yearCap is the per-enterprise yearly cap, 0 for none.
func (p *Policy) yearCap() int64 {
	if p.PerEnterpriseYearCapFen == nil {
		return 0
	}
	return *p.PerEnterpriseYearCapFen
}

// definition is the policy as stored in subsidy.policies.
func (p *Policy) definition() []byte {
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return b
}

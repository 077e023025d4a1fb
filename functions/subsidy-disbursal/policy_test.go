package main

import (
	"math"
	"testing"

	"github.com/qinqing/qinqing/shared/contract"
)

func TestParsePolicies(t *testing.T) {
	t.Parallel()
	// The shape the Helm chart renders from its values (YAML here, JSON
	// in the ConfigMap): both parse to the same policies.
	yamlDoc := `
policies:
  - policyId: honour-specialised-sme-2026
    name: 专精特新奖励
    trigger: cn.huzhou.honour.awarded
    match:
      honour: specialised-sme
      year: 2026
    amountFen: 50000000
    budgetFen: 2000000000
    perEnterpriseYearCapFen: 100000000
  - policyId: project-milestone-2026
    name: 重大项目节点补助
    trigger: cn.huzhou.project.milestone.approved
    match:
      milestone: production-started
    rateBasisPoints: 200
    capFen: 300000000
    budgetFen: 5000000000
  - policyId: talent-housing-2026
    name: 人才安居补贴
    trigger: cn.huzhou.subsidy.requested
    amountFen: 2000000
    budgetFen: 300000000
`
	jsonDoc := `{"policies":[
	{"policyId":"honour-specialised-sme-2026","name":"专精特新奖励","trigger":"cn.huzhou.honour.awarded","match":{"honour":"specialised-sme","year":2026},"amountFen":50000000,"budgetFen":2000000000,"perEnterpriseYearCapFen":100000000},
	{"policyId":"project-milestone-2026","name":"重大项目节点补助","trigger":"cn.huzhou.project.milestone.approved","match":{"milestone":"production-started"},"rateBasisPoints":200,"capFen":300000000,"budgetFen":5000000000},
	{"policyId":"talent-housing-2026","name":"人才安居补贴","trigger":"cn.huzhou.subsidy.requested","amountFen":2000000,"budgetFen":300000000}]}`
	fromYAML, err := ParsePolicies([]byte(yamlDoc))
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := ParsePolicies([]byte(jsonDoc))
	if err != nil {
		t.Fatal(err)
	}
	for i := range fromYAML {
		if string(fromYAML[i].definition()) != string(fromJSON[i].definition()) {
			t.Errorf("policy %d: YAML %s, JSON %s", i, fromYAML[i].definition(), fromJSON[i].definition())
		}
	}
	honour := fromYAML[0]
	year2026 := (&contract.HonourAwarded{USCC: "x", Honour: "specialised-sme", Year: ptr(2026)}).Fields()
	year2025 := (&contract.HonourAwarded{USCC: "x", Honour: "specialised-sme", Year: ptr(2025)}).Fields()
	if !honour.fits(contract.TypeHonourAwarded, year2026) || honour.fits(contract.TypeHonourAwarded, year2025) || honour.fits(contract.TypeMilestoneApproved, year2026) {
		t.Errorf("match on honour and year does not select the 2026 award only")
	}
}

func ptr[T any](v T) *T { return &v }

func TestAmount(t *testing.T) {
	t.Parallel()
	rate := Policy{Trigger: contract.TypeMilestoneApproved, RateBasisPoints: ptr[int64](150), CapFen: ptr[int64](2000000)}
	fixed := Policy{Trigger: contract.TypeHonourAwarded, AmountFen: ptr[int64](100000000)}
	request := Policy{Trigger: contract.TypeSubsidyRequested, AmountFen: ptr[int64](500000)}
	requestCap := Policy{Trigger: contract.TypeSubsidyRequested, CapFen: ptr[int64](400000)}
	open := Policy{Trigger: contract.TypeSubsidyRequested}
	full := Policy{Trigger: contract.TypeMilestoneApproved, RateBasisPoints: ptr[int64](10000), CapFen: ptr[int64](math.MaxInt64)}
	cases := []struct {
		name  string
		p     Policy
		basis int64
		want  int64
	}{
		{"RateFloor", rate, 123456789, 1851851},
		{"RateOfZero", rate, 0, 0},
		{"RateOfOneFen", rate, 66, 0},
		{"RateCapped", rate, 500000000000, 2000000},
		{"RateNoOverflow", full, math.MaxInt64, math.MaxInt64},
		{"Fixed", fixed, 0, 100000000},
		{"RequestUnderMax", request, 300000, 300000},
		{"RequestOverMax", request, 900000, 500000},
		{"RequestOverCap", requestCap, 900000, 400000},
		{"RequestNoMax", open, 900000, 900000},
	}
	for _, tc := range cases {
		if got := tc.p.amount(tc.basis); got != tc.want {
			t.Errorf("%s: amount(%d) = %d, want %d", tc.name, tc.basis, got, tc.want)
		}
	}
}

func TestDefaultPoliciesAreValid(t *testing.T) {
	t.Parallel()
	for _, p := range DefaultPolicies() {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p.PolicyID, err)
		}
	}
}

func TestBasisKeysDoNotCollide(t *testing.T) {
	t.Parallel()
	a := (&contract.MilestoneApproved{ProjectID: "a/b", Milestone: "c"}).Basis()
	b := (&contract.MilestoneApproved{ProjectID: "a", Milestone: "b/c"}).Basis()
	if a == b {
		t.Fatalf("both bases are %s", a)
	}
}

func FuzzParsePolicies(f *testing.F) {
	f.Add([]byte(testPolicies))
	f.Add([]byte(`{"policies":[{"policyId":"p","name":"n","trigger":"cn.huzhou.project.milestone.approved","rateBasisPoints":10000,"capFen":1,"budgetFen":0}]}`))
	f.Add([]byte("policies: [ {"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ps, err := ParsePolicies(raw)
		if err != nil {
			return
		}
		// Whatever is accepted is valid and pays a non-negative amount.
		for _, p := range ps {
			if err := p.Validate(); err != nil {
				t.Fatalf("accepted %s: %v", p.definition(), err)
			}
			for _, basis := range []int64{0, 1, 123456789, math.MaxInt64} {
				if a := p.amount(basis); a < 0 {
					t.Fatalf("%s pays %d for %d", p.definition(), a, basis)
				}
			}
		}
	})
}

package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// settled waits until the policies the function writes at start are in
// the database, so that counting rows measures only what an event writes.
func (f *fixture) settled(t *testing.T) {
	t.Helper()
	ps, err := ParsePolicies([]byte(testPolicies))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.Count(t, `SELECT count(*) FROM subsidy.policies`) < int64(len(ps)) {
		if time.Now().After(deadline) {
			t.Fatal("policies not written within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spelling is one way of writing a business key and what the function
// must make of it: the same key as the first (same), or a 400 naming the
// field (refused).
type spelling struct {
	value   string
	refused bool
}

// TestMilestoneSpellingsPayOnce is finding 1 of issue 12: five events for
// one milestone, spelt five ways, were each paid. Now each spelling is
// either the same key (and a duplicate) or refused before anything is
// written: one payment at most.
func TestMilestoneSpellingsPayOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	f.settled(t)
	a := event.SampleUSCC(41)
	spellings := []spelling{
		{"production-started", false},
		{"production-started ", true},      // trailing space
		{"Production-Started", false},      // capitals: case does not matter
		{"production-started\u200b", true}, // zero-width space
		{"production\u2010started", true},  // U+2010 HYPHEN for '-'
		{"ｐｒｏｄｕｃｔｉｏｎ-started", false},      // full width: NFKC
		{" production-started", true},
		{"production-started\x00", true},
	}
	approvals := 0
	for i, s := range spellings {
		before := pgtest.Rows(t, f.Pool)
		r := f.send(t, contract.TypeMilestoneApproved, projectSource, at("2026-12-01 10:00"), milestoneData(a, "HZ-2026-0178", s.value, 100_000_000))
		if s.refused {
			if r.Status != 400 || r.Problem()["field"] != "milestone" {
				t.Fatalf("spelling %d %q: %d %s, want 400 naming milestone", i, s.value, r.Status, r.Body)
			}
			if after := pgtest.Rows(t, f.Pool); after != before {
				t.Fatalf("spelling %d %q: %d rows written by a 400", i, s.value, after-before)
			}
			continue
		}
		var d contract.SubsidyDecided
		if r.Status != 200 || r.Type() != contract.TypeSubsidyDecided {
			t.Fatalf("spelling %d %q: %d %s", i, s.value, r.Status, r.Body)
		}
		r.DataInto(t, &d)
		approvals += len(d.Approvals)
		if i > 0 && (len(d.Rejections) != 1 || d.Rejections[0].Reason != ReasonDuplicate) {
			t.Errorf("spelling %d %q: decided %+v, want one duplicate rejection", i, s.value, d)
		}
	}
	if approvals != 1 {
		t.Fatalf("%d approvals for one milestone, want 1", approvals)
	}
	if n := f.Count(t, `SELECT count(*) FROM subsidy.disbursements WHERE uscc = $1`, a); n != 1 {
		t.Fatalf("%d disbursements for one milestone, want 1", n)
	}
	f.checkLedger(t)
}

// TestBusinessKeyEquivalents: the other keys of an entitlement's basis
// (projectId, honour, basisId) and policyId behave like the milestone: one
// key per meaning, or a 400 naming the field with nothing written.
func TestBusinessKeyEquivalents(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	f.settled(t)
	cases := []struct {
		name, typ, source, field string
		data                     func(code, v string) map[string]any
		spellings                []spelling
	}{
		{"ProjectID", contract.TypeMilestoneApproved, projectSource, "projectId",
			func(code, v string) map[string]any { return milestoneData(code, v, "production-started", 100_000_000) },
			[]spelling{{"HZ-2026-0178", false}, {"hz-2026-0178", false}, {"ＨＺ-２０２６-０１７８", false},
				{"HZ-2026-0178 ", true}, {"HZ\u20102026-0178", true}, {"HZ-2026-0178\u200b", true}, {"HZ 2026 0178", true}}},
		{"Honour", contract.TypeHonourAwarded, honourSource, "honour",
			func(code, v string) map[string]any { return honourData(code, v, 2026) },
			[]spelling{{"金象金牛", false}, {"金象金牛\u3000", true}, {"金象\u200b金牛", true}, {"金象金牛 ", true}, {"金象金牛\x00", true}}},
		{"BasisID", contract.TypeSubsidyRequested, requestSource, "basisId",
			func(code, v string) map[string]any { return requestData("request", code, v, 300000) },
			[]spelling{{"talent-housing-2026-0042", false}, {"Talent-Housing-2026-0042", false}, {"ｔａｌｅｎｔ-housing-2026-0042", false},
				{"talent-housing-2026-0042 ", true}, {"talent\u2010housing-2026-0042", true}, {"talent-housing-2026-0042\u200b", true}}},
		{"PolicyID", contract.TypeSubsidyRequested, requestSource, "policyId",
			func(code, v string) map[string]any { return requestData(v, code, "basis-p", 300000) },
			[]spelling{{"request", false}, {"request ", true}, {"request\u200b", true}, {"req\u2010uest", true}, {"ｒｅｑｕｅｓｔ", true}}},
	}
	for n, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := event.SampleUSCC(60 + n)
			approvals := 0
			for i, s := range tc.spellings {
				before := pgtest.Rows(t, f.Pool)
				r := f.send(t, tc.typ, tc.source, at("2026-12-01 10:00"), tc.data(code, s.value))
				if s.refused {
					if r.Status != 400 || r.Problem()["field"] != tc.field {
						t.Fatalf("%q: %d %s, want 400 naming %s", s.value, r.Status, r.Body, tc.field)
					}
					if after := pgtest.Rows(t, f.Pool); after != before {
						t.Fatalf("%q: %d rows written by a 400", s.value, after-before)
					}
					continue
				}
				var d contract.SubsidyDecided
				if r.Status != 200 || r.Type() != contract.TypeSubsidyDecided {
					t.Fatalf("%q: %d %s", s.value, r.Status, r.Body)
				}
				r.DataInto(t, &d)
				approvals += len(d.Approvals)
				if i > 0 && len(d.Approvals) != 0 {
					t.Errorf("%q: approved again: %+v", s.value, d)
				}
			}
			if approvals == 0 {
				t.Fatalf("the canonical spelling was not approved")
			}
		})
	}
	f.checkLedger(t)
}

// TestControlCharactersAreBadInput is finding 2 for this function's text
// fields and its key disbursementId: U+0000 (which Postgres refuses,
// SQLSTATE 22021) is a 400 naming the field, not a 500 retried forever.
func TestControlCharactersAreBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	f.settled(t)
	d := f.decide(t, contract.TypeHonourAwarded, at("2026-12-01 10:00"), honourData(event.SampleUSCC(70), "金象金牛", 2026))
	id := d.Approvals[0].DisbursementID
	cases := []struct {
		name, typ, source, field string
		data                     map[string]any
	}{
		{"EnterpriseName", contract.TypeHonourAwarded, honourSource, "enterpriseName",
			map[string]any{"uscc": event.SampleUSCC(71), "enterpriseName": "湖州\x00企业", "honour": "金象金牛", "year": 2026}},
		{"DisbursementIDSettled", contract.TypePaymentSettled, treasurySource, "disbursementId", settledData(id+"\x00", "B-1")},
		{"DisbursementIDFailed", contract.TypePaymentFailed, treasurySource, "disbursementId", map[string]any{"disbursementId": "\x00", "reason": "x"}},
		{"BankRef", contract.TypePaymentSettled, treasurySource, "bankRef", settledData(id, "B\x00-1")},
		{"Reason", contract.TypePaymentFailed, treasurySource, "reason", map[string]any{"disbursementId": id, "reason": "账户\x00冻结"}},
		{"ReasonEscape", contract.TypePaymentFailed, treasurySource, "reason", map[string]any{"disbursementId": id, "reason": "\x1b[31m"}},
		{"ReasonTooLong", contract.TypePaymentFailed, treasurySource, "reason", map[string]any{"disbursementId": id, "reason": strings.Repeat("长", 1001)}},
		{"SettledAtOffset24", contract.TypePaymentSettled, treasurySource, "settledAt",
			map[string]any{"disbursementId": id, "bankRef": "B-1", "settledAt": "2026-12-03T14:30:00+24:00"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := pgtest.Rows(t, f.Pool)
			r := f.send(t, tc.typ, tc.source, at("2026-12-03 15:00"), tc.data)
			if r.Status != 400 || r.Problem()["field"] != tc.field || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %s, want 400 naming %s", r.Status, r.Body, tc.field)
			}
			if after := pgtest.Rows(t, f.Pool); after != before {
				t.Fatalf("%d rows written by a 400", after-before)
			}
		})
	}
}

// TestMalformedRequestsAreProblems: every 400 the server itself answers
// is problem+json naming a field — CloudEvent attributes included — and
// the mux's 404 and 405 are problem+json too (finding 7).
func TestMalformedRequestsAreProblems(t *testing.T) {
	t.Parallel()
	f := setup(t, testPolicies)
	f.settled(t)
	binary := func(drop string, set ...string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, f.Fn.URL+"/", strings.NewReader(`{}`))
		h := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "x-1", "Ce-Source": honourSource, "Ce-Type": contract.TypeHonourAwarded, "Content-Type": "application/json"}
		for i := 0; i+1 < len(set); i += 2 {
			h[set[i]] = set[i+1]
		}
		delete(h, drop)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		return req
	}
	structured := func(body string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, f.Fn.URL+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		return req
	}
	cases := []struct {
		name   string
		req    *http.Request
		status int
		field  string
	}{
		{"NoID", binary("Ce-Id"), 400, "id"},
		{"NoSource", binary("Ce-Source"), 400, "source"},
		{"NoType", binary("Ce-Type"), 400, "type"},
		{"UnknownSpecversion", binary("", "Ce-Specversion", "0.1"), 400, "specversion"},
		{"NotACloudEvent", binary("Ce-Specversion"), 400, "specversion"},
		{"StructuredNotJSON", structured(`{"specversion":`), 400, "body"},
		{"StructuredNoID", structured(fmt.Sprintf(`{"specversion":"1.0","source":%q,"type":%q}`, honourSource, contract.TypeHonourAwarded)), 400, "id"},
		{"StructuredBadSpecversion", structured(`{"specversion":"9.9","id":"a","source":"/s","type":"t"}`), 400, "specversion"},
		{"UnknownType", binary("", "Ce-Type", "cn.huzhou.nothing"), 400, "type"},
		{"DataNotJSON", binary("", "Content-Type", "text/plain"), 400, "datacontenttype"},
	}
	get, _ := http.NewRequest(http.MethodGet, f.Fn.URL+"/", nil)
	nowhere, _ := http.NewRequest(http.MethodPost, f.Fn.URL+"/nowhere", strings.NewReader("{}"))
	cases = append(cases, struct {
		name   string
		req    *http.Request
		status int
		field  string
	}{"MethodNotAllowed", get, 405, ""}, struct {
		name   string
		req    *http.Request
		status int
		field  string
	}{"NotFound", nowhere, 404, ""})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := functest.Do(t, tc.req)
			p := r.Problem()
			if r.Status != tc.status || r.Header.Get("Content-Type") != "application/problem+json" || p["status"] != float64(tc.status) {
				t.Fatalf("got %d %s %s, want %d problem+json", r.Status, r.Header.Get("Content-Type"), r.Body, tc.status)
			}
			if tc.field != "" && p["field"] != tc.field {
				t.Fatalf("field = %v, want %s (%s)", p["field"], tc.field, r.Body)
			}
			if tc.status == 405 && !strings.Contains(r.Header.Get("Allow"), "POST") {
				t.Fatalf("405 without Allow: POST: %v", r.Header)
			}
		})
	}
}

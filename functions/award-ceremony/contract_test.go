package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := setup(t)
	a := event.SampleUSCC(1)

	t.Run("OK", func(t *testing.T) {
		r := f.must(t, contract.TypeMetricsReported, statsSource, week, metricsData(1, "湖州恒达新材料有限公司", true, 100, 10), contract.TypeMetricsAccepted)
		var got contract.MetricsAccepted
		r.DataInto(t, &got)
		if want := (contract.MetricsAccepted{USCC: a, Year: 2026}); got != want {
			t.Fatalf("reply = %+v, want %+v", got, want)
		}
		if r.Event.Source() != "/qinqing/award-ceremony" {
			t.Fatalf("reply source = %s", r.Event.Source())
		}
	})
	t.Run("LaterReplaces", func(t *testing.T) {
		r := f.must(t, contract.TypeMetricsReported, statsSource, week.Add(time.Hour), metricsData(1, "湖州恒达新材料股份有限公司", false, 200, 20), contract.TypeMetricsAccepted)
		if r.Data()["superseded"] != false {
			t.Fatalf("reply = %s", r.Event.Data())
		}
		if got := f.Count(t, `SELECT revenue_fen FROM award.metrics WHERE uscc = $1 AND year = 2026`, a); got != 200 {
			t.Fatalf("revenueFen = %d, want 200", got)
		}
		if got := f.Count(t, `SELECT count(*) FROM award.metrics WHERE uscc = $1 AND NOT private AND name = '湖州恒达新材料股份有限公司'`, a); got != 1 {
			t.Fatalf("name and private not replaced")
		}
	})
	t.Run("OlderDoesNotReplace", func(t *testing.T) {
		// An older report delivered late (by event time) changes nothing.
		r := f.must(t, contract.TypeMetricsReported, statsSource, week.Add(30*time.Minute), metricsData(1, "旧名称", true, 999, 99), contract.TypeMetricsAccepted)
		if r.Data()["superseded"] != true {
			t.Fatalf("reply = %s, want superseded", r.Event.Data())
		}
		if got := f.Count(t, `SELECT revenue_fen FROM award.metrics WHERE uscc = $1 AND year = 2026`, a); got != 200 {
			t.Fatalf("revenueFen = %d, want 200", got)
		}
	})
	t.Run("OtherYearIsSeparate", func(t *testing.T) {
		d := metricsData(1, "湖州恒达新材料有限公司", true, 50, 5)
		d["year"] = 2025
		f.must(t, contract.TypeMetricsReported, statsSource, week.Add(2*time.Hour), d, contract.TypeMetricsAccepted)
		if got := f.Count(t, `SELECT count(*) FROM award.metrics WHERE uscc = $1`, a); got != 2 {
			t.Fatalf("%d rows, want 2", got)
		}
	})
	t.Run("Redelivery", func(t *testing.T) {
		ev := functest.Event(contract.TypeMetricsReported, statsSource, "metrics-same-id", week.Add(3*time.Hour), metricsData(2, "湖州金鼎纺织有限公司", true, 7, 1))
		first := f.Fn.Send(t, ev)
		second := f.Fn.SendStructured(t, ev)
		if first.Status != 200 || second.Status != 200 || first.Type() != second.Type() ||
			!bytes.Equal(first.Event.Data(), second.Event.Data()) || first.Event.ID() != second.Event.ID() {
			t.Fatalf("replies differ: %d %s / %d %s", first.Status, first.Body, second.Status, second.Body)
		}
	})
}

// invalidCase edits a good payload so that field is wrong.
type invalidCase struct {
	name  string
	edit  func(d map[string]any)
	field string
}

// sendInvalid sends each case and asserts 400 problem+json naming the field.
func (f *fixture) sendInvalid(t *testing.T, typ, source string, good func() map[string]any, cases []invalidCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := good()
			tc.edit(d)
			r := f.send(t, typ, source, week, d)
			if r.Status != 400 {
				t.Fatalf("status = %d, want 400 (%s)", r.Status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type = %q", ct)
			}
			if got := r.Problem()["field"]; got != tc.field {
				t.Fatalf("field = %v, want %s (%s)", got, tc.field, r.Body)
			}
		})
	}
	t.Run("NotJSON", func(t *testing.T) {
		ev := functest.Event(typ, source, nextID(), week, nil)
		_ = ev.SetData("application/json", []byte("{not json"))
		if r := f.Fn.Send(t, ev); r.Status != 400 {
			t.Fatalf("status = %d", r.Status)
		}
	})
	if n := f.Count(t, `SELECT count(*) FROM qinqing.inbox WHERE type = $1`, typ); n != 0 {
		t.Fatalf("%d inbox rows written by bad input", n)
	}
}

func set(path string, v any) func(d map[string]any) {
	return func(d map[string]any) {
		parts := strings.Split(path, ".")
		m := d
		for _, p := range parts[:len(parts)-1] {
			m = m[p].(map[string]any)
		}
		m[parts[len(parts)-1]] = v
	}
}

func del(path string) func(d map[string]any) {
	return func(d map[string]any) {
		parts := strings.Split(path, ".")
		m := d
		for _, p := range parts[:len(parts)-1] {
			m = m[p].(map[string]any)
		}
		delete(m, parts[len(parts)-1])
	}
}

func TestMetricsInvalid(t *testing.T) {
	t.Parallel()
	f := setup(t)
	good := func() map[string]any { return metricsData(1, "湖州恒达新材料有限公司", true, 100, 10) }
	f.sendInvalid(t, contract.TypeMetricsReported, statsSource, good, []invalidCase{
		{"BadUSCC", set("uscc", "91330500MA2B3C4D5X"), "uscc"},
		{"MissingUSCC", del("uscc"), "uscc"},
		{"MissingName", set("name", " "), "name"},
		{"UnknownCounty", set("county", "hangzhou"), "county"},
		{"MissingCounty", del("county"), "county"},
		{"MissingYear", del("year"), "year"},
		{"YearTooEarly", set("year", 1999), "year"},
		{"YearTooLate", set("year", 2101), "year"},
		{"YearNotInteger", set("year", 2026.5), "year"},
		{"YearString", set("year", "2026"), "year"},
		{"MissingPrivate", del("private"), "private"},
		{"PrivateNull", set("private", nil), "private"},
		{"PrivateString", set("private", "yes"), "private"},
		{"MissingRevenue", del("revenueFen"), "revenueFen"},
		{"NegativeRevenue", set("revenueFen", -1), "revenueFen"},
		{"FractionalRevenue", set("revenueFen", 1.5), "revenueFen"},
		{"RevenueString", set("revenueFen", "100"), "revenueFen"},
		{"NegativeTax", set("taxFen", -5), "taxFen"},
		{"MissingTax", del("taxFen"), "taxFen"},
		{"NegativeEmployees", set("employees", -1), "employees"},
		{"FractionalEmployees", set("employees", 1.5), "employees"},
		{"MissingEmployees", del("employees"), "employees"},
	})
	if n := f.Count(t, `SELECT count(*) FROM award.metrics`); n != 0 {
		t.Fatalf("%d metrics written by bad input", n)
	}
}

func TestNominations(t *testing.T) {
	t.Parallel()
	f := setup(t)
	t.Run("OK", func(t *testing.T) {
		for _, c := range contract.AwardCategories {
			r := f.must(t, contract.TypeNominationSubmitted, awardsSource, week, nominationData("N-"+c, c, "候选"+c), contract.TypeNominationAccepted)
			var got contract.NominationReply
			r.DataInto(t, &got)
			if want := (contract.NominationReply{NominationID: "N-" + c, Year: 2026, Category: c}); got != want {
				t.Fatalf("reply = %+v, want %+v", got, want)
			}
		}
	})
	t.Run("ResubmittedUnchanged", func(t *testing.T) {
		f.must(t, contract.TypeNominationSubmitted, awardsSource, week.Add(time.Hour), nominationData("N-runner", contract.AwardRunner, "候选runner"), contract.TypeNominationAccepted)
		if n := f.Count(t, `SELECT count(*) FROM award.nominations WHERE nomination_id = 'N-runner' AND submitted_at = $1`, week); n != 1 {
			t.Fatalf("resubmission changed the nomination")
		}
	})
	t.Run("ErrDuplicateNomination", func(t *testing.T) {
		r := f.must(t, contract.TypeNominationSubmitted, awardsSource, week.Add(time.Hour), nominationData("N-runner", contract.AwardRunner, "另一个县区"), contract.TypeNominationRejected)
		if r.Data()["reason"] != "duplicate_nomination" || r.Data()["nominationId"] != "N-runner" {
			t.Fatalf("reply = %s", r.Event.Data())
		}
		if n := f.Count(t, `SELECT count(*) FROM award.nominations WHERE nominee_name = '候选runner'`); n != 1 {
			t.Fatalf("duplicate overwrote the nomination")
		}
	})
}

func TestNominationInvalid(t *testing.T) {
	t.Parallel()
	f := setup(t)
	good := func() map[string]any {
		return nominationData("N1", contract.AwardContributor, "湖州恒达新材料有限公司")
	}
	goodCase := func(c string) func(d map[string]any) {
		return func(d map[string]any) {
			for k, v := range nominationData("N1", c, "x") {
				d[k] = v
			}
		}
	}
	then := func(fs ...func(map[string]any)) func(map[string]any) {
		return func(d map[string]any) {
			for _, f := range fs {
				f(d)
			}
		}
	}
	f.sendInvalid(t, contract.TypeNominationSubmitted, awardsSource, good, []invalidCase{
		{"MissingID", del("nominationId"), "nominationId"},
		{"IDWithSlash", set("nominationId", "a/b"), "nominationId"},
		{"MissingYear", del("year"), "year"},
		{"YearTooLate", set("year", 2101), "year"},
		{"MissingCategory", del("category"), "category"},
		{"UnknownCategory", set("category", "hero"), "category"},
		{"MissingNomineeName", set("nominee.name", ""), "nominee.name"},
		{"NomineeNotObject", set("nominee", "x"), "nominee"},
		{"ContributorWithoutUSCC", del("nominee.uscc"), "nominee.uscc"},
		{"ContributorBadUSCC", set("nominee.uscc", "91330500MA2B3C4D5X"), "nominee.uscc"},
		{"RunnerWithoutCounty", then(goodCase(contract.AwardRunner), del("nominee.county")), "nominee.county"},
		{"RunnerUnknownCounty", then(goodCase(contract.AwardRunner), set("nominee.county", "hangzhou")), "nominee.county"},
		{"GoodCaseWithoutDepartment", then(goodCase(contract.AwardGoodCase), del("nominee.department")), "nominee.department"},
		{"StriverBadOptionalUSCC", then(goodCase(contract.AwardStriver), set("nominee.uscc", "123")), "nominee.uscc"},
		{"MissingNominatedBy", del("nominatedBy"), "nominatedBy"},
		{"CitationNotString", set("citation", 5), "citation"},
	})
	if n := f.Count(t, `SELECT count(*) FROM award.nominations`); n != 0 {
		t.Fatalf("%d nominations written by bad input", n)
	}
}

func TestScores(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.must(t, contract.TypeNominationSubmitted, awardsSource, week, nominationData("N1", contract.AwardStriver, "沈建国"), contract.TypeNominationAccepted)
	scoreOf := func(t *testing.T) string {
		t.Helper()
		var s string
		if err := f.Pool.QueryRow(t.Context(), `SELECT score::text FROM award.scores WHERE nomination_id = 'N1' AND judge = 'judge-1'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("OK", func(t *testing.T) {
		r := f.must(t, contract.TypeScoreRecorded, judgesSource, week.Add(time.Hour), scoreData("N1", "judge-1", 85.5), contract.TypeScoreAccepted)
		if !bytes.Equal(r.Event.Data(), []byte(`{"nominationId":"N1","judge":"judge-1","score":85.5,"superseded":false}`)) {
			t.Fatalf("reply = %s", r.Event.Data())
		}
		if got := scoreOf(t); got != "85.50" {
			t.Fatalf("score = %s", got)
		}
	})
	t.Run("LaterReplaces", func(t *testing.T) {
		f.must(t, contract.TypeScoreRecorded, judgesSource, week.Add(2*time.Hour), scoreData("N1", "judge-1", 90), contract.TypeScoreAccepted)
		if got := scoreOf(t); got != "90.00" {
			t.Fatalf("score = %s, want 90.00", got)
		}
		if n := f.Count(t, `SELECT count(*) FROM award.scores`); n != 1 {
			t.Fatalf("%d scores, want 1 per judge", n)
		}
	})
	t.Run("OlderDoesNotReplace", func(t *testing.T) {
		r := f.must(t, contract.TypeScoreRecorded, judgesSource, week.Add(90*time.Minute), scoreData("N1", "judge-1", 10), contract.TypeScoreAccepted)
		if r.Data()["superseded"] != true {
			t.Fatalf("reply = %s", r.Event.Data())
		}
		if got := scoreOf(t); got != "90.00" {
			t.Fatalf("score = %s, want 90.00", got)
		}
	})
	t.Run("ErrUnknownNomination", func(t *testing.T) {
		r := f.must(t, contract.TypeScoreRecorded, judgesSource, week, scoreData("N404", "judge-1", 70), contract.TypeScoreRejected)
		if r.Data()["reason"] != "unknown_nomination" || r.Data()["nominationId"] != "N404" {
			t.Fatalf("reply = %s", r.Event.Data())
		}
		if n := f.Count(t, `SELECT count(*) FROM award.scores WHERE nomination_id = 'N404'`); n != 0 {
			t.Fatalf("score stored for an unknown nomination")
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		before := f.Count(t, `SELECT count(*) FROM qinqing.inbox`)
		for _, tc := range []struct {
			name  string
			data  map[string]any
			field string
		}{
			{"Above100", scoreData("N1", "judge-2", 101), "score"},
			{"Negative", scoreData("N1", "judge-2", -1), "score"},
			{"ThreeDecimals", scoreData("N1", "judge-2", 85.555), "score"},
			{"String", scoreData("N1", "judge-2", "90"), "score"},
			{"Null", scoreData("N1", "judge-2", nil), "score"},
			{"HugeExponent", map[string]any{"nominationId": "N1", "judge": "judge-2", "score": jsonNumber("1e999999999")}, "score"},
			{"MissingScore", map[string]any{"nominationId": "N1", "judge": "judge-2"}, "score"},
			{"MissingJudge", scoreData("N1", "", 80), "judge"},
			{"MissingNomination", scoreData("", "judge-2", 80), "nominationId"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := f.send(t, contract.TypeScoreRecorded, judgesSource, week, tc.data)
				if r.Status != 400 || r.Problem()["field"] != tc.field {
					t.Fatalf("got %d %s, want 400 naming %s", r.Status, r.Body, tc.field)
				}
			})
		}
		if after := f.Count(t, `SELECT count(*) FROM qinqing.inbox`); after != before {
			t.Fatalf("bad input wrote %d inbox rows", after-before)
		}
		if n := f.Count(t, `SELECT count(*) FROM award.scores WHERE judge = 'judge-2'`); n != 0 {
			t.Fatalf("bad input wrote scores")
		}
	})
	t.Run("EdgesAccepted", func(t *testing.T) {
		for i, s := range []any{0, 100, 99.99, jsonNumber("1e2")} {
			f.must(t, contract.TypeScoreRecorded, judgesSource, week, scoreData("N1", fmt.Sprintf("edge-%d", i), s), contract.TypeScoreAccepted)
		}
	})
}

// jsonNumber is a raw JSON number literal in test payloads.
type jsonNumber string

func (n jsonNumber) MarshalJSON() ([]byte, error) { return []byte(n), nil }

func TestConcurrentScoresLatestEventTimeWins(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.must(t, contract.TypeNominationSubmitted, awardsSource, week, nominationData("N1", contract.AwardStriver, "沈建国"), contract.TypeNominationAccepted)
	// 20 scores from one judge, sent at once in reverse time order: the one
	// with the latest event time stays, whatever the arrival order.
	var wg sync.WaitGroup
	for i := 20; i >= 1; i-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.must(t, contract.TypeScoreRecorded, judgesSource, week.Add(time.Duration(i)*time.Minute), scoreData("N1", "judge-1", 50+i), contract.TypeScoreAccepted)
		}()
	}
	wg.Wait()
	if got := f.Count(t, `SELECT score::int FROM award.scores WHERE nomination_id = 'N1' AND judge = 'judge-1'`); got != 70 {
		t.Fatalf("score = %d, want 70 (the latest by event time)", got)
	}
}

// enterprise is a metrics report as the test expects it to rank.
type enterprise struct {
	n            int
	name         string
	revenue, tax int64
}

func TestCeremony(t *testing.T) {
	t.Parallel()
	f := setup(t)
	at := week
	next := func() time.Time { at = at.Add(time.Minute); return at }
	report := func(n int, name string, private bool, revenue, tax int64) {
		f.must(t, contract.TypeMetricsReported, statsSource, next(), metricsData(n, name, private, revenue, tax), contract.TypeMetricsAccepted)
	}
	var ranked []enterprise
	// 52 private enterprises with distinct revenues.
	for i := 1; i <= 52; i++ {
		name := fmt.Sprintf("湖州第%d实业有限公司", i)
		rev := int64(100+i) * 100_000_000
		report(i, name, true, rev, 1_000_000)
		ranked = append(ranked, enterprise{i, name, rev, 1_000_000})
	}
	// A revenue tie: 302 has more tax; 301 and 303 tie on tax too, so the
	// USCC decides (sent in reverse order).
	tie := int64(130)*100_000_000 + 50_000_000
	report(303, "湖州并列丙有限公司", true, tie, 100)
	report(302, "湖州并列乙有限公司", true, tie, 300)
	report(301, "湖州并列甲有限公司", true, tie, 100)
	ranked = append(ranked, enterprise{303, "湖州并列丙有限公司", tie, 100}, enterprise{302, "湖州并列乙有限公司", tie, 300}, enterprise{301, "湖州并列甲有限公司", tie, 100})
	// State-owned: excluded however large.
	report(600, "湖州市交通投资集团有限公司", false, 2_000_000_000_000, 1)
	// Replaced by a later report: first huge, then small.
	report(400, "湖州替换前有限公司", true, 1_000_000_000_000, 1)
	report(400, "湖州替换后有限公司", true, 1, 0)
	ranked = append(ranked, enterprise{400, "湖州替换后有限公司", 1, 0})
	// A newer report, then an older one delivered late: the newer stands.
	f.must(t, contract.TypeMetricsReported, statsSource, week.Add(-time.Minute), metricsData(401, "湖州迟到旧报有限公司", true, 1, 0), contract.TypeMetricsAccepted)
	f.must(t, contract.TypeMetricsReported, statsSource, week.Add(-2*time.Minute), metricsData(401, "湖州迟到更旧有限公司", true, 5, 0), contract.TypeMetricsAccepted)
	r := f.must(t, contract.TypeMetricsReported, statsSource, week.Add(-3*time.Minute), metricsData(401, "湖州最旧有限公司", true, 9_000_000_000_000, 0), contract.TypeMetricsAccepted)
	if r.Data()["superseded"] != true {
		t.Fatalf("older report not superseded: %s", r.Event.Data())
	}
	ranked = append(ranked, enterprise{401, "湖州迟到旧报有限公司", 1, 0})
	// Private, then reported as not private: excluded.
	report(601, "湖州改制前有限公司", true, 1_500_000_000_000, 1)
	report(601, "湖州改制后有限公司", false, 1_500_000_000_000, 1)
	// Another year: excluded.
	old := metricsData(500, "湖州往年有限公司", true, 10_000_000_000_000, 1)
	old["year"] = 2025
	f.must(t, contract.TypeMetricsReported, statsSource, next(), old, contract.TypeMetricsAccepted)

	slices.SortStableFunc(ranked, func(a, b enterprise) int {
		switch {
		case a.revenue != b.revenue:
			return -cmpInt(a.revenue, b.revenue)
		case a.tax != b.tax:
			return -cmpInt(a.tax, b.tax)
		}
		return strings.Compare(event.SampleUSCC(a.n), event.SampleUSCC(b.n))
	})
	ranked = ranked[:TopSize]

	// Nominations, each a minute after the previous one.
	nominate := func(id, category, nominee string) {
		f.must(t, contract.TypeNominationSubmitted, awardsSource, next(), nominationData(id, category, nominee), contract.TypeNominationAccepted)
	}
	score := func(id, judge string, s any, at time.Time) {
		f.must(t, contract.TypeScoreRecorded, judgesSource, at, scoreData(id, judge, s), contract.TypeScoreAccepted)
	}
	// runner: run-b and run-a tie at 85 (run-b nominated first, so it ranks
	// first despite its id); run-c's 95 is replaced by a later 70; run-d
	// has no score and cannot win.
	nominate("run-b", contract.AwardRunner, "安吉县")
	nominate("run-a", contract.AwardRunner, "德清县")
	nominate("run-c", contract.AwardRunner, "长兴县")
	nominate("run-d", contract.AwardRunner, "南浔区")
	score("run-b", "j1", 90.5, next())
	score("run-b", "j2", 79.5, next())
	score("run-a", "j1", 85, next())
	score("run-c", "j1", 95, next())
	score("run-c", "j1", 70, next())
	// contributor: two winners only, so presenters cycle.
	nominate("con-1", contract.AwardContributor, "湖州贡献一号有限公司")
	nominate("con-2", contract.AwardContributor, "湖州贡献二号有限公司")
	score("con-1", "j1", 92, next())
	score("con-2", "j1", 91, next())
	// striver: one scored, one not.
	nominate("str-1", contract.AwardStriver, "沈建国")
	nominate("str-2", contract.AwardStriver, "钱美华")
	score("str-1", "j1", 88, next())
	// good_case: four scored, three win.
	for i, s := range []int{99, 98, 97, 10} {
		id := fmt.Sprintf("gc-%d", i+1)
		nominate(id, contract.AwardGoodCase, fmt.Sprintf("好案例%d号", i+1))
		score(id, "j1", s, next())
	}
	// Another year's nomination: excluded.
	oldNom := nominationData("old-1", contract.AwardRunner, "吴兴区")
	oldNom["year"] = 2025
	f.must(t, contract.TypeNominationSubmitted, awardsSource, next(), oldNom, contract.TypeNominationAccepted)
	score("old-1", "j1", 100, next())

	ping := functest.Event(event.PingType, pingSource, "ceremony-2026", ceremonyAt, map[string]any{"job": "award-ceremony"})
	first := f.Fn.Send(t, ping)
	if first.Status != 200 || first.Type() != contract.TypeCeremonyPublished {
		t.Fatalf("ceremony: %d %s", first.Status, first.Body)
	}
	var got contract.CeremonyPublished
	first.DataInto(t, &got)

	t.Run("Top50", func(t *testing.T) {
		if got.Year != 2026 || len(got.Top50) != TopSize {
			t.Fatalf("year %d, %d enterprises", got.Year, len(got.Top50))
		}
		for i, e := range ranked {
			if want := (contract.TopEntry{Rank: i + 1, USCC: event.SampleUSCC(e.n), Name: e.name}); got.Top50[i] != want {
				t.Fatalf("top50[%d] = %+v, want %+v", i, got.Top50[i], want)
			}
		}
		// The tie group, spelled out.
		var order []string
		for _, e := range got.Top50 {
			if e.USCC == event.SampleUSCC(301) || e.USCC == event.SampleUSCC(302) || e.USCC == event.SampleUSCC(303) {
				order = append(order, e.USCC)
			}
		}
		if want := []string{event.SampleUSCC(302), event.SampleUSCC(301), event.SampleUSCC(303)}; !slices.Equal(order, want) {
			t.Fatalf("tie order = %v, want %v", order, want)
		}
		for _, e := range got.Top50 {
			for _, excluded := range []int{600, 601, 500, 400, 401} {
				if e.USCC == event.SampleUSCC(excluded) {
					t.Fatalf("%s (%s) should not rank", e.USCC, e.Name)
				}
			}
		}
	})
	t.Run("WinnersAndPresenters", func(t *testing.T) {
		want := []contract.WinnerEntry{
			{Category: contract.AwardRunner, Rank: 1, NominationID: "run-b", Name: "安吉县", Presenter: ""},
			{Category: contract.AwardRunner, Rank: 2, NominationID: "run-a", Name: "德清县", Presenter: ""},
			{Category: contract.AwardRunner, Rank: 3, NominationID: "run-c", Name: "长兴县", Presenter: ""},
			{Category: contract.AwardContributor, Rank: 1, NominationID: "con-1", Name: "湖州贡献一号有限公司", Presenter: ""},
			{Category: contract.AwardContributor, Rank: 2, NominationID: "con-2", Name: "湖州贡献二号有限公司", Presenter: ""},
			{Category: contract.AwardStriver, Rank: 1, NominationID: "str-1", Name: "沈建国", Presenter: ""},
			{Category: contract.AwardGoodCase, Rank: 1, NominationID: "gc-1", Name: "好案例1号", Presenter: "湖州贡献一号有限公司"},
			{Category: contract.AwardGoodCase, Rank: 2, NominationID: "gc-2", Name: "好案例2号", Presenter: "湖州贡献二号有限公司"},
			{Category: contract.AwardGoodCase, Rank: 3, NominationID: "gc-3", Name: "好案例3号", Presenter: "湖州贡献一号有限公司"},
		}
		if !reflect.DeepEqual(got.Winners, want) {
			t.Fatalf("winners:\n got %+v\nwant %+v", got.Winners, want)
		}
	})
	t.Run("Documents", func(t *testing.T) {
		want := []string{"awards/2026/top50.csv", "awards/2026/programme.html"}
		for _, w := range got.Winners {
			want = append(want, fmt.Sprintf("awards/2026/certificates/%s-%d-%s.html", w.Category, w.Rank, w.NominationID))
		}
		if !slices.Equal(got.Documents, want) {
			t.Fatalf("documents:\n got %v\nwant %v", got.Documents, want)
		}
		recs, err := csv.NewReader(bytes.NewReader(f.get(t, "awards/2026/top50.csv"))).ReadAll()
		if err != nil || len(recs) != TopSize+1 {
			t.Fatalf("top50.csv: %v, %d records", err, len(recs))
		}
		if !slices.Equal(recs[0], top50Header) {
			t.Fatalf("header = %v", recs[0])
		}
		for i, e := range got.Top50 {
			if recs[i+1][0] != fmt.Sprint(e.Rank) || recs[i+1][1] != e.USCC || recs[i+1][2] != e.Name {
				t.Fatalf("row %d = %v, want %+v", i+1, recs[i+1], e)
			}
		}
		programme := string(f.get(t, "awards/2026/programme.html"))
		for _, s := range []string{"实干争先", "湖州民企50强", "奔跑者", "贡献者", "奋斗者", "好案例", "@page", "A4",
			"湖州并列乙有限公司", "颁奖嘉宾：湖州贡献一号有限公司", "2026年度"} {
			if !strings.Contains(programme, s) {
				t.Errorf("programme lacks %q", s)
			}
		}
		for _, key := range got.Documents[2:] {
			cert := string(f.get(t, key))
			for _, s := range []string{"荣誉证书", "实干争先", "@page", "A4", "2026"} {
				if !strings.Contains(cert, s) {
					t.Errorf("%s lacks %q", key, s)
				}
			}
		}
		gc3 := string(f.get(t, "awards/2026/certificates/good_case-3-gc-3.html"))
		if !strings.Contains(gc3, "好案例3号") || !strings.Contains(gc3, "颁奖嘉宾：湖州贡献一号有限公司") || !strings.Contains(gc3, "市市场监管局") {
			t.Errorf("good_case certificate:\n%s", gc3)
		}
		for _, key := range got.Documents[1:] {
			doc := f.get(t, key)
			// Self-contained: no scripts, no links to anything outside.
			for _, s := range []string{"<script", "http://", "https://", "src=", "<link", "@import", "url("} {
				if bytes.Contains(doc, []byte(s)) {
					t.Errorf("%s contains %q", key, s)
				}
			}
		}
		if certs := f.list(t, "awards/2026/certificates/"); len(certs) != len(got.Winners) {
			t.Fatalf("bucket holds %d certificates, want %d: %v", len(certs), len(got.Winners), certs)
		}
	})
	t.Run("RerunIdentical", func(t *testing.T) {
		before := map[string][]byte{}
		for _, k := range got.Documents {
			before[k] = f.get(t, k)
		}
		again := f.ping(t, ceremonyAt.Add(24*time.Hour))
		if !bytes.Equal(again.Event.Data(), first.Event.Data()) {
			t.Fatalf("rerun reply differs:\n%s\n%s", again.Event.Data(), first.Event.Data())
		}
		for _, k := range got.Documents {
			if !bytes.Equal(f.get(t, k), before[k]) {
				t.Fatalf("%s differs after the rerun", k)
			}
		}
	})
	t.Run("Redelivery", func(t *testing.T) {
		again := f.Fn.SendStructured(t, ping)
		if again.Status != 200 || again.Event.ID() != first.Event.ID() || !bytes.Equal(again.Event.Data(), first.Event.Data()) {
			t.Fatalf("redelivery: %d %s", again.Status, again.Body)
		}
	})
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestCeremonyRerunFollowsChanges(t *testing.T) {
	t.Parallel()
	f := setup(t, "AWARD_WINNERS_PER_CATEGORY=1")
	f.must(t, contract.TypeNominationSubmitted, awardsSource, week, nominationData("A", contract.AwardRunner, "安吉县"), contract.TypeNominationAccepted)
	f.must(t, contract.TypeNominationSubmitted, awardsSource, week, nominationData("B", contract.AwardRunner, "德清县"), contract.TypeNominationAccepted)
	f.must(t, contract.TypeScoreRecorded, judgesSource, week, scoreData("A", "j1", 80), contract.TypeScoreAccepted)
	f.must(t, contract.TypeScoreRecorded, judgesSource, week, scoreData("B", "j1", 70), contract.TypeScoreAccepted)
	var got contract.CeremonyPublished
	f.ping(t, ceremonyAt).DataInto(t, &got)
	if len(got.Winners) != 1 || got.Winners[0].NominationID != "A" {
		t.Fatalf("winners = %+v, want A only (AWARD_WINNERS_PER_CATEGORY=1)", got.Winners)
	}
	// Equal means: the earlier nomination wins; both were nominated at
	// the same time, so the nomination id decides.
	f.must(t, contract.TypeScoreRecorded, judgesSource, week.Add(time.Hour), scoreData("B", "j1", 80), contract.TypeScoreAccepted)
	f.ping(t, ceremonyAt).DataInto(t, &got)
	if got.Winners[0].NominationID != "A" {
		t.Fatalf("tie: winner = %+v, want A", got.Winners)
	}
	// A corrected score changes the result; the former winner's certificate goes.
	f.must(t, contract.TypeScoreRecorded, judgesSource, week.Add(2*time.Hour), scoreData("B", "j1", 95), contract.TypeScoreAccepted)
	f.ping(t, ceremonyAt).DataInto(t, &got)
	if got.Winners[0].NominationID != "B" {
		t.Fatalf("winners = %+v, want B", got.Winners)
	}
	if certs, want := f.list(t, "awards/2026/certificates/"), []string{"awards/2026/certificates/runner-1-B.html"}; !slices.Equal(certs, want) {
		t.Fatalf("certificates = %v, want %v", certs, want)
	}
}

func TestCeremonyEscapesHostileNames(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hostile := "<script>alert(1)</script>"
	d := nominationData("X1", contract.AwardGoodCase, hostile)
	d["nominee"].(map[string]any)["department"] = `"><img src=x onerror=alert(2)>`
	d["citation"] = "<b>&amp;</b>"
	f.must(t, contract.TypeNominationSubmitted, awardsSource, week, d, contract.TypeNominationAccepted)
	f.must(t, contract.TypeNominationSubmitted, awardsSource, week, nominationData("C1", contract.AwardContributor, hostile), contract.TypeNominationAccepted)
	f.must(t, contract.TypeScoreRecorded, judgesSource, week, scoreData("X1", "j1", 90), contract.TypeScoreAccepted)
	f.must(t, contract.TypeScoreRecorded, judgesSource, week, scoreData("C1", "j1", 90), contract.TypeScoreAccepted)
	f.must(t, contract.TypeMetricsReported, statsSource, week, metricsData(1, hostile, true, 100, 1), contract.TypeMetricsAccepted)
	var got contract.CeremonyPublished
	f.ping(t, ceremonyAt).DataInto(t, &got)
	if got.Top50[0].Name != hostile || got.Winners[1].Name != hostile || got.Winners[1].Presenter != hostile {
		t.Fatalf("reply should carry the names as given: %+v", got)
	}
	for _, key := range got.Documents[1:] {
		doc := string(f.get(t, key))
		if strings.Contains(doc, "<script") || strings.Contains(doc, "<img") || strings.Contains(doc, "<b>") {
			t.Fatalf("%s prints markup from a name:\n%s", key, doc)
		}
		if !strings.Contains(doc, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Fatalf("%s lacks the escaped name:\n%s", key, doc)
		}
	}
	cert := string(f.get(t, "awards/2026/certificates/good_case-1-X1.html"))
	if !strings.Contains(cert, "&lt;img src=x onerror=alert(2)&gt;") || !strings.Contains(cert, "&lt;b&gt;&amp;amp;&lt;/b&gt;") {
		t.Fatalf("certificate:\n%s", cert)
	}
	recs, err := csv.NewReader(bytes.NewReader(f.get(t, "awards/2026/top50.csv"))).ReadAll()
	if err != nil || recs[1][2] != hostile {
		t.Fatalf("top50.csv keeps the name as text: %v %v", err, recs)
	}
}

func TestCeremonyEmptyYearAndBusinessTimeZone(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// 2027-01-01 00:30 in Huzhou, still 2026 in UTC.
	newYear := time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC)
	d := metricsData(1, "湖州新年有限公司", true, 100, 1)
	d["year"] = 2027
	f.must(t, contract.TypeMetricsReported, statsSource, newYear, d, contract.TypeMetricsAccepted)

	r := f.ping(t, newYear.Add(-time.Hour)) // 2026-12-31 23:30 in Huzhou
	if !bytes.Equal(r.Event.Data(), []byte(`{"year":2026,"top50":[],"winners":[],"documents":["awards/2026/top50.csv","awards/2026/programme.html"]}`)) {
		t.Fatalf("empty year: %s", r.Event.Data())
	}
	if body := f.get(t, "awards/2026/top50.csv"); string(body) != strings.Join(top50Header, ",")+"\n" {
		t.Fatalf("empty top50.csv = %q", body)
	}
	if !strings.Contains(string(f.get(t, "awards/2026/programme.html")), "暂无") {
		t.Fatalf("empty programme does not say so")
	}
	var got contract.CeremonyPublished
	f.ping(t, newYear).DataInto(t, &got)
	if got.Year != 2027 || len(got.Top50) != 1 || got.Top50[0].USCC != event.SampleUSCC(1) {
		t.Fatalf("ceremony at %v: %+v", newYear, got)
	}
}

func TestConcurrentCeremonies(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for i := 1; i <= 5; i++ {
		f.must(t, contract.TypeMetricsReported, statsSource, week, metricsData(i, fmt.Sprintf("湖州并发%d有限公司", i), true, int64(i), 0), contract.TypeMetricsAccepted)
		id := fmt.Sprintf("S%d", i)
		f.must(t, contract.TypeNominationSubmitted, awardsSource, week, nominationData(id, contract.AwardStriver, "奋斗者"+id), contract.TypeNominationAccepted)
		f.must(t, contract.TypeScoreRecorded, judgesSource, week, scoreData(id, "j1", 50+i), contract.TypeScoreAccepted)
	}
	replies := make([]*functest.Response, 6)
	var wg sync.WaitGroup
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = f.send(t, event.PingType, pingSource, ceremonyAt, map[string]any{"job": "award-ceremony"})
		}()
	}
	wg.Wait()
	for _, r := range replies {
		if r.Status != 200 || !bytes.Equal(r.Event.Data(), replies[0].Event.Data()) {
			t.Fatalf("concurrent run: %d %s", r.Status, r.Body)
		}
	}
}

func TestPingInvalid(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, data := range []map[string]any{{"job": "forum-weekly"}, {}} {
		r := f.send(t, event.PingType, pingSource, ceremonyAt, data)
		if r.Status != 400 || r.Problem()["field"] != "job" {
			t.Fatalf("%v: got %d %s", data, r.Status, r.Body)
		}
	}
	if r := f.send(t, "cn.huzhou.something.else", awardsSource, week, map[string]any{}); r.Status != 400 || r.Problem()["field"] != "type" {
		t.Fatalf("unknown type: %d %s", r.Status, r.Body)
	}
	if r := f.Fn.Post(t, "application/json", []byte(`{"hello":1}`)); r.Status != 400 {
		t.Fatalf("not a CloudEvent: %d", r.Status)
	}
	big := metricsData(1, strings.Repeat("x", 1<<20), true, 1, 1)
	if r := f.send(t, contract.TypeMetricsReported, statsSource, week, big); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("too large: %d", r.Status)
	}
}

func TestHealthAndConfig(t *testing.T) {
	t.Parallel()
	f := setup(t)
	resp, err := http.Get(f.Fn.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
	oneLine := func(out []byte) bool { return bytes.Count(bytes.TrimSpace(out), []byte("\n")) == 0 }
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"ErrMissingDatabaseURL", []string{"S3_BUCKET=x"}, "DATABASE_URL"},
		{"ErrMissingBucket", []string{"DATABASE_URL=postgres://x@127.0.0.1:1/x"}, "S3_BUCKET"},
		{"ErrWinnersZero", []string{"DATABASE_URL=postgres://x@127.0.0.1:1/x", "S3_BUCKET=x", "AWARD_WINNERS_PER_CATEGORY=0"}, "AWARD_WINNERS_PER_CATEGORY"},
		{"ErrWinnersNotANumber", []string{"DATABASE_URL=postgres://x@127.0.0.1:1/x", "S3_BUCKET=x", "AWARD_WINNERS_PER_CATEGORY=three"}, "AWARD_WINNERS_PER_CATEGORY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := functest.RunConfigOnly(t, binary, tc.env...)
			if err == nil || !bytes.Contains(out, []byte(tc.want)) || !oneLine(out) {
				t.Fatalf("got %v: %q", err, out)
			}
		})
	}
}

// TestSampleWeek plays the award part of the local stack's sample week
// (cmd/devstack/week/50-award.jsonl) against the function: every event is
// valid and accepted, and the week ends with the 2026 ceremony.
func TestSampleWeek(t *testing.T) {
	t.Parallel()
	f := setup(t)
	body, err := os.ReadFile("../../cmd/devstack/week/50-award.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var last *functest.Response
	counts := map[string]int{}
	for n, text := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var l struct {
			Note   string          `json:"note"`
			Type   string          `json:"type"`
			Source string          `json:"source"`
			ID     string          `json:"id"`
			Time   time.Time       `json:"time"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if l.Note != "" {
			continue
		}
		if first, lastDay := time.Date(2026, 11, 30, 0, 0, 0, 0, testkit.Shanghai), time.Date(2026, 12, 7, 0, 0, 0, 0, testkit.Shanghai); l.Time.Before(first) || !l.Time.Before(lastDay) {
			t.Errorf("line %d: time %v is outside the sample week", n+1, l.Time)
		}
		if !strings.HasSuffix(l.Time.Format(time.RFC3339), "+08:00") {
			t.Errorf("line %d: time %v is not in +08:00", n+1, l.Time)
		}
		ev := functest.Event(l.Type, l.Source, l.ID, l.Time, nil)
		_ = ev.SetData("application/json", []byte(l.Data))
		r := f.Fn.Send(t, ev)
		if r.Status != 200 || strings.HasSuffix(r.Type(), ".rejected") {
			t.Fatalf("line %d (%s): %d %s %s", n+1, l.ID, r.Status, r.Type(), r.Body)
		}
		counts[l.Type]++
		last = r
	}
	if counts[contract.TypeMetricsReported] < 55 || counts[contract.TypeNominationSubmitted] < 8 || counts[contract.TypeScoreRecorded] < 20 {
		t.Fatalf("sample week is thin: %v", counts)
	}
	if last.Type() != contract.TypeCeremonyPublished {
		t.Fatalf("the week ends with %s, want the ceremony", last.Type())
	}
	var got contract.CeremonyPublished
	last.DataInto(t, &got)
	perCategory := map[string]int{}
	for _, w := range got.Winners {
		perCategory[w.Category]++
		if (w.Category == contract.AwardGoodCase) != (w.Presenter != "") {
			t.Errorf("winner %+v: presenter only for good_case", w)
		}
	}
	if got.Year != 2026 || len(got.Top50) != TopSize || len(got.Documents) != 2+len(got.Winners) {
		t.Fatalf("ceremony: year %d, %d top, %d documents", got.Year, len(got.Top50), len(got.Documents))
	}
	for _, c := range contract.AwardCategories {
		if perCategory[c] != 3 {
			t.Errorf("%d %s winners, want 3", perCategory[c], c)
		}
	}
}

// TestYearIsData: the year of a report or nomination is not judged
// against the event time; an event without a time attribute (receipt time
// "now") may carry a later year, and that year's ceremony ranks it.
func TestYearIsData(t *testing.T) {
	t.Parallel()
	f := setup(t)
	d := metricsData(1, "湖州远期有限公司", true, 100, 1)
	d["year"] = 2031
	f.must(t, contract.TypeMetricsReported, statsSource, time.Time{}, d, contract.TypeMetricsAccepted)
	n := nominationData("Y2031", contract.AwardStriver, "沈远期")
	n["year"] = 2031
	f.must(t, contract.TypeNominationSubmitted, awardsSource, week, n, contract.TypeNominationAccepted)
	f.must(t, contract.TypeScoreRecorded, judgesSource, week, scoreData("Y2031", "j1", 90), contract.TypeScoreAccepted)
	var got contract.CeremonyPublished
	f.ping(t, time.Date(2031, 11, 1, 10, 0, 0, 0, testkit.Shanghai)).DataInto(t, &got)
	if got.Year != 2031 || len(got.Top50) != 1 || got.Top50[0].USCC != event.SampleUSCC(1) || len(got.Winners) != 1 || got.Winners[0].NominationID != "Y2031" {
		t.Fatalf("2031 ceremony: %+v", got)
	}
}

// TestTop50GuardsFormulas: top50.csv uses the one CSV writer of
// shared/docs, so a name a spreadsheet would run as a formula is stored as
// text — the full-width forms and "+…" alike.
func TestTop50GuardsFormulas(t *testing.T) {
	t.Parallel()
	f := setup(t)
	names := []string{"=HYPERLINK(\"http://evil.example\")", "+86 公司", "＝SUM(A1)", "湖州正常企业"}
	for i, name := range names {
		f.must(t, contract.TypeMetricsReported, statsSource, week, metricsData(i+1, name, true, int64(1000-i), 1), contract.TypeMetricsAccepted)
	}
	f.ping(t, ceremonyAt)
	recs, err := csv.NewReader(bytes.NewReader(f.get(t, "awards/2026/top50.csv"))).ReadAll()
	if err != nil || len(recs) != len(names)+1 {
		t.Fatalf("top50.csv: %v %q", err, recs)
	}
	want := []string{"'=HYPERLINK(\"http://evil.example\")", "'+86 公司", "'＝SUM(A1)", "湖州正常企业"}
	for i, w := range want {
		if got := recs[i+1][2]; got != w {
			t.Errorf("top50.csv row %d name = %q, want %q", i+1, got, w)
		}
	}
}

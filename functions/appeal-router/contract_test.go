package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

var binary string

func TestMain(m *testing.M) { functest.MainTwice(m, map[string]*string{".": &binary}) }

type fixture struct{ *functest.Fixture }

func setup(t *testing.T, env ...string) *fixture {
	t.Helper()
	return &fixture{functest.Setup(t, binary, functest.Parts{Env: env})}
}

var (
	cst       = time.FixedZone("CST", 8*3600)
	portalSrc = "/portals/enterprise"
	deptSrc   = "/portals/departments"
	// testYear is a year the migrations do not seed: the tests publish it.
	testYear = 2030
)

var nextID = functest.NextID

func (f *fixture) send(t *testing.T, typ, src string, at time.Time, data any) *functest.Response {
	t.Helper()
	return f.Fn.Send(t, functest.Event(typ, src, nextID(), at, data))
}

// testCalendar is 2030 with a five-day May Day holiday (Wed 1 – Sun 5 May)
// and two make-up working days, Sunday 28 April and Saturday 11 May.
func testCalendar() map[string]any {
	return map[string]any{
		"year":     testYear,
		"holidays": []string{"2030-05-01", "2030-05-02", "2030-05-03", "2030-05-04", "2030-05-05"},
		"workdays": []string{"2030-04-28", "2030-05-11"},
	}
}

func (f *fixture) publish(t *testing.T, data map[string]any) {
	t.Helper()
	r := f.send(t, contract.TypeCalendarPublished, "/state-council", time.Date(2029, 11, 12, 10, 0, 0, 0, cst), data)
	if r.Status != 200 || r.Type() != contract.TypeCalendarAccepted {
		t.Fatalf("publish: %d %s %s", r.Status, r.Type(), r.Body)
	}
}

func submitData(id, category, county string) map[string]any {
	d := map[string]any{
		"enterprise": map[string]any{"uscc": event.SampleUSCC(42), "name": "湖州绿色织造有限公司"},
		"county":     county,
		"title":      "扩建项目用地指标",
		"detail":     "二期厂房需新增用地20亩，指标迟迟未落实。",
		"category":   category,
		"channel":    "portal",
	}
	if id != "" {
		d["appealId"] = id
	}
	return d
}

func (f *fixture) submit(t *testing.T, at time.Time, data map[string]any) contract.AppealAssignment {
	t.Helper()
	r := f.send(t, contract.TypeAppealSubmitted, portalSrc, at, data)
	if r.Status != 200 || r.Type() != contract.TypeAppealAssigned {
		t.Fatalf("submit: %d %s %s", r.Status, r.Type(), r.Body)
	}
	var a contract.AppealAssignment
	r.DataInto(t, &a)
	return a
}

// answer sends a department answer or a revisit and returns the reply.
func (f *fixture) answer(t *testing.T, typ string, at time.Time, data map[string]any) *functest.Response {
	t.Helper()
	r := f.send(t, typ, deptSrc, at, data)
	if r.Status != 200 {
		t.Fatalf("%s: %d %s", typ, r.Status, r.Body)
	}
	return r
}

func wantUpdated(t *testing.T, r *functest.Response, status, department string) {
	t.Helper()
	d := r.Data()
	if r.Type() != contract.TypeAppealUpdated || d["status"] != status || d["department"] != department {
		t.Fatalf("got %s %s, want updated %s %s", r.Type(), r.Event.Data(), status, department)
	}
}

func wantRejected(t *testing.T, r *functest.Response, id, reason string) {
	t.Helper()
	d := r.Data()
	if r.Type() != contract.TypeAppealRejected || d["reason"] != reason || d["appealId"] != id {
		t.Fatalf("got %s %s, want rejected %s", r.Type(), r.Event.Data(), reason)
	}
}

func rfc(t time.Time) string { return t.Format(time.RFC3339) }

func TestCalendarPublished(t *testing.T) {
	t.Parallel()
	f := setup(t)
	at := time.Date(2029, 11, 12, 10, 0, 0, 0, cst)
	t.Run("OK", func(t *testing.T) {
		r := f.send(t, contract.TypeCalendarPublished, "/state-council", at, testCalendar())
		d := r.Data()
		if r.Type() != contract.TypeCalendarAccepted || d["year"] != float64(2030) || d["holidays"] != float64(5) || d["workdays"] != float64(2) {
			t.Fatalf("got %d %s %s", r.Status, r.Type(), r.Body)
		}
		if n := f.Count(t, `SELECT count(*) FROM qinqing.calendar_days WHERE extract(year FROM day) = 2030`); n != 7 {
			t.Fatalf("%d days stored, want 7", n)
		}
	})
	t.Run("ReplacesTheYear", func(t *testing.T) {
		r := f.send(t, contract.TypeCalendarPublished, "/state-council", at, map[string]any{
			"year": 2030, "holidays": []string{"2030-01-01"}, "workdays": []string{},
		})
		if r.Type() != contract.TypeCalendarAccepted || r.Data()["holidays"] != float64(1) || r.Data()["workdays"] != float64(0) {
			t.Fatalf("got %s %s", r.Type(), r.Body)
		}
		if n := f.Count(t, `SELECT count(*) FROM qinqing.calendar_days WHERE extract(year FROM day) = 2030`); n != 1 {
			t.Fatalf("%d days stored after replacement, want 1", n)
		}
		if n := f.Count(t, `SELECT count(*) FROM qinqing.calendar_days WHERE extract(year FROM day) = 2026`); n == 0 {
			t.Fatal("publishing 2030 touched 2026")
		}
	})
	cases := []struct {
		name  string
		edit  func(d map[string]any)
		field string
	}{
		{"YearMissing", func(d map[string]any) { delete(d, "year") }, "year"},
		{"YearTooEarly", func(d map[string]any) { d["year"] = 1999 }, "year"},
		{"YearTooLate", func(d map[string]any) { d["year"] = 2101 }, "year"},
		{"YearMistyped", func(d map[string]any) { d["year"] = "2030" }, "year"},
		{"HolidaysMissing", func(d map[string]any) { delete(d, "holidays") }, "holidays"},
		{"WorkdaysMissing", func(d map[string]any) { delete(d, "workdays") }, "workdays"},
		{"NotADate", func(d map[string]any) { d["holidays"] = []string{"2030-05-01", "2030-02-30"} }, "holidays[1]"},
		{"OutsideTheYear", func(d map[string]any) { d["workdays"] = []string{"2031-01-04"} }, "workdays[0]"},
		{"Duplicate", func(d map[string]any) { d["holidays"] = []string{"2030-05-01", "2030-05-02", "2030-05-01"} }, "holidays[2]"},
		{"HolidayAndWorkday", func(d map[string]any) { d["workdays"] = []string{"2030-04-28", "2030-05-03"} }, "workdays[1]"},
		{"MistypedList", func(d map[string]any) { d["holidays"] = "2030-05-01" }, "holidays"},
	}
	for _, c := range cases {
		t.Run("Err"+c.name, func(t *testing.T) {
			d := testCalendar()
			c.edit(d)
			r := f.send(t, contract.TypeCalendarPublished, "/state-council", at, d)
			if r.Status != 400 || r.Header.Get("Content-Type") != "application/problem+json" || r.Problem()["field"] != c.field {
				t.Fatalf("got %d %s, want 400 naming %s", r.Status, r.Body, c.field)
			}
		})
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.calendar_days WHERE extract(year FROM day) = 2030`); n != 1 {
		t.Fatalf("%d days stored after bad publications, want the 1 of the last good one", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.inbox WHERE type = $1`, contract.TypeCalendarPublished); n != 2 {
		t.Fatalf("%d inbox rows, want 2 (bad input writes nothing)", n)
	}
}

func TestDeadlines(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.publish(t, testCalendar())
	cases := []struct {
		name                          string
		at                            time.Time
		received, assignDue, replyDue string
	}{
		// 00:30 on Tuesday 30 April in Huzhou is still Monday in UTC; the
		// holiday runs Wednesday to Sunday, so the first working day after
		// is Monday 6 May; Saturday 11 May is worked.
		{"AcrossHolidayAndTimeZone", time.Date(2030, 4, 29, 16, 30, 0, 0, time.UTC),
			"2030-04-30T00:30:00+08:00", "2030-05-07T23:59:59+08:00", "2030-05-16T23:59:59+08:00"},
		// Thursday 9 May: Friday, then the make-up Saturday.
		{"DueOnMakeUpSaturday", time.Date(2030, 5, 9, 10, 0, 0, 0, cst),
			"2030-05-09T10:00:00+08:00", "2030-05-11T23:59:59+08:00", "2030-05-22T23:59:59+08:00"},
		// A make-up Sunday before the holiday counts as well.
		{"FromMakeUpSunday", time.Date(2030, 4, 26, 15, 0, 0, 0, cst),
			"2030-04-26T15:00:00+08:00", "2030-04-29T23:59:59+08:00", "2030-05-13T23:59:59+08:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := f.submit(t, c.at, submitData("", "land", "anji"))
			if got := [3]string{rfc(a.ReceivedAt), rfc(a.AssignDue), rfc(a.ReplyDue)}; got != [3]string{c.received, c.assignDue, c.replyDue} {
				t.Fatalf("received, assignDue, replyDue = %v, want %s %s %s", got, c.received, c.assignDue, c.replyDue)
			}
		})
	}
	t.Run("RepublicationAppliesAtOnce", func(t *testing.T) {
		// Without the make-up Saturday, Thursday 9 May is due on Monday 13.
		d := testCalendar()
		d["workdays"] = []string{"2030-04-28"}
		f.publish(t, d)
		a := f.submit(t, time.Date(2030, 5, 9, 10, 0, 0, 0, cst), submitData("", "land", "anji"))
		if got := rfc(a.AssignDue); got != "2030-05-13T23:59:59+08:00" {
			t.Fatalf("assignDue = %s after republication, want 2030-05-13T23:59:59+08:00", got)
		}
	})
}

func TestSubmit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, cst)
	t.Run("Routing", func(t *testing.T) {
		for _, c := range []struct{ category, county, want string }{
			{"land", "anji", "anji-natural-resources"},
			{"land", "city", "natural-resources"},
			{"finance", "wuxing", "financial-work"},
			{"", "nanxun", "yingshang-office"},
			{"weather", "deqing", "yingshang-office"},
		} {
			if a := f.submit(t, at, submitData("", c.category, c.county)); a.Department != c.want {
				t.Errorf("%s/%s routed to %s, want %s", c.category, c.county, a.Department, c.want)
			}
		}
	})
	t.Run("DerivedID", func(t *testing.T) {
		ev := functest.Event(contract.TypeAppealSubmitted, portalSrc, "hotline-7781", at, submitData("", "tax", "city"))
		r := f.Fn.Send(t, ev)
		if got, want := r.Data()["appealId"], runtime.DeriveID("appeal", portalSrc, "hotline-7781"); got != want {
			t.Fatalf("appealId = %v, want %s", got, want)
		}
	})
	t.Run("ExistingAppealID", func(t *testing.T) {
		first := f.submit(t, at, submitData("HZ-2026-0001", "land", "anji"))
		// Another event (another channel, a day later, another category)
		// carrying the same appealId: no second appeal, the same assignment.
		d := submitData("HZ-2026-0001", "finance", "city")
		d["channel"] = "hotline"
		second := f.submit(t, at.AddDate(0, 0, 1), d)
		if first != second {
			t.Fatalf("second submission answered %+v, want %+v", second, first)
		}
		if n := f.Count(t, `SELECT count(*) FROM appeal.appeals WHERE appeal_id = 'HZ-2026-0001'`); n != 1 {
			t.Fatalf("%d appeals", n)
		}
		if n := f.Count(t, `SELECT count(*) FROM appeal.history WHERE appeal_id = 'HZ-2026-0001'`); n != 1 {
			t.Fatalf("%d history rows", n)
		}
	})
	t.Run("ExistingAppealIDConcurrently", func(t *testing.T) {
		var wg sync.WaitGroup
		replies := make([]*functest.Response, 8)
		for i := range replies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[i] = f.send(t, contract.TypeAppealSubmitted, portalSrc, at.Add(time.Duration(i)*time.Hour), submitData("HZ-2026-0002", "land", "anji"))
			}()
		}
		wg.Wait()
		for _, r := range replies {
			if r.Status != 200 || r.Type() != contract.TypeAppealAssigned || !bytes.Equal(r.Event.Data(), replies[0].Event.Data()) {
				t.Fatalf("reply %d %s %s, first %s", r.Status, r.Type(), r.Body, replies[0].Event.Data())
			}
		}
		if n := f.Count(t, `SELECT count(*) FROM appeal.appeals WHERE appeal_id = 'HZ-2026-0002'`); n != 1 {
			t.Fatalf("%d appeals", n)
		}
	})
	t.Run("ForumAppeal", func(t *testing.T) {
		d := submitData("", "energy", "changxing")
		d["channel"], d["forumId"], d["signupId"] = "forum", "F-2026-48", "5b0c7e0e-0000-4000-8000-000000000001"
		a := f.submit(t, at, d)
		var forumID string
		if err := f.Pool.QueryRow(context.Background(), `SELECT forum_id FROM appeal.appeals WHERE appeal_id = $1`, a.AppealID).Scan(&forumID); err != nil || forumID != "F-2026-48" {
			t.Fatalf("forum_id = %q, %v", forumID, err)
		}
	})
}

func TestSubmitInvalid(t *testing.T) {
	t.Parallel()
	f := setup(t)
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, cst)
	cases := []struct {
		name  string
		edit  func(d map[string]any)
		field string
	}{
		{"BadUSCC", func(d map[string]any) { d["enterprise"].(map[string]any)["uscc"] = "91330500MA2B3C4D5X" }, "enterprise.uscc"},
		{"MissingName", func(d map[string]any) { d["enterprise"].(map[string]any)["name"] = " " }, "enterprise.name"},
		{"MistypedEnterprise", func(d map[string]any) { d["enterprise"] = "湖州绿色织造" }, "enterprise"},
		{"UnknownCounty", func(d map[string]any) { d["county"] = "hangzhou" }, "county"},
		{"MissingTitle", func(d map[string]any) { delete(d, "title") }, "title"},
		{"MissingChannel", func(d map[string]any) { delete(d, "channel") }, "channel"},
		{"UnknownChannel", func(d map[string]any) { d["channel"] = "wechat" }, "channel"},
		{"ForumWithoutForumID", func(d map[string]any) { d["channel"] = "forum" }, "forumId"},
		{"UnsafeAppealID", func(d map[string]any) { d["appealId"] = "a/b" }, "appealId"},
		{"MistypedAppealID", func(d map[string]any) { d["appealId"] = 17 }, "appealId"},
	}
	for _, c := range cases {
		t.Run("Err"+c.name, func(t *testing.T) {
			d := submitData("", "land", "anji")
			c.edit(d)
			r := f.send(t, contract.TypeAppealSubmitted, portalSrc, at, d)
			if r.Status != 400 || r.Problem()["field"] != c.field {
				t.Fatalf("got %d %s, want 400 naming %s", r.Status, r.Body, c.field)
			}
		})
	}
	t.Run("ErrNotJSON", func(t *testing.T) {
		ev := functest.Event(contract.TypeAppealSubmitted, portalSrc, nextID(), at, nil)
		_ = ev.SetData("application/json", []byte("{not json"))
		if r := f.Fn.Send(t, ev); r.Status != 400 || r.Problem()["field"] != "data" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	if n := f.Count(t, `SELECT count(*) FROM appeal.appeals`); n != 0 {
		t.Fatalf("%d appeals written by bad input", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.inbox`); n != 0 {
		t.Fatalf("%d inbox rows written by bad input", n)
	}
}

func TestAnswerInvalid(t *testing.T) {
	t.Parallel()
	f := setup(t)
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, cst)
	a := f.submit(t, at, submitData("HZ-1", "land", "anji"))
	cases := []struct {
		name, typ string
		data      map[string]any
		field     string
	}{
		{"AcceptedMissingID", contract.TypeAppealAccepted, map[string]any{"department": a.Department}, "appealId"},
		{"AcceptedMissingDepartment", contract.TypeAppealAccepted, map[string]any{"appealId": "HZ-1"}, "department"},
		{"AcceptedMistypedDepartment", contract.TypeAppealAccepted, map[string]any{"appealId": "HZ-1", "department": 3}, "department"},
		{"ReturnedMissingReason", contract.TypeAppealReturned, map[string]any{"appealId": "HZ-1", "department": a.Department}, "reason"},
		{"RepliedMissingReply", contract.TypeAppealReplied, map[string]any{"appealId": "HZ-1", "department": a.Department, "reply": ""}, "reply"},
		{"RevisitedMissingSatisfaction", contract.TypeAppealRevisited, map[string]any{"appealId": "HZ-1"}, "satisfaction"},
		{"RevisitedUnknownSatisfaction", contract.TypeAppealRevisited, map[string]any{"appealId": "HZ-1", "satisfaction": "happy"}, "satisfaction"},
	}
	for _, c := range cases {
		t.Run("Err"+c.name, func(t *testing.T) {
			r := f.send(t, c.typ, deptSrc, at, c.data)
			if r.Status != 400 || r.Problem()["field"] != c.field {
				t.Fatalf("got %d %s, want 400 naming %s", r.Status, r.Body, c.field)
			}
		})
	}
	if n := f.Count(t, `SELECT count(*) FROM appeal.history`); n != 1 {
		t.Fatalf("%d history rows, want only the submission", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.inbox`); n != 1 {
		t.Fatalf("%d inbox rows, want only the submission", n)
	}
}

// TestClosedLoop runs an appeal around the whole loop: assigned, accepted,
// replied, an unsatisfied revisit that reopens it with a new reply
// deadline, a second reply, a satisfied revisit.
func TestClosedLoop(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.publish(t, testCalendar())
	const id, dept = "HZ-2030-0430", "anji-natural-resources"
	a := f.submit(t, time.Date(2030, 4, 30, 9, 0, 0, 0, cst), submitData(id, "land", "anji"))
	if a.Department != dept {
		t.Fatalf("routed to %s", a.Department)
	}
	wantUpdated(t, f.answer(t, contract.TypeAppealAccepted, time.Date(2030, 5, 6, 9, 0, 0, 0, cst),
		map[string]any{"appealId": id, "department": dept}), "accepted", dept)
	// Replied on Thursday 9 May: revisit due 3 working days later, the
	// third being Monday 13 (Friday 10, make-up Saturday 11, Monday 13).
	wantUpdated(t, f.answer(t, contract.TypeAppealReplied, time.Date(2030, 5, 9, 16, 0, 0, 0, cst),
		map[string]any{"appealId": id, "department": dept, "reply": "已协调县里新增指标15亩，其余纳入下批次。"}), "replied", dept)
	f.wantDue(t, id, "revisit_due", "2030-05-13T23:59:59+08:00")
	// Unsatisfied on Friday 10 May: reopened, reply due 10 working days on.
	wantUpdated(t, f.answer(t, contract.TypeAppealRevisited, time.Date(2030, 5, 10, 10, 0, 0, 0, cst),
		map[string]any{"appealId": id, "satisfaction": "unsatisfied", "comment": "指标缺口仍有5亩"}), "accepted", dept)
	f.wantDue(t, id, "reply_due", "2030-05-23T23:59:59+08:00")
	f.wantDue(t, id, "first_reply_due", "2030-05-16T23:59:59+08:00")
	wantUpdated(t, f.answer(t, contract.TypeAppealReplied, time.Date(2030, 5, 20, 16, 0, 0, 0, cst),
		map[string]any{"appealId": id, "department": dept, "reply": "剩余5亩已通过增减挂钩解决。"}), "replied", dept)
	wantUpdated(t, f.answer(t, contract.TypeAppealRevisited, time.Date(2030, 5, 21, 10, 0, 0, 0, cst),
		map[string]any{"appealId": id, "satisfaction": "basically_satisfied"}), "closed", dept)

	rows, err := f.Pool.Query(context.Background(), `SELECT action, actor, coalesce(from_status, ''), to_status, department,
			coalesce(satisfaction, ''), to_char(at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI')
		FROM appeal.history WHERE appeal_id = $1 ORDER BY seq`, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var v [7]string
		if err := rows.Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(v))
	}
	want := []string{
		"[submitted /portals/enterprise  assigned anji-natural-resources  2030-04-30 09:00]",
		"[accepted anji-natural-resources assigned accepted anji-natural-resources  2030-05-06 09:00]",
		"[replied anji-natural-resources accepted replied anji-natural-resources  2030-05-09 16:00]",
		"[revisited /portals/departments replied accepted anji-natural-resources unsatisfied 2030-05-10 10:00]",
		"[replied anji-natural-resources accepted replied anji-natural-resources  2030-05-20 16:00]",
		"[revisited /portals/departments replied closed anji-natural-resources basically_satisfied 2030-05-21 10:00]",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history:\n%s\nwant:\n%s", joinLines(got), joinLines(want))
	}
	if n := f.Count(t, `SELECT count(*) FROM appeal.history WHERE jsonb_typeof(detail) <> 'object'`); n != 0 {
		t.Fatalf("%d history rows without a detail object", n)
	}
	if n := f.Count(t, `SELECT reopened FROM appeal.appeals WHERE appeal_id = $1`, id); n != 1 {
		t.Fatalf("reopened = %d", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM appeal.history WHERE appeal_id = $1 AND detail->>'reply' LIKE '剩余5亩%'`, id); n != 1 {
		t.Fatalf("reply text kept in %d history rows", n)
	}
}

func joinLines(s []string) string {
	var b bytes.Buffer
	for _, l := range s {
		b.WriteString(l + "\n")
	}
	return b.String()
}

func (f *fixture) wantDue(t *testing.T, id, column, want string) {
	t.Helper()
	var got time.Time
	if err := f.Pool.QueryRow(context.Background(), `SELECT `+column+` FROM appeal.appeals WHERE appeal_id = $1`, id).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if s := got.In(cst).Format(time.RFC3339); s != want {
		t.Fatalf("%s = %s, want %s", column, s, want)
	}
}

func TestReturned(t *testing.T) {
	t.Parallel()
	f := setup(t)
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, cst)
	a := f.submit(t, at, submitData("HZ-R1", "finance", "city"))
	wantUpdated(t, f.answer(t, contract.TypeAppealReturned, at.Add(time.Hour),
		map[string]any{"appealId": "HZ-R1", "department": a.Department, "reason": "属于用地问题，非金融办职责"}), "assigned", "yingshang-office")
	// The business environment office now holds it and signs for it.
	wantUpdated(t, f.answer(t, contract.TypeAppealAccepted, at.Add(2*time.Hour),
		map[string]any{"appealId": "HZ-R1", "department": "yingshang-office"}), "accepted", "yingshang-office")
	// Returned after acceptance (by a department) goes back as well.
	b := f.submit(t, at, submitData("HZ-R2", "tax", "city"))
	f.answer(t, contract.TypeAppealAccepted, at.Add(time.Hour), map[string]any{"appealId": "HZ-R2", "department": b.Department})
	wantUpdated(t, f.answer(t, contract.TypeAppealReturned, at.Add(2*time.Hour),
		map[string]any{"appealId": "HZ-R2", "department": b.Department, "reason": "涉及社保，非税务部门职责"}), "assigned", "yingshang-office")
	var reason string
	if err := f.Pool.QueryRow(context.Background(), `SELECT detail->>'reason' FROM appeal.history WHERE appeal_id = 'HZ-R2' AND action = 'returned'`).Scan(&reason); err != nil || reason != "涉及社保，非税务部门职责" {
		t.Fatalf("return reason %q, %v", reason, err)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	f := setup(t)
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, cst)
	a := f.submit(t, at, submitData("HZ-X", "land", "anji"))
	dept := a.Department
	history := func() int64 { return f.Count(t, `SELECT count(*) FROM appeal.history WHERE appeal_id = 'HZ-X'`) }
	status := func() string {
		var s string
		_ = f.Pool.QueryRow(context.Background(), `SELECT status || '/' || department FROM appeal.appeals WHERE appeal_id = 'HZ-X'`).Scan(&s)
		return s
	}
	refuse := func(t *testing.T, typ string, data map[string]any, reason string) {
		t.Helper()
		before, st := history(), status()
		id, _ := data["appealId"].(string)
		wantRejected(t, f.answer(t, typ, at.Add(time.Hour), data), id, reason)
		if history() != before || status() != st {
			t.Fatalf("a refusal changed the appeal: %s → %s", st, status())
		}
	}
	t.Run("ErrUnknownAppeal", func(t *testing.T) {
		for _, typ := range []string{contract.TypeAppealAccepted, contract.TypeAppealReturned, contract.TypeAppealReplied} {
			refuse(t, typ, map[string]any{"appealId": "HZ-404", "department": dept, "reason": "x", "reply": "x"}, "unknown_appeal")
		}
		refuse(t, contract.TypeAppealRevisited, map[string]any{"appealId": "HZ-404", "satisfaction": "satisfied"}, "unknown_appeal")
	})
	t.Run("ErrWrongDepartment", func(t *testing.T) {
		refuse(t, contract.TypeAppealAccepted, map[string]any{"appealId": "HZ-X", "department": "natural-resources"}, "wrong_department")
		refuse(t, contract.TypeAppealReturned, map[string]any{"appealId": "HZ-X", "department": "tax", "reason": "x"}, "wrong_department")
	})
	t.Run("ErrInvalidTransition", func(t *testing.T) {
		refuse(t, contract.TypeAppealReplied, map[string]any{"appealId": "HZ-X", "department": dept, "reply": "未签收先答复"}, "invalid_transition")
		refuse(t, contract.TypeAppealRevisited, map[string]any{"appealId": "HZ-X", "satisfaction": "satisfied"}, "invalid_transition")
		f.answer(t, contract.TypeAppealAccepted, at.Add(time.Hour), map[string]any{"appealId": "HZ-X", "department": dept})
		refuse(t, contract.TypeAppealAccepted, map[string]any{"appealId": "HZ-X", "department": dept}, "invalid_transition")
		f.answer(t, contract.TypeAppealReplied, at.Add(2*time.Hour), map[string]any{"appealId": "HZ-X", "department": dept, "reply": "已解决"})
		refuse(t, contract.TypeAppealReturned, map[string]any{"appealId": "HZ-X", "department": dept, "reason": "x"}, "invalid_transition")
		refuse(t, contract.TypeAppealReplied, map[string]any{"appealId": "HZ-X", "department": dept, "reply": "再答复"}, "invalid_transition")
		f.answer(t, contract.TypeAppealRevisited, at.Add(3*time.Hour), map[string]any{"appealId": "HZ-X", "satisfaction": "satisfied"})
		refuse(t, contract.TypeAppealRevisited, map[string]any{"appealId": "HZ-X", "satisfaction": "unsatisfied"}, "invalid_transition")
		// The business environment office cannot return what it holds.
		f.submit(t, at, submitData("HZ-Y", "", "city"))
		before := f.Count(t, `SELECT count(*) FROM appeal.history WHERE appeal_id = 'HZ-Y'`)
		wantRejected(t, f.answer(t, contract.TypeAppealReturned, at.Add(time.Hour),
			map[string]any{"appealId": "HZ-Y", "department": "yingshang-office", "reason": "无法分办"}), "HZ-Y", "invalid_transition")
		if f.Count(t, `SELECT count(*) FROM appeal.history WHERE appeal_id = 'HZ-Y'`) != before {
			t.Fatal("refused return was recorded")
		}
	})
}

func TestRedelivery(t *testing.T) {
	t.Parallel()
	f := setup(t)
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, cst)
	same := func(t *testing.T, ev cloudevents.Event) {
		t.Helper()
		first := f.Fn.Send(t, ev)
		second := f.Fn.SendStructured(t, ev)
		if first.Status != 200 || second.Status != 200 || first.Type() != second.Type() ||
			!bytes.Equal(first.Event.Data(), second.Event.Data()) || first.Event.ID() != second.Event.ID() {
			t.Fatalf("replies differ:\n%d %s %s\n%d %s %s", first.Status, first.Type(), first.Body, second.Status, second.Type(), second.Body)
		}
	}
	t.Run("Submitted", func(t *testing.T) {
		same(t, functest.Event(contract.TypeAppealSubmitted, portalSrc, "sub-1", at, submitData("", "land", "anji")))
		if n := f.Count(t, `SELECT count(*) FROM appeal.appeals`); n != 1 {
			t.Fatalf("%d appeals", n)
		}
	})
	id := runtime.DeriveID("appeal", portalSrc, "sub-1")
	t.Run("Accepted", func(t *testing.T) {
		// The redelivered acceptance answers "updated" again, not an
		// invalid transition from accepted.
		same(t, functest.Event(contract.TypeAppealAccepted, deptSrc, "acc-1", at.Add(time.Hour),
			map[string]any{"appealId": id, "department": "anji-natural-resources"}))
		if n := f.Count(t, `SELECT count(*) FROM appeal.history WHERE action = 'accepted'`); n != 1 {
			t.Fatalf("%d acceptances recorded", n)
		}
	})
	t.Run("Replied", func(t *testing.T) {
		same(t, functest.Event(contract.TypeAppealReplied, deptSrc, "rep-1", at.Add(2*time.Hour),
			map[string]any{"appealId": id, "department": "anji-natural-resources", "reply": "已办结"}))
	})
	t.Run("Revisited", func(t *testing.T) {
		same(t, functest.Event(contract.TypeAppealRevisited, "/hotline/12345", "rev-1", at.Add(3*time.Hour),
			map[string]any{"appealId": id, "satisfaction": "unsatisfied"}))
		if n := f.Count(t, `SELECT reopened FROM appeal.appeals`); n != 1 {
			t.Fatalf("reopened %d times", n)
		}
	})
	t.Run("Returned", func(t *testing.T) {
		same(t, functest.Event(contract.TypeAppealReturned, deptSrc, "ret-1", at.Add(4*time.Hour),
			map[string]any{"appealId": id, "department": "anji-natural-resources", "reason": "非本单位职责"}))
	})
	t.Run("Refusal", func(t *testing.T) {
		same(t, functest.Event(contract.TypeAppealAccepted, deptSrc, "acc-404", at, map[string]any{"appealId": "nope", "department": "tax"}))
	})
	t.Run("CalendarPublished", func(t *testing.T) {
		same(t, functest.Event(contract.TypeCalendarPublished, "/state-council", "cal-2030", at, testCalendar()))
	})
	t.Run("ConcurrentDeliveries", func(t *testing.T) {
		ev := functest.Event(contract.TypeAppealSubmitted, portalSrc, "burst", at, submitData("", "tax", "city"))
		var wg sync.WaitGroup
		replies := make([]*functest.Response, 8)
		for i := range replies {
			wg.Add(1)
			go func() { defer wg.Done(); replies[i] = f.Fn.Send(t, ev) }()
		}
		wg.Wait()
		for _, r := range replies {
			if r.Status != 200 || !bytes.Equal(r.Event.Data(), replies[0].Event.Data()) {
				t.Fatalf("burst reply %d %s", r.Status, r.Body)
			}
		}
		if n := f.Count(t, `SELECT count(*) FROM appeal.history WHERE action = 'submitted'`); n != 2 {
			t.Fatalf("%d submissions recorded, want 2", n)
		}
	})
}

func TestRoutingRulesFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(file, []byte(rulesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	f := setup(t, "ROUTING_RULES_FILE="+file)
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, cst)
	for _, c := range []struct{ category, county, want string }{
		{"land", "anji", "anji-natural-resources"}, {"land", "deqing", "natural-resources"}, {"finance", "city", "triage-desk"},
	} {
		if a := f.submit(t, at, submitData("", c.category, c.county)); a.Department != c.want {
			t.Errorf("%s/%s routed to %s, want %s", c.category, c.county, a.Department, c.want)
		}
	}
	t.Run("ErrMalformedFile", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(bad, []byte(`{"rules": [{"category": "land", "departement": "x"}]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := functest.RunConfigOnly(t, binary, "DATABASE_URL="+f.DatabaseURL, "ROUTING_RULES_FILE="+bad)
		line := bytes.TrimSpace(out)
		if err == nil || !bytes.Contains(line, []byte("ROUTING_RULES_FILE")) || !bytes.Contains(line, []byte("departement")) || bytes.Count(line, []byte("\n")) != 0 {
			t.Fatalf("got %v: %q", err, out)
		}
	})
	t.Run("ErrMissingFile", func(t *testing.T) {
		out, err := functest.RunConfigOnly(t, binary, "DATABASE_URL="+f.DatabaseURL, "ROUTING_RULES_FILE="+filepath.Join(dir, "nope.yaml"))
		if err == nil || !bytes.Contains(out, []byte("ROUTING_RULES_FILE")) {
			t.Fatalf("got %v: %q", err, out)
		}
	})
	t.Run("ErrMissingDatabaseURL", func(t *testing.T) {
		out, err := functest.RunConfigOnly(t, binary)
		if err == nil || !bytes.Contains(out, []byte("DATABASE_URL")) || bytes.Count(bytes.TrimSpace(out), []byte("\n")) != 0 {
			t.Fatalf("got %v: %q", err, out)
		}
	})
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// The contract tests run deadline-check and, to feed it appeals the way
// production does, appeal-router: both built binaries, over HTTP.
var binary, router string

func TestMain(m *testing.M) {
	functest.MainTwice(m, map[string]*string{".": &binary, "../appeal-router": &router})
}

type fixture struct {
	*functest.Fixture
	router *functest.Instance
}

func setup(t *testing.T) *fixture {
	t.Helper()
	k := functest.Setup(t, binary, functest.Parts{Sink: true, S3: true})
	f := &fixture{Fixture: k, router: functest.Start(t, router, "DATABASE_URL="+k.DatabaseURL)}
	f.publish(t)
	return f
}

var (
	cst = time.FixedZone("CST", 8*3600)
)

const (
	pingSrc = "/apis/v1/namespaces/qinqing/pingsources/deadline-check"
	deptSrc = "/portals/departments"
)

var nextID = functest.NextID

func day(m time.Month, d, h int) time.Time { return time.Date(2030, m, d, h, 0, 0, 0, cst) }

// publish gives the test its own 2030 calendar: a May Day holiday from
// Wednesday 1 to Sunday 5 May, make-up working days on Sunday 28 April and
// Saturday 11 May.
func (f *fixture) publish(t *testing.T) {
	t.Helper()
	r := f.router.Send(t, functest.Event(contract.TypeCalendarPublished, "/state-council", nextID(), time.Date(2029, 11, 12, 10, 0, 0, 0, cst),
		map[string]any{"year": 2030,
			"holidays": []string{"2030-05-01", "2030-05-02", "2030-05-03", "2030-05-04", "2030-05-05"},
			"workdays": []string{"2030-04-28", "2030-05-11"}}))
	if r.Type() != contract.TypeCalendarAccepted {
		t.Fatalf("publish calendar: %d %s", r.Status, r.Body)
	}
}

// submit files an appeal through appeal-router and returns its department.
func (f *fixture) submit(t *testing.T, id string, at time.Time, category, county string) string {
	t.Helper()
	r := f.router.Send(t, functest.Event(contract.TypeAppealSubmitted, "/portals/enterprise", nextID(), at, map[string]any{
		"appealId":   id,
		"enterprise": map[string]any{"uscc": event.SampleUSCC(7), "name": "湖州南太湖智造有限公司"},
		"county":     county, "title": "问题" + id, "detail": "详情", "category": category, "channel": "portal",
	}))
	if r.Type() != contract.TypeAppealAssigned {
		t.Fatalf("submit %s: %d %s", id, r.Status, r.Body)
	}
	return r.Data()["department"].(string)
}

// act sends a department answer or revisit through appeal-router.
func (f *fixture) act(t *testing.T, typ string, at time.Time, data map[string]any) {
	t.Helper()
	r := f.router.Send(t, functest.Event(typ, deptSrc, nextID(), at, data))
	if r.Type() != contract.TypeAppealUpdated {
		t.Fatalf("%s %v: %d %s", typ, data, r.Status, r.Body)
	}
}

func (f *fixture) ping(t *testing.T, job string, at time.Time) *functest.Response {
	t.Helper()
	return f.Fn.Send(t, functest.Event(event.PingType, pingSrc, nextID(), at, map[string]any{"job": job}))
}

// check runs a deadline check and decodes its reply.
func (f *fixture) check(t *testing.T, at time.Time) contract.CheckCompleted {
	t.Helper()
	r := f.ping(t, "deadline-check", at)
	if r.Status != 200 || r.Type() != contract.TypeDeadlineCheckCompleted {
		t.Fatalf("check: %d %s %s", r.Status, r.Type(), r.Body)
	}
	var c contract.CheckCompleted
	r.DataInto(t, &c)
	return c
}

// announced returns the overdue events the sink received, by key.
func (f *fixture) announced(t *testing.T, n int) map[string]contract.OverdueAnnounced {
	t.Helper()
	evs := f.Sink.WaitFor(t, contract.TypeAppealOverdue, n, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // a relay round more: nothing else may come
	evs = f.Sink.OfType(contract.TypeAppealOverdue)
	out := map[string]contract.OverdueAnnounced{}
	ids := map[string]bool{}
	for _, ev := range evs {
		var a contract.OverdueAnnounced
		if err := ev.DataAs(&a); err != nil {
			t.Fatal(err)
		}
		k := appeal.OverdueKey(a.AppealID, a.Stage, a.Level)
		if _, dup := out[k]; dup || ids[ev.ID()] {
			t.Fatalf("%s announced twice", k)
		}
		if ev.Source() != "/qinqing/deadline-check" || ev.Subject() != a.AppealID {
			t.Fatalf("overdue event source %s subject %s", ev.Source(), ev.Subject())
		}
		out[k], ids[ev.ID()] = a, true
	}
	if len(out) != n {
		t.Fatalf("%d overdue events, want %d", len(out), n)
	}
	return out
}

func wantCheck(t *testing.T, got contract.CheckCompleted, assign, reply, revisit, announced int) {
	t.Helper()
	want := contract.OverdueCounts{Assign: assign, Reply: reply, Revisit: revisit}
	if got.Overdue != want || got.Announced != announced {
		t.Fatalf("check as of %s: overdue %+v announced %d, want %+v announced %d", got.AsOf, got.Overdue, got.Announced, want, announced)
	}
}

// TestLadder follows two appeals through repeated checks. A (received
// Thursday 9 May) is due to be signed for on the make-up Saturday 11 May;
// B (received Wednesday 24 April) was due on Friday 26 April and is first
// checked nine working days later, so it climbs every rung at once.
func TestLadder(t *testing.T) {
	t.Parallel()
	f := setup(t)
	deptA := f.submit(t, "A", day(5, 9, 10), "land", "anji")
	deptB := f.submit(t, "B", day(4, 24, 10), "tax", "city")

	// Sunday 12 May: A is 0 working days overdue (reminder); B's assign
	// stage 9 (all three levels), its reply (due Friday 10 May) 1.
	c := f.check(t, day(5, 12, 10))
	wantCheck(t, c, 2, 1, 0, 5)
	if got := c.AsOf.Format(time.RFC3339); got != "2030-05-12T10:00:00+08:00" {
		t.Fatalf("asOf = %s", got)
	}
	// The same moment again: nothing new.
	wantCheck(t, f.check(t, day(5, 12, 11)), 2, 1, 0, 0)
	// Monday 13 May: B's reply reaches 2 (the make-up Saturday counts):
	// supervision; A's assign is at 1.
	wantCheck(t, f.check(t, day(5, 13, 9)), 2, 1, 0, 1)
	// Tuesday 14 May: A's assign reaches 2.
	wantCheck(t, f.check(t, day(5, 14, 9)), 2, 1, 0, 1)
	// B is signed for (late): its assign stage is no longer overdue.
	f.act(t, contract.TypeAppealAccepted, day(5, 14, 10), map[string]any{"appealId": "B", "department": deptB})
	// Monday 20 May: A's assign and B's reply reach exposure.
	wantCheck(t, f.check(t, day(5, 20, 9)), 1, 1, 0, 2)
	// A is signed for, B replied (revisit due Thursday 23 May).
	f.act(t, contract.TypeAppealAccepted, day(5, 20, 11), map[string]any{"appealId": "A", "department": deptA})
	f.act(t, contract.TypeAppealReplied, day(5, 20, 10), map[string]any{"appealId": "B", "department": deptB, "reply": "退税已到账"})
	// Monday 27 May: A's reply (due Wednesday 22 May) and B's revisit are
	// 3 and 2 working days overdue: reminder and supervision each.
	wantCheck(t, f.check(t, day(5, 27, 9)), 0, 1, 1, 4)

	got := f.announced(t, 13)
	for _, w := range []contract.OverdueAnnounced{
		{AppealID: "A", Stage: "assign", Level: "reminder", Department: deptA, DueAt: day(5, 11, 0).Add(23*time.Hour + 59*time.Minute + 59*time.Second), WorkingDaysOverdue: 0},
		{AppealID: "A", Stage: "assign", Level: "supervision", Department: deptA, WorkingDaysOverdue: 2},
		{AppealID: "A", Stage: "assign", Level: "exposure", Department: deptA, WorkingDaysOverdue: 6},
		{AppealID: "A", Stage: "reply", Level: "reminder", Department: deptA, WorkingDaysOverdue: 3},
		{AppealID: "A", Stage: "reply", Level: "supervision", Department: deptA, WorkingDaysOverdue: 3},
		{AppealID: "B", Stage: "assign", Level: "reminder", Department: deptB, DueAt: day(4, 26, 0).Add(23*time.Hour + 59*time.Minute + 59*time.Second), WorkingDaysOverdue: 9},
		{AppealID: "B", Stage: "assign", Level: "supervision", Department: deptB, WorkingDaysOverdue: 9},
		{AppealID: "B", Stage: "assign", Level: "exposure", Department: deptB, WorkingDaysOverdue: 9},
		{AppealID: "B", Stage: "reply", Level: "reminder", Department: deptB, WorkingDaysOverdue: 1},
		{AppealID: "B", Stage: "reply", Level: "supervision", Department: deptB, WorkingDaysOverdue: 2},
		{AppealID: "B", Stage: "reply", Level: "exposure", Department: deptB, WorkingDaysOverdue: 7},
		{AppealID: "B", Stage: "revisit", Level: "reminder", Department: deptB, WorkingDaysOverdue: 2},
		{AppealID: "B", Stage: "revisit", Level: "supervision", Department: deptB, WorkingDaysOverdue: 2},
	} {
		k := appeal.OverdueKey(w.AppealID, w.Stage, w.Level)
		a, ok := got[k]
		if !ok {
			t.Errorf("%s not announced", k)
			continue
		}
		if a.Department != w.Department || a.WorkingDaysOverdue != w.WorkingDaysOverdue || !w.DueAt.IsZero() && !a.DueAt.Equal(w.DueAt) {
			t.Errorf("%s = %+v, want %+v", k, a, w)
		}
	}
	if a := got["overdue/B/assign/exposure"]; a.DueAt.Format(time.RFC3339) != "2030-04-26T23:59:59+08:00" {
		t.Errorf("dueAt %s, want 2030-04-26T23:59:59+08:00 in the business time zone", a.DueAt.Format(time.RFC3339))
	}
	if n := f.Count(t, `SELECT count(*) FROM appeal.overdue_announcements`); n != 13 {
		t.Fatalf("%d announcement rows, want 13", n)
	}
	t.Run("Redelivery", func(t *testing.T) {
		ev := functest.Event(event.PingType, pingSrc, "ping-again", day(5, 28, 9), map[string]any{"job": "deadline-check"})
		first, second := f.Fn.Send(t, ev), f.Fn.SendStructured(t, ev)
		if first.Status != 200 || second.Status != 200 || !bytes.Equal(first.Event.Data(), second.Event.Data()) || first.Event.ID() != second.Event.ID() {
			t.Fatalf("replies differ: %s / %s", first.Body, second.Body)
		}
	})
}

// TestConcurrentChecks fires several checks at the same moment, round
// after round, at appeals climbing the ladder: each (appeal, stage,
// level) is announced by exactly one of them.
func TestConcurrentChecks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const appeals = 6
	for i := 0; i < appeals; i++ {
		f.submit(t, fmt.Sprintf("C%d", i), day(5, 9, 9+i), "land", "city")
	}
	// Assign due Saturday 11 May, reply due Wednesday 22 May.
	rounds := []time.Time{day(5, 12, 9), day(5, 14, 9), day(5, 17, 9), day(5, 24, 9), day(5, 29, 9)}
	total := 0
	for _, at := range rounds {
		var wg sync.WaitGroup
		replies := make([]contract.CheckCompleted, 4)
		for i := range replies {
			wg.Add(1)
			go func() { defer wg.Done(); replies[i] = f.check(t, at) }()
		}
		wg.Wait()
		for _, r := range replies {
			total += r.Announced
			if r.Overdue != replies[0].Overdue {
				t.Fatalf("concurrent checks disagree on what is overdue: %+v vs %+v", r.Overdue, replies[0].Overdue)
			}
		}
	}
	// Each appeal: assign reminder, supervision, exposure; reply reminder,
	// supervision (29 May is 5 working days after 22 May: exposure too).
	want := appeals * 6
	if total != want {
		t.Fatalf("checks announced %d in total, want %d", total, want)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.outbox WHERE type = $1`, contract.TypeAppealOverdue); n != int64(want) {
		t.Fatalf("%d overdue events queued, want %d", n, want)
	}
	f.announced(t, want)
}

func TestPingInvalid(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, c := range []struct {
		name string
		data any
	}{
		{"UnknownJob", map[string]any{"job": "forum-weekly"}},
		{"MissingJob", map[string]any{}},
		{"MistypedJob", map[string]any{"job": 1}},
	} {
		t.Run("Err"+c.name, func(t *testing.T) {
			r := f.Fn.Send(t, functest.Event(event.PingType, pingSrc, nextID(), day(5, 12, 9), c.data))
			if r.Status != 400 || r.Problem()["field"] != "job" {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
		})
	}
	t.Run("ErrUnknownType", func(t *testing.T) {
		r := f.Fn.Send(t, functest.Event(contract.TypeAppealSubmitted, "/x", nextID(), day(5, 12, 9), map[string]any{}))
		if r.Status != 400 || r.Problem()["field"] != "type" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	if n := f.Count(t, `SELECT count(*) FROM qinqing.inbox WHERE function = 'deadline-check'`); n != 0 {
		t.Fatalf("%d inbox rows written by bad input", n)
	}
}

func TestNoTimeAttribute(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// Without a time attribute the check runs as of the receipt.
	before := time.Now()
	r := f.Fn.Send(t, functest.Event(event.PingType, pingSrc, nextID(), time.Time{}, map[string]any{"job": "deadline-check"}))
	var c contract.CheckCompleted
	r.DataInto(t, &c)
	if c.AsOf.Before(before.Add(-time.Second)) || c.AsOf.After(time.Now().Add(time.Second)) {
		t.Fatalf("asOf = %s, want about now", c.AsOf)
	}
}

// TestMonthlyReview runs the review of May 2030 on a month of known data;
// docs/appeals.md explains each figure.
func TestMonthlyReview(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// M1: signed for and replied in time, satisfied.
	d1 := f.submit(t, "M1", day(5, 6, 9), "land", "anji")
	f.act(t, contract.TypeAppealAccepted, day(5, 7, 10), map[string]any{"appealId": "M1", "department": d1})
	f.act(t, contract.TypeAppealReplied, day(5, 10, 10), map[string]any{"appealId": "M1", "department": d1, "reply": "已解决"})
	f.act(t, contract.TypeAppealRevisited, day(5, 13, 10), map[string]any{"appealId": "M1", "satisfaction": "satisfied"})
	// M2: signed for late (due 9 May), replied late (due 20 May),
	// unsatisfied, replied again, basically satisfied.
	d2 := f.submit(t, "M2", day(5, 7, 9), "land", "city")
	f.act(t, contract.TypeAppealAccepted, day(5, 13, 10), map[string]any{"appealId": "M2", "department": d2})
	f.act(t, contract.TypeAppealReplied, day(5, 22, 10), map[string]any{"appealId": "M2", "department": d2, "reply": "初步答复"})
	f.act(t, contract.TypeAppealRevisited, day(5, 23, 10), map[string]any{"appealId": "M2", "satisfaction": "unsatisfied"})
	f.act(t, contract.TypeAppealReplied, day(5, 28, 10), map[string]any{"appealId": "M2", "department": d2, "reply": "再次答复"})
	f.act(t, contract.TypeAppealRevisited, day(5, 29, 10), map[string]any{"appealId": "M2", "satisfaction": "basically_satisfied"})
	// M3: never signed for.
	f.submit(t, "M3", day(5, 8, 9), "finance", "city")
	// M4: the business environment office's own, replied in time; its
	// revisit comes after the review's time and does not count.
	f.submit(t, "M4", day(5, 9, 9), "", "city")
	f.act(t, contract.TypeAppealAccepted, day(5, 9, 15), map[string]any{"appealId": "M4", "department": "yingshang-office"})
	f.act(t, contract.TypeAppealReplied, day(5, 15, 10), map[string]any{"appealId": "M4", "department": "yingshang-office", "reply": "已协调"})
	f.act(t, contract.TypeAppealRevisited, day(6, 2, 10), map[string]any{"appealId": "M4", "satisfaction": "satisfied"})
	// M5: received on the last afternoon; not yet due on 1 June. Its
	// acceptance on 3 June is after the review's time.
	d5 := f.submit(t, "M5", day(5, 31, 15), "land", "anji")
	f.act(t, contract.TypeAppealAccepted, day(6, 3, 9), map[string]any{"appealId": "M5", "department": d5})
	// M6: returned, then signed for by the office on its due day; never replied.
	d6 := f.submit(t, "M6", day(5, 14, 9), "finance", "wuxing")
	f.act(t, contract.TypeAppealReturned, day(5, 15, 9), map[string]any{"appealId": "M6", "department": d6, "reason": "非本部门职责"})
	f.act(t, contract.TypeAppealAccepted, day(5, 16, 9), map[string]any{"appealId": "M6", "department": "yingshang-office"})
	// Not May: 29 April (Beijing time) and 1 June 08:00.
	f.submit(t, "APR", time.Date(2030, 4, 30, 15, 30, 0, 0, time.UTC).Add(-24*time.Hour), "land", "anji")
	f.submit(t, "JUN", day(6, 1, 8), "land", "anji")
	// 30 April 23:30 in Huzhou is still April although it is 15:30 UTC.
	f.submit(t, "APR2", time.Date(2030, 4, 30, 15, 30, 0, 0, time.UTC), "tax", "city")
	// 31 May 16:30 UTC is 1 June in Huzhou.
	f.submit(t, "JUN2", time.Date(2030, 5, 31, 16, 30, 0, 0, time.UTC), "tax", "city")

	r := f.ping(t, "monthly-review", day(6, 1, 9))
	if r.Status != 200 || r.Type() != contract.TypeReviewPublished {
		t.Fatalf("review: %d %s %s", r.Status, r.Type(), r.Body)
	}
	want := `{"period":"2030-05","received":6,"assignedOnTimeRate":0.6,"repliedOnTimeRate":0.4,"revisitRate":0.6667,` +
		`"satisfactionRate":0.6667,"topCategories":[{"category":"land","count":3},{"category":"finance","count":2},{"category":"","count":1}],` +
		`"keys":["reports/2030-05/review.json","reports/2030-05/review.html"]}`
	if got := string(r.Event.Data()); got != want {
		t.Fatalf("reply\n got %s\nwant %s", got, want)
	}
	ctx := context.Background()
	jsonDoc, err := f.Store.Get(ctx, "reports/2030-05/review.json")
	if err != nil {
		t.Fatal(err)
	}
	htmlDoc, err := f.Store.Get(ctx, "reports/2030-05/review.html")
	if err != nil {
		t.Fatal(err)
	}
	var rv Review
	if err := json.Unmarshal(jsonDoc, &rv); err != nil {
		t.Fatal(err)
	}
	if rv.Assign != (StageFigures{OnTime: 3, Late: 2, Pending: 1}) || rv.Reply != (StageFigures{OnTime: 2, Late: 3, Pending: 1}) ||
		rv.Replied != 3 || rv.Revisited != 2 || rv.Revisits != (RevisitFigures{Total: 3, Satisfied: 1, BasicallySatisfied: 1, Unsatisfied: 1}) {
		t.Fatalf("review figures: %s", jsonDoc)
	}
	wantDepts := []DepartmentFigures{
		{Department: "anji-natural-resources", Received: 2, OnTime: 1, Pending: 1, Revisits: 1, Satisfied: 1, SatisfactionRate: 1},
		{Department: "yingshang-office", Received: 2, OnTime: 1, Overdue: 1},
		{Department: "financial-work", Received: 1, Overdue: 1},
		{Department: "natural-resources", Received: 1, Overdue: 1, Revisits: 2, Satisfied: 1, SatisfactionRate: 0.5},
	}
	if fmt.Sprint(rv.Departments) != fmt.Sprint(wantDepts) {
		t.Fatalf("departments\n got %+v\nwant %+v", rv.Departments, wantDepts)
	}
	if rv.From.Format(time.RFC3339) != "2030-05-01T00:00:00+08:00" || rv.To.Format(time.RFC3339) != "2030-06-01T00:00:00+08:00" ||
		rv.AsOf.Format(time.RFC3339) != "2030-06-01T09:00:00+08:00" {
		t.Fatalf("period bounds %s – %s as of %s", rv.From, rv.To, rv.AsOf)
	}
	page := string(htmlDoc)
	for _, s := range []string{"湖州市营商环境月评议 · 2030年5月", "<svg", "按时交办率", "60.0%", "40.0%", "安吉县自然资源和规划局", "用地"} {
		if !strings.Contains(page, s) {
			t.Errorf("review.html lacks %q", s)
		}
	}
	t.Run("RerunSameFiguresAndBytes", func(t *testing.T) {
		// More happens to May's appeals; the review is run again later.
		f.act(t, contract.TypeAppealAccepted, day(6, 3, 10), map[string]any{"appealId": "M3", "department": "financial-work"})
		again := f.ping(t, "monthly-review", day(6, 5, 9))
		if !bytes.Equal(again.Event.Data(), r.Event.Data()) {
			t.Fatalf("rerun reply %s, first %s", again.Event.Data(), r.Event.Data())
		}
		j2, _ := f.Store.Get(ctx, "reports/2030-05/review.json")
		h2, _ := f.Store.Get(ctx, "reports/2030-05/review.html")
		if !bytes.Equal(j2, jsonDoc) || !bytes.Equal(h2, htmlDoc) {
			t.Fatal("rerun changed the documents")
		}
	})
	t.Run("EmptyMonth", func(t *testing.T) {
		r := f.ping(t, "monthly-review", day(3, 15, 9))
		if r.Type() != contract.TypeReviewPublished || r.Data()["period"] != "2030-02" || r.Data()["received"] != float64(0) {
			t.Fatalf("got %s %s", r.Type(), r.Body)
		}
		// Lists are [] (never null) and rates 0 when nothing was received.
		want := `{"period":"2030-02","received":0,"assignedOnTimeRate":0,"repliedOnTimeRate":0,"revisitRate":0,` +
			`"satisfactionRate":0,"topCategories":[],"keys":["reports/2030-02/review.json","reports/2030-02/review.html"]}`
		if got := string(r.Event.Data()); got != want {
			t.Fatalf("reply\n got %s\nwant %s", got, want)
		}
	})
}

func TestConfig(t *testing.T) {
	t.Parallel()
	run := func(env ...string) ([]byte, error) {
		cmd := exec.Command(binary)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "PORT=0"}, env...)
		return cmd.CombinedOutput()
	}
	t.Run("ErrMissingBucket", func(t *testing.T) {
		out, err := run("DATABASE_URL=postgres://x@127.0.0.1:1/x")
		if err == nil || !bytes.Contains(out, []byte("S3_BUCKET")) || bytes.Count(bytes.TrimSpace(out), []byte("\n")) != 0 {
			t.Fatalf("got %v: %q", err, out)
		}
	})
	t.Run("ErrMissingDatabaseURL", func(t *testing.T) {
		out, err := run("S3_BUCKET=x")
		if err == nil || !bytes.Contains(out, []byte("DATABASE_URL")) {
			t.Fatalf("got %v: %q", err, out)
		}
	})
}

// TestAsOfEventTime checks the ladder at its edges and "as of the event
// time" (contract sections 1 and 5): a check judges each appeal as it
// stood at the event's time, also when the check arrives after later
// answers (a delayed or replayed ping), so the same time gives the same
// figures.
func TestAsOfEventTime(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// W: received Wednesday 15 May, to be signed for by Friday 17 May.
	f.submit(t, "W", day(5, 15, 10), "tax", "city")
	// L: received Monday 13 May, to be signed for by Wednesday 15 May,
	// signed for late on Tuesday 21 May and replied on Wednesday 22 May
	// (revisit due Monday 27 May) — all before the checks below arrive.
	deptL := f.submit(t, "L", day(5, 13, 9), "land", "anji")
	f.act(t, contract.TypeAppealAccepted, day(5, 21, 10), map[string]any{"appealId": "L", "department": deptL})
	f.act(t, contract.TypeAppealReplied, day(5, 22, 10), map[string]any{"appealId": "L", "department": deptL, "reply": "已答复"})

	t.Run("AtTheDueTimeNotYetOverdue", func(t *testing.T) {
		// At 23:59:59 on Friday 17 May W is due, not past due; L was
		// not yet signed for (2 working days overdue).
		wantCheck(t, f.check(t, day(5, 17, 23).Add(59*time.Minute+59*time.Second)), 1, 0, 0, 2)
	})
	t.Run("WeekendAfterFridayDue", func(t *testing.T) {
		// Saturday 18 May: W is past due by 0 working days — a reminder.
		wantCheck(t, f.check(t, day(5, 18, 10)), 2, 0, 0, 1)
		wantCheck(t, f.check(t, day(5, 19, 10)), 2, 0, 0, 0)
		// Monday 20 May: 1 working day; L at 3: nothing new.
		wantCheck(t, f.check(t, day(5, 20, 9)), 2, 0, 0, 0)
	})
	t.Run("SameTimeSameFigures", func(t *testing.T) {
		// A ping for Monday 20 May arriving again under a new id after
		// L was signed for and replied: the same figures.
		wantCheck(t, f.check(t, day(5, 20, 9)), 2, 0, 0, 0)
	})
	t.Run("LaterCheck", func(t *testing.T) {
		// Tuesday 28 May: W at 7 working days (supervision and exposure);
		// L's revisit (due Monday 27 May) at 1 (reminder).
		wantCheck(t, f.check(t, day(5, 28, 9)), 1, 0, 1, 3)
	})
	got := f.announced(t, 6)
	for k, days := range map[string]int{
		"overdue/L/assign/reminder": 2, "overdue/L/assign/supervision": 2, "overdue/W/assign/reminder": 0,
		"overdue/W/assign/supervision": 7, "overdue/W/assign/exposure": 7, "overdue/L/revisit/reminder": 1,
	} {
		a, ok := got[k]
		if !ok {
			t.Errorf("%s not announced", k)
			continue
		}
		if a.WorkingDaysOverdue != days {
			t.Errorf("%s: workingDaysOverdue = %d, want %d", k, a.WorkingDaysOverdue, days)
		}
	}
	if a := got["overdue/L/revisit/reminder"]; a.DueAt.Format(time.RFC3339) != "2030-05-27T23:59:59+08:00" || a.Department != deptL {
		t.Errorf("L revisit: %+v, want due 2030-05-27T23:59:59+08:00 at %s", a, deptL)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

var binary string

func TestMain(m *testing.M) { functest.MainTwice(m, map[string]*string{".": &binary}) }

type fixture struct{ *functest.Fixture }

func setup(t *testing.T) *fixture {
	t.Helper()
	return &fixture{functest.Setup(t, binary, functest.Parts{Sink: true, S3: true})}
}

var (
	week      = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	portalSrc = "/portals/enterprise"
)

var nextID = functest.NextID

func scheduleData(forumID string, capacity, reserved int) map[string]any {
	return map[string]any{
		"forumId": forumID, "date": "2026-12-02", "theme": "数字经济企业座谈", "hostLeader": "市长",
		"venue": "市民中心", "county": "city", "capacity": capacity, "reservedForNominated": reserved,
		"signupDeadline": "2026-12-01T17:00:00+08:00",
	}
}

func signupData(forumID, code, mode string) map[string]any {
	d := map[string]any{
		"forumId":    forumID,
		"enterprise": map[string]any{"uscc": code, "name": "湖州测试企业" + code[10:], "county": "wuxing"},
		"contact":    map[string]any{"name": "张三", "phone": "13800000000"},
		"mode":       mode,
		"topic":      "融资难",
		"problems":   []any{},
		"documents":  []any{},
	}
	if mode == "nominated" {
		d["nominatedBy"] = "市经信局"
	}
	return d
}

func (f *fixture) send(t *testing.T, typ string, at time.Time, data any) *functest.Response {
	t.Helper()
	return f.Fn.Send(t, functest.Event(typ, portalSrc, nextID(), at, data))
}

func (f *fixture) schedule(t *testing.T, forumID string, capacity, reserved int) {
	t.Helper()
	r := f.send(t, contract.TypeForumScheduled, week, scheduleData(forumID, capacity, reserved))
	if r.Status != 200 || r.Type() != contract.TypeForumScheduledAccepted {
		t.Fatalf("schedule: status %d type %q body %s", r.Status, r.Type(), r.Body)
	}
}

func TestSchedule(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 30, 10)

	t.Run("Reschedule", func(t *testing.T) {
		d := scheduleData("F1", 40, 10)
		d["venue"] = "吴兴区政府"
		r := f.send(t, contract.TypeForumScheduled, week, d)
		if r.Type() != contract.TypeForumScheduledAccepted {
			t.Fatalf("got %s %s", r.Type(), r.Body)
		}
		if got := f.Count(t, `SELECT capacity FROM forum.forums WHERE forum_id='F1'`); got != 40 {
			t.Fatalf("capacity = %d, want 40", got)
		}
	})
	t.Run("ErrCapacityBelowConfirmed", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			f.send(t, contract.TypeSignupRequested, week, signupData("F1", event.SampleUSCC(i), "self"))
		}
		r := f.send(t, contract.TypeForumScheduled, week, scheduleData("F1", 2, 0))
		if r.Status != 200 || r.Type() != contract.TypeForumScheduledRejected || r.Data()["reason"] != "capacity_below_confirmed" {
			t.Fatalf("got %d %s %s", r.Status, r.Type(), r.Body)
		}
		if got := f.Count(t, `SELECT capacity FROM forum.forums WHERE forum_id='F1'`); got != 40 {
			t.Fatalf("capacity = %d after refusal, want 40", got)
		}
	})
	t.Run("ErrReservedOverCapacity", func(t *testing.T) {
		r := f.send(t, contract.TypeForumScheduled, week, scheduleData("F2", 5, 6))
		if r.Status != 400 || r.Problem()["field"] != "reservedForNominated" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
}

func TestSignupInvalid(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 30, 10)
	good := func() map[string]any { return signupData("F1", event.SampleUSCC(1), "self") }
	cases := []struct {
		name  string
		edit  func(d map[string]any)
		field string
	}{
		{"BadUSCC", func(d map[string]any) { d["enterprise"].(map[string]any)["uscc"] = "91330500MA2B3C4D5X" }, "enterprise.uscc"},
		{"ShortUSCC", func(d map[string]any) { d["enterprise"].(map[string]any)["uscc"] = "9133" }, "enterprise.uscc"},
		{"UnknownMode", func(d map[string]any) { d["mode"] = "vip" }, "mode"},
		{"NominatedWithoutNominator", func(d map[string]any) { d["mode"] = "nominated" }, "nominatedBy"},
		{"UnknownCounty", func(d map[string]any) { d["enterprise"].(map[string]any)["county"] = "hangzhou" }, "enterprise.county"},
		{"MistypedForumID", func(d map[string]any) { d["forumId"] = 12 }, "forumId"},
		{"TooManyProblems", func(d map[string]any) {
			ps := make([]any, 11)
			for i := range ps {
				ps[i] = map[string]any{"title": "t", "category": "land"}
			}
			d["problems"] = ps
		}, "problems"},
		{"DocumentTooLarge", func(d map[string]any) {
			d["documents"] = []any{map[string]any{"fileName": "a.pdf", "contentType": "application/pdf", "sizeBytes": 21 << 20}}
		}, "documents[0].sizeBytes"},
		{"DocumentType", func(d map[string]any) {
			d["documents"] = []any{map[string]any{"fileName": "a.exe", "contentType": "application/x-msdownload", "sizeBytes": 10}}
		}, "documents[0].contentType"},
		{"TooManyDocuments", func(d map[string]any) {
			ds := make([]any, 6)
			for i := range ds {
				ds[i] = map[string]any{"fileName": fmt.Sprintf("%d.pdf", i), "contentType": "application/pdf", "sizeBytes": 10}
			}
			d["documents"] = ds
		}, "documents"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := good()
			tc.edit(d)
			r := f.send(t, contract.TypeSignupRequested, week, d)
			if r.Status != 400 {
				t.Fatalf("status = %d, want 400 (%s)", r.Status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type = %q", ct)
			}
			if got := r.Problem()["field"]; got != tc.field {
				t.Fatalf("field = %v, want %s (%s)", got, tc.field, r.Body)
			}
			// RFC 9457 members, and the field in the RFC's invalid-params too.
			p := r.Problem()
			typ, _ := p["type"].(string)
			title, _ := p["title"].(string)
			detail, _ := p["detail"].(string)
			if p["status"] != float64(400) || typ == "" || title == "" || detail == "" {
				t.Fatalf("problem = %s", r.Body)
			}
			if ps, _ := p["invalid-params"].([]any); len(ps) != 1 || ps[0].(map[string]any)["name"] != tc.field {
				t.Fatalf("invalid-params = %v, want one naming %s", p["invalid-params"], tc.field)
			}
		})
	}
	t.Run("NotJSON", func(t *testing.T) {
		ev := functest.Event(contract.TypeSignupRequested, portalSrc, nextID(), week, nil)
		_ = ev.SetData("application/json", []byte("{not json"))
		if r := f.Fn.Send(t, ev); r.Status != 400 {
			t.Fatalf("status = %d", r.Status)
		}
	})
	t.Run("UnknownType", func(t *testing.T) {
		if r := f.send(t, "cn.huzhou.something.else", week, map[string]any{}); r.Status != 400 || r.Problem()["field"] != "type" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("NotACloudEvent", func(t *testing.T) {
		if r := f.Fn.Post(t, "application/json", []byte(`{"hello":1}`)); r.Status != 400 {
			t.Fatalf("status = %d", r.Status)
		}
	})
	t.Run("TooLarge", func(t *testing.T) {
		d := good()
		d["topic"] = string(bytes.Repeat([]byte("x"), 1<<20))
		if r := f.send(t, contract.TypeSignupRequested, week, d); r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d", r.Status)
		}
	})
	if n := f.Count(t, `SELECT count(*) FROM forum.signups`); n != 0 {
		t.Fatalf("%d signups written by bad input", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.inbox WHERE type = $1`, contract.TypeSignupRequested); n != 0 {
		t.Fatalf("%d inbox rows written by bad input", n)
	}
}

func TestSignupFlow(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 3, 1)
	a, b, c, d, e := event.SampleUSCC(1), event.SampleUSCC(2), event.SampleUSCC(3), event.SampleUSCC(4), event.SampleUSCC(5)

	t.Run("OK", func(t *testing.T) {
		data := signupData("F1", a, "self")
		data["problems"] = []any{
			map[string]any{"title": "用地指标不足", "detail": "扩建需要20亩", "category": "land"},
			map[string]any{"title": "融资难", "detail": "贷款审批慢", "category": "finance"},
		}
		data["documents"] = []any{map[string]any{"fileName": "plan.pdf", "contentType": "application/pdf", "sizeBytes": 13}}
		r := f.send(t, contract.TypeSignupRequested, week, data)
		if r.Type() != contract.TypeSignupConfirmed {
			t.Fatalf("got %d %s %s", r.Status, r.Type(), r.Body)
		}
		var rep contract.SignupReply
		r.DataInto(t, &rep)
		if rep.Status != "confirmed" || rep.USCC != a || rep.SignupID == "" || len(rep.Uploads) != 1 {
			t.Fatalf("reply = %+v", rep)
		}
		if exp := rep.Uploads[0].ExpiresAt; exp.Before(time.Now().Add(14*time.Minute)) || exp.After(time.Now().Add(16*time.Minute)) {
			t.Fatalf("expiresAt = %v, want ~15 minutes from now", exp)
		}
		// The presigned PUT really stores the object.
		// The URL signs the declared size: an S3 server that checks SigV4
		// (AWS, MinIO, versitygw) refuses a body of any other length.
		if u, err := url.Parse(rep.Uploads[0].URL); err != nil || !strings.Contains(";"+u.Query().Get("X-Amz-SignedHeaders")+";", ";content-length;") {
			t.Fatalf("upload URL %s does not sign content-length", rep.Uploads[0].URL)
		}
		req, _ := http.NewRequest(http.MethodPut, rep.Uploads[0].URL, bytes.NewReader([]byte("%PDF-1.4 test")))
		req.Header.Set("Content-Type", "application/pdf")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("presigned PUT: %v %v", err, resp)
		}
		resp.Body.Close()
		got, err := f.Store.Get(context.Background(), rep.Uploads[0].Key)
		if err != nil || string(got) != "%PDF-1.4 test" {
			t.Fatalf("stored object = %q, %v", got, err)
		}
		// Each problem becomes an appeal follow-up.
		appeals := f.Sink.WaitFor(t, contract.TypeAppealSubmitted, 2, 10*time.Second)
		for _, ev := range appeals {
			var ap map[string]any
			_ = ev.DataAs(&ap)
			if ap["channel"] != "forum" || ap["forumId"] != "F1" || ap["signupId"] != rep.SignupID || ev.Source() != "/qinqing/forum-signup" {
				t.Fatalf("appeal follow-up = %v from %s", ap, ev.Source())
			}
			// A follow-up happened when the signup did, whatever the clock says.
			if !ev.Time().Equal(week) {
				t.Fatalf("appeal follow-up time = %v, want the signup's %v", ev.Time(), week)
			}
		}
	})
	t.Run("ErrAlreadyRegistered", func(t *testing.T) {
		r := f.send(t, contract.TypeSignupRequested, week, signupData("F1", a, "self"))
		if r.Type() != contract.TypeSignupRejected || r.Data()["reason"] != "already_registered" || r.Data()["signupId"] == "" {
			t.Fatalf("got %s %s", r.Type(), r.Body)
		}
	})
	t.Run("SelfSeatsThenWaitlist", func(t *testing.T) {
		if r := f.send(t, contract.TypeSignupRequested, week, signupData("F1", b, "self")); r.Type() != contract.TypeSignupConfirmed {
			t.Fatalf("b: %s %s", r.Type(), r.Body)
		}
		// Two self seats are taken; the third seat is reserved.
		r := f.send(t, contract.TypeSignupRequested, week, signupData("F1", c, "self"))
		if r.Type() != contract.TypeSignupWaitlisted || r.Data()["waitlistPosition"] != float64(1) {
			t.Fatalf("c: %s %s", r.Type(), r.Body)
		}
		if r := f.send(t, contract.TypeSignupRequested, week, signupData("F1", d, "nominated")); r.Type() != contract.TypeSignupConfirmed {
			t.Fatalf("d: %s %s", r.Type(), r.Body)
		}
		r = f.send(t, contract.TypeSignupRequested, week, signupData("F1", e, "nominated"))
		if r.Type() != contract.TypeSignupWaitlisted || r.Data()["waitlistPosition"] != float64(2) {
			t.Fatalf("e: %s %s", r.Type(), r.Body)
		}
	})
	t.Run("CancelPromotesFirstThatMayTake", func(t *testing.T) {
		// d (nominated) leaves: its seat may go to c (self)? No: self seats
		// are full, so it goes to e, the first waitlisted nominated signup.
		r := f.send(t, contract.TypeSignupCancelled, week, map[string]any{"forumId": "F1", "uscc": d})
		if r.Type() != contract.TypeSignupCancelAccepted || r.Data()["signupId"] == "" {
			t.Fatalf("cancel: %s %s", r.Type(), r.Body)
		}
		got := f.Sink.WaitFor(t, contract.TypeSignupConfirmed, 1, 10*time.Second)
		var rep contract.SignupReply
		_ = got[0].DataAs(&rep)
		if rep.USCC != e || rep.Status != "confirmed" {
			t.Fatalf("promoted %+v, want %s", rep, e)
		}
		// a (self) leaves: c takes the self seat.
		f.send(t, contract.TypeSignupCancelled, week, map[string]any{"forumId": "F1", "uscc": a})
		got = f.Sink.WaitFor(t, contract.TypeSignupConfirmed, 2, 10*time.Second)
		_ = got[1].DataAs(&rep)
		if rep.USCC != c {
			t.Fatalf("promoted %+v, want %s", rep, c)
		}
	})
	t.Run("ErrNotRegistered", func(t *testing.T) {
		r := f.send(t, contract.TypeSignupCancelled, week, map[string]any{"forumId": "F1", "uscc": d})
		if r.Type() != contract.TypeSignupRejected || r.Data()["reason"] != "not_registered" {
			t.Fatalf("got %s %s", r.Type(), r.Body)
		}
	})
	t.Run("ErrForumNotFound", func(t *testing.T) {
		r := f.send(t, contract.TypeSignupRequested, week, signupData("F404", a, "self"))
		if r.Type() != contract.TypeSignupRejected || r.Data()["reason"] != "forum_not_found" {
			t.Fatalf("got %s %s", r.Type(), r.Body)
		}
	})
	t.Run("ErrSignupClosed", func(t *testing.T) {
		late := time.Date(2026, 12, 1, 9, 0, 1, 0, time.UTC) // 17:00:01 in Huzhou
		r := f.send(t, contract.TypeSignupRequested, late, signupData("F1", event.SampleUSCC(9), "self"))
		if r.Type() != contract.TypeSignupRejected || r.Data()["reason"] != "signup_closed" {
			t.Fatalf("got %s %s", r.Type(), r.Body)
		}
	})
}

func TestRedelivery(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 30, 10)
	data := signupData("F1", event.SampleUSCC(1), "self")
	data["problems"] = []any{map[string]any{"title": "用电", "category": "energy"}}
	ev := functest.Event(contract.TypeSignupRequested, portalSrc, "same-id", week, data)
	first := f.Fn.Send(t, ev)
	// Structured mode this time: same event, other encoding.
	second := f.Fn.SendStructured(t, ev)
	if first.Status != 200 || second.Status != 200 {
		t.Fatalf("status %d, %d", first.Status, second.Status)
	}
	if first.Type() != second.Type() || !bytes.Equal(first.Event.Data(), second.Event.Data()) || first.Event.ID() != second.Event.ID() || !first.Event.Time().Equal(second.Event.Time()) {
		t.Fatalf("replies differ:\n%s %s\n%s %s", first.Type(), first.Event.Data(), second.Type(), second.Event.Data())
	}
	if n := f.Count(t, `SELECT count(*) FROM forum.signups`); n != 1 {
		t.Fatalf("%d signups, want 1", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.outbox`); n != 1 {
		t.Fatalf("%d outbox rows, want 1", n)
	}
	// Redelivered after its signup was cancelled: its statement runs
	// again and fails before the inbox (the signup's id is taken), and the
	// stored reply answers; the cancelled signup stays the only one, no
	// seat is taken again.
	if r := f.send(t, contract.TypeSignupCancelled, week, map[string]any{"forumId": "F1", "uscc": event.SampleUSCC(1)}); r.Type() != contract.TypeSignupCancelAccepted {
		t.Fatalf("cancel: %s %s", r.Type(), r.Body)
	}
	third := f.Fn.Send(t, ev)
	if third.Status != 200 || third.Type() != first.Type() || !bytes.Equal(third.Event.Data(), first.Event.Data()) || third.Event.ID() != first.Event.ID() {
		t.Fatalf("redelivery after the cancel: %d %s %s, want the first reply %s %s", third.Status, third.Type(), third.Body, first.Type(), first.Event.Data())
	}
	if got := f.Count(t, `SELECT count(*) FROM forum.signups WHERE status = 'cancelled'`)*10 + f.Count(t, `SELECT count(*) FROM forum.signups`); got != 11 {
		t.Fatalf("signups after the redelivery: %d (10 × cancelled + all), want 11: the cancelled one only", got)
	}
	if n := f.Count(t, `SELECT confirmed_self + confirmed_nominated + waitlisted FROM forum.forums WHERE forum_id = 'F1'`); n != 0 {
		t.Fatalf("%d seats counted after the cancel and the redelivery, want 0", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.outbox WHERE type = $1`, contract.TypeAppealSubmitted); n != 1 {
		t.Fatalf("%d appeals announced, want 1", n)
	}
	// Concurrent deliveries of one event: one effect, one reply.
	ev2 := functest.Event(contract.TypeSignupRequested, portalSrc, "burst-id", week, signupData("F1", event.SampleUSCC(2), "self"))
	var wg sync.WaitGroup
	replies := make([]*functest.Response, 8)
	for i := range replies {
		wg.Add(1)
		go func() { defer wg.Done(); replies[i] = f.Fn.Send(t, ev2) }()
	}
	wg.Wait()
	for _, r := range replies {
		if r.Status != 200 || !bytes.Equal(r.Event.Data(), replies[0].Event.Data()) {
			t.Fatalf("burst reply %d %s", r.Status, r.Body)
		}
	}
	if n := f.Count(t, `SELECT count(*) FROM forum.signups`); n != 2 {
		t.Fatalf("%d signups, want 2", n)
	}
}

// TestConcurrentSignupsOneEnterprise: eight different signups of one
// enterprise for one forum at once, half through a second process. One is
// confirmed; another process's signup that waited for the forum's lock
// while that one committed cannot see it in its own statement's snapshot,
// and is refused already_registered naming the confirmed signup all the
// same, as are the ones that came later. One seat is taken.
func TestConcurrentSignupsOneEnterprise(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 30, 10)
	// A second process on the same database: within one process the
	// signups of a forum take turns (Decision.Serial), across processes
	// they race for the forum's row.
	other := functest.Start(t, binary, f.Env...)
	code := event.SampleUSCC(7)
	replies := make([]*functest.Response, 8)
	var wg sync.WaitGroup
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn := f.Fn
			if i%2 == 1 {
				fn = other
			}
			replies[i] = fn.Send(t, functest.Event(contract.TypeSignupRequested, portalSrc, nextID(), week, signupData("F1", code, "self")))
		}()
	}
	wg.Wait()
	var confirmed string
	for _, r := range replies {
		if r.Type() == contract.TypeSignupConfirmed {
			if confirmed != "" {
				t.Fatalf("two signups of one enterprise confirmed: %s and %s", confirmed, r.Body)
			}
			confirmed, _ = r.Data()["signupId"].(string)
		}
	}
	if confirmed == "" {
		t.Fatal("no signup confirmed")
	}
	for _, r := range replies {
		if r.Type() == contract.TypeSignupConfirmed {
			continue
		}
		if r.Type() != contract.TypeSignupRejected || r.Data()["reason"] != "already_registered" || r.Data()["signupId"] != confirmed {
			t.Fatalf("got %d %s %s, want already_registered naming %s", r.Status, r.Type(), r.Body, confirmed)
		}
	}
	if n := f.Count(t, `SELECT count(*) FROM forum.signups`); n != 1 {
		t.Fatalf("%d signups, want 1", n)
	}
	if n := f.Count(t, `SELECT confirmed_self FROM forum.forums WHERE forum_id = 'F1'`); n != 1 {
		t.Fatalf("confirmed_self %d, want 1", n)
	}
}

// seatRun is the outcome of one batch of concurrent signups.
type seatRun struct {
	self, nominated, waitlisted int
	positions                   map[int]bool
}

// signupConcurrently sends one signup per mode at once (32 in flight) for
// enterprises numbered from base, and tallies the replies.
func signupConcurrently(t *testing.T, f *fixture, base int, modes []string) seatRun {
	t.Helper()
	types := make([]string, len(modes))
	replies := make([]contract.SignupReply, len(modes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, mode := range modes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := f.send(t, contract.TypeSignupRequested, week, signupData("F1", event.SampleUSCC(base+i), mode))
			types[i] = r.Type()
			if r.Event != nil {
				_ = r.Event.DataAs(&replies[i])
			}
		}()
	}
	wg.Wait()
	run := seatRun{positions: map[int]bool{}}
	for i, typ := range types {
		switch {
		case typ == contract.TypeSignupConfirmed && modes[i] == contract.ModeSelf:
			run.self++
		case typ == contract.TypeSignupConfirmed:
			run.nominated++
		case typ == contract.TypeSignupWaitlisted:
			run.waitlisted++
			run.positions[replies[i].WaitlistPosition] = true
		default:
			t.Fatalf("signup %d: unexpected reply %q", i, typ)
		}
	}
	return run
}

func modes(self, nominated int) []string {
	m := make([]string, 0, self+nominated)
	for i := 0; i < self; i++ {
		m = append(m, contract.ModeSelf)
	}
	for i := 0; i < nominated; i++ {
		m = append(m, contract.ModeNominated)
	}
	return m
}

// TestConcurrentSeats: 100 self and 15 nominated signups for 30 seats with
// 10 reserved. Seat decisions take the forum's row lock, so whatever the
// concurrency the forum never holds more than 30, never more than 20 self,
// and the waitlist positions are distinct.
func TestConcurrentSeats(t *testing.T) {
	t.Parallel()
	t.Run("SelfBurstThenNominatedBurst", func(t *testing.T) {
		// The self signups race each other, then the nominated ones do:
		// exactly 20 self and 10 nominated confirmed, 85 waitlisted at
		// distinct positions 1…85.
		t.Parallel()
		f := setup(t)
		f.schedule(t, "F1", 30, 10)
		a := signupConcurrently(t, f, 1000, modes(100, 0))
		b := signupConcurrently(t, f, 2000, modes(0, 15))
		if a.self != 20 || b.nominated != 10 || a.nominated+b.self != 0 {
			t.Fatalf("confirmed self %d, nominated %d; want 20 and 10", a.self, b.nominated)
		}
		if a.waitlisted+b.waitlisted != 85 {
			t.Fatalf("waitlisted %d, want 85", a.waitlisted+b.waitlisted)
		}
		for p := range b.positions {
			a.positions[p] = true
		}
		for p := 1; p <= 85; p++ {
			if !a.positions[p] {
				t.Fatalf("waitlist position %d missing; got %v", p, a.positions)
			}
		}
		if n := f.Count(t, `SELECT count(*) FROM forum.signups WHERE status='confirmed'`); n != 30 {
			t.Fatalf("%d confirmed in the database", n)
		}
	})
	t.Run("Interleaved", func(t *testing.T) {
		// All 115 at once, nominated ones spread among the self ones. The
		// contract lets a nominated signup take any free seat, so one that
		// arrives before the self seats fill may take an unreserved seat:
		// the split depends on arrival order (20 + 10 unless 11 or more of
		// the 15 nominated come before the 20th self, p ≈ 5·10⁻⁵ for a
		// random order). What never changes: 30 confirmed, at most 20 self,
		// at least the 10 reserved seats to nominated signups, 85 waitlisted
		// at distinct positions 1…85.
		t.Parallel()
		f := setup(t)
		f.schedule(t, "F1", 30, 10)
		m := modes(100, 0)
		for i := 0; i < 15; i++ { // nominated at 0, 8, …, 112
			m = append(m[:i*8], append([]string{contract.ModeNominated}, m[i*8:]...)...)
		}
		r := signupConcurrently(t, f, 1000, m)
		if r.self+r.nominated != 30 || r.self > 20 || r.nominated < 10 {
			t.Fatalf("confirmed self %d + nominated %d", r.self, r.nominated)
		}
		if r.waitlisted != 85 || len(r.positions) != 85 || !r.positions[1] || !r.positions[85] {
			t.Fatalf("waitlisted %d with %d distinct positions", r.waitlisted, len(r.positions))
		}
		if n := f.Count(t, `SELECT count(*) FROM forum.signups WHERE status='confirmed'`); n != 30 {
			t.Fatalf("%d confirmed in the database", n)
		}
	})
}

func TestWeeklyClose(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 2, 0)
	d := scheduleData("F2", 10, 0)
	d["signupDeadline"] = "2026-12-08T17:00:00+08:00"
	f.send(t, contract.TypeForumScheduled, week, d)
	for i := 0; i < 3; i++ {
		data := signupData("F1", event.SampleUSCC(i), "self")
		data["problems"] = []any{map[string]any{"title": fmt.Sprintf("问题%d", i), "category": "land"}}
		switch i {
		case 0:
			data["topic"] = "＠SUM(1)" // full-width @
		case 1:
			data["contact"].(map[string]any)["phone"] = "+86 572 2345678"
		case 2:
			data["topic"] = `=HYPERLINK("http://evil.example","点我")`
		}
		f.send(t, contract.TypeSignupRequested, week, data)
	}
	cron := func(at time.Time) *functest.Response {
		return f.Fn.Send(t, functest.Event("dev.knative.sources.ping", "/apis/v1/namespaces/qinqing/pingsources/forum-weekly", nextID(), at, map[string]any{"job": "forum-weekly"}))
	}
	asOf := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) // 18:00 in Huzhou
	r := cron(asOf)
	var got struct{ Closed []contract.ClosedForum }
	r.DataInto(t, &got)
	if r.Type() != contract.TypeForumWeeklyCompleted || len(got.Closed) != 1 {
		t.Fatalf("got %s %s", r.Type(), r.Body)
	}
	c := got.Closed[0]
	if c.ForumID != "F1" || c.Confirmed != 2 || c.Waitlisted != 1 || c.RosterKey != "forums/F1/roster.csv" {
		t.Fatalf("closed = %+v", c)
	}
	body, err := f.Store.Get(context.Background(), c.RosterKey)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(recs) != 4 || recs[0][0] != "signupId" || recs[1][1] != "confirmed" || recs[3][1] != "waitlisted" || recs[1][10] != "问题0" {
		t.Fatalf("roster (%v):\n%s", err, body)
	}
	if got := recs[3][9]; got != `'=HYPERLINK("http://evil.example","点我")` {
		t.Fatalf("formula topic written as %q", got)
	}
	// One guard for every cell: full-width forms and "+86 …" phone
	// numbers too ("+86-1" would be a formula).
	if got := recs[1][9]; got != "'＠SUM(1)" {
		t.Fatalf("full-width formula topic written as %q", got)
	}
	if got := recs[2][7]; got != "'+86 572 2345678" {
		t.Fatalf("phone written as %q", got)
	}
	// Closed once: a later check closes nothing new, and the roster stays.
	r = cron(asOf.Add(time.Hour))
	r.DataInto(t, &got)
	if len(got.Closed) != 0 {
		t.Fatalf("second run closed %+v", got.Closed)
	}
	if r := f.send(t, contract.TypeSignupRequested, week, signupData("F1", event.SampleUSCC(77), "self")); r.Data()["reason"] != "signup_closed" {
		t.Fatalf("signup after close: %s", r.Body)
	}
	t.Run("ClosedStaysClosed", func(t *testing.T) {
		// Rescheduling with a later deadline does not reopen signups.
		d := scheduleData("F1", 2, 0)
		d["signupDeadline"] = "2026-12-09T17:00:00+08:00"
		if r := f.send(t, contract.TypeForumScheduled, asOf, d); r.Type() != contract.TypeForumScheduledAccepted {
			t.Fatalf("reschedule: %s %s", r.Type(), r.Body)
		}
		if r := f.send(t, contract.TypeSignupRequested, asOf, signupData("F1", event.SampleUSCC(78), "self")); r.Data()["reason"] != "signup_closed" {
			t.Fatalf("signup after rescheduling a closed forum: %s", r.Body)
		}
	})
	t.Run("CancelAfterClosePromotes", func(t *testing.T) {
		r := f.send(t, contract.TypeSignupCancelled, asOf, map[string]any{"forumId": "F1", "uscc": event.SampleUSCC(0)})
		if r.Type() != contract.TypeSignupCancelAccepted {
			t.Fatalf("cancel after close: %s %s", r.Type(), r.Body)
		}
		got := f.Sink.WaitFor(t, contract.TypeSignupConfirmed, 1, 10*time.Second)
		var rep contract.SignupReply
		_ = got[0].DataAs(&rep)
		if rep.USCC != event.SampleUSCC(2) || rep.ForumID != "F1" {
			t.Fatalf("promoted %+v, want %s", rep, event.SampleUSCC(2))
		}
		if n := f.Count(t, `SELECT count(*) FROM forum.forums WHERE forum_id = 'F1' AND closed_at IS NOT NULL`); n != 1 {
			t.Fatal("the forum reopened")
		}
	})
	t.Run("ErrUnknownJob", func(t *testing.T) {
		r := f.Fn.Send(t, functest.Event("dev.knative.sources.ping", "/ping", nextID(), asOf, map[string]any{"job": "award-ceremony"}))
		if r.Status != 400 || r.Problem()["field"] != "job" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
}

func TestHealthAndConfig(t *testing.T) {
	t.Parallel()
	f := setup(t)
	resp, err := http.Get(f.Fn.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
	t.Run("ErrMissingDatabaseURL", func(t *testing.T) {
		out, err := functest.RunConfigOnly(t, binary, "S3_BUCKET=x")
		if err == nil || !bytes.Contains(out, []byte("DATABASE_URL")) || bytes.Count(bytes.TrimSpace(out), []byte("\n")) != 0 {
			t.Fatalf("got %v: %q", err, out)
		}
	})
	t.Run("ErrMissingBucket", func(t *testing.T) {
		out, err := functest.RunConfigOnly(t, binary, "DATABASE_URL=postgres://x@127.0.0.1:1/x")
		if err == nil || !bytes.Contains(out, []byte("S3_BUCKET")) {
			t.Fatalf("got %v: %q", err, out)
		}
	})
}

// Structured mode is handled like binary mode on a first delivery too, with
// the data inline as JSON or as data_base64.
func TestStructuredMode(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 30, 10)
	envelope := func(id string, data map[string]any, base64 bool) []byte {
		raw, _ := json.Marshal(data)
		ev := map[string]any{"specversion": "1.0", "type": contract.TypeSignupRequested, "source": portalSrc, "id": id,
			"time": week.Format(time.RFC3339), "datacontenttype": "application/json"}
		if base64 {
			ev["data_base64"] = raw
		} else {
			ev["data"] = json.RawMessage(raw)
		}
		b, _ := json.Marshal(ev)
		return b
	}
	for i, b64 := range []bool{false, true} {
		code := event.SampleUSCC(10 + i)
		r := f.Fn.Post(t, "application/cloudevents+json; charset=utf-8", envelope(nextID(), signupData("F1", code, "self"), b64))
		if r.Status != 200 || r.Type() != contract.TypeSignupConfirmed || r.Data()["uscc"] != code {
			t.Fatalf("data_base64=%v: %d %s %s", b64, r.Status, r.Type(), r.Body)
		}
	}
	bad := signupData("F1", event.SampleUSCC(12), "self")
	bad["enterprise"].(map[string]any)["uscc"] = "91330500MA2B3C4D5X"
	r := f.Fn.Post(t, "application/cloudevents+json", envelope(nextID(), bad, false))
	if r.Status != 400 || r.Problem()["field"] != "enterprise.uscc" {
		t.Fatalf("bad USCC in structured mode: %d %s", r.Status, r.Body)
	}
	if n := f.Count(t, `SELECT count(*) FROM forum.signups`); n != 2 {
		t.Fatalf("%d signups, want 2", n)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/qinqing/qinqing/shared/contract/admin"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

var binary string

func TestMain(m *testing.M) { functest.MainTwice(m, map[string]*string{".": &binary}) }

const token = "test-admin-token-0123456789"

type fixture struct{ *functest.Fixture }

func setup(t *testing.T, env ...string) *fixture {
	t.Helper()
	return &fixture{functest.Setup(t, binary, functest.Parts{Sink: true, Env: append([]string{"ADMIN_TOKEN=" + token}, env...)})}
}

var seq atomic.Int64

const (
	typeAppeal = "cn.huzhou.appeal.submitted"
	filterDest = "http://broker-filter.knative-eventing.svc.cluster.local/triggers/qinqing/appeal-router/abc"
)

var at = time.Date(2026, 12, 1, 9, 30, 15, 123456789, time.UTC)

// deadLetter builds an event as Knative hands it to the deadLetterSink:
// the original event plus the knativeerror* extensions.
func deadLetter(dest string, code int, body string) cloudevents.Event {
	ev := functest.Event(typeAppeal, "/portals/enterprise", fmt.Sprintf("msg_%d", seq.Add(1)), at,
		map[string]any{"appealId": "A-1", "title": "用地指标", "category": "land"})
	ev.SetSubject("A-1")
	ev.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	ev.SetExtension("knativearrivaltime", "2026-12-01T09:30:16Z")
	if dest != "" {
		ev.SetExtension(ExtErrorDest, dest)
		ev.SetExtension(ExtErrorCode, code)
		ev.SetExtension(ExtErrorData, base64.StdEncoding.EncodeToString([]byte(body)))
	}
	return ev
}

func (f *fixture) admin(t *testing.T, method, path, auth string) *functest.Response {
	t.Helper()
	req, err := http.NewRequest(method, f.Fn.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return functest.Do(t, req)
}

func (f *fixture) list(t *testing.T, query string) []admin.DeadLetter {
	t.Helper()
	r := f.admin(t, http.MethodGet, "/deadletters"+query, "Bearer "+token)
	if r.Status != 200 {
		t.Fatalf("list%s: status %d (%s)", query, r.Status, r.Body)
	}
	var l admin.DeadLetters
	if err := json.Unmarshal(r.Body, &l); err != nil || l.Items == nil {
		t.Fatalf("list body %s: %v", r.Body, err)
	}
	return l.Items
}

func (f *fixture) store(t *testing.T, ev cloudevents.Event) {
	t.Helper()
	if r := f.Fn.Send(t, ev); r.Status != http.StatusAccepted {
		t.Fatalf("dead letter: status %d, want 202 (%s)", r.Status, r.Body)
	}
}

func find(items []admin.DeadLetter, eventID string) *admin.DeadLetter {
	for i := range items {
		if items[i].Event.ID == eventID {
			return &items[i]
		}
	}
	return nil
}

func TestStore(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ev := deadLetter(filterDest, 500, `{"error":"database is down"}`)
	f.store(t, ev)

	t.Run("StoredWhole", func(t *testing.T) {
		items := f.list(t, "")
		if len(items) != 1 {
			t.Fatalf("%d items, want 1", len(items))
		}
		it := items[0]
		if it.Status != StatusPending || it.ID != DeadLetterID(ev.Source(), ev.ID(), filterDest) || time.Since(it.ReceivedAt) > time.Minute {
			t.Fatalf("item = %+v", it)
		}
		if it.ErrorDest == nil || *it.ErrorDest != filterDest || it.ErrorCode == nil || *it.ErrorCode != 500 ||
			it.ErrorData == nil || *it.ErrorData != `{"error":"database is down"}` {
			t.Fatalf("error fields = %v %v %v", it.ErrorDest, it.ErrorCode, it.ErrorData)
		}
		e := it.Event
		if e.ID != ev.ID() || e.Source != ev.Source() || e.Type != typeAppeal || e.Subject != "A-1" || e.SpecVersion != "1.0" ||
			e.Time == nil || *e.Time != "2026-12-01T09:30:15.123456789Z" || e.DataContentType != "application/json" {
			t.Fatalf("event = %+v", e)
		}
		if !jsonEqual(e.Data, ev.Data()) {
			t.Fatalf("data = %s, want %s", e.Data, ev.Data())
		}
		if e.Extensions["traceparent"] == "" || e.Extensions[ExtErrorCode] != "500" || e.Extensions[ExtErrorDest] != filterDest {
			t.Fatalf("extensions = %v", e.Extensions)
		}
	})
	t.Run("RedeliveryStoredOnce", func(t *testing.T) {
		f.store(t, ev)
		f.Fn.SendStructured(t, ev) // the same dead letter in structured mode
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); f.store(t, ev) }()
		}
		wg.Wait()
		if n := f.Count(t, `SELECT count(*) FROM deadletter.dead_letters`); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
		if it := f.list(t, ""); len(it) != 1 || it[0].Failures != 1 {
			t.Fatalf("items = %+v", it)
		}
	})
	t.Run("OtherSubscriberIsAnotherDeadLetter", func(t *testing.T) {
		other := ev.Clone()
		other.SetExtension(ExtErrorDest, "http://broker-filter.knative-eventing.svc.cluster.local/triggers/qinqing/deadline-check/def")
		f.store(t, other)
		if n := f.Count(t, `SELECT count(*) FROM deadletter.dead_letters WHERE event_id = $1`, ev.ID()); n != 2 {
			t.Fatalf("%d rows, want 2", n)
		}
	})
	t.Run("ErrorDataNotBase64KeptAsIs", func(t *testing.T) {
		e := deadLetter(filterDest, 502, "")
		e.SetExtension(ExtErrorData, "upstream connect error or disconnect/reset before headers")
		f.store(t, e)
		it := find(f.list(t, ""), e.ID())
		if it == nil || it.ErrorData == nil || *it.ErrorData != "upstream connect error or disconnect/reset before headers" || *it.ErrorCode != 502 {
			t.Fatalf("item = %+v", it)
		}
	})
	t.Run("ErrorDataTruncatedByKnative", func(t *testing.T) {
		// Knative keeps 1024 base64 characters, which may cut a character.
		long := strings.Repeat("数据库不可用", 100)
		e := deadLetter(filterDest, 500, "")
		e.SetExtension(ExtErrorData, base64.StdEncoding.EncodeToString([]byte(long))[:1024])
		f.store(t, e)
		it := find(f.list(t, ""), e.ID())
		if it == nil || it.ErrorData == nil || !strings.HasPrefix(long, *it.ErrorData) || len(*it.ErrorData) < 760 {
			t.Fatalf("errorData = %v", it.ErrorData)
		}
	})
	t.Run("NoKnativeExtensions", func(t *testing.T) {
		e := deadLetter("", 0, "")
		f.store(t, e)
		it := find(f.list(t, ""), e.ID())
		if it == nil || it.ErrorDest != nil || it.ErrorCode != nil || it.ErrorData != nil || it.Status != StatusPending {
			t.Fatalf("item = %+v", it)
		}
	})
	t.Run("BinaryData", func(t *testing.T) {
		e := deadLetter(filterDest, 500, "x")
		_ = e.SetData("application/octet-stream", []byte{0, 1, 2, 0xff})
		f.store(t, e)
		it := find(f.list(t, ""), e.ID())
		if it == nil || string(it.Event.Data) != "null" || it.Event.DataBase64 != "AAEC/w==" {
			t.Fatalf("item event = %+v", it.Event)
		}
	})
	t.Run("ErrNotACloudEvent", func(t *testing.T) {
		if r := f.Fn.Post(t, "application/json", []byte(`{"hello": 1}`)); r.Status != 400 {
			t.Fatalf("status = %d", r.Status)
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		e := deadLetter(filterDest, 500, "x")
		_ = e.SetData("application/json", map[string]any{"x": strings.Repeat("x", 1<<20)})
		if r := f.Fn.Send(t, e); r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d", r.Status)
		}
	})
}

func TestListAndAuth(t *testing.T) {
	t.Parallel()
	f := setup(t)
	a, b := deadLetter(filterDest, 500, "a"), deadLetter(filterDest, 503, "b")
	f.store(t, a)
	f.store(t, b)
	if r := f.admin(t, http.MethodPost, "/deadletters/"+DeadLetterID(a.Source(), a.ID(), filterDest)+"/replay", "Bearer "+token); r.Status != 202 {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	t.Run("Filter", func(t *testing.T) {
		if got := f.list(t, ""); len(got) != 2 {
			t.Fatalf("all: %d items", len(got))
		}
		pending := f.list(t, "?status=pending")
		if len(pending) != 1 || pending[0].Event.ID != b.ID() || pending[0].Status != StatusPending {
			t.Fatalf("pending = %+v", pending)
		}
		replayed := f.list(t, "?status=replayed")
		if len(replayed) != 1 || replayed[0].Event.ID != a.ID() || replayed[0].Status != StatusReplayed {
			t.Fatalf("replayed = %+v", replayed)
		}
	})
	t.Run("ErrBadStatus", func(t *testing.T) {
		for _, q := range []string{"?status=done", "?status=", "?status=PENDING"} {
			r := f.admin(t, http.MethodGet, "/deadletters"+q, "Bearer "+token)
			if r.Status != 400 || r.Problem()["field"] != "status" || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s: %d %s", q, r.Status, r.Body)
			}
		}
	})
	t.Run("ErrUnauthorized", func(t *testing.T) {
		replay := "/deadletters/" + DeadLetterID(b.Source(), b.ID(), filterDest) + "/replay"
		for _, auth := range []string{"", "Bearer", "Bearer wrong-token", "Bearer " + token + "x", "Basic " + token, token} {
			for _, req := range [][2]string{{http.MethodGet, "/deadletters"}, {http.MethodPost, replay}} {
				r := f.admin(t, req[0], req[1], auth)
				if r.Status != 401 || r.Header.Get("WWW-Authenticate") == "" || r.Header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("%s %s with %q: %d %s", req[0], req[1], auth, r.Status, r.Body)
				}
				if strings.Contains(string(r.Body), token) {
					t.Fatalf("401 reveals the token: %s", r.Body)
				}
			}
		}
		if got := f.list(t, "?status=pending"); len(got) != 1 {
			t.Fatalf("a refused replay changed the status: %+v", got)
		}
		if len(f.Sink.Events()) != 1 {
			t.Fatalf("sink got %d events, want only the authorised replay", len(f.Sink.Events()))
		}
	})
	t.Run("SchemeCaseInsensitive", func(t *testing.T) {
		if r := f.admin(t, http.MethodGet, "/deadletters", "bearer "+token); r.Status != 200 {
			t.Fatalf("status = %d", r.Status)
		}
	})
}

func TestAdminOff(t *testing.T) {
	t.Parallel()
	f := setup(t, "ADMIN_TOKEN=")
	ev := deadLetter(filterDest, 500, "x")
	f.store(t, ev) // dead letters are still kept
	for _, req := range [][2]string{{http.MethodGet, "/deadletters"}, {http.MethodGet, "/deadletters?status=pending"},
		{http.MethodPost, "/deadletters/" + DeadLetterID(ev.Source(), ev.ID(), filterDest) + "/replay"}} {
		for _, auth := range []string{"", "Bearer ", "Bearer " + token} {
			if r := f.admin(t, req[0], req[1], auth); r.Status != 404 {
				t.Fatalf("%s %s (%q) without ADMIN_TOKEN: %d, want 404", req[0], req[1], auth, r.Status)
			}
		}
	}
	if n := f.Count(t, `SELECT count(*) FROM deadletter.dead_letters WHERE status = 'pending'`); n != 1 {
		t.Fatalf("%d pending, want 1", n)
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ev := deadLetter(filterDest, 500, "boom")
	f.store(t, ev)
	id := DeadLetterID(ev.Source(), ev.ID(), filterDest)
	replay := func(id string) *functest.Response {
		return f.admin(t, http.MethodPost, "/deadletters/"+id+"/replay", "Bearer "+token)
	}

	t.Run("ErrSinkRefuses", func(t *testing.T) {
		f.Sink.SetDown(true)
		defer f.Sink.SetDown(false)
		r := replay(id)
		if r.Status != http.StatusBadGateway || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status = %d, want 502 (%s)", r.Status, r.Body)
		}
		items := f.list(t, "?status=pending")
		if len(items) != 1 || items[0].ID != id || items[0].Replays != 0 || items[0].LastReplayError == nil {
			t.Fatalf("after a refused replay: %+v", items)
		}
	})
	t.Run("OK", func(t *testing.T) {
		r := replay(id)
		if r.Status != http.StatusAccepted {
			t.Fatalf("status = %d, want 202 (%s)", r.Status, r.Body)
		}
		var it admin.DeadLetter
		if err := json.Unmarshal(r.Body, &it); err != nil || it.Status != StatusReplayed || it.Replays != 1 || it.ReplayedAt == nil || it.LastReplayError != nil {
			t.Fatalf("reply = %s (%v)", r.Body, err)
		}
		got := f.Sink.WaitFor(t, typeAppeal, 1, 5*time.Second)
		if len(got) != 1 {
			t.Fatalf("sink got %d events", len(got))
		}
		e := got[0]
		if e.ID() != ev.ID() || e.Source() != ev.Source() || e.Type() != ev.Type() || e.Subject() != "A-1" ||
			!e.Time().Equal(ev.Time()) || e.DataContentType() != "application/json" || !bytes.Equal(e.Data(), ev.Data()) {
			t.Fatalf("replayed event:\n%s\nwant\n%s", e, ev)
		}
		ext := e.Extensions()
		if ext["traceparent"] != ev.Extensions()["traceparent"] || ext["knativearrivaltime"] == nil {
			t.Fatalf("extensions = %v", ext)
		}
		for _, k := range []string{ExtErrorDest, ExtErrorCode, ExtErrorData} {
			if _, ok := ext[k]; ok {
				t.Fatalf("replayed event carries %s", k)
			}
		}
		if items := f.list(t, "?status=replayed"); len(items) != 1 || items[0].ID != id {
			t.Fatalf("replayed = %+v", items)
		}
		if items := f.list(t, "?status=pending"); len(items) != 0 {
			t.Fatalf("pending = %+v", items)
		}
	})
	t.Run("FailsAgainAfterReplay", func(t *testing.T) {
		// The replayed event fails once more: the dead letter reopens,
		// it is not dropped as a redelivery.
		again := ev.Clone()
		again.SetExtension(ExtErrorCode, 503)
		again.SetExtension(ExtErrorData, base64.StdEncoding.EncodeToString([]byte("still down")))
		f.store(t, again)
		items := f.list(t, "?status=pending")
		if len(items) != 1 || items[0].ID != id || *items[0].ErrorCode != 503 || *items[0].ErrorData != "still down" ||
			items[0].Failures != 2 || items[0].Replays != 1 {
			t.Fatalf("pending = %+v", items)
		}
		if n := f.Count(t, `SELECT count(*) FROM deadletter.dead_letters`); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
	})
	t.Run("ErrUnknownID", func(t *testing.T) {
		for _, bad := range []string{"00000000-0000-0000-0000-000000000000", "nope"} {
			if r := replay(bad); r.Status != 404 || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s: status %d (%s)", bad, r.Status, r.Body)
			}
		}
	})
	t.Run("ConcurrentReplays", func(t *testing.T) {
		var wg sync.WaitGroup
		codes := make([]int, 5)
		for i := range codes {
			wg.Add(1)
			go func() { defer wg.Done(); codes[i] = replay(id).Status }()
		}
		wg.Wait()
		for _, c := range codes {
			if c != http.StatusAccepted {
				t.Fatalf("codes = %v", codes)
			}
		}
		if n := f.Count(t, `SELECT replays FROM deadletter.dead_letters WHERE id = $1`, id); n != 6 {
			t.Fatalf("replays = %d, want 6", n)
		}
	})
}

func TestFaults(t *testing.T) {
	t.Parallel()
	t.Run("ErrDatabaseDown", func(t *testing.T) {
		// A dead letter that cannot be stored is a 503, so Knative retries.
		sink := functest.NewSink(t)
		fn := functest.Start(t, binary, fmt.Sprintf("DATABASE_URL=postgres://x@127.0.0.1:%d/x?connect_timeout=2", functest.FreePort(t)),
			"K_SINK="+sink.URL, "ADMIN_TOKEN="+token)
		if r := fn.Send(t, deadLetter(filterDest, 500, "x")); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("status = %d, want 503 (%s)", r.Status, r.Body)
		}
	})
	t.Run("ErrNoSink", func(t *testing.T) {
		f := setup(t, "K_SINK=")
		ev := deadLetter(filterDest, 500, "x")
		f.store(t, ev)
		r := f.admin(t, http.MethodPost, "/deadletters/"+DeadLetterID(ev.Source(), ev.ID(), filterDest)+"/replay", "Bearer "+token)
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("status = %d (%s)", r.Status, r.Body)
		}
		if got := f.list(t, "?status=pending"); len(got) != 1 {
			t.Fatalf("pending = %+v", got)
		}
	})
	t.Run("ErrMissingDatabaseURL", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PORT=0", "ADMIN_TOKEN=" + token}
		out, err := cmd.CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte("DATABASE_URL")) || bytes.Count(bytes.TrimSpace(out), []byte("\n")) != 0 ||
			bytes.Contains(out, []byte(token)) {
			t.Fatalf("got %v: %q", err, out)
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// TestListWireShape reads GET /deadletters the way an outside client
// does, as untyped JSON, and checks the contract's field names and JSON
// types: event.data is the event's JSON value (an object here), not a
// string holding it; errorCode is a number (docs/deadletters.md).
func TestListWireShape(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ev := deadLetter(filterDest, 500, `{"error":"database is down"}`)
	f.store(t, ev)
	r := f.admin(t, http.MethodGet, "/deadletters?status=pending", "Bearer "+token)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, content type %q (%s)", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	items, ok := body["items"].([]any)
	if !ok || len(items) != 1 {
		t.Fatalf("items = %#v, want an array of 1", body["items"])
	}
	it, _ := items[0].(map[string]any)
	wantType := func(where string, v any, kind string) {
		t.Helper()
		var ok bool
		switch kind {
		case "string":
			_, ok = v.(string)
		case "number":
			_, ok = v.(float64)
		case "object":
			_, ok = v.(map[string]any)
		}
		if !ok {
			t.Errorf("%s = %#v (%T), want a JSON %s", where, v, v, kind)
		}
	}
	for _, k := range []string{"id", "receivedAt", "status", "errorDest", "errorData"} {
		wantType(k, it[k], "string")
	}
	wantType("errorCode", it["errorCode"], "number")
	wantType("event", it["event"], "object")
	if ts, _ := it["receivedAt"].(string); ts != "" {
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("receivedAt %q is not RFC 3339", ts)
		}
	}
	if it["status"] != "pending" || it["errorCode"] != float64(500) || it["errorDest"] != filterDest ||
		it["errorData"] != `{"error":"database is down"}` || it["id"] != DeadLetterID(ev.Source(), ev.ID(), filterDest) {
		t.Errorf("item = %v", it)
	}
	e, _ := it["event"].(map[string]any)
	for _, k := range []string{"id", "source", "type", "time"} {
		wantType("event."+k, e[k], "string")
	}
	wantType("event.data", e["data"], "object")
	if e["id"] != ev.ID() || e["source"] != ev.Source() || e["type"] != typeAppeal || e["time"] != "2026-12-01T09:30:15.123456789Z" {
		t.Errorf("event = %v", e)
	}
	if d, _ := e["data"].(map[string]any); d["appealId"] != "A-1" || d["title"] != "用地指标" {
		t.Errorf("event.data = %v", e["data"])
	}
}

// TestConcurrentFirstDelivery: the same new dead letter delivered many
// times at once (Knative retrying a slow answer) is stored once.
func TestConcurrentFirstDelivery(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ev := deadLetter(filterDest, 500, "x")
	var wg sync.WaitGroup
	codes := make([]int, 16)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				codes[i] = f.Fn.Send(t, ev).Status
			} else {
				codes[i] = f.Fn.SendStructured(t, ev).Status
			}
		}()
	}
	wg.Wait()
	for _, c := range codes {
		if c != http.StatusAccepted {
			t.Fatalf("codes = %v, want all 202", codes)
		}
	}
	if n := f.Count(t, `SELECT count(*) FROM deadletter.dead_letters`); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
	if it := f.list(t, ""); len(it) != 1 || it[0].Failures != 1 || it[0].Status != StatusPending {
		t.Fatalf("items = %+v", it)
	}
}

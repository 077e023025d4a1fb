package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

var binary string

func TestMain(m *testing.M) { functest.Main(m, map[string]*string{".": &binary}) }

// Secrets of the test portals. The enterprise portal is mid-rotation: it
// has an old and a new secret.
var (
	oldSecret      = secret("enterprise portal key, old")
	newSecret      = secret("enterprise portal key, new")
	treasurySecret = secret("treasury callback key 2026")
	strangerSecret = secret("a key nobody configured...")
)

const (
	typeAppeal  = "cn.huzhou.appeal.submitted"
	typeSignup  = "cn.huzhou.forum.signup.requested"
	typeSettled = "cn.huzhou.subsidy.payment.settled"
)

func secret(key string) string { return "whsec_" + base64.StdEncoding.EncodeToString([]byte(key)) }

func portalsJSON() string {
	return fmt.Sprintf(`{"portals": {
  "enterprise": {"secrets": [%q, %q], "allowedTypes": [%q, %q]},
  "treasury":   {"secrets": [%q], "allowedTypes": [%q]}
}}`, oldSecret, newSecret, typeAppeal, typeSignup, treasurySecret, typeSettled)
}

type fixture struct{ *functest.Fixture }

// setup starts webhook-ingress, which has no database, with a sink and
// portalsJSON as its PORTALS_FILE.
func setup(t *testing.T) *fixture { return setupWith(t, "portals.json", portalsJSON()) }

// setupWith is setup with portals as the PORTALS_FILE, written as name.
func setupWith(t *testing.T, name, portals string) *fixture {
	t.Helper()
	return &fixture{functest.Setup(t, binary, functest.Parts{NoDatabase: true, Sink: true,
		Env: []string{"PORTALS_FILE=" + testkit.WriteFile(t, name, portals)}})}
}

var seq atomic.Int64

func nextID() string { return fmt.Sprintf("msg_%d_%d", time.Now().UnixNano(), seq.Add(1)) }

// webhook is one request as a portal would send it.
type webhook struct {
	portal  string
	id      string
	ts      string
	body    []byte
	secrets []string // sign with each; empty: no signature header
	sigHdr  *string  // overrides the computed header
	drop    string   // header to leave out
}

func newWebhook(portal, typ string, data any, secrets ...string) *webhook {
	body, _ := json.Marshal(map[string]any{"type": typ, "data": data})
	return &webhook{portal: portal, id: nextID(), ts: strconv.FormatInt(time.Now().Unix(), 10), body: body, secrets: secrets}
}

func signature(secret, id, ts string, body []byte) string {
	key, err := decodeSecret(secret)
	if err != nil {
		panic(err)
	}
	return "v1," + Sign(key, id, ts, body)
}

func (f *fixture) post(t *testing.T, wh *webhook) *functest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.Fn.URL+"/webhooks/"+wh.portal, bytes.NewReader(wh.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	var sigs []string
	for _, s := range wh.secrets {
		sigs = append(sigs, signature(s, wh.id, wh.ts, wh.body))
	}
	hdr := strings.Join(sigs, " ")
	if wh.sigHdr != nil {
		hdr = *wh.sigHdr
	}
	for k, v := range map[string]string{HeaderID: wh.id, HeaderTimestamp: wh.ts, HeaderSignature: hdr} {
		if k != wh.drop && v != "" {
			req.Header.Set(k, v)
		}
	}
	return functest.Do(t, req)
}

var appealData = map[string]any{
	"appealId": "A-2026-0001", "enterprise": map[string]any{"uscc": "91330500MA2B3C4D5B", "name": "湖州测试企业"},
	"county": "wuxing", "title": "用地指标", "detail": "扩建需要20亩", "category": "land", "channel": "portal",
}

// wantProblem checks a refusal: status, problem+json, and no secret in it.
func wantProblem(t *testing.T, r *functest.Response, status int, field string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d (%s)", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type = %q, want application/problem+json", ct)
	}
	p := r.Problem()
	if p["status"] != float64(status) || p["detail"] == "" || p["type"] == "" {
		t.Fatalf("problem = %s", r.Body)
	}
	if field != "" && p["field"] != field {
		t.Fatalf("field = %v, want %s (%s)", p["field"], field, r.Body)
	}
	for _, s := range []string{oldSecret, newSecret, treasurySecret} {
		enc := strings.TrimPrefix(s, "whsec_")
		key, _ := base64.StdEncoding.DecodeString(enc)
		if bytes.Contains(r.Body, []byte(enc)) || bytes.Contains(r.Body, key) {
			t.Fatalf("problem reveals a secret: %s", r.Body)
		}
	}
}

func TestWebhookOK(t *testing.T) {
	t.Parallel()
	f := setup(t)
	wh := newWebhook("enterprise", typeAppeal, appealData, newSecret)
	r := f.post(t, wh)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status = %d, want 202 (%s)", r.Status, r.Body)
	}
	var acc Accepted
	if err := json.Unmarshal(r.Body, &acc); err != nil || acc.ID != wh.id || acc.Source != "/portals/enterprise" || acc.Type != typeAppeal {
		t.Fatalf("accepted body = %s (%v)", r.Body, err)
	}
	got := f.Sink.OfType(typeAppeal)
	if len(got) != 1 {
		t.Fatalf("sink got %d events, want 1 (202 must mean the sink accepted it)", len(got))
	}
	ev := got[0]
	secs, _ := strconv.ParseInt(wh.ts, 10, 64)
	if ev.ID() != wh.id || ev.Source() != "/portals/enterprise" || ev.Type() != typeAppeal ||
		ev.DataContentType() != "application/json" || !ev.Time().Equal(time.Unix(secs, 0)) || ev.SpecVersion() != "1.0" {
		t.Fatalf("event = id %s source %s type %s ct %s time %s", ev.ID(), ev.Source(), ev.Type(), ev.DataContentType(), ev.Time())
	}
	var data, want map[string]any
	_ = json.Unmarshal(ev.Data(), &data)
	b, _ := json.Marshal(appealData)
	_ = json.Unmarshal(b, &want)
	if fmt.Sprint(data) != fmt.Sprint(want) {
		t.Fatalf("data = %s, want %s", ev.Data(), b)
	}

	t.Run("Rotation", func(t *testing.T) {
		// The old secret still works during the rotation, and so does a
		// header carrying signatures with both secrets.
		for i, secrets := range [][]string{{oldSecret}, {newSecret}, {oldSecret, newSecret}, {strangerSecret, newSecret}} {
			wh := newWebhook("enterprise", typeSignup, map[string]any{"n": i}, secrets...)
			if r := f.post(t, wh); r.Status != http.StatusAccepted {
				t.Fatalf("secrets %d: status = %d (%s)", i, r.Status, r.Body)
			}
		}
		f.Sink.WaitFor(t, typeSignup, 4, time.Second)
	})
	t.Run("UnknownVersionsSkipped", func(t *testing.T) {
		wh := newWebhook("treasury", typeSettled, map[string]any{"disbursementId": "D-1"})
		hdr := "v1a,c29tZXRoaW5nIGFzeW1tZXRyaWM= v2,abc " + signature(treasurySecret, wh.id, wh.ts, wh.body)
		wh.sigHdr = &hdr
		if r := f.post(t, wh); r.Status != http.StatusAccepted {
			t.Fatalf("status = %d (%s)", r.Status, r.Body)
		}
	})
	t.Run("TimestampWithinTolerance", func(t *testing.T) {
		for _, off := range []time.Duration{-4 * time.Minute, 4 * time.Minute} {
			wh := newWebhook("treasury", typeSettled, map[string]any{"disbursementId": "D-2"})
			wh.ts = strconv.FormatInt(time.Now().Add(off).Unix(), 10)
			wh.secrets = []string{treasurySecret}
			if r := f.post(t, wh); r.Status != http.StatusAccepted {
				t.Fatalf("offset %s: status = %d (%s)", off, r.Status, r.Body)
			}
		}
	})
	t.Run("RetrySameID", func(t *testing.T) {
		// A portal's retry is the same message: the same CloudEvent id, so
		// receivers deduplicate it.
		wh := newWebhook("treasury", typeSettled, map[string]any{"disbursementId": "D-3"}, treasurySecret)
		for i := 0; i < 2; i++ {
			if r := f.post(t, wh); r.Status != http.StatusAccepted {
				t.Fatalf("status = %d (%s)", r.Status, r.Body)
			}
		}
		n := 0
		for _, ev := range f.Sink.OfType(typeSettled) {
			if ev.ID() == wh.id {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("sink got id %s %d times, want 2 (forwarded as is)", wh.id, n)
		}
	})
}

func TestWebhookRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	stale := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	future := strconv.FormatInt(time.Now().Add(6*time.Minute).Unix(), 10)
	str := func(s string) *string { return &s }
	cases := []struct {
		name   string
		edit   func(wh *webhook)
		status int
		field  string
	}{
		{"ErrWrongKey", func(wh *webhook) { wh.secrets = []string{strangerSecret} }, 401, ""},
		{"ErrOtherPortalsKey", func(wh *webhook) { wh.secrets = []string{treasurySecret} }, 401, ""},
		{"ErrStaleTimestamp", func(wh *webhook) { wh.ts = stale }, 401, ""},
		{"ErrFutureTimestamp", func(wh *webhook) { wh.ts = future }, 401, ""},
		{"ErrTimestampNotSeconds", func(wh *webhook) { wh.ts = time.Now().Format(time.RFC3339) }, 401, ""},
		{"ErrMissingID", func(wh *webhook) { wh.drop = HeaderID }, 401, ""},
		{"ErrMissingTimestamp", func(wh *webhook) { wh.drop = HeaderTimestamp }, 401, ""},
		{"ErrMissingSignature", func(wh *webhook) { wh.drop = HeaderSignature }, 401, ""},
		{"ErrMalformedSignature", func(wh *webhook) { wh.sigHdr = str("v1:abc, sha256=deadbeef") }, 401, ""},
		{"ErrBodyTampered", func(wh *webhook) {
			hdr := signature(newSecret, wh.id, wh.ts, wh.body)
			wh.sigHdr = &hdr
			wh.body = bytes.Replace(wh.body, []byte("wuxing"), []byte("anji"), 1)
		}, 401, ""},
		{"ErrSignedOtherID", func(wh *webhook) {
			hdr := signature(newSecret, "other-id", wh.ts, wh.body)
			wh.sigHdr = &hdr
		}, 401, ""},
		{"ErrTypeNotAllowed", func(wh *webhook) {
			wh.body, _ = json.Marshal(map[string]any{"type": typeSettled, "data": map[string]any{"disbursementId": "D-1"}})
		}, 403, "type"},
		{"ErrUnknownPortal", func(wh *webhook) { wh.portal = "nowhere" }, 404, ""},
		{"ErrNotJSON", func(wh *webhook) { wh.body = []byte("type=cn.huzhou.appeal.submitted") }, 400, ""},
		{"ErrBrokenJSON", func(wh *webhook) { wh.body = []byte(`{"type": "cn.huzhou.appeal.submitted", "data": {`) }, 400, ""},
		{"ErrMissingType", func(wh *webhook) { wh.body = []byte(`{"data": {"a": 1}}`) }, 400, "type"},
		{"ErrTypeNotString", func(wh *webhook) { wh.body = []byte(`{"type": 7, "data": {"a": 1}}`) }, 400, "type"},
		{"ErrMissingData", func(wh *webhook) { wh.body = []byte(`{"type": "cn.huzhou.appeal.submitted"}`) }, 400, "data"},
		{"ErrDataNotObject", func(wh *webhook) { wh.body = []byte(`{"type": "cn.huzhou.appeal.submitted", "data": [1]}`) }, 400, "data"},
		{"ErrTooLarge", func(wh *webhook) {
			wh.body, _ = json.Marshal(map[string]any{"type": typeAppeal, "data": map[string]any{"detail": strings.Repeat("x", 1<<20)}})
		}, 413, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wh := newWebhook("enterprise", typeAppeal, appealData)
			tc.edit(wh)
			if wh.secrets == nil && wh.sigHdr == nil {
				wh.secrets = []string{newSecret} // signed after the edit
			}
			wantProblem(t, f.post(t, wh), tc.status, tc.field)
		})
	}
	if n := len(f.Sink.Events()); n != 0 {
		t.Fatalf("sink got %d events from refused webhooks", n)
	}
	t.Run("ErrUnsignedBodyNotParsed", func(t *testing.T) {
		// Before the signature is verified nothing about the body is told.
		wh := newWebhook("enterprise", typeAppeal, appealData, strangerSecret)
		wh.body = []byte("not json")
		wantProblem(t, f.post(t, wh), 401, "")
	})
	t.Run("ErrMethod", func(t *testing.T) {
		resp, err := http.Get(f.Fn.URL + "/webhooks/enterprise")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET status = %d, want 405", resp.StatusCode)
		}
	})
}

func TestSinkDown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.Sink.SetDown(true)
	wh := newWebhook("enterprise", typeAppeal, appealData, newSecret)
	r := f.post(t, wh)
	wantProblem(t, r, http.StatusServiceUnavailable, "")
	if r.Header.Get("Retry-After") == "" {
		t.Fatalf("no Retry-After on 503")
	}
	if strings.Contains(string(r.Body), "sink down") {
		t.Fatalf("the sink's own answer leaked to the portal: %s", r.Body)
	}
	// The portal retries the same message once the sink is back.
	f.Sink.SetDown(false)
	if r := f.post(t, wh); r.Status != http.StatusAccepted {
		t.Fatalf("retry: status = %d (%s)", r.Status, r.Body)
	}
	if got := f.Sink.OfType(typeAppeal); len(got) != 1 || got[0].ID() != wh.id {
		t.Fatalf("sink got %d events", len(got))
	}

	t.Run("ErrSinkUnreachable", func(t *testing.T) {
		fn := functest.Start(t, binary, "PORTALS_FILE="+testkit.WriteFile(t, "p.json", portalsJSON()),
			fmt.Sprintf("K_SINK=http://127.0.0.1:%d", functest.FreePort(t)))
		g := &fixture{&functest.Fixture{Fn: fn}}
		wantProblem(t, g.post(t, newWebhook("enterprise", typeAppeal, appealData, newSecret)), 503, "")
	})
	t.Run("ErrNoSink", func(t *testing.T) {
		fn := functest.Start(t, binary, "PORTALS_FILE="+testkit.WriteFile(t, "p.json", portalsJSON()), "K_SINK=")
		g := &fixture{&functest.Fixture{Fn: fn}}
		wantProblem(t, g.post(t, newWebhook("enterprise", typeAppeal, appealData, newSecret)), 503, "")
		// Requests that are wrong anyway still get their own status.
		wantProblem(t, g.post(t, newWebhook("enterprise", typeAppeal, appealData, strangerSecret)), 401, "")
	})
}

func TestConfig(t *testing.T) {
	t.Parallel()
	t.Run("YAML", func(t *testing.T) {
		yml := fmt.Sprintf("portals:\n  treasury:\n    secrets:\n      - %s\n    allowedTypes:\n      - %s\n", treasurySecret, typeSettled)
		f := setupWith(t, "portals.yaml", yml)
		if r := f.post(t, newWebhook("treasury", typeSettled, map[string]any{"disbursementId": "D-1"}, treasurySecret)); r.Status != 202 {
			t.Fatalf("status = %d (%s)", r.Status, r.Body)
		}
	})
	t.Run("NoDatabaseNeeded", func(t *testing.T) {
		// Starts with neither DATABASE_URL nor K_SINK; PORTALS_FILE unset
		// means no portal at all (no built-in secrets).
		cmd := exec.Command(binary)
		port := functest.FreePort(t)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), fmt.Sprintf("PORT=%d", port)}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(url + "/healthz")
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("did not start without DATABASE_URL: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		g := &fixture{&functest.Fixture{Fn: &functest.Instance{URL: url}}}
		wantProblem(t, g.post(t, newWebhook("enterprise", typeAppeal, appealData, newSecret)), 404, "")
	})
	bad := []struct {
		name    string
		content string
		want    string
	}{
		{"ErrNotJSONOrYAML", "{portals: [", "PORTALS_FILE"},
		{"ErrNoPortalsKey", `{"portal": {}}`, "portal"},
		{"ErrEmptyDocument", ``, "portals: is required"},
		{"ErrSecretPrefix", `{"portals": {"p": {"secrets": ["c2VjcmV0LXdpdGhvdXQtcHJlZml4"], "allowedTypes": ["t"]}}}`, `portals.p.secrets[0]: must start with "whsec_"`},
		{"ErrSecretBase64", `{"portals": {"p": {"secrets": ["whsec_not*base64!"], "allowedTypes": ["t"]}}}`, "portals.p.secrets[0]: the part after"},
		{"ErrNoSecrets", `{"portals": {"p": {"secrets": [], "allowedTypes": ["t"]}}}`, "portals.p.secrets"},
		{"ErrNoTypes", fmt.Sprintf(`{"portals": {"p": {"secrets": [%q]}}}`, treasurySecret), "portals.p.allowedTypes"},
		{"ErrMisspelledField", fmt.Sprintf(`{"portals": {"p": {"secrets": [%q], "allowedType": ["t"]}}}`, treasurySecret), "allowedType"},
		{"ErrBadPortalName", fmt.Sprintf(`{"portals": {"a/b": {"secrets": [%q], "allowedTypes": ["t"]}}}`, treasurySecret), "portals.a/b"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			out, err := functest.RunConfigOnly(t, binary, "PORTALS_FILE="+testkit.WriteFile(t, "portals.json", tc.content))
			line := strings.TrimSpace(string(out))
			if err == nil || !strings.Contains(line, tc.want) || strings.Contains(line, "\n") {
				t.Fatalf("got %v: %q, want one line containing %q", err, out, tc.want)
			}
			if strings.Contains(line, "c2VjcmV0LXdpdGhvdXQtcHJlZml4") || strings.Contains(line, "not*base64") ||
				strings.Contains(line, strings.TrimPrefix(treasurySecret, "whsec_")) {
				t.Fatalf("the error reveals a secret: %q", line)
			}
		})
	}
	t.Run("ErrMissingFile", func(t *testing.T) {
		out, err := functest.RunConfigOnly(t, binary, "PORTALS_FILE=/nonexistent/portals.json")
		if err == nil || !strings.Contains(string(out), "PORTALS_FILE") {
			t.Fatalf("got %v: %q", err, out)
		}
	})
}

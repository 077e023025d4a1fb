package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/contract/admin"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

var binary string

func TestMain(m *testing.M) { functest.MainTwice(m, map[string]*string{".": &binary}) }

const adminToken = "egress-admin-token-0123456789"

func secret(key string) string { return "whsec_" + base64.StdEncoding.EncodeToString([]byte(key)) }

var (
	alphaSecret    = secret("alpha portal signing key, 2026")
	alphaOldSecret = secret("alpha portal signing key, 2025")
	betaSecret     = secret("beta portal signing key, 2026!")
	gammaSecret    = secret("gamma portal signing key 2026")
)

// at is the time of the test events (the replies' time is their inbox
// row's received_at).
var at = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// receiver is a portal's endpoint: it verifies every request with the
// Standard Webhooks library (the portal's view) and answers the statuses
// queued with answer, then 200.
type receiver struct {
	t      *testing.T
	URL    string
	secret string
	mu     sync.Mutex
	got    []received
	queue  []int
	delay  time.Duration
	header http.Header // added to every answer
}

type received struct {
	ID, Timestamp string
	Body          []byte
	Header        http.Header
	VerifyErr     error
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body := readAll(req)
		r.mu.Lock()
		r.got = append(r.got, received{ID: req.Header.Get("webhook-id"), Timestamp: req.Header.Get("webhook-timestamp"),
			Body: body, Header: req.Header.Clone(), VerifyErr: wh.Verify(body, req.Header)})
		status := http.StatusOK
		if len(r.queue) > 0 {
			status, r.queue = r.queue[0], r.queue[1:]
		}
		delay, extra := r.delay, r.header
		r.mu.Unlock()
		time.Sleep(delay)
		for k, v := range extra {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, "answer %d", status)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func readAll(req *http.Request) []byte {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := req.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return []byte(b.String())
		}
	}
}

func (r *receiver) answer(statuses ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(r.queue, statuses...)
}

// deliveries returns what the portal received, failing the test if any
// request did not verify.
func (r *receiver) deliveries() []received {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.got {
		if g.VerifyErr != nil {
			r.t.Fatalf("a delivery did not verify with the portal's secret: %v (headers %v)", g.VerifyErr, g.Header)
		}
	}
	return append([]received(nil), r.got...)
}

// ids lists the webhook-ids received, in order.
func (r *receiver) ids() []string {
	var out []string
	for _, g := range r.deliveries() {
		out = append(out, g.ID)
	}
	return out
}

type portalCfg struct {
	url     string
	secrets []string
	types   []string
	extra   string // more members of notify, e.g. `"insecure": true`
}

func portalsFile(t *testing.T, ps map[string]portalCfg) string {
	t.Helper()
	var parts []string
	for name, p := range ps {
		secrets, _ := json.Marshal(p.secrets)
		types, _ := json.Marshal(p.types)
		extra := p.extra
		if extra == "" {
			extra = `"insecure": true, "allowPrivate": true`
		}
		parts = append(parts, fmt.Sprintf(`%q: {"notify": {"url": %q, "secrets": %s, "types": %s, %s}}`, name, p.url, secrets, types, extra))
	}
	return testkit.WriteFile(t, "portals.json", `{"portals": {`+strings.Join(parts, ", ")+`}}`)
}

var allTypes = contract.EgressTypes

type fixture struct {
	*functest.Fixture
	alpha, beta, gamm *receiver
}

// setup starts webhook-egress with three portals: alpha and beta receive
// every type, gamma only import results.
func setup(t *testing.T, env ...string) *fixture {
	t.Helper()
	f := &fixture{alpha: newReceiver(t, alphaSecret), beta: newReceiver(t, betaSecret), gamm: newReceiver(t, gammaSecret)}
	file := portalsFile(t, map[string]portalCfg{
		"alpha": {url: f.alpha.URL + "/qinqing", secrets: []string{alphaSecret, alphaOldSecret}, types: allTypes},
		"beta":  {url: f.beta.URL, secrets: []string{betaSecret}, types: allTypes},
		"gamma": {url: f.gamm.URL, secrets: []string{gammaSecret}, types: []string{contract.TypeImportCompleted}},
	})
	f.Fixture = functest.Setup(t, binary, functest.Parts{Env: append([]string{"PORTALS_FILE=" + file,
		"ADMIN_TOKEN=" + adminToken, "EGRESS_TIMEOUT=1s"}, env...)})
	return f
}

func (f *fixture) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := f.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// appeal records an appeal as appeal-router would, created by the event
// source (and raised with signupID, when given).
func (f *fixture) appeal(t *testing.T, appealID, source, signupID string) {
	f.exec(t, `INSERT INTO appeal.appeals (appeal_id, uscc, enterprise_name, county, title, channel, status, department,
		routed_to, received_at, assign_due, first_reply_due, reply_due, updated_at, source, event_id, signup_id)
		VALUES ($1, '91330502MA28C1234X', '某公司', 'wuxing', '诉求', 'portal', 'assigned', 'yingshang-office',
		'yingshang-office', $2, $2, $2, $2, $2, $3, 'ev-' || $1, NULLIF($4, ''))`, appealID, at, source, signupID)
}

// signup records a forum signup requested by source (nil: before sources
// were recorded).
func (f *fixture) signup(t *testing.T, signupID string, source *string) {
	f.exec(t, `INSERT INTO forum.forums (forum_id, forum_date, theme, host_leader, venue, county, capacity,
		reserved_for_nominated, signup_deadline, scheduled_at) VALUES ('F-1', '2026-12-09', 't', 'h', 'v', 'city', 30, 10, $1, $1)
		ON CONFLICT DO NOTHING`, at)
	f.exec(t, `INSERT INTO forum.signups (signup_id, forum_id, uscc, enterprise_name, county, contact_name, contact_phone,
		mode, topic, status, requested_at, source) VALUES ($1, 'F-1', $1, 'e', 'city', 'c', 'p', 'self', 't', 'confirmed', $2, $3)`,
		signupID, at, source)
}

// answered records, as the runtime does, that function handled the
// request (source, id) and replied with replyID at the time at.
func (f *fixture) answered(t *testing.T, function, source, id, replyID string) {
	f.exec(t, `INSERT INTO qinqing.inbox (function, source, id, type, received_at, reply_id, reply_type, reply_data)
		VALUES ($1, $2, $3, 'request', $4, $5, 'reply', '{}')`, function, source, id, at, replyID)
}

func (f *fixture) send(t *testing.T, typ, source, id string, data string) *functest.Response {
	t.Helper()
	ev := functest.Event(typ, source, id, at, nil)
	_ = ev.SetData("application/json", []byte(data)) // the bytes as given
	return f.Fn.Send(t, ev)
}

// wantNotified checks a 200 reply and returns it.
func wantNotified(t *testing.T, r *functest.Response, rule string) contract.PortalsNotified {
	t.Helper()
	if r.Status != 200 || r.Type() != contract.TypePortalsNotified {
		t.Fatalf("status %d, reply %q (%s); want 200 %s", r.Status, r.Type(), r.Body, contract.TypePortalsNotified)
	}
	var n contract.PortalsNotified
	r.DataInto(t, &n)
	if n.Rule != rule {
		t.Fatalf("rule %q, want %q (%+v)", n.Rule, rule, n)
	}
	return n
}

func count(rs []received) int { return len(rs) }

func TestSignedDelivery(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.appeal(t, "A-1", "/portals/alpha", "")
	// Unusual spacing: the body carries the data byte for byte.
	data := `{"appealId": "A-1",   "status":"accepted", "department": "natural-resources"}`
	t.Run("Binary", func(t *testing.T) {
		r := f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "reply-1", data)
		n := wantNotified(t, r, RuleOwnPortal)
		if len(n.Deliveries) != 1 || n.Deliveries[0].Portal != "alpha" || n.Deliveries[0].Status != StatusDelivered {
			t.Fatalf("deliveries %+v, want alpha delivered", n.Deliveries)
		}
		got := f.alpha.deliveries()
		if len(got) != 1 {
			t.Fatalf("alpha received %d, want 1", len(got))
		}
		g := got[0]
		want := `{"type":"cn.huzhou.appeal.updated","timestamp":"2026-12-02T10:00:00Z","data":` + data + `}`
		if string(g.Body) != want {
			t.Fatalf("body\n got %s\nwant %s", g.Body, want)
		}
		if g.ID != "reply-1" || g.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("webhook-id %q, content type %q", g.ID, g.Header.Get("Content-Type"))
		}
		if strings.Count(g.Header.Get("webhook-signature"), "v1,") != 1 {
			t.Fatalf("signature header %q: want one v1 signature (the first secret)", g.Header.Get("webhook-signature"))
		}
	})
	t.Run("Structured", func(t *testing.T) {
		ev := functest.Event(contract.TypeAppealOverdue, "/qinqing/deadline-check", "overdue-1", at,
			map[string]any{"appealId": "A-1", "stage": "assign", "level": "reminder"})
		r := f.Fn.SendStructured(t, ev)
		wantNotified(t, r, RuleOwnPortal)
		got := f.alpha.deliveries()
		if len(got) != 2 || got[1].ID != "overdue-1" {
			t.Fatalf("alpha received %v", f.alpha.ids())
		}
		var body struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(got[1].Body, &body); err != nil || body.Type != contract.TypeAppealOverdue || body.Data["level"] != "reminder" {
			t.Fatalf("body %s (%v)", got[1].Body, err)
		}
	})
	t.Run("Rotation", func(t *testing.T) {
		// The first notify secret signs, as Standard Webhooks prescribes;
		// a portal still verifying with the old secret fails, so a
		// rotation lists the new secret first only once the portal
		// accepts it.
		g := f.alpha.deliveries()[0]
		old, _ := standardwebhooks.NewWebhook(alphaOldSecret)
		if err := old.Verify(g.Body, g.Header); err == nil {
			t.Fatal("verified with the second (old) secret; want only the first to sign")
		}
	})
	if n := count(f.beta.deliveries()) + count(f.gamm.deliveries()); n != 0 {
		t.Fatalf("other portals received %d deliveries of alpha's case", n)
	}
}

// Each event goes to the portals its case belongs to, and never to a
// portal whose own case it is not.
func TestRouting(t *testing.T) {
	t.Parallel()
	f := setup(t)
	alphaSrc, betaSrc := "/portals/alpha", "/portals/beta"
	f.appeal(t, "A-alpha", alphaSrc, "")
	f.appeal(t, "A-beta", betaSrc, "")
	f.appeal(t, "A-gamma", "/portals/gamma", "")
	f.appeal(t, "A-hotline", "/hotline/12345", "")
	f.signup(t, "S-alpha", &alphaSrc)
	f.signup(t, "S-legacy", nil)
	f.appeal(t, "S-alpha-p1", "/qinqing/forum-signup", "S-alpha")
	f.exec(t, `INSERT INTO subsidy.policies (policy_id, name, trigger, budget_fen, definition, updated_at)
		VALUES ('P', 'p', 't', 100, '{}', $1)`, at)
	f.exec(t, `INSERT INTO subsidy.disbursements (disbursement_id, policy_id, uscc, basis, amount_fen, approval_year, approved_at,
		due_at, event_type, event_source, event_id) VALUES ('D-beta', 'P', 'u', 'b', 1, 2026, $1, $1, 't', $2, 'e')`, at, betaSrc)
	f.answered(t, "forum-signup", betaSrc, "signup-req-1", "reply-rejected-1")
	f.answered(t, "subsidy-disbursal", "/huzhou/economy-bureau", "honour-1", "reply-decided-1")
	f.answered(t, "recycling-trade", "/portals/recycling", "import-1", "reply-import-1")

	cases := []struct {
		name, typ, source, id, data, rule string
		want                              []string // portals that receive it
	}{
		{"OwnPortal", contract.TypeAppealAssigned, "/qinqing/appeal-router", "r-1", `{"appealId": "A-alpha"}`, RuleOwnPortal, []string{"alpha"}},
		{"OtherPortal", contract.TypeAppealUpdated, "/qinqing/appeal-router", "r-2", `{"appealId": "A-beta"}`, RuleOwnPortal, []string{"beta"}},
		{"OwnPortalNotSubscribed", contract.TypeAppealUpdated, "/qinqing/appeal-router", "r-3", `{"appealId": "A-gamma"}`, RuleOwnPortal, nil},
		{"NotFromAPortal", contract.TypeAppealUpdated, "/qinqing/appeal-router", "r-4", `{"appealId": "A-hotline"}`, RuleBroadcast, []string{"alpha", "beta"}},
		{"UnknownAppeal", contract.TypeAppealUpdated, "/qinqing/appeal-router", "r-5", `{"appealId": "A-nowhere"}`, RuleUnknown, nil},
		{"ForumAppealFollowsSignup", contract.TypeAppealOverdue, "/qinqing/deadline-check", "r-6", `{"appealId": "S-alpha-p1"}`, RuleOwnPortal, []string{"alpha"}},
		{"Promotion", contract.TypeSignupConfirmed, "/qinqing/forum-signup", "r-7", `{"signupId": "S-alpha"}`, RuleOwnPortal, []string{"alpha"}},
		{"SignupOriginNotOnRecord", contract.TypeSignupCancelAccepted, "/qinqing/forum-signup", "r-8", `{"signupId": "S-legacy"}`, RuleUnknown, nil},
		{"RejectedRequest", contract.TypeSignupRejected, "/qinqing/forum-signup", "reply-rejected-1", `{"forumId": "F-1", "reason": "signup_closed"}`, RuleOwnPortal, []string{"beta"}},
		{"DecisionNotFromAPortal", contract.TypeSubsidyDecided, "/qinqing/subsidy-disbursal", "reply-decided-1", `{"uscc": "u", "approvals": [], "rejections": []}`, RuleBroadcast, []string{"alpha", "beta"}},
		{"Payment", contract.TypePaymentRecorded, "/qinqing/subsidy-disbursal", "r-9", `{"disbursementId": "D-beta", "status": "paid"}`, RuleOwnPortal, []string{"beta"}},
		{"ImportOfAPortalNotNotified", contract.TypeImportCompleted, "/qinqing/recycling-trade", "reply-import-1", `{"batchId": "B"}`, RuleOwnPortal, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]int{"alpha": len(f.alpha.deliveries()), "beta": len(f.beta.deliveries()), "gamma": len(f.gamm.deliveries())}
			n := wantNotified(t, f.send(t, tc.typ, tc.source, tc.id, tc.data), tc.rule)
			var got []string
			for _, d := range n.Deliveries {
				got = append(got, d.Portal)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("delivered to %v, want %v", got, tc.want)
			}
			for name, r := range map[string]*receiver{"alpha": f.alpha, "beta": f.beta, "gamma": f.gamm} {
				wantN := before[name]
				for _, w := range tc.want {
					if w == name {
						wantN++
					}
				}
				if n := len(r.deliveries()); n != wantN {
					t.Fatalf("%s received %d, want %d", name, n, wantN)
				}
			}
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	t.Run("PortalDownThenUp", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.appeal(t, "A-1", "/hotline/12345", "")
		f.beta.answer(503, 502)
		data := `{"appealId": "A-1"}`
		for i := 0; i < 2; i++ {
			if r := f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-down", data); r.Status != 503 ||
				!strings.Contains(fmt.Sprint(r.Problem()["detail"]), "portal beta did not take the update") {
				t.Fatalf("try %d: status %d (%s), want 503 naming beta while it is down", i+1, r.Status, r.Body)
			}
		}
		n := wantNotified(t, f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-down", data), RuleBroadcast)
		if len(n.Deliveries) != 2 {
			t.Fatalf("deliveries %+v", n.Deliveries)
		}
		// alpha was served on the first try and not sent the id again;
		// beta got it three times, the same id each time.
		if got := f.alpha.ids(); fmt.Sprint(got) != "[ev-down]" {
			t.Fatalf("alpha received %v, want once", got)
		}
		if got := f.beta.ids(); fmt.Sprint(got) != "[ev-down ev-down ev-down]" {
			t.Fatalf("beta received %v", got)
		}
		// A redelivery (or replayed dead letter) answers the same reply and
		// sends nothing.
		again := wantNotified(t, f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-down", data), RuleBroadcast)
		if jsonOf(again) != jsonOf(n) || len(f.alpha.ids())+len(f.beta.ids()) != 4 {
			t.Fatalf("redelivery: %+v (first %+v), %d requests", again, n, len(f.alpha.ids())+len(f.beta.ids()))
		}
		items := f.list(t, "?portal=beta")
		if len(items) != 3 || items[0].Status != StatusDelivered || items[1].Status != StatusRetrying || *items[1].HTTPStatus != 502 ||
			items[2].Attempt != 1 || items[0].Attempt != 3 || items[2].Error == nil || !strings.Contains(*items[2].Error, "503") {
			t.Fatalf("beta's attempts %s", jsonOf(items))
		}
	})
	t.Run("ConcurrentDeliveries", func(t *testing.T) {
		t.Parallel()
		// Knative may deliver the same event twice at once: one attempt
		// holds the delivery's lease, the others answer 503, and the
		// portal is posted to once.
		f := setup(t)
		f.appeal(t, "A-1", "/portals/alpha", "")
		f.alpha.mu.Lock()
		f.alpha.delay = 300 * time.Millisecond
		f.alpha.mu.Unlock()
		var wg sync.WaitGroup
		statuses := make([]int, 8)
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-twice", `{"appealId": "A-1"}`).Status
			}()
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			switch {
			case s == 200:
				ok++
			case s < 500:
				t.Fatalf("statuses %v: want 200 or 5xx", statuses)
			}
		}
		if ok == 0 {
			wantNotified(t, f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-twice", `{"appealId": "A-1"}`), RuleOwnPortal)
		}
		if got := f.alpha.ids(); len(got) != 1 {
			t.Fatalf("alpha received %v (statuses %v), want once", got, statuses)
		}
	})
	t.Run("TooManyRequests", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.appeal(t, "A-1", "/portals/alpha", "")
		f.alpha.answer(429)
		if r := f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-429", `{"appealId": "A-1"}`); r.Status < 500 {
			t.Fatalf("status %d, want 5xx", r.Status)
		}
		wantNotified(t, f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-429", `{"appealId": "A-1"}`), RuleOwnPortal)
		if got := f.alpha.ids(); len(got) != 2 {
			t.Fatalf("alpha received %v", got)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.appeal(t, "A-1", "/portals/alpha", "")
		f.alpha.mu.Lock()
		f.alpha.delay = 3 * time.Second // EGRESS_TIMEOUT is 1s
		f.alpha.mu.Unlock()
		if r := f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-slow", `{"appealId": "A-1"}`); r.Status < 500 {
			t.Fatalf("status %d, want 5xx", r.Status)
		}
		items := f.list(t, "?status=retrying")
		if len(items) != 1 || items[0].HTTPStatus != nil || items[0].Error == nil || !strings.Contains(*items[0].Error, "no answer within 1s") {
			t.Fatalf("attempts %s", jsonOf(items))
		}
		f.alpha.mu.Lock()
		f.alpha.delay = 0
		f.alpha.mu.Unlock()
		wantNotified(t, f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-slow", `{"appealId": "A-1"}`), RuleOwnPortal)
	})
	t.Run("PermanentFailure", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.appeal(t, "A-1", "/portals/alpha", "")
		f.alpha.answer(410)
		n := wantNotified(t, f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-gone", `{"appealId": "A-1"}`), RuleOwnPortal)
		if n.Deliveries[0].Status != StatusFailed || *n.Deliveries[0].HTTPStatus != 410 {
			t.Fatalf("deliveries %+v", n.Deliveries)
		}
		// Not retried: a redelivery sends nothing.
		wantNotified(t, f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-gone", `{"appealId": "A-1"}`), RuleOwnPortal)
		if got := f.alpha.ids(); len(got) != 1 {
			t.Fatalf("alpha received %v, want once", got)
		}
		items := f.list(t, "?portal=alpha&status=failed")
		if len(items) != 1 || *items[0].HTTPStatus != 410 || !strings.Contains(*items[0].Error, "answer 410") || items[0].WebhookID != "ev-gone" {
			t.Fatalf("attempts %s", jsonOf(items))
		}
	})
}

func TestOutboundSafety(t *testing.T) {
	t.Parallel()
	t.Run("ErrLoopbackWithoutAllowPrivate", func(t *testing.T) {
		t.Parallel()
		// The host name passes the start-up check; the address it resolves
		// to is refused when connecting.
		target := newReceiver(t, alphaSecret)
		file := portalsFile(t, map[string]portalCfg{"alpha": {url: strings.Replace(target.URL, "127.0.0.1", "localhost", 1),
			secrets: []string{alphaSecret}, types: allTypes, extra: `"insecure": true`}})
		f := &fixture{Fixture: functest.Setup(t, binary, functest.Parts{Env: []string{"PORTALS_FILE=" + file, "ADMIN_TOKEN=" + adminToken}})}
		f.appeal(t, "A-1", "/portals/alpha", "")
		n := wantNotified(t, f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-ssrf", `{"appealId": "A-1"}`), RuleOwnPortal)
		if n.Deliveries[0].Status != StatusFailed || n.Deliveries[0].HTTPStatus != nil {
			t.Fatalf("deliveries %+v", n.Deliveries)
		}
		if got := target.ids(); len(got) != 0 {
			t.Fatalf("the loopback endpoint received %v", got)
		}
		items := f.list(t, "")
		if len(items) != 1 || !strings.Contains(*items[0].Error, "non-public address") {
			t.Fatalf("attempts %s", jsonOf(items))
		}
	})
	t.Run("RedirectNotFollowed", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.appeal(t, "A-1", "/portals/alpha", "")
		f.alpha.answer(307)
		f.alpha.header = http.Header{"Location": {f.beta.URL + "/stolen"}}
		n := wantNotified(t, f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-redirect", `{"appealId": "A-1"}`), RuleOwnPortal)
		if n.Deliveries[0].Status != StatusFailed || *n.Deliveries[0].HTTPStatus != 307 {
			t.Fatalf("deliveries %+v", n.Deliveries)
		}
		if got := f.beta.ids(); len(got) != 0 {
			t.Fatalf("the redirect target received %v", got)
		}
	})
	t.Run("HTTPS", func(t *testing.T) {
		t.Parallel()
		// An https endpoint needs no "insecure"; the test server's
		// certificate is trusted through SSL_CERT_FILE.
		wh, _ := standardwebhooks.NewWebhook(alphaSecret)
		var mu sync.Mutex
		var verified []error
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			verified = append(verified, wh.Verify(readAll(r), r.Header))
			mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		ca := testkit.WriteFile(t, "ca.pem", certPEM(srv))
		file := portalsFile(t, map[string]portalCfg{"alpha": {url: srv.URL, secrets: []string{alphaSecret}, types: allTypes, extra: `"allowPrivate": true`}})
		f := &fixture{Fixture: functest.Setup(t, binary, functest.Parts{Env: []string{"PORTALS_FILE=" + file, "SSL_CERT_FILE=" + ca}})}
		f.appeal(t, "A-1", "/portals/alpha", "")
		wantNotified(t, f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-tls", `{"appealId": "A-1"}`), RuleOwnPortal)
		mu.Lock()
		defer mu.Unlock()
		if len(verified) != 1 || verified[0] != nil {
			t.Fatalf("https endpoint: %v", verified)
		}
	})
	bad := []struct{ name, notify, want string }{
		{"ErrHTTPWithoutInsecure", `{"url": "http://portal.example.com/hook", "secrets": [SECRET], "types": ["t"]}`, "must be https"},
		{"ErrLiteralLoopback", `{"url": "https://127.0.0.1/hook", "secrets": [SECRET], "types": ["t"]}`, "non-public address"},
		{"ErrLiteralPrivate", `{"url": "https://[fd00::1]/hook", "secrets": [SECRET], "types": ["t"]}`, "non-public address"},
		{"ErrMetadataAddress", `{"url": "http://169.254.169.254/latest", "insecure": true, "secrets": [SECRET], "types": ["t"]}`, "non-public address"},
		{"ErrCredentialsInURL", `{"url": "https://user:pw@portal.example.com/", "secrets": [SECRET], "types": ["t"]}`, "user name or password"},
		{"ErrNoSecret", `{"url": "https://portal.example.com/", "secrets": [], "types": ["t"]}`, "notify.secrets"},
		{"ErrNoTypes", `{"url": "https://portal.example.com/", "secrets": [SECRET]}`, "notify.types"},
		{"ErrMisspelled", `{"url": "https://portal.example.com/", "secret": [SECRET], "types": ["t"]}`, "secret"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			notify := strings.ReplaceAll(tc.notify, "SECRET", strconv.Quote(alphaSecret))
			file := testkit.WriteFile(t, "p.json", `{"portals": {"alpha": {"notify": `+notify+`}}}`)
			out, err := functest.RunConfigOnly(t, binary, "DATABASE_URL=postgres://127.0.0.1:1/x", "PORTALS_FILE="+file)
			line := strings.TrimSpace(string(out))
			if err == nil || !strings.Contains(line, tc.want) || strings.Contains(line, "\n") {
				t.Fatalf("got %v: %q, want one line containing %q", err, out, tc.want)
			}
			if strings.Contains(line, strings.TrimPrefix(alphaSecret, "whsec_")) || strings.Contains(line, "pw@") {
				t.Fatalf("the error reveals a secret: %q", line)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.send(t, contract.TypeAppealUpdated, "/qinqing/appeal-router", "ev-bad", `{"status": "accepted"}`)
	if r.Status != 400 || r.Problem()["field"] != "appealId" {
		t.Fatalf("status %d %s, want 400 naming appealId", r.Status, r.Body)
	}
	r = f.send(t, "cn.huzhou.appeal.submitted", "/portals/alpha", "ev-bad2", `{}`)
	if r.Status != 400 || r.Problem()["field"] != "type" {
		t.Fatalf("status %d %s, want 400 naming type", r.Status, r.Body)
	}
	var n int
	_ = f.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM egress.deliveries) + (SELECT count(*) FROM qinqing.inbox)`).Scan(&n)
	if n != 0 || len(f.alpha.ids())+len(f.beta.ids()) != 0 {
		t.Fatalf("%d rows written, %d requests sent for bad input", n, len(f.alpha.ids())+len(f.beta.ids()))
	}
}

func TestAdmin(t *testing.T) {
	t.Parallel()
	f := setup(t)
	get := func(path, token string) *functest.Response {
		req, _ := http.NewRequest(http.MethodGet, f.Fn.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return functest.Do(t, req)
	}
	if r := get("/deliveries", ""); r.Status != 401 {
		t.Fatalf("no token: %d", r.Status)
	}
	if r := get("/deliveries", "wrong-token-wrong-token"); r.Status != 401 {
		t.Fatalf("wrong token: %d", r.Status)
	}
	if r := get("/deliveries?status=lost", adminToken); r.Status != 400 || r.Problem()["field"] != "status" {
		t.Fatalf("bad status: %d %s", r.Status, r.Body)
	}
	if r := get("/deliveries?limit=0", adminToken); r.Status != 400 {
		t.Fatalf("bad limit: %d", r.Status)
	}
	if items := f.list(t, ""); len(items) != 0 {
		t.Fatalf("items %v", items)
	}
	// The function runs with its own least-privilege role (migration 0072).
	var own int
	_ = f.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND usename = 'qinqing_webhook_egress_login'`).Scan(&own)
	if own == 0 {
		t.Fatal("webhook-egress is not connected as qinqing_webhook_egress_login")
	}
	t.Run("Off", func(t *testing.T) {
		fn := functest.Start(t, binary, "DATABASE_URL="+pgtest.URL(t))
		req, _ := http.NewRequest(http.MethodGet, fn.URL+"/deliveries", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if r := functest.Do(t, req); r.Status != 404 {
			t.Fatalf("without ADMIN_TOKEN: %d, want 404", r.Status)
		}
	})
}

// The function consumes exactly what the catalogue routes to it.
func TestCatalogue(t *testing.T) {
	for _, s := range contract.Catalog {
		if s.Function == name {
			if fmt.Sprint(s.Types) != fmt.Sprint(contract.EgressTypes) {
				t.Fatalf("catalogue %v, function %v", s.Types, contract.EgressTypes)
			}
			return
		}
	}
	t.Fatal("webhook-egress is not in contract.Catalog")
}

func (f *fixture) list(t *testing.T, query string) []admin.Delivery {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.Fn.URL+"/deliveries"+query, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	r := functest.Do(t, req)
	var d admin.Deliveries
	if r.Status != 200 || json.Unmarshal(r.Body, &d) != nil || d.Items == nil {
		t.Fatalf("GET /deliveries%s: %d %s", query, r.Status, r.Body)
	}
	return d.Items
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

// certPEM is the test server's certificate, to trust it as a CA.
func certPEM(srv *httptest.Server) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

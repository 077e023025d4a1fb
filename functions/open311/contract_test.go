package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

var binary, routerBin, checkBin string

func TestMain(m *testing.M) {
	functest.MainTwice(m, map[string]*string{".": &binary, "../appeal-router": &routerBin, "../deadline-check": &checkBin})
}

// Two portals, each with its own api_key; the file also carries the
// members webhook-ingress and webhook-egress use, which open311 ignores.
const (
	keyA        = "key-enterprise-portal-0001"
	keyB        = "key-hotline-system-00000002"
	portalsFile = `{"portals": {
  "zwfw": {"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "allowedTypes": ["cn.huzhou.appeal.submitted"], "apiKeys": ["` + keyA + `"]},
  "hotline": {"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "allowedTypes": ["cn.huzhou.appeal.submitted"], "apiKeys": ["` + keyB + `"]}
}}`
	uscc = "91330500MA2B3C4D5B"
)

type fixture struct {
	*functest.Fixture
	router, check *functest.Instance
}

func setup(t *testing.T) *fixture {
	t.Helper()
	k := functest.Setup(t, binary, functest.Parts{Sink: true, Env: []string{"PORTALS_FILE=" + testkit.WriteFile(t, "portals.json", portalsFile)}})
	return &fixture{
		Fixture: k,
		router:  functest.Start(t, routerBin, "DATABASE_URL="+k.DatabaseURL),
		check:   functest.Start(t, checkBin, "DATABASE_URL="+k.DatabaseURL, "S3_BUCKET=unused", "S3_ENDPOINT=http://127.0.0.1:1"),
	}
}

// call does one HTTP request against open311.
func (f *fixture) call(t *testing.T, method, path string, form url.Values) (int, http.Header, []byte) {
	t.Helper()
	var body io.Reader
	u := f.Fn.URL + path
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	} else if form != nil {
		u += "?" + form.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// strict decodes a JSON answer into v, refusing members v does not name.
func strict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("answer does not decode strictly into %T: %v\n%s", v, err, b)
	}
}

// members are the JSON member names of each object of a JSON array.
func members(t *testing.T, b []byte) [][]string {
	t.Helper()
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("not a JSON array of objects: %v\n%s", err, b)
	}
	var out [][]string
	for _, m := range list {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out = append(out, keys)
	}
	return out
}

// The spec's member names of each answer (GeoReport v2, contract section 13).
var (
	serviceMembers = []string{"description", "group", "keywords", "metadata", "service_code", "service_name", "type"}
	requestMembers = []string{"address", "agency_responsible", "description", "expected_datetime", "requested_datetime",
		"service_code", "service_name", "service_notice", "service_request_id", "status", "status_notes", "updated_datetime"}
)

// wireService and wireRequest have the spec's names and JSON types.
type wireService struct {
	ServiceCode string `json:"service_code"`
	ServiceName string `json:"service_name"`
	Description string `json:"description"`
	Metadata    bool   `json:"metadata"`
	Type        string `json:"type"`
	Keywords    string `json:"keywords"`
	Group       string `json:"group"`
}

type wireRequest struct {
	ServiceRequestID  string `json:"service_request_id"`
	Status            string `json:"status"`
	StatusNotes       string `json:"status_notes"`
	ServiceName       string `json:"service_name"`
	ServiceCode       string `json:"service_code"`
	Description       string `json:"description"`
	AgencyResponsible string `json:"agency_responsible"`
	ServiceNotice     string `json:"service_notice"`
	RequestedDatetime string `json:"requested_datetime"`
	UpdatedDatetime   string `json:"updated_datetime"`
	ExpectedDatetime  string `json:"expected_datetime"`
	Address           string `json:"address"`
}

type wireError struct {
	Code        int    `json:"code"`
	Description string `json:"description"`
}

func TestServices(t *testing.T) {
	t.Parallel()
	f := setup(t)
	t.Run("JSON", func(t *testing.T) {
		status, h, b := f.call(t, http.MethodGet, "/open311/v2/services.json", nil)
		if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Fatalf("status %d, %s: %s", status, h.Get("Content-Type"), b)
		}
		var list []wireService
		strict(t, b, &list)
		rules := appeal.DefaultRules()
		if len(list) != len(rules.Rules) {
			t.Fatalf("%d services, want one per category (%d)", len(list), len(rules.Rules))
		}
		for i, m := range members(t, b) {
			if !reflect.DeepEqual(m, serviceMembers) {
				t.Errorf("service %d has members %v, want %v", i, m, serviceMembers)
			}
		}
		land := list[0]
		if land.ServiceCode != "land" || land.Type != "realtime" || land.Metadata || land.ServiceName != appeal.CategoryName("land") ||
			!strings.Contains(land.Keywords, "land") || land.Description == "" {
			t.Errorf("first service = %+v", land)
		}
	})
	t.Run("XML", func(t *testing.T) {
		status, h, b := f.call(t, http.MethodGet, "/open311/v2/services.xml", url.Values{"jurisdiction_id": {"huzhou"}})
		if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/xml") {
			t.Fatalf("status %d, %s: %s", status, h.Get("Content-Type"), b)
		}
		var doc struct {
			XMLName  xml.Name `xml:"services"`
			Services []struct {
				ServiceCode string `xml:"service_code"`
				Metadata    bool   `xml:"metadata"`
				Type        string `xml:"type"`
			} `xml:"service"`
		}
		if err := xml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		if len(doc.Services) != len(appeal.DefaultRules().Rules) || doc.Services[0].ServiceCode != "land" || doc.Services[0].Type != "realtime" {
			t.Fatalf("services.xml = %+v", doc)
		}
	})
	t.Run("ErrUnknownJurisdiction", func(t *testing.T) {
		status, _, b := f.call(t, http.MethodGet, "/open311/v2/services.json", url.Values{"jurisdiction_id": {"hangzhou"}})
		expectError(t, status, b, 404)
	})
	t.Run("ErrUnknownFormat", func(t *testing.T) {
		status, _, b := f.call(t, http.MethodGet, "/open311/v2/services.csv", nil)
		expectError(t, status, b, 404)
	})
}

// expectError checks an Open311 JSON error answer.
func expectError(t *testing.T, status int, b []byte, want int) []wireError {
	t.Helper()
	if status != want {
		t.Fatalf("status %d, want %d: %s", status, want, b)
	}
	var errs []wireError
	strict(t, b, &errs)
	if len(errs) != 1 || errs[0].Code != want || errs[0].Description == "" {
		t.Fatalf("errors = %+v, want one with code %d", errs, want)
	}
	return errs
}

func requestForm(key string) url.Values {
	return url.Values{
		"api_key":                    {key},
		"service_code":               {"land"},
		"description":                {"Our new workshop has waited three months for its land-use certificate.\nPlease help."},
		"attribute[uscc]":            {uscc},
		"attribute[enterprise_name]": {"湖州绿能电池有限公司"},
		"attribute[county]":          {"changxing"},
		"email":                      {"wang.li@example.com"},
		"phone":                      {"+86 138 0572 0000"},
	}
}

// submit POSTs a request and returns its id.
func (f *fixture) submit(t *testing.T, form url.Values) string {
	t.Helper()
	status, _, b := f.call(t, http.MethodPost, "/open311/v2/requests.json", form)
	if status != http.StatusCreated {
		t.Fatalf("POST requests.json: %d %s", status, b)
	}
	var created []struct {
		ServiceRequestID string `json:"service_request_id"`
	}
	strict(t, b, &created)
	if len(created) != 1 || created[0].ServiceRequestID == "" {
		t.Fatalf("created = %s", b)
	}
	return created[0].ServiceRequestID
}

// route plays the broker: the submitted events the sink received go to
// appeal-router.
func (f *fixture) route(t *testing.T) {
	t.Helper()
	for _, ev := range f.Sink.OfType(contract.TypeAppealSubmitted) {
		if r := f.router.Send(t, ev); r.Status != 200 || r.Type() != contract.TypeAppealAssigned {
			t.Fatalf("appeal-router answered %d %s: %s", r.Status, r.Type(), r.Body)
		}
	}
}

func (f *fixture) get(t *testing.T, key, id string) wireRequest {
	t.Helper()
	status, _, b := f.call(t, http.MethodGet, "/open311/v2/requests/"+id+".json", url.Values{"api_key": {key}})
	if status != 200 {
		t.Fatalf("GET requests/%s.json: %d %s", id, status, b)
	}
	var list []wireRequest
	strict(t, b, &list)
	for i, m := range members(t, b) {
		if !reflect.DeepEqual(m, requestMembers) {
			t.Errorf("request %d has members %v, want %v", i, m, requestMembers)
		}
	}
	if len(list) != 1 {
		t.Fatalf("%d requests for one id", len(list))
	}
	return list[0]
}

func TestRequestLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t)
	form := requestForm(keyA)
	form.Set("attribute[request_token]", "case-2026-0001")
	id := f.submit(t, form)

	t.Run("SubmittedEvent", func(t *testing.T) {
		evs := f.Sink.OfType(contract.TypeAppealSubmitted)
		if len(evs) != 1 {
			t.Fatalf("%d submitted events at the sink, want 1", len(evs))
		}
		ev := evs[0]
		if ev.Source() != "/portals/zwfw" || ev.ID() != runtime.DeriveID("open311", "zwfw", "case-2026-0001") {
			t.Errorf("event source %s id %s", ev.Source(), ev.ID())
		}
		if want := runtime.DeriveID("appeal", ev.Source(), ev.ID()); id != want {
			t.Errorf("service_request_id %s, want the derived appealId %s", id, want)
		}
		var data map[string]any
		_ = json.Unmarshal(ev.Data(), &data)
		title, _ := data["title"].(string)
		if data["channel"] != "portal" || data["category"] != "land" || data["county"] != "changxing" ||
			!strings.HasPrefix(title, "Our new workshop has waited") || len([]rune(title)) > maxTitleGuess+1 {
			t.Errorf("event data %v", data)
		}
		if bytes.Contains(ev.Data(), []byte("wang.li")) || bytes.Contains(ev.Data(), []byte("138")) {
			t.Errorf("contact details passed on: %s", ev.Data())
		}
	})
	t.Run("NotRoutedYet", func(t *testing.T) {
		status, _, b := f.call(t, http.MethodGet, "/open311/v2/requests/"+id+".json", url.Values{"api_key": {keyA}})
		expectError(t, status, b, 404)
	})
	t.Run("RetrySameToken", func(t *testing.T) {
		if again := f.submit(t, form); again != id {
			t.Fatalf("retried POST gave %s, want %s", again, id)
		}
		evs := f.Sink.OfType(contract.TypeAppealSubmitted)
		if len(evs) != 2 || evs[0].ID() != evs[1].ID() {
			t.Fatalf("retry sent %d events; ids must be equal so appeal-router handles it once", len(evs))
		}
	})
	f.route(t)
	var assign string
	t.Run("Open", func(t *testing.T) {
		r := f.get(t, keyA, id)
		if r.Status != "open" || r.ServiceCode != "land" || r.AgencyResponsible != appeal.DepartmentName("changxing-natural-resources") ||
			r.Address != "浙江省湖州市长兴县" || !strings.HasPrefix(r.StatusNotes, "Received and handed to") || r.ServiceNotice != ServiceNotice ||
			!strings.Contains(r.Description, "land-use certificate") {
			t.Fatalf("request = %+v", r)
		}
		var due time.Time
		if err := f.Pool.QueryRow(context.Background(), `SELECT reply_due FROM appeal.appeals WHERE appeal_id = $1`, id).Scan(&due); err != nil {
			t.Fatal(err)
		}
		exp, err := time.Parse(time.RFC3339, r.ExpectedDatetime)
		if err != nil || !exp.Equal(due) || !strings.HasSuffix(r.ExpectedDatetime, "+08:00") {
			t.Errorf("expected_datetime %s, want the reply due %s in the business time zone", r.ExpectedDatetime, due)
		}
		for _, s := range []string{r.RequestedDatetime, r.UpdatedDatetime} {
			if _, err := time.Parse(time.RFC3339, s); err != nil {
				t.Errorf("datetime %q: %v", s, err)
			}
		}
		assign = "changxing-natural-resources"
	})
	t.Run("XML", func(t *testing.T) {
		status, h, b := f.call(t, http.MethodGet, "/open311/v2/requests/"+id+".xml", url.Values{"api_key": {keyA}})
		if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/xml") {
			t.Fatalf("%d %s", status, b)
		}
		var doc struct {
			XMLName  xml.Name `xml:"service_requests"`
			Requests []struct {
				ID     string `xml:"service_request_id"`
				Status string `xml:"status"`
				Agency string `xml:"agency_responsible"`
			} `xml:"request"`
		}
		if err := xml.Unmarshal(b, &doc); err != nil || len(doc.Requests) != 1 || doc.Requests[0].ID != id || doc.Requests[0].Status != "open" {
			t.Fatalf("requests xml %v: %s", err, b)
		}
	})
	answer := func(typ string, data map[string]any) {
		t.Helper()
		data["appealId"] = id
		r := f.router.Send(t, functest.Event(typ, "/portals/departments", functest.NextID(), time.Now(), data))
		if r.Status != 200 || r.Type() != contract.TypeAppealUpdated {
			t.Fatalf("%s: %d %s %s", typ, r.Status, r.Type(), r.Body)
		}
	}
	t.Run("Answered", func(t *testing.T) {
		answer(contract.TypeAppealAccepted, map[string]any{"department": assign})
		if r := f.get(t, keyA, id); !strings.Contains(r.StatusNotes, "signed for") {
			t.Errorf("after accepted: %q", r.StatusNotes)
		}
		answer(contract.TypeAppealReplied, map[string]any{"department": assign, "reply": "The certificate is issued; collect it at the county service centre."})
		r := f.get(t, keyA, id)
		if r.Status != "open" || r.StatusNotes != "Answered: The certificate is issued; collect it at the county service centre." {
			t.Errorf("after replied: %+v", r)
		}
	})
	t.Run("Closed", func(t *testing.T) {
		answer(contract.TypeAppealRevisited, map[string]any{"satisfaction": "satisfied"})
		r := f.get(t, keyA, id)
		if r.Status != "closed" || !strings.Contains(r.StatusNotes, "satisfied; closed") {
			t.Errorf("after revisit: %+v", r)
		}
	})
	t.Run("NoContactDetails", func(t *testing.T) {
		for _, path := range []string{"/open311/v2/requests/" + id + ".json", "/open311/v2/requests/" + id + ".xml", "/open311/v2/requests.json", "/open311/v2/requests.xml"} {
			_, _, b := f.call(t, http.MethodGet, path, url.Values{"api_key": {keyA}})
			for _, s := range []string{"wang.li", "example.com", "138 0572", "email", "phone"} {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s shows %q: %s", path, s, b)
				}
			}
		}
	})
}

func TestEscalationNotes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := f.submit(t, requestForm(keyA))
	f.route(t)
	// Three weeks later nobody has signed for it or answered: the deadline
	// check announces the ladder, and the request says so.
	at := time.Now().Add(21 * 24 * time.Hour)
	r := f.check.Send(t, functest.Event(event.PingType, "/cron/deadline", functest.NextID(), at, map[string]any{"job": "deadline-check"}))
	if r.Status != 200 {
		t.Fatalf("deadline-check: %d %s", r.Status, r.Body)
	}
	got := f.get(t, keyA, id)
	if !strings.HasPrefix(got.StatusNotes, "Overdue (") || !strings.Contains(got.StatusNotes, "working day(s) past the due date") {
		t.Fatalf("status_notes %q, want the latest escalation", got.StatusNotes)
	}
}

func TestPortalIsolation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	idA := f.submit(t, requestForm(keyA))
	idB := f.submit(t, requestForm(keyB))
	f.route(t)
	t.Run("OtherPortalsRequestIsUnknown", func(t *testing.T) {
		status, _, b := f.call(t, http.MethodGet, "/open311/v2/requests/"+idA+".json", url.Values{"api_key": {keyB}})
		expectError(t, status, b, 404)
	})
	t.Run("ListShowsOwnOnly", func(t *testing.T) {
		for key, want := range map[string]string{keyA: idA, keyB: idB} {
			status, _, b := f.call(t, http.MethodGet, "/open311/v2/requests.json", url.Values{"api_key": {key}})
			var list []wireRequest
			if status != 200 {
				t.Fatalf("%d %s", status, b)
			}
			strict(t, b, &list)
			if len(list) != 1 || list[0].ServiceRequestID != want {
				t.Errorf("list for %s = %+v, want only %s", key, list, want)
			}
		}
	})
	t.Run("IDListOfOtherPortal", func(t *testing.T) {
		status, _, b := f.call(t, http.MethodGet, "/open311/v2/requests.json", url.Values{"api_key": {keyB}, "service_request_id": {idA + "," + idB}})
		var list []wireRequest
		if status != 200 {
			t.Fatalf("%d %s", status, b)
		}
		strict(t, b, &list)
		if len(list) != 1 || list[0].ServiceRequestID != idB {
			t.Errorf("id list = %+v, want only %s", list, idB)
		}
	})
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	land := f.submit(t, requestForm(keyA))
	taxForm := requestForm(keyA)
	taxForm.Set("service_code", "tax")
	taxForm.Set("attribute[title]", "VAT refund delayed")
	tax := f.submit(t, taxForm)
	f.route(t)
	list := func(q url.Values) []string {
		t.Helper()
		q.Set("api_key", keyA)
		status, _, b := f.call(t, http.MethodGet, "/open311/v2/requests.json", q)
		if status != 200 {
			t.Fatalf("%v: %d %s", q, status, b)
		}
		var reqs []wireRequest
		strict(t, b, &reqs)
		var ids []string
		for _, r := range reqs {
			ids = append(ids, r.ServiceRequestID)
		}
		sort.Strings(ids)
		return ids
	}
	both := []string{land, tax}
	sort.Strings(both)
	now := time.Now()
	for name, c := range map[string]struct {
		q    url.Values
		want []string
	}{
		"Default":      {url.Values{}, both},
		"ServiceCode":  {url.Values{"service_code": {"tax"}}, []string{tax}},
		"StatusOpen":   {url.Values{"status": {"open"}}, both},
		"StatusClosed": {url.Values{"status": {"closed"}}, nil},
		"IDs":          {url.Values{"service_request_id": {land}}, []string{land}},
		"DateRange": {url.Values{"start_date": {now.Add(-time.Hour).Format(time.RFC3339)},
			"end_date": {now.Add(time.Hour).Format(time.RFC3339)}}, both},
		"DateRangeBefore": {url.Values{"start_date": {now.Add(-80 * 24 * time.Hour).Format(time.RFC3339)},
			"end_date": {now.Add(-79 * 24 * time.Hour).Format(time.RFC3339)}}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			if got := list(c.q); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	for name, q := range map[string]url.Values{
		"ErrRangeOver90Days": {"start_date": {now.Add(-91 * 24 * time.Hour).Format(time.RFC3339)}, "end_date": {now.Format(time.RFC3339)}},
		"ErrEndBeforeStart":  {"start_date": {now.Format(time.RFC3339)}, "end_date": {now.Add(-time.Hour).Format(time.RFC3339)}},
		"ErrBadDate":         {"start_date": {"yesterday"}},
		"ErrBadStatus":       {"status": {"pending"}},
		"ErrUnknownService":  {"service_code": {"weather"}},
		"ErrBadID":           {"service_request_id": {"a b"}},
	} {
		t.Run(name, func(t *testing.T) {
			q.Set("api_key", keyA)
			status, _, b := f.call(t, http.MethodGet, "/open311/v2/requests.json", q)
			expectError(t, status, b, 400)
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	post := func(form url.Values) (int, []byte) {
		status, _, b := f.call(t, http.MethodPost, "/open311/v2/requests.json", form)
		return status, b
	}
	t.Run("ErrNoAPIKey", func(t *testing.T) {
		form := requestForm(keyA)
		form.Del("api_key")
		status, b := post(form)
		expectError(t, status, b, 401)
		status, _, b = f.call(t, http.MethodGet, "/open311/v2/requests.json", nil)
		expectError(t, status, b, 401)
	})
	t.Run("ErrWrongAPIKey", func(t *testing.T) {
		status, b := post(requestForm("not-a-key-of-any-portal"))
		expectError(t, status, b, 403)
		status, _, b = f.call(t, http.MethodGet, "/open311/v2/requests/x.json", url.Values{"api_key": {"not-a-key-of-any-portal"}})
		expectError(t, status, b, 403)
	})
	for name, c := range map[string]struct{ field, value string }{
		"ErrNoServiceCode":      {"service_code", ""},
		"ErrUnknownServiceCode": {"service_code", "weather"},
		"ErrNoDescription":      {"description", " "},
		"ErrBadUSCC":            {"attribute[uscc]", "91330500MA2B3C4D5X"},
		"ErrNoEnterprise":       {"attribute[enterprise_name]", ""},
		"ErrUnknownCounty":      {"attribute[county]", "hangzhou"},
		"ErrNUL":                {"description", "land\x00use"},
		"ErrControl":            {"attribute[title]", "title\x1b[31m"},
		"ErrLongDescription":    {"description", strings.Repeat("长", 4001)},
		"ErrBadUTF8":            {"attribute[enterprise_name]", "\xff\xfe"},
		"ErrC1Control":          {"attribute[title]", "title\u0085next"},
	} {
		t.Run(name, func(t *testing.T) {
			form := requestForm(keyA)
			form.Set(c.field, c.value)
			status, b := post(form)
			errs := expectError(t, status, b, 400)
			if !strings.Contains(errs[0].Description, c.field) {
				t.Errorf("description %q does not name %s", errs[0].Description, c.field)
			}
		})
	}
	t.Run("XMLErrors", func(t *testing.T) {
		form := requestForm(keyA)
		form.Del("service_code")
		status, _, b := f.call(t, http.MethodPost, "/open311/v2/requests.xml", form)
		var doc struct {
			XMLName xml.Name `xml:"errors"`
			Errors  []struct {
				Code        int    `xml:"code"`
				Description string `xml:"description"`
			} `xml:"error"`
		}
		if status != 400 || xml.Unmarshal(b, &doc) != nil || len(doc.Errors) != 1 || doc.Errors[0].Code != 400 {
			t.Fatalf("%d %s", status, b)
		}
	})
	t.Run("ErrSinkDown", func(t *testing.T) {
		f.Sink.SetDown(true)
		defer f.Sink.SetDown(false)
		status, b := post(requestForm(keyA))
		expectError(t, status, b, 503)
	})
	t.Run("NothingSentOnError", func(t *testing.T) {
		if n := len(f.Sink.OfType(contract.TypeAppealSubmitted)); n != 0 {
			t.Fatalf("%d events reached the sink from refused requests", n)
		}
	})
	t.Run("XMLCreated", func(t *testing.T) {
		status, _, b := f.call(t, http.MethodPost, "/open311/v2/requests.xml", requestForm(keyA))
		var doc struct {
			XMLName  xml.Name `xml:"service_requests"`
			Requests []struct {
				ID string `xml:"service_request_id"`
			} `xml:"request"`
		}
		if status != 201 || xml.Unmarshal(b, &doc) != nil || len(doc.Requests) != 1 || doc.Requests[0].ID == "" {
			t.Fatalf("%d %s", status, b)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, src := range map[string]string{
		"ShortKey":  `{"portals": {"a": {"apiKeys": ["short"]}}}`,
		"SharedKey": `{"portals": {"a": {"apiKeys": ["` + keyA + `"]}, "b": {"apiKeys": ["` + keyA + `"]}}}`,
		"NotYAML":   "portals: [",
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, name+".json")
			if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := functest.RunConfigOnly(t, binary, "DATABASE_URL=postgres://x@127.0.0.1:1/x", "PORTALS_FILE="+file)
			if err == nil || !strings.Contains(string(out), "PORTALS_FILE") || strings.Contains(string(out), keyA) {
				t.Fatalf("start-up with %s: %v\n%s", name, err, out)
			}
		})
	}
}

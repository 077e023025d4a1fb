package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime"
)

const name = "open311"

// Jurisdiction is the only jurisdiction_id served.
const Jurisdiction = "huzhou"

// Limits of the API.
const (
	maxRange      = 90 * 24 * time.Hour     // start_date … end_date
	maxIDs        = 100                     // ids in one service_request_id list
	maxResults    = 1000                    // requests in one list answer
	maxTitle      = contract.MaxAppealTitle // appeal-router's limits
	maxText       = contract.MaxAppealText
	maxTitleGuess = 60 // characters of the description used as title
)

// ServiceNotice is the promise shown with every request (the closed loop
// of contract section 4).
const ServiceNotice = "交办2个工作日、答复10个工作日、100%回访: handed to a department within 2 working days, answered within 10 working days of receipt, every answer followed up."

// Function is the Open311 API.
type Function struct {
	rules  *appeal.Rules
	keys   Keys
	pool   *pgxpool.Pool
	sink   string
	client *http.Client
	loc    *time.Location
	log    *zap.SugaredLogger
	now    func() time.Time
}

// New returns the function: the GeoReport v2 routes under /open311/v2.
func New(env *runtime.Env, rules *appeal.Rules, keys Keys, client *http.Client) *runtime.Function {
	f := &Function{rules: rules, keys: keys, pool: env.Pool, sink: env.Base.Sink, client: client,
		loc: env.Loc, log: env.Log, now: time.Now}
	return &runtime.Function{
		Name: name,
		Routes: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /open311/v2/{file}", f.logged(f.get))
			mux.HandleFunc("POST /open311/v2/{file}", f.logged(f.post))
			mux.HandleFunc("GET /open311/v2/requests/{file}", f.logged(f.getOne))
		},
	}
}

// answer is what one call answered, for its log line.
type answer struct {
	portal string
	n      int
}

// logged logs one line per call (runtime.Logged): method, path, status,
// ms, results and portal, and the error behind a 5xx.
func (f *Function) logged(h func(w http.ResponseWriter, r *http.Request) answer) http.HandlerFunc {
	return runtime.Logged(f.log, "open311", func(w http.ResponseWriter, r *http.Request) {
		a := h(w, r)
		runtime.LogFields(w, "results", a.n)
		if a.portal != "" {
			runtime.LogFields(w, "portal", a.portal)
		}
	})
}

// failed answers err as an Open311 error array (fail) for portal.
func failed(w http.ResponseWriter, format Format, portal string, err error) answer {
	fail(w, format, err)
	return answer{portal: portal}
}

// invalid is a 400: a bad parameter (its message names it).
func invalid(format string, args ...any) error {
	return event.Errorf(event.EINVALID, "", format, args...)
}

// notFound is a 404: an unknown resource, jurisdiction or request.
func notFound(format string, args ...any) error {
	return event.Errorf(event.ENOTFOUND, "", format, args...)
}

// common checks the format and jurisdiction_id of every call.
func common(w http.ResponseWriter, r *http.Request, want string) (Format, *answer) {
	base, format, ok := splitFormat(r.PathValue("file"))
	if !ok || base != want {
		a := failed(w, format, "", notFound("unknown resource %q: use %s.json or %s.xml", r.PathValue("file"), want, want))
		return format, &a
	}
	if j := r.FormValue("jurisdiction_id"); j != "" && j != Jurisdiction {
		a := failed(w, format, "", notFound("unknown jurisdiction_id %q: this endpoint serves %q", j, Jurisdiction))
		return format, &a
	}
	return format, nil
}

// portal authenticates the api_key (query or form): missing → 401,
// unknown → 403.
func (f *Function) portal(w http.ResponseWriter, r *http.Request, format Format) (string, *answer) {
	key := r.FormValue("api_key")
	if key == "" {
		a := failed(w, format, "", event.Errorf(event.EUNAUTHORIZED, "api_key", "api_key is required"))
		return "", &a
	}
	p, ok := f.keys.Portal(key)
	if !ok {
		a := failed(w, format, "", event.Errorf(event.EFORBIDDEN, "api_key", "api_key is not valid"))
		return "", &a
	}
	return p, nil
}

// get serves GET services.{fmt} and requests.{fmt}.
func (f *Function) get(w http.ResponseWriter, r *http.Request) answer {
	if strings.HasPrefix(r.PathValue("file"), "services") {
		return f.services(w, r)
	}
	return f.list(w, r)
}

// services lists the appeal categories of the routing rules; it needs no
// api_key.
func (f *Function) services(w http.ResponseWriter, r *http.Request) answer {
	format, a := common(w, r, "services")
	if a != nil {
		return *a
	}
	out := make([]Service, 0, len(f.rules.Rules))
	for _, rule := range f.rules.Rules {
		out = append(out, service(rule))
	}
	write(w, format, http.StatusOK, out)
	return answer{n: len(out)}
}

func service(rule appeal.Rule) Service {
	s := Service{ServiceCode: rule.Code(), ServiceName: rule.Name, Description: rule.Description,
		Metadata: false, Type: "realtime", Keywords: strings.Join(rule.Keywords, ","), Group: rule.Group}
	if s.ServiceName == "" {
		s.ServiceName = appeal.CategoryName(s.ServiceCode)
	}
	if s.Description == "" {
		s.Description = fmt.Sprintf("%s (%s): appeals handed to %s", s.ServiceName, s.ServiceCode, appeal.DepartmentName(rule.Department))
	}
	if s.Keywords == "" {
		s.Keywords = s.ServiceCode
		if n := appeal.CategoryName(s.ServiceCode); n != s.ServiceCode {
			s.Keywords += "," + n
		}
	}
	return s
}

// post submits a new request: the appeal goes to the broker as a
// cn.huzhou.appeal.submitted event from the portal's source, and the
// answer is its appealId. With attribute[request_token] the event id is
// derived from the portal and the token, so a retried POST is the same
// request (the same id, and appeal-router handles the event once).
func (f *Function) post(w http.ResponseWriter, r *http.Request) answer {
	r.Body = http.MaxBytesReader(w, r.Body, runtime.MaxBodyBytes)
	format, a := common(w, r, "requests")
	if a != nil {
		return *a
	}
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return failed(w, format, "", event.Errorf(runtime.ETOOLARGE, "", "the request body is over %d bytes", runtime.MaxBodyBytes))
		}
		return failed(w, format, "", invalid("the body is not form-encoded: %v", err))
	}
	portal, a := f.portal(w, r, format)
	if a != nil {
		return *a
	}
	sub, token, err := f.submission(r.PostForm)
	if err != nil {
		return failed(w, format, portal, err)
	}
	if f.sink == "" {
		w.Header().Set("Retry-After", "30")
		return failed(w, format, portal, event.Unavailable(nil, "requests cannot be accepted right now (no event sink is configured); retry later"))
	}
	source := "/portals/" + portal
	id := uuid.NewString()
	if token != "" {
		id = runtime.DeriveID("open311", portal, token)
	}
	sub.AppealID = runtime.DeriveID("appeal", source, id) // what appeal-router derives for this event
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetSource(source)
	ev.SetType(contract.TypeAppealSubmitted)
	ev.SetTime(f.now().UTC())
	if err := ev.SetData(cloudevents.ApplicationJSON, sub); err != nil {
		return failed(w, format, portal, &event.Error{Code: event.EINTERNAL, Message: "could not encode the request", Err: err})
	}
	if err := runtime.Send(r.Context(), f.client, f.sink, &ev); err != nil {
		w.Header().Set("Retry-After", "30")
		return failed(w, format, portal, event.Unavailable(err,
			"the request could not be handed on right now; nothing was accepted, retry later with the same attribute[request_token]"))
	}
	write(w, format, http.StatusCreated, []Created{{ServiceRequestID: sub.AppealID}})
	return answer{portal: portal, n: 1}
}

// submission checks the form of a POST against what appeal-router
// accepts, so that an id answered 201 always becomes an appeal. email and
// phone are accepted as the spec allows but not passed on or stored.
func (f *Function) submission(form url.Values) (*contract.AppealSubmitted, string, error) {
	var s contract.AppealSubmitted
	code := strings.TrimSpace(form.Get("service_code"))
	if code == "" {
		return nil, "", invalid("service_code is required (see services.json)")
	}
	rule, ok := f.rules.Lookup(code)
	if !ok {
		return nil, "", invalid("service_code %q is not a service (see services.json)", code)
	}
	s.Category = rule.Code()
	s.Channel = contract.ChannelPortal
	s.Detail = form.Get("description")
	s.Enterprise.USCC = form.Get("attribute[uscc]")
	s.Enterprise.Name = form.Get("attribute[enterprise_name]")
	s.County = form.Get("attribute[county]")
	s.Title = form.Get("attribute[title]")
	token := form.Get("attribute[request_token]")
	if strings.TrimSpace(s.Detail) == "" {
		return nil, "", invalid("description is required")
	}
	if s.Title == "" {
		s.Title = guessTitle(s.Detail)
	}
	// The rules of appeal-router's cn.huzhou.appeal.submitted (and
	// shared/event's one form for free text), so that an answered id
	// always becomes an appeal.
	if err := event.FirstError(
		event.Text("description", s.Detail, maxText),
		event.ValidateUSCC("attribute[uscc]", s.Enterprise.USCC),
		event.RequiredText("attribute[enterprise_name]", s.Enterprise.Name, maxTitle),
		event.ValidateCounty("attribute[county]", s.County),
		event.RequiredText("attribute[title]", s.Title, maxTitle),
		event.Text("attribute[request_token]", token, 100),
		event.Text("email", form.Get("email"), maxTitle),
		event.Text("phone", form.Get("phone"), maxTitle),
	); err != nil {
		return nil, "", err
	}
	return &s, token, nil
}

// guessTitle is the first line of the description, shortened.
func guessTitle(d string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(d), "\n")
	line = strings.TrimSpace(line)
	if r := []rune(line); len(r) > maxTitleGuess {
		line = string(r[:maxTitleGuess]) + "…"
	}
	return line
}

// getOne serves GET requests/<id>.{fmt}: one request of the caller's
// portal, 404 for an id unknown to that portal (another portal's request
// is unknown to it).
func (f *Function) getOne(w http.ResponseWriter, r *http.Request) answer {
	id, format, ok := splitFormat(r.PathValue("file"))
	if !ok {
		return failed(w, format, "", notFound("unknown resource %q: use requests/<id>.json or .xml", r.PathValue("file")))
	}
	if j := r.FormValue("jurisdiction_id"); j != "" && j != Jurisdiction {
		return failed(w, format, "", notFound("unknown jurisdiction_id %q: this endpoint serves %q", j, Jurisdiction))
	}
	portal, a := f.portal(w, r, format)
	if a != nil {
		return *a
	}
	if event.ValidateID("service_request_id", id) != nil {
		return failed(w, format, portal, notFound("no service request %q", id))
	}
	reqs, err := f.find(r.Context(), query{Source: "/portals/" + portal, IDs: []string{id}})
	if err != nil {
		return f.unavailable(w, format, portal, err)
	}
	if len(reqs) == 0 {
		return failed(w, format, portal,
			notFound("no service request %q for this api_key (a request just submitted is listed once it has been routed)", id))
	}
	write(w, format, http.StatusOK, reqs)
	return answer{portal: portal, n: 1}
}

// list serves GET requests.{fmt}: the portal's requests, filtered.
// service_request_id (a comma list) overrides every other filter, as the
// spec says; otherwise start_date … end_date (at most 90 days apart;
// default the 90 days up to end_date or now), service_code and status.
// At most 1000, newest first.
func (f *Function) list(w http.ResponseWriter, r *http.Request) answer {
	format, a := common(w, r, "requests")
	if a != nil {
		return *a
	}
	portal, a := f.portal(w, r, format)
	if a != nil {
		return *a
	}
	q, err := f.parseQuery(r.Form)
	if err != nil {
		return failed(w, format, portal, err)
	}
	q.Source = "/portals/" + portal
	reqs, err := f.find(r.Context(), q)
	if err != nil {
		return f.unavailable(w, format, portal, err)
	}
	write(w, format, http.StatusOK, reqs)
	return answer{portal: portal, n: len(reqs)}
}

func (f *Function) parseQuery(form url.Values) (query, error) {
	var q query
	if ids := form.Get("service_request_id"); ids != "" {
		for _, id := range strings.Split(ids, ",") {
			id = strings.TrimSpace(id)
			if err := event.ValidateID("service_request_id", id); err != nil {
				return q, invalid("service_request_id: %q is not a request id", id)
			}
			q.IDs = append(q.IDs, id)
		}
		if len(q.IDs) > maxIDs {
			return q, invalid("service_request_id: at most %d ids, got %d", maxIDs, len(q.IDs))
		}
		return q, nil
	}
	if code := form.Get("service_code"); code != "" {
		rule, ok := f.rules.Lookup(code)
		if !ok {
			return q, invalid("service_code %q is not a service (see services.json)", code)
		}
		q.Category = rule.Code()
	}
	switch s := form.Get("status"); s {
	case "", "open", "closed":
		q.Status = s
	default:
		return q, invalid("status must be open or closed, got %q", s)
	}
	end := f.now()
	if s := form.Get("end_date"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return q, invalid("end_date must be a W3C datetime (RFC 3339), got %q", s)
		}
		end = t
	}
	start := end.Add(-maxRange)
	if s := form.Get("start_date"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return q, invalid("start_date must be a W3C datetime (RFC 3339), got %q", s)
		}
		start = t
		if form.Get("end_date") == "" && end.Sub(start) > maxRange {
			end = start.Add(maxRange)
		}
	}
	if end.Before(start) {
		return q, invalid("end_date is before start_date")
	}
	if end.Sub(start) > maxRange {
		return q, invalid("start_date and end_date may be at most 90 days apart (got %.1f days)", end.Sub(start).Hours()/24)
	}
	q.Start, q.End = start, end
	return q, nil
}

func (f *Function) unavailable(w http.ResponseWriter, format Format, portal string, err error) answer {
	w.Header().Set("Retry-After", "10")
	return failed(w, format, portal, event.Unavailable(err, "requests cannot be read right now; retry later"))
}

// find reads the matching appeals and words their latest step.
func (f *Function) find(ctx context.Context, q query) ([]Request, error) {
	rows, err := readAppeals(ctx, f.pool, q)
	if err != nil {
		return nil, err
	}
	out := make([]Request, 0, len(rows))
	for _, a := range rows {
		out = append(out, f.request(a))
	}
	return out, nil
}

func (f *Function) request(a appealRow) Request {
	status := "open"
	if a.Status == string(appeal.Closed) {
		status = "closed"
	}
	name := appeal.CategoryName(a.Category)
	if rule, ok := f.rules.Lookup(a.Category); ok && rule.Name != "" {
		name = rule.Name
	}
	address := "浙江省湖州市"
	if a.County != "city" {
		address += event.Counties[a.County]
	}
	return Request{
		ServiceRequestID:  a.ID,
		Status:            status,
		StatusNotes:       notes(a, f.loc),
		ServiceName:       name,
		ServiceCode:       a.Category,
		Description:       a.Detail,
		AgencyResponsible: appeal.DepartmentName(a.Department),
		ServiceNotice:     ServiceNotice,
		RequestedDatetime: a.ReceivedAt.In(f.loc).Format(time.RFC3339),
		UpdatedDatetime:   a.UpdatedAt.In(f.loc).Format(time.RFC3339),
		ExpectedDatetime:  a.ReplyDue.In(f.loc).Format(time.RFC3339),
		Address:           address,
	}
}

package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/qinqing/qinqing/shared/event"
)

// Problem is an RFC 9457 problem details body. Field names the offending
// field of the event data (an extension member), as do InvalidParams.
type Problem struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail,omitempty"`
	Field         string         `json:"field,omitempty"`
	InvalidParams []InvalidParam `json:"invalid-params,omitempty"`
}

// InvalidParam names one bad field (the RFC's own example extension).
type InvalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Problem type URIs. They identify the kind of problem; they are not fetched.
const (
	ProblemInvalid      = "urn:qinqing:problem:invalid-event"
	ProblemTooLarge     = "urn:qinqing:problem:body-too-large"
	ProblemTimeout      = "urn:qinqing:problem:body-timeout"
	ProblemUnavailable  = "urn:qinqing:problem:temporarily-unavailable"
	ProblemInternal     = "urn:qinqing:problem:internal"
	ProblemUnauthorized = "urn:qinqing:problem:unauthorized"
	ProblemForbidden    = "urn:qinqing:problem:forbidden"
	ProblemNotFound     = "urn:qinqing:problem:not-found"
	// ProblemNoRoute is the server's own 404: no endpoint at that path
	// (ProblemNotFound is a resource an endpoint does not know).
	ProblemNoRoute          = "urn:qinqing:problem:no-route"
	ProblemBadGateway       = "urn:qinqing:problem:sink-refused"
	ProblemMethodNotAllowed = "urn:qinqing:problem:method-not-allowed"
)

// Codes of the answers the server makes before or around a route: not
// the domain's (shared/event), but mapped as its codes are.
const (
	ETOOLARGE    = "too_large"          // body over MaxBodyBytes
	EBODYTIMEOUT = "body_timeout"       // body not read within BODY_READ_TIMEOUT
	ENOROUTE     = "no_route"           // no endpoint at that path
	EMETHOD      = "method_not_allowed" // the endpoint does not take that method
	EPANIC       = "panic"              // a route panicked
)

// internalDetail is the detail of an error without a code: its text
// stays in the log.
const internalDetail = "an internal error stopped the request; retry later"

// kind is how one error code is answered.
type kind struct {
	status int
	typ    string
	title  string // "": the status text
}

// kinds is the one mapping of error codes to HTTP answers. EINTERNAL is
// 500, or 503 when the fault is transient (transient); an error without a
// code is EINTERNAL. Every fault is answered with the temporarily
// unavailable type but a panic: Knative retries both.
var kinds = map[string]kind{
	event.EINVALID:      {http.StatusBadRequest, ProblemInvalid, "Malformed event"},
	event.EUNAUTHORIZED: {http.StatusUnauthorized, ProblemUnauthorized, ""},
	event.EFORBIDDEN:    {http.StatusForbidden, ProblemForbidden, ""},
	event.ENOTFOUND:     {http.StatusNotFound, ProblemNotFound, ""},
	event.EREFUSED:      {http.StatusBadGateway, ProblemBadGateway, ""},
	event.EUNAVAILABLE:  {http.StatusServiceUnavailable, ProblemUnavailable, ""},
	event.EINTERNAL:     {http.StatusInternalServerError, ProblemUnavailable, ""},
	ETOOLARGE:           {http.StatusRequestEntityTooLarge, ProblemTooLarge, ""},
	EBODYTIMEOUT:        {http.StatusRequestTimeout, ProblemTimeout, ""},
	ENOROUTE:            {http.StatusNotFound, ProblemNoRoute, ""},
	EMETHOD:             {http.StatusMethodNotAllowed, ProblemMethodNotAllowed, ""},
	EPANIC:              {http.StatusInternalServerError, ProblemInternal, ""},
}

// Titles overrides the problem title of some codes for one kind of route:
// a webhook is not an event ("Malformed webhook"), nor is an admin
// request ("Bad request").
type Titles map[string]string

// AdminTitles are the titles of the operator endpoints.
var AdminTitles = Titles{event.EINVALID: "Bad request"}

// codeOf returns err's code: the code of the *event.Error it wraps, else
// EUNAVAILABLE for a Resumable, else EINTERNAL.
func codeOf(err error) (string, *event.Error) {
	var e *event.Error
	if errors.As(err, &e) && e.Code != event.EINTERNAL {
		if _, known := kinds[e.Code]; known {
			return e.Code, e
		}
	}
	if r := (*Resumable)(nil); errors.As(err, &r) {
		return event.EUNAVAILABLE, &event.Error{Code: event.EUNAVAILABLE, Message: r.Detail, Err: r.Err}
	}
	if e != nil && e.Code == event.EINTERNAL {
		return event.EINTERNAL, e
	}
	return event.EINTERNAL, nil
}

// StatusOf returns the HTTP status answering err: the status of its code
// (see event's codes), 503 for an internal fault that is transient
// (database, network, a deadline), 500 for any other.
func StatusOf(err error) int {
	code, _ := codeOf(err)
	if code == event.EINTERNAL && transient(err) {
		return http.StatusServiceUnavailable
	}
	return kinds[code].status
}

// ProblemOf returns the problem answering err: status (StatusOf) and type
// from its code; title from titles, else the code's; field its field. The
// detail of a 4xx is err's text; a 5xx shows the coded error's message
// only, never its cause (an error without a code shows a fixed text).
// An invalid field is listed in invalid-params too.
func ProblemOf(err error, titles Titles) Problem {
	code, e := codeOf(err)
	k := kinds[code]
	p := Problem{Type: k.typ, Title: k.title, Status: StatusOf(err)}
	if t, ok := titles[code]; ok {
		p.Title = t
	}
	switch {
	case p.Status < 500:
		p.Detail = err.Error()
	case e != nil:
		p.Detail = e.Detail()
	default:
		p.Detail = internalDetail
	}
	if e != nil {
		p.Field = e.Field
	}
	if code == event.EINVALID && p.Field != "" {
		p.InvalidParams = []InvalidParam{{Name: p.Field, Reason: p.Detail}}
	}
	return p
}

// WriteError answers err as problem+json (ProblemOf) and returns the
// status. Every error answer of every route goes through it: CloudEvents,
// webhooks and admin endpoints map codes to statuses the same way. When w
// is a route's logged writer (Logged), err goes to its log line.
func WriteError(w http.ResponseWriter, err error, titles Titles) int {
	p := ProblemOf(err, titles)
	LogError(w, err)
	writeProblem(w, p)
	return p.Status
}

// writeProblem writes p as application/problem+json.
func writeProblem(w http.ResponseWriter, p Problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	var body bytes.Buffer
	_ = json.NewEncoder(&body).Encode(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Content-Length", strconv.Itoa(body.Len())) // what net/http would set, known before the handler returns (SendNow)
	w.WriteHeader(p.Status)
	_, _ = w.Write(body.Bytes())
}

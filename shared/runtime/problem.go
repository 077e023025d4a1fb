package runtime

import (
	"encoding/json"
	"net/http"
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

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p Problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Invalid writes a 400 problem naming field.
func writeInvalid(w http.ResponseWriter, field, detail string) {
	p := Problem{Type: ProblemInvalid, Title: "Malformed event", Status: http.StatusBadRequest, Detail: detail, Field: field}
	if field != "" {
		p.InvalidParams = []InvalidParam{{Name: field, Reason: detail}}
	}
	WriteProblem(w, p)
}

package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qinqing/qinqing/shared/event"
)

// The one mapping of error codes to answers: every code, its status,
// problem type and default title. A code added to kinds without a row
// here fails the test.
func TestErrorCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code   string
		status int
		typ    string
		title  string
	}{
		{event.EINVALID, 400, "urn:qinqing:problem:invalid-event", "Malformed event"},
		{event.EUNAUTHORIZED, 401, "urn:qinqing:problem:unauthorized", "Unauthorized"},
		{event.EFORBIDDEN, 403, "urn:qinqing:problem:forbidden", "Forbidden"},
		{event.ENOTFOUND, 404, "urn:qinqing:problem:not-found", "Not Found"},
		{event.EREFUSED, 502, "urn:qinqing:problem:sink-refused", "Bad Gateway"},
		{event.EUNAVAILABLE, 503, "urn:qinqing:problem:temporarily-unavailable", "Service Unavailable"},
		{event.EINTERNAL, 500, "urn:qinqing:problem:temporarily-unavailable", "Internal Server Error"},
		{ETOOLARGE, 413, "urn:qinqing:problem:body-too-large", "Request Entity Too Large"},
		{EBODYTIMEOUT, 408, "urn:qinqing:problem:body-timeout", "Request Timeout"},
		{ENOROUTE, 404, "urn:qinqing:problem:no-route", "Not Found"},
		{EMETHOD, 405, "urn:qinqing:problem:method-not-allowed", "Method Not Allowed"},
		{EPANIC, 500, "urn:qinqing:problem:internal", "Internal Server Error"},
	}
	if len(cases) != len(kinds) {
		t.Fatalf("%d codes tested, %d mapped: every code needs a row", len(cases), len(kinds))
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			err := event.Errorf(tc.code, "", "something about it")
			if got := StatusOf(err); got != tc.status {
				t.Errorf("StatusOf = %d, want %d", got, tc.status)
			}
			rec := httptest.NewRecorder()
			if got := WriteError(rec, err, nil); got != tc.status {
				t.Errorf("WriteError = %d, want %d", got, tc.status)
			}
			p := decodeProblem(t, rec, tc.status)
			if p.Type != tc.typ || p.Title != tc.title || p.Status != tc.status || p.Detail != "something about it" {
				t.Errorf("problem = %+v, want type %s, title %q, detail %q", p, tc.typ, tc.title, "something about it")
			}
		})
	}
}

// Errors without a code, transient faults, resumable failures, wrapped
// coded errors, fields and title overrides.
func TestProblemOf(t *testing.T) {
	t.Parallel()
	unavailable := ProblemUnavailable
	cases := []struct {
		name   string
		err    error
		titles Titles
		want   Problem
	}{
		{"Uncoded", errors.New("pq: relation missing"), nil,
			Problem{Type: unavailable, Status: 500, Detail: internalDetail}},
		{"UncodedTransient", fmt.Errorf("begin: %w", context.DeadlineExceeded), nil,
			Problem{Type: unavailable, Status: 503, Detail: internalDetail}},
		{"InternalShowsMessageNotCause", &event.Error{Code: event.EINTERNAL, Message: "could not encode", Err: errors.New("secret cause")}, nil,
			Problem{Type: unavailable, Status: 500, Detail: "could not encode"}},
		{"UnavailableShowsMessageNotCause", event.Unavailable(errors.New("dial tcp: refused"), "retry later"), nil,
			Problem{Type: unavailable, Status: 503, Detail: "retry later"}},
		{"Resumable", &Resumable{Detail: "rows 2–9 stored; a retry resumes", Err: errors.New("s3 down")}, nil,
			Problem{Type: unavailable, Status: 503, Detail: "rows 2–9 stored; a retry resumes"}},
		{"WrappedInvalid", fmt.Errorf("decode: %w", event.Invalid("enterprise.uscc", "not a USCC")), nil,
			Problem{Type: ProblemInvalid, Title: "Malformed event", Status: 400, Detail: "decode: enterprise.uscc: not a USCC",
				Field: "enterprise.uscc", InvalidParams: []InvalidParam{{"enterprise.uscc", "decode: enterprise.uscc: not a USCC"}}}},
		{"WholeMessage", event.Errorf(event.EINVALID, "type", "type is required"), AdminTitles,
			Problem{Type: ProblemInvalid, Title: "Bad request", Status: 400, Detail: "type is required",
				Field: "type", InvalidParams: []InvalidParam{{"type", "type is required"}}}},
		{"FieldWithoutParams", event.Errorf(event.EFORBIDDEN, "type", "type %q is not allowed", "x"), Titles{event.EFORBIDDEN: "Not for you"},
			Problem{Type: ProblemForbidden, Title: "Not for you", Status: 403, Detail: `type "x" is not allowed`, Field: "type"}},
		{"UnknownCodeIsInternal", &event.Error{Code: "bogus", Message: "do not show"}, nil,
			Problem{Type: unavailable, Status: 500, Detail: internalDetail}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ProblemOf(tc.err, tc.titles)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("ProblemOf(%v) =\n %+v\nwant\n %+v", tc.err, got, tc.want)
			}
			if got.Status != StatusOf(tc.err) {
				t.Errorf("ProblemOf status %d, StatusOf %d", got.Status, StatusOf(tc.err))
			}
		})
	}
}

// A route under Logged logs one line per request; a 5xx carries the
// error (with its cause), a 4xx does not.
func TestLoggedOneLinePerRequest(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	h := Logged(zap.New(core).Sugar(), "probe", func(w http.ResponseWriter, r *http.Request) {
		LogFields(w, "case", r.URL.Query().Get("case"))
		switch r.URL.Query().Get("case") {
		case "bad":
			WriteError(w, event.Invalid("x", "bad"), nil)
		case "down":
			WriteError(w, event.Unavailable(errors.New("dial refused"), "retry later"), nil)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	for _, c := range []string{"ok", "bad", "down"} {
		h(httptest.NewRecorder(), httptest.NewRequest("GET", "/probe?case="+c, nil))
	}
	entries := logs.All()
	if len(entries) != 3 {
		t.Fatalf("%d log lines, want 3: %v", len(entries), entries)
	}
	want := []struct {
		status int64
		level  zapcore.Level
		err    string
	}{{204, zapcore.InfoLevel, ""}, {400, zapcore.InfoLevel, ""}, {503, zapcore.ErrorLevel, "retry later: dial refused"}}
	for i, e := range entries {
		m := e.ContextMap()
		if e.Message != "probe" || m["status"] != want[i].status || e.Level != want[i].level || m["path"] != "/probe" {
			t.Errorf("line %d = %s %v %v, want probe status %d at %v", i, e.Message, e.Level, m, want[i].status, want[i].level)
		}
		if got, _ := m["error"].(string); got != want[i].err {
			t.Errorf("line %d error = %q, want %q", i, got, want[i].err)
		}
		if _, ok := m["case"]; !ok {
			t.Errorf("line %d lacks the route's field: %v", i, m)
		}
	}
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder, status int) Problem {
	t.Helper()
	if rec.Code != status || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("answer %d %q, want %d application/problem+json", rec.Code, rec.Header().Get("Content-Type"), status)
	}
	var p Problem
	if err := json.NewDecoder(strings.NewReader(rec.Body.String())).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// No function answers an error past the layer: no http.Error, no literal
// 4xx or 5xx WriteHeader in a function's code (runtime.WriteError, or
// ProblemOf for a wire format of its own, is the way).
func TestFunctionsAnswerErrorsThroughWriteError(t *testing.T) {
	t.Parallel()
	bad := regexp.MustCompile(`http\.Error\(|WriteHeader\(http\.Status(BadRequest|Unauthorized|Forbidden|NotFound|Conflict|RequestEntityTooLarge|InternalServerError|BadGateway|ServiceUnavailable)`)
	files, err := filepath.Glob("../../functions/*/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no function sources found (%v)", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if bad.MatchString(line) {
				t.Errorf("%s:%d answers an error past runtime.WriteError: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

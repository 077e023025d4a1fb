// Package event holds what every qinqing function shares about events: the
// coded domain error, and validation helpers for the common payload parts
// (USCC, counties, documents). The event types and their payloads are in
// shared/contract.
package event

import (
	"errors"
	"fmt"
)

// Error codes of the domain, in the manner of benbjohnson/wtf. The runtime
// maps each to its HTTP status and problem type in one place
// (runtime.StatusOf, runtime.WriteError): EINVALID → 400, EUNAUTHORIZED →
// 401, EFORBIDDEN → 403, ENOTFOUND → 404, EREFUSED → 502, EUNAVAILABLE →
// 503, EINTERNAL (and an error without a code) → 500, or 503 when the
// fault is transient.
const (
	EINVALID      = "invalid"      // the event or request itself is malformed
	EUNAUTHORIZED = "unauthorized" // no credentials, or credentials that do not verify
	EFORBIDDEN    = "forbidden"    // the caller is known but may not do this
	ENOTFOUND     = "not_found"    // a resource named by a request does not exist
	EREFUSED      = "refused"      // the event sink refused what was handed on to it
	EUNAVAILABLE  = "unavailable"  // a dependency is down or not configured: retry later
	EINTERNAL     = "internal"
)

// Error is the coded error of the domain. Field names the offending JSON
// field (dotted path, e.g. "enterprise.uscc") when there is one. Message
// is what the caller is told; Err, when set, is the cause behind it, for
// the log line only (a 5xx never shows its cause).
type Error struct {
	Code    string
	Field   string
	Message string
	Err     error
	// whole: Message names its field itself (Errorf), so it is not
	// prefixed with it.
	whole bool
}

// Error returns "field: message" (the message alone when there is no
// field, or when it names the field itself: Errorf), then ": cause" when
// there is a cause.
func (e *Error) Error() string {
	s := e.Detail()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Detail is what the caller is told: Error without the cause.
func (e *Error) Detail() string {
	if e.Field != "" && !e.whole {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns a coded error whose message is whole: it names its
// field itself ("type is required", "could not read request body"), and
// field ("" for none) only tells the caller which one it is.
func Errorf(code, field, format string, args ...any) error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...), whole: true}
}

// Invalid reports malformed input in the named field.
func Invalid(field, format string, args ...any) error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound reports that something named in a request does not exist.
func NotFound(format string, args ...any) error {
	return &Error{Code: ENOTFOUND, Message: fmt.Sprintf(format, args...)}
}

// Unavailable reports a fault a retry may get past: message is what the
// caller is told (nothing of cause), cause what the log line says.
func Unavailable(cause error, format string, args ...any) error {
	return &Error{Code: EUNAVAILABLE, Message: fmt.Sprintf(format, args...), Err: cause}
}

// ErrorCode returns the code of err, EINTERNAL for errors that carry none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// Prefix returns err with field prefixed by p ("problems[2]" + "title"),
// so nested validators can report full paths. Other errors pass through.
func Prefix(p string, err error) error {
	var e *Error
	if err == nil || !errors.As(err, &e) {
		return err
	}
	f := p
	if e.Field != "" {
		if e.Field[0] == '[' {
			f = p + e.Field
		} else {
			f = p + "." + e.Field
		}
	}
	return &Error{Code: e.Code, Field: f, Message: e.Message, Err: e.Err, whole: e.whole}
}

// Package event holds what every qinqing function shares about events: the
// catalogue of event types, the coded domain error, and validation helpers
// for the common payload parts (USCC, counties, documents).
package event

import (
	"errors"
	"fmt"
)

// Error codes of the domain, in the manner of benbjohnson/wtf. The runtime
// maps them to HTTP outcomes in one place: EINVALID → 400, anything else → 5xx.
const (
	EINVALID  = "invalid"   // the event itself is malformed
	ENOTFOUND = "not_found" // a resource named by an admin request does not exist
	ECONFLICT = "conflict"
	EINTERNAL = "internal"
)

// Error is the coded error of the domain. Field names the offending JSON
// field (dotted path, e.g. "enterprise.uscc") when there is one.
type Error struct {
	Code    string
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// Invalid reports malformed input in the named field.
func Invalid(field, format string, args ...any) error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound reports that something named in a request does not exist.
func NotFound(format string, args ...any) error {
	return &Error{Code: ENOTFOUND, Message: fmt.Sprintf(format, args...)}
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
	return &Error{Code: e.Code, Field: f, Message: e.Message}
}

package runtime

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/event"
)

// AdminOnly wraps an operator endpoint with the bearer-token check and
// its log line (Logged, message "admin"). The token is "Authorization:
// Bearer <token>", compared in constant time (both hashed first, so not
// even the length is compared early); anything else is a 401 problem with
// a WWW-Authenticate header naming realm.
func AdminOnly(log *zap.SugaredLogger, token, realm string, h http.HandlerFunc) http.HandlerFunc {
	want := sha256.Sum256([]byte(token))
	return Logged(log, "admin", func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
			WriteError(w, event.Errorf(event.EUNAUTHORIZED, "", "missing or wrong bearer token: send Authorization: Bearer <ADMIN_TOKEN>"), nil)
			return
		}
		h(w, r)
	})
}

// Logged gives a route other than POST / (whose events the server logs
// itself) one log line per request, message msg: method, path, status,
// ms, the fields the route added with LogFields, and for a 5xx the error
// it answered with WriteError.
func Logged(log *zap.SugaredLogger, msg string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		lw := &loggedWriter{ResponseWriter: w}
		h(lw, r)
		SendNow(lw)
		lw.log(log, msg, r, start) // after a panic, guard's line is the request's line
	}
}

// LogFields adds key-value pairs to the log line of the request w answers,
// when its route has one (Logged).
func LogFields(w http.ResponseWriter, kv ...any) {
	if lw, ok := w.(*loggedWriter); ok {
		lw.fields = append(lw.fields, kv...)
	}
}

// loggedWriter records what a route answered for its one log line.
type loggedWriter struct {
	http.ResponseWriter
	status int
	err    error
	fields []any
}

func (w *loggedWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *loggedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *loggedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// log writes the request's line (logAnswer).
func (w *loggedWriter) log(log *zap.SugaredLogger, msg string, r *http.Request, start time.Time) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	fields := []zap.Field{zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", status),
		zap.Float64("ms", float64(time.Since(start).Microseconds())/1000)}
	for i := 0; i+1 < len(w.fields); i += 2 {
		key, _ := w.fields[i].(string)
		fields = append(fields, zap.Any(key, w.fields[i+1]))
	}
	logAnswer(log.Desugar(), msg, status, w.err, fields)
}

// logAnswer writes one request's line: a 5xx at Warn, with the error
// behind it (its cause included) at Error; anything else at Info. The
// error of a 4xx is the caller's own and stays out of the log. The
// fields are typed: a sugared logger's key-value pairs would be
// converted to them on every request.
func logAnswer(log *zap.Logger, msg string, status int, err error, fields []zap.Field) {
	switch {
	case status >= 500 && err != nil:
		log.Error(msg, append(fields, zap.String("error", err.Error()))...)
	case status >= 500:
		log.Warn(msg, fields...)
	default:
		log.Info(msg, fields...)
	}
}

// LogError hands err to the log line of the request w answers (Logged),
// for a route that answers errors in a wire format of its own (Open311)
// instead of with WriteError.
func LogError(w http.ResponseWriter, err error) {
	if lw, ok := w.(*loggedWriter); ok {
		lw.err = err
	}
}

package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/telemetry"
)

// Panics counts the panics recovered in HTTP routes since the process
// started (each answered 500 and logged once with its stack).
var Panics atomic.Int64

// guard bounds and protects every request before the routes see it:
//   - the body must arrive within base.BodyReadTimeout (else ReadBody
//     answers 408);
//   - the request's context has base.RequestTimeout as its deadline, so a
//     stalled database or S3 ends in 503 with the transaction rolled back;
//   - a panic in a route is answered 500 problem+json, logged once with its
//     stack and counted in Panics and the qinqing_panics_total metric; the transaction it ran in was rolled
//     back by postgres.InTx.
func guard(h http.Handler, base Base, log *zap.SugaredLogger, function string) http.Handler {
	log = log.Desugar().WithOptions(zap.AddStacktrace(zapcore.FatalLevel)).Sugar() // the stack is a field
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if base.RequestTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, base.RequestTimeout)
			defer cancel()
		}
		// A copy: net/http inspects the original request's Body afterwards
		// to decide whether to discard what is left of it.
		r = r.WithContext(ctx)
		if base.BodyReadTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(base.BodyReadTimeout)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		rw := &trackingWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			Panics.Add(1)
			telemetry.Current().Instruments().Panic(ctx, function, "") // no type label: the header is the sender's
			log.Errorw("panic", "panic", fmt.Sprint(v), "method", r.Method, "path", r.URL.Path,
				"ce_id", r.Header.Get("Ce-Id"), "stack", string(debug.Stack()))
			if !rw.wrote {
				WriteError(w, &event.Error{Code: EPANIC, Message: "an internal error stopped the request; its transaction was rolled back"}, nil)
			}
		}()
		h.ServeHTTP(rw, r)
	})
}

// limits is base with the request timeout resolved: REQUEST_TIMEOUT, else
// the function's default, else DefaultRequestTimeout.
func limits(base Base, fn *Function) Base {
	if base.RequestTimeout <= 0 {
		base.RequestTimeout = fn.RequestTimeout
	}
	if base.RequestTimeout <= 0 {
		base.RequestTimeout = DefaultRequestTimeout
	}
	return base
}

// deadlineBody clears the connection's read deadline once the whole body
// has been read: net/http then watches the idle connection with a background
// read, and a deadline firing there would cancel the request's context.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done { // after a timeout the deadline stays: net/http must not wait for the rest
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// bodyTimedOut reports whether err is the body read deadline expiring.
func bodyTimedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// trackingWriter records whether the response has been started, so a
// recovered panic does not write a second status line.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

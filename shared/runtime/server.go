package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"knative.dev/pkg/logging"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
)

// MaxBodyBytes is the largest request body accepted (contract: 1 MiB → 413).
const MaxBodyBytes = 1 << 20

// Function is what a function is to the runtime: its name, the handler
// for each CloudEvents type it consumes, and optional extra HTTP routes
// (admin endpoints). With no Handlers, POST / is left to Routes.
type Function struct {
	Name     string
	Handlers map[string]Handler
	Routes   func(mux *http.ServeMux)
	// RequestTimeout is the function's default REQUEST_TIMEOUT (0: the
	// runtime's DefaultRequestTimeout).
	RequestTimeout time.Duration
}

// Server is the HTTP side of a function.
type Server struct {
	fn   *Function
	pool *pgxpool.Pool
	log  *zap.SugaredLogger
	mux  *http.ServeMux
	now  func() time.Time
}

// NewServer wires fn to the database. pool may be nil for functions
// without handlers (webhook-ingress).
func NewServer(fn *Function, pool *pgxpool.Pool, log *zap.SugaredLogger) *Server {
	s := &Server{fn: fn, pool: pool, log: log, mux: http.NewServeMux(), now: time.Now}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	if len(fn.Handlers) > 0 {
		s.mux.HandleFunc("POST /{$}", s.receive)
	}
	if fn.Routes != nil {
		fn.Routes(s.mux)
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ReadBody reads at most MaxBodyBytes of r's body, answering 413 itself
// when it is larger and 408 when it stalls past BODY_READ_TIMEOUT (ok
// false then).
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, status := readBody(w, r)
	return body, status == 0
}

// readBody is ReadBody reporting the status it answered (0: none, the
// body was read).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, int) {
	var body []byte
	var err error
	if r.ContentLength > MaxBodyBytes { // declared too large: refused before a byte is read
		err = &http.MaxBytesError{Limit: MaxBodyBytes}
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			WriteProblem(w, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
				Detail: fmt.Sprintf("request body is over %d bytes", MaxBodyBytes)})
			return nil, http.StatusRequestEntityTooLarge
		}
		if bodyTimedOut(err) {
			WriteProblem(w, Problem{Type: ProblemTimeout, Status: http.StatusRequestTimeout,
				Detail: "the request body did not arrive in time"})
			return nil, http.StatusRequestTimeout
		}
		writeInvalid(w, "", "could not read request body: "+err.Error())
		return nil, http.StatusBadRequest
	}
	return body, 0
}

// ParseEvent reads a CloudEvent in binary or structured mode from a
// request whose body has been read into body.
func ParseEvent(ctx context.Context, r *http.Request, body []byte) (*cloudevents.Event, error) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	ev, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		return nil, event.Invalid("", "not a CloudEvent: %v", err)
	}
	if err := ev.Validate(); err != nil {
		return nil, event.Invalid("", "invalid CloudEvent: %v", err)
	}
	return ev, nil
}

func isJSON(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// outcome of one receive, for the log line.
type outcome struct {
	status int
	result string
	reply  string // the reply's type, when there is one
}

// receive handles POST / and logs one line per event: its type, id and
// source, the outcome, the status, the reply type and the milliseconds.
func (s *Server) receive(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	var ev *cloudevents.Event
	out := s.serveEvent(ctx, w, r, &ev)
	fields := []any{"status", out.status, "outcome", out.result, "ms", float64(time.Since(start).Microseconds()) / 1000}
	if ev != nil {
		fields = append(fields, "type", ev.Type(), "id", ev.ID(), "source", ev.Source())
	} else if r.Header.Get("Ce-Id") != "" {
		// Binary mode names the event in headers even when the body was
		// refused (too large, not parseable).
		fields = append(fields, "type", r.Header.Get("Ce-Type"), "id", r.Header.Get("Ce-Id"), "source", r.Header.Get("Ce-Source"))
	}
	if out.reply != "" {
		fields = append(fields, "reply", out.reply)
	}
	if out.status >= 500 {
		s.log.Warnw("event", fields...)
	} else {
		s.log.Infow("event", fields...)
	}
}

func (s *Server) serveEvent(ctx context.Context, w http.ResponseWriter, r *http.Request, evp **cloudevents.Event) outcome {
	body, status := readBody(w, r)
	switch status {
	case 0:
	case http.StatusRequestEntityTooLarge:
		return outcome{status: status, result: "too_large"}
	case http.StatusRequestTimeout:
		return outcome{status: status, result: "body_timeout"}
	default:
		return outcome{status: status, result: "invalid"}
	}
	ev, err := ParseEvent(ctx, r, body)
	if err != nil {
		writeInvalid(w, "", err.Error())
		return outcome{status: http.StatusBadRequest, result: "invalid"}
	}
	*evp = ev
	h, ok := s.fn.Handlers[ev.Type()]
	if !ok {
		types := make([]string, 0, len(s.fn.Handlers))
		for t := range s.fn.Handlers {
			types = append(types, t)
		}
		sort.Strings(types)
		writeInvalid(w, "type", fmt.Sprintf("type %q is not handled by %s (handles %s)", ev.Type(), s.fn.Name, strings.Join(types, ", ")))
		return outcome{status: http.StatusBadRequest, result: "invalid"}
	}
	if !isJSON(ev.DataContentType()) {
		writeInvalid(w, "datacontenttype", fmt.Sprintf("datacontenttype must be application/json, got %q", ev.DataContentType()))
		return outcome{status: http.StatusBadRequest, result: "invalid"}
	}
	m := Meta{ID: ev.ID(), Source: ev.Source(), Type: ev.Type(), Subject: ev.Subject(), Time: ev.Time(), HasTime: !ev.Time().IsZero(), Function: s.fn.Name}
	if !m.HasTime {
		m.Time = s.now()
	}
	ctx = logging.WithLogger(ctx, s.log.With("type", m.Type, "id", m.ID, "source", m.Source))
	run, err := s.prepare(ctx, h, m, ev.Data())
	if err != nil {
		return s.fail(w, err)
	}
	reply, dup, err := s.handle(ctx, m, run)
	if err != nil {
		return s.fail(w, err)
	}
	if err := cehttp.WriteResponseWriter(ctx, binding.ToMessage(reply), http.StatusOK, w); err != nil {
		s.log.Errorw("write reply", "error", err)
	}
	if dup {
		return outcome{http.StatusOK, "redelivery", reply.Type()}
	}
	return outcome{http.StatusOK, "handled", reply.Type()}
}

// fail maps an error to its HTTP outcome: the one place that does.
func (s *Server) fail(w http.ResponseWriter, err error) outcome {
	var e *event.Error
	if errors.As(err, &e) && e.Code == event.EINVALID {
		writeInvalid(w, e.Field, err.Error())
		return outcome{status: http.StatusBadRequest, result: "invalid"}
	}
	if r := (*Resumable)(nil); errors.As(err, &r) {
		return s.failResumable(w, r)
	}
	status := http.StatusInternalServerError
	if transient(err) {
		status = http.StatusServiceUnavailable
	}
	s.log.Errorw("handle event", "error", err)
	WriteProblem(w, Problem{Type: ProblemUnavailable, Status: status,
		Detail: "a transient fault stopped the event from being handled; nothing was written, retry later"})
	return outcome{status: status, result: "error"}
}

// transient reports faults of the database or network (503 rather than 500),
// including a statement or lock timeout and a request past its deadline.
func transient(err error) bool {
	var ne net.Error
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57014", "55P03", "40001", "40P01": // statement timeout, lock timeout, serialization failure, deadlock
			return true
		}
	}
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// handle runs one event in one transaction: inbox insert (a conflict means
// a redelivery: answer the stored reply), the handler, the outbox rows and
// the stored reply, committed together. A concurrent second delivery
// waits on the inbox's unique index until the first commits, then sees the
// conflict.
func (s *Server) handle(ctx context.Context, m Meta, run Run) (*cloudevents.Event, bool, error) {
	var reply *cloudevents.Event
	var dup bool
	var afterCommit func()
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		dup, afterCommit = false, nil
		var receivedAt time.Time
		err := tx.QueryRow(ctx, `INSERT INTO qinqing.inbox (function, source, id, type) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING RETURNING received_at`, m.Function, m.Source, m.ID, m.Type).Scan(&receivedAt)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("inbox: %w", err)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			dup = true
			var id, typ, subject string
			var data []byte
			var at time.Time
			if err := tx.QueryRow(ctx, `SELECT reply_id, reply_type, coalesce(reply_subject, ''), reply_data::text, received_at
				FROM qinqing.inbox WHERE function = $1 AND source = $2 AND id = $3`,
				m.Function, m.Source, m.ID).Scan(&id, &typ, &subject, &data, &at); err != nil {
				return fmt.Errorf("inbox reply: %w", err)
			}
			reply = newEvent(id, SourceOf(m.Function), typ, subject, at, data)
			return nil
		}
		res, err := run(ctx, tx)
		if err != nil {
			return err
		}
		afterCommit = res.AfterCommit
		if res.Reply.Type == "" {
			return fmt.Errorf("handler for %s returned no reply", m.Type)
		}
		data, err := json.Marshal(res.Reply.Data)
		if err != nil {
			return fmt.Errorf("encode reply: %w", err)
		}
		rid := replyID(m)
		b := &pgx.Batch{}
		if err := queueOutbox(b, m, res.FollowUps); err != nil {
			return err
		}
		b.Queue(`UPDATE qinqing.inbox SET reply_id = $4, reply_type = $5, reply_data = $6, reply_subject = NULLIF($7, '')
			WHERE function = $1 AND source = $2 AND id = $3`, m.Function, m.Source, m.ID, rid, res.Reply.Type, string(data), res.Reply.Subject)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("outbox and reply: %w", err)
		}
		reply = newEvent(rid, SourceOf(m.Function), res.Reply.Type, res.Reply.Subject, receivedAt, data)
		return nil
	})
	if err == nil && afterCommit != nil {
		afterCommit()
	}
	return reply, dup, err
}

// queueOutbox adds the follow-ups (and a NOTIFY waking the relays) to b.
// A follow-up's time is the handled event's time: when its occurrence
// happened.
func queueOutbox(b *pgx.Batch, m Meta, fs []Outgoing) error {
	for i, f := range fs {
		data, err := json.Marshal(f.Data)
		if err != nil {
			return fmt.Errorf("encode follow-up %s: %w", f.Type, err)
		}
		b.Queue(`INSERT INTO qinqing.outbox (id, producer, source, type, subject, data, event_time)
			VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7)
			ON CONFLICT (id) DO NOTHING`, followUpID(m, f, i), m.Function, SourceOf(m.Function), f.Type, f.Subject, string(data), m.Time)
	}
	if len(fs) > 0 {
		b.Queue(`SELECT pg_notify('qinqing_outbox', '')`)
	}
	return nil
}

func newEvent(id, source, typ, subject string, t time.Time, data []byte) *cloudevents.Event {
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetSource(source)
	ev.SetType(typ)
	if subject != "" {
		ev.SetSubject(subject)
	}
	ev.SetTime(t.UTC())
	_ = ev.SetData(cloudevents.ApplicationJSON, data)
	return &ev
}

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
	ceevent "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/telemetry"
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
	line *zap.Logger // log, unsugared, for the line per event
	mux  *http.ServeMux
	now  func() time.Time
	warm <-chan struct{} // when set, events wait for it before taking a connection
	// inboxSQL is the inbox insert with the pool's transaction settings.
	inboxSQL string
	tel      *telemetry.Telemetry
	// turns queues the decisions with a Serial.
	turns turns
}

// NewServer wires fn to the database and to the process's telemetry
// (telemetry.Current). pool may be nil for functions without handlers
// (webhook-ingress). GET /metrics exists when METRICS_PROMETHEUS is on.
func NewServer(fn *Function, pool *pgxpool.Pool, log *zap.SugaredLogger) *Server {
	s := &Server{fn: fn, pool: pool, log: log, line: log.Desugar(), mux: http.NewServeMux(), now: time.Now,
		inboxSQL: inboxInsertWith(postgres.Settings(pool)), tel: telemetry.Current()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	if h := s.tel.PrometheusHandler(); h != nil {
		s.mux.Handle("GET /metrics", h)
	}
	if len(fn.Handlers) > 0 {
		s.mux.HandleFunc("POST /{$}", s.receive)
	}
	if fn.Routes != nil {
		fn.Routes(s.mux)
	}
	return s
}

// ServeHTTP implements http.Handler. A request no route matches gets the
// mux's 404 or 405 (with its Allow header) as problem+json, not Go's
// text/plain.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/" && len(s.fn.Handlers) > 0 {
		s.receive(w, r) // the event path, without matching it twice
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		// Served by the mux itself, which sets the path values
		// (r.PathValue) that Handler leaves out.
		s.mux.ServeHTTP(w, r)
		return
	}
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if allow := rec.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	switch rec.status {
	case http.StatusMethodNotAllowed:
		WriteError(w, event.Errorf(EMETHOD, "", "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")), nil)
	case http.StatusNotFound, 0:
		WriteError(w, event.Errorf(ENOROUTE, "", "no route for %s %s", r.Method, r.URL.Path), nil)
	default:
		// The mux answers 404, 405 or a redirect (301/307 to a cleaned
		// path); a redirect is passed on as it was.
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	}
}

// statusRecorder captures what the mux's own handlers (not found, method
// not allowed, redirect) write, so ServeHTTP can answer problem+json.
type statusRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *statusRecorder) Header() http.Header { return r.header }
func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// ReadBody reads at most MaxBodyBytes of r's body. Its error is coded for
// WriteError: 413 when the body is larger, 408 when it stalls past
// BODY_READ_TIMEOUT, 400 (field body) when it breaks off.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var body []byte
	var err error
	if r.ContentLength > MaxBodyBytes { // declared too large: refused before a byte is read
		err = &http.MaxBytesError{Limit: MaxBodyBytes}
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return body, nil
	case errors.As(err, &mbe):
		return nil, event.Errorf(ETOOLARGE, "", "request body is over %d bytes", MaxBodyBytes)
	case bodyTimedOut(err):
		return nil, event.Errorf(EBODYTIMEOUT, "", "the request body did not arrive in time")
	}
	return nil, event.Errorf(event.EINVALID, "body", "could not read request body: %v", err)
}

// ParseEvent reads a CloudEvent in binary or structured mode from a
// request whose body has been read into body. Its errors are EINVALID
// naming the attribute at fault ("id", "source", "specversion", "type",
// …; "body" for a structured event that is not JSON).
func ParseEvent(ctx context.Context, r *http.Request, body []byte) (*cloudevents.Event, error) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	ev, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		return nil, attributeError("not a CloudEvent", err)
	}
	if err := ev.Validate(); err != nil {
		return nil, attributeError("invalid CloudEvent", err)
	}
	return ev, nil
}

// attributeError turns an sdk-go error into an EINVALID naming the
// attribute: a ValidationError names it (the first in order when there are
// several), a request that is neither binary nor structured mode lacks
// specversion, anything else is the body.
func attributeError(what string, err error) error {
	var ve ceevent.ValidationError
	if errors.As(err, &ve) && len(ve) > 0 {
		names := make([]string, 0, len(ve))
		for k := range ve {
			names = append(names, k)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for i, k := range names {
			parts[i] = k + ": " + ve[k].Error()
		}
		return event.Invalid(names[0], "%s: %s", what, strings.Join(parts, "; "))
	}
	if errors.Is(err, binding.ErrUnknownEncoding) {
		return event.Invalid("specversion", "%s: no ce-specversion header and not application/cloudevents+json", what)
	}
	return event.Invalid("body", "%s: %v", what, err)
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
	err    error  // what a 5xx was answered for
}

// receive handles POST / and logs one line per event: its type, id and
// source, the outcome, the status, the reply type and the milliseconds.
func (s *Server) receive(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	rc := received{start: start}
	out := s.serveEvent(ctx, w, r, &rc)
	ev := rc.ev
	elapsed := time.Since(start)
	// The span ends and the metrics count before the answer goes out, so
	// that whoever has the answer finds both; the log line is not the
	// sender's to wait for.
	s.record(ctx, r, &rc, out, elapsed)
	SendNow(w)
	fields := append(make([]zap.Field, 0, 8), zap.Int("status", out.status), zap.String("outcome", out.result),
		zap.Float64("ms", float64(elapsed.Microseconds())/1000))
	if ev != nil {
		fields = append(fields, zap.String("type", ev.Type()), zap.String("id", ev.ID()), zap.String("source", ev.Source()))
	} else if r.Header.Get("Ce-Id") != "" {
		// Binary mode names the event in headers even when the body was
		// refused (too large, not parseable).
		fields = append(fields, zap.String("type", r.Header.Get("Ce-Type")), zap.String("id", r.Header.Get("Ce-Id")),
			zap.String("source", r.Header.Get("Ce-Source")))
	}
	if out.reply != "" {
		fields = append(fields, zap.String("reply", out.reply))
	}
	logAnswer(s.line, "event", out.status, out.err, fields)
}

// SendNow writes the answer buffered in w to the connection now, when its
// length is known (a reply event or a problem: both set Content-Length),
// instead of when the handler returns. What follows it is the function's
// log line (on a cold start the first one costs the most: its caller is
// looked up in tables not yet paged in), and the relay starts after the
// first request (Env.Served). An answer of unknown
// length is left to net/http, which would otherwise send it chunked.
func SendNow(w http.ResponseWriter) {
	if w.Header().Get("Content-Length") != "" {
		_ = http.NewResponseController(w).Flush()
	}
}

// received is what serveEvent learnt of the request: the event, once
// parsed, and its server span, once started.
type received struct {
	start time.Time
	ev    *cloudevents.Event
	span  trace.Span
}

// record ends the event's server span (starting one for a request that
// never became an event) and counts the event in the metrics.
func (s *Server) record(ctx context.Context, r *http.Request, rc *received, out outcome, elapsed time.Duration) {
	typ := ""
	if rc.ev != nil {
		typ = rc.ev.Type()
		if _, ok := s.fn.Handlers[typ]; !ok {
			typ = "other" // a label must not take any value a sender chooses
		}
	}
	if rc.span == nil {
		_, rc.span = s.tel.StartServer(telemetry.Incoming(ctx, r.Header, nil), "process "+s.fn.Name,
			rc.start, attribute.String(telemetry.AttrFunction, s.fn.Name))
	}
	telemetry.End(rc.span, out.result, out.status)
	s.tel.Instruments().Event(ctx, s.fn.Name, typ, out.result, out.status, elapsed.Seconds())
}

func (s *Server) serveEvent(ctx context.Context, w http.ResponseWriter, r *http.Request, rc *received) outcome {
	body, err := ReadBody(w, r)
	if err != nil {
		return s.fail(w, err) // outcome too_large, body_timeout or invalid: the code
	}
	ev, err := ParseEvent(ctx, r, body)
	if err != nil {
		return s.fail(w, err)
	}
	rc.ev = ev
	ctx, rc.span = s.tel.StartEvent(telemetry.Incoming(ctx, r.Header, ev), "process "+ev.Type(), rc.start, ev,
		attribute.String(telemetry.AttrFunction, s.fn.Name))
	h, ok := s.fn.Handlers[ev.Type()]
	if !ok {
		types := make([]string, 0, len(s.fn.Handlers))
		for t := range s.fn.Handlers {
			types = append(types, t)
		}
		sort.Strings(types)
		return s.fail(w, event.Errorf(event.EINVALID, "type", "type %q is not handled by %s (handles %s)", ev.Type(), s.fn.Name, strings.Join(types, ", ")))
	}
	if !isJSON(ev.DataContentType()) {
		return s.fail(w, event.Errorf(event.EINVALID, "datacontenttype", "datacontenttype must be application/json, got %q", ev.DataContentType()))
	}
	m := Meta{ID: ev.ID(), Source: ev.Source(), Type: ev.Type(), Subject: ev.Subject(), Time: ev.Time(), HasTime: !ev.Time().IsZero(), Function: s.fn.Name}
	if !m.HasTime {
		m.Time = s.now()
	}
	m.TraceParent, _ = telemetry.TraceParent(ctx)
	ctx = withEventLogger(ctx, s.log, m)
	var reply *cloudevents.Event
	var dup bool
	if dh, ok := h.(decisionHandler); ok {
		d, err := dh(ctx, m, ev.Data())
		if err != nil {
			return s.fail(w, err)
		}
		reply, dup, err = s.decide(ctx, m, d)
		if err != nil {
			return s.fail(w, err)
		}
	} else if rs, ok := h.(replyStaged); ok {
		reply, dup, err = s.handleReplyStaged(ctx, rs, m, ev.Data())
		if err != nil {
			return s.fail(w, err)
		}
	} else {
		run, queue, err := s.prepare(ctx, h, m, ev.Data())
		if err != nil {
			return s.fail(w, err)
		}
		reply, dup, err = s.handle(ctx, m, run, queue)
		if err != nil {
			return s.fail(w, err)
		}
	}
	telemetry.SetEventTrace(ctx, reply)
	if err := cehttp.WriteResponseWriter(ctx, binding.ToMessage(reply), http.StatusOK, w); err != nil {
		s.log.Errorw("write reply", "error", err)
	}
	if dup {
		return outcome{status: http.StatusOK, result: "redelivery", reply: reply.Type()}
	}
	return outcome{status: http.StatusOK, result: "handled", reply: reply.Type()}
}

// fail answers err (WriteError) and returns the outcome for the log
// line. An error without a code is a fault the event's sender cannot
// help: its answer says nothing was written and a retry may succeed.
func (s *Server) fail(w http.ResponseWriter, err error) outcome {
	code, e := codeOf(err)
	if e == nil {
		err = &event.Error{Code: event.EINTERNAL, Err: err,
			Message: "a transient fault stopped the event from being handled; nothing was written, retry later"}
	}
	status := WriteError(w, err, nil)
	if status >= 500 {
		return outcome{status: status, result: "error", err: err}
	}
	return outcome{status: status, result: code}
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

// inboxInsert claims the event: a conflict means a redelivery, or a second
// delivery that waited on the inbox's primary key until the first one
// committed.
const inboxInsert = `INSERT INTO qinqing.inbox (function, source, id, type, traceparent) VALUES ($1, $2, $3, $4, NULLIF($5, ''))
	ON CONFLICT DO NOTHING RETURNING received_at`

// inboxInsertWith is inboxInsert that first runs settings, the pool's
// set_config calls for the transaction's statement and lock timeouts
// (postgres.Settings): one statement for both. The settings row is read
// before the insert, so a wait on the inbox key already has the lock
// timeout.
func inboxInsertWith(settings string) string {
	if settings == "" {
		return inboxInsert
	}
	return `WITH settings AS MATERIALIZED (SELECT ` + settings + `)
	INSERT INTO qinqing.inbox (function, source, id, type, traceparent)
	SELECT $1::text, $2::text, $3::text, $4::text, NULLIF($5::text, '') FROM settings
	ON CONFLICT DO NOTHING RETURNING received_at`
}

// handle runs one event in one transaction in three round trips: BEGIN and
// the inbox insert (a conflict means a redelivery: answer the stored
// reply); the handler; the outbox rows, the stored reply and COMMIT (a
// handler built with OnDecision costs one: decide). With a Queue (queue
// not nil, run nil) its statements go in the first round trip, after the
// inbox insert, and the Run it returns is the handler. A concurrent second
// delivery waits on the inbox's primary key until the first commits, then
// sees the conflict. Whatever stops the transaction before its end (an
// error, a panic, a cancelled request) rolls it back on a context that is
// not cancelled.
func (s *Server) handle(ctx context.Context, m Meta, run Run, queue Queue) (reply *cloudevents.Event, dup bool, err error) {
	if s.warm != nil {
		select {
		case <-s.warm:
		case <-ctx.Done():
		}
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("begin: %w", err)
	}
	// Release hands the connection back only when it is outside a
	// transaction; one left in a transaction is closed instead.
	defer conn.Release()
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	var receivedAt time.Time
	claimed := false // the inbox insert was read, a row or none
	b.Queue(s.inboxSQL, m.Function, m.Source, m.ID, m.Type, m.TraceParent).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&receivedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			dup = true
			err = nil
		}
		claimed = err == nil
		return err
	})
	if queue != nil {
		run = queue(b)
	}
	br := conn.SendBatch(ctx, b)
	tx := br.Tx()
	ended := false
	defer func() {
		if !ended {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = tx.Rollback(rctx)
		}
	}()
	if err := br.Close(); err != nil && !dup {
		if claimed {
			return nil, false, err // a queued statement's
		}
		return nil, false, fmt.Errorf("inbox: %w", err)
	}
	if dup {
		// A redelivery writes nothing.
		reply, err := s.storedReply(ctx, conn.Conn(), m)
		ended = err == nil
		return reply, true, err
	}
	res, err := run(ctx, tx)
	if err != nil {
		return nil, false, err
	}
	data, err := replyData(m, res)
	if err != nil {
		return nil, false, err
	}
	rid := replyID(m)
	b = &pgx.Batch{}
	if err := queueOutbox(b, m, res.FollowUps); err != nil {
		return nil, false, err
	}
	b.Queue(`UPDATE qinqing.inbox SET reply_id = $4, reply_type = $5, reply_data = $6, reply_subject = NULLIF($7, '')
		WHERE function = $1 AND source = $2 AND id = $3`, m.Function, m.Source, m.ID, rid, res.Reply.Type, string(data), res.Reply.Subject)
	if err := commitBatch(ctx, tx, b); err != nil {
		return nil, false, fmt.Errorf("outbox, reply and commit: %w", err)
	}
	ended = true
	if res.AfterCommit != nil {
		res.AfterCommit()
	}
	return newEvent(rid, SourceOf(m.Function), res.Reply.Type, res.Reply.Subject, receivedAt, data), false, nil
}

// replyData is the JSON of res's reply, which every handled event has.
func replyData(m Meta, res Result) ([]byte, error) {
	if res.Reply.Type == "" {
		return nil, fmt.Errorf("handler for %s returned no reply", m.Type)
	}
	data, err := json.Marshal(res.Reply.Data)
	if err != nil {
		return nil, fmt.Errorf("encode reply: %w", err)
	}
	return data, nil
}

// storedReply ends the transaction of a redelivery and reads the reply
// stored with the event, in one round trip.
func (s *Server) storedReply(ctx context.Context, conn *pgx.Conn, m Meta) (*cloudevents.Event, error) {
	var reply *cloudevents.Event
	b := &pgx.Batch{}
	b.Queue("ROLLBACK")
	b.Queue(storedReplySQL, m.Function, m.Source, m.ID).QueryRow(func(row pgx.Row) (err error) {
		reply, err = scanStoredReply(row, m)
		return err
	})
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("inbox reply: %w", err)
	}
	return reply, nil
}

// storedReplySQL reads the reply stored with an event handled before.
const storedReplySQL = `SELECT reply_id, reply_type, coalesce(reply_subject, ''), reply_data::text, received_at
	FROM qinqing.inbox WHERE function = $1 AND source = $2 AND id = $3`

// scanStoredReply makes the reply event of a storedReplySQL row.
func scanStoredReply(row pgx.Row, m Meta) (*cloudevents.Event, error) {
	var id, typ, subject string
	var data []byte
	var at time.Time
	if err := row.Scan(&id, &typ, &subject, &data, &at); err != nil {
		return nil, err
	}
	return newEvent(id, SourceOf(m.Function), typ, subject, at, data), nil
}

// commitBatch sends b with COMMIT at its end, on tx's connection: the
// statements and the commit cost one round trip. An error in any of them
// skips the rest, COMMIT included, and leaves the transaction for the
// caller to roll back.
func commitBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	var tag pgconn.CommandTag
	b.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error { tag = ct; return nil })
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if tag.String() != "COMMIT" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// outboxInsert writes every follow-up of an event in one statement. A
// follow-up's time is the handled event's time: when its occurrence
// happened.
const outboxInsert = `INSERT INTO qinqing.outbox (id, producer, source, type, subject, data, event_time, traceparent)
	SELECT f.id, $1, $2, f.type, NULLIF(f.subject, ''), f.data::json, $3, NULLIF(f.traceparent, '')
	FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY AS f(id, type, subject, data, traceparent, n)
	ORDER BY f.n
	ON CONFLICT (id) DO NOTHING`

// queueOutbox adds the follow-ups, as one set-wise insert, and a NOTIFY
// waking the relays to b.
func queueOutbox(b *pgx.Batch, m Meta, fs []Outgoing) error {
	if len(fs) == 0 {
		return nil
	}
	ids, types, subjects, datas, traces, err := followUpArrays(m, fs)
	if err != nil {
		return err
	}
	b.Queue(outboxInsert, m.Function, SourceOf(m.Function), m.Time, ids, types, subjects, datas, traces)
	b.Queue(`SELECT pg_notify('qinqing_outbox', '')`)
	return nil
}

// followUpArrays are the columns of the follow-ups of the event m, for
// one set-wise outbox insert: their ids (followUpID), types, subjects,
// JSON data and traces (the event's, unless a follow-up continues its
// own).
func followUpArrays(m Meta, fs []Outgoing) (ids, types, subjects, datas, traces []string, err error) {
	ids, types, subjects, datas = make([]string, len(fs)), make([]string, len(fs)), make([]string, len(fs)), make([]string, len(fs))
	traces = make([]string, len(fs))
	for i, f := range fs {
		data, err := json.Marshal(f.Data)
		if err != nil {
			return nil, nil, nil, nil, nil, fmt.Errorf("encode follow-up %s: %w", f.Type, err)
		}
		ids[i], types[i], subjects[i], datas[i] = followUpID(m, f, i), f.Type, f.Subject, string(data)
		traces[i] = m.TraceParent
		if f.TraceParent != "" {
			traces[i] = f.TraceParent
		}
	}
	return ids, types, subjects, datas, traces, nil
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

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/contract/admin"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/telemetry"
)

const name = "dead-letter"

// Function keeps dead letters and serves the operator endpoints.
type Function struct {
	pool   *pgxpool.Pool
	sink   string
	client *http.Client
	log    *zap.SugaredLogger
}

// realm names the operator endpoints in a 401's WWW-Authenticate.
const realm = "qinqing-deadletters"

// New returns the function. POST / receives dead letters, from senders
// that senders admits when it is set (DEADLETTER_OIDC_*, oidc.go); the
// operator endpoints exist only when token (ADMIN_TOKEN) is set.
func New(env *runtime.Env, token string, client *http.Client, senders *verifier) *runtime.Function {
	f := &Function{pool: env.Pool, sink: env.Base.Sink, client: client, log: env.Log}
	return &runtime.Function{
		Name: name,
		Routes: func(mux *http.ServeMux) {
			mux.HandleFunc("POST /{$}", senders.admit(f.log, f.receive))
			if token != "" {
				mux.HandleFunc("GET /deadletters", runtime.AdminOnly(f.log, token, realm, f.list))
				mux.HandleFunc("POST /deadletters/{id}/replay", runtime.AdminOnly(f.log, token, realm, f.replay))
			}
		},
	}
}

// receive stores one dead-lettered event and answers 202; a redelivery is
// stored once. A database fault is a 503, so Knative retries.
//
// The dead letter keeps its trace: the event's traceparent extension is
// stored with the other extensions; an event that came with only the HTTP
// traceparent header gets the extension of this function's span (a child
// of that header), so a replay continues the same trace.
func (f *Function) receive(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	tel := telemetry.Current()
	var span trace.Span
	status, result := http.StatusAccepted, ""
	recorded := false
	record := func() { // the span and the metrics, once, before the answer goes out
		if recorded {
			return
		}
		recorded = true
		if span == nil {
			_, span = tel.StartServer(telemetry.Incoming(r.Context(), r.Header, nil), "dead letter", start)
		}
		telemetry.End(span, result, status)
		tel.Instruments().Event(r.Context(), name, "", result, status, time.Since(start).Seconds())
	}
	defer record()
	body, err := runtime.ReadBody(w, r)
	var ev *cloudevents.Event
	if err == nil {
		ev, err = runtime.ParseEvent(r.Context(), r, body)
	}
	if err != nil {
		status, result = runtime.WriteError(w, err, nil), event.ErrorCode(err) // too_large, body_timeout or invalid
		f.log.Infow("dead letter", "status", status, "outcome", result, "error", err)
		return
	}
	var ctx context.Context
	ctx, span = tel.StartEvent(telemetry.Incoming(r.Context(), r.Header, ev), "dead letter", start, ev)
	if _, ok := ev.Extensions()["traceparent"]; !ok {
		telemetry.SetEventTrace(ctx, ev)
	}
	d := FromEvent(ev)
	// Like the runtime's events, the first one waits for the connection
	// begun at start instead of opening a second one beside it.
	_ = postgres.WarmUp(ctx, f.pool)
	outcome, err := insertDeadLetter(ctx, f.pool, d)
	fields := []any{"deadLetter", d.ID, "type", d.Type, "id", d.EventID, "source", d.Source,
		"errorDest", redactURL(d.ErrorDest), "errorCode", d.ErrorCode, "ms", float64(time.Since(start).Microseconds()) / 1000}
	// The answer goes out before the log line (runtime.SendNow).
	if err != nil {
		status, result = runtime.WriteError(w, event.Unavailable(err, "the dead letter could not be stored; nothing was written, retry later"), nil), "error"
		record()
		runtime.SendNow(w)
		f.log.Errorw("dead letter", append(fields, "status", status, "outcome", "error", "error", err)...)
		return
	}
	result = outcome
	w.Header().Set("Content-Length", "0") // what net/http would send, known before SendNow
	w.WriteHeader(http.StatusAccepted)
	record()
	runtime.SendNow(w)
	// Warn: every dead letter is an event some subscriber never handled.
	f.log.Warnw("dead letter", append(fields, "status", http.StatusAccepted, "outcome", outcome)...)
}

// list answers GET /deadletters[?status=pending|replayed].
func (f *Function) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := q.Get("status")
	if q.Has("status") && status != StatusPending && status != StatusReplayed {
		runtime.WriteError(w, event.Errorf(event.EINVALID, "status", "status must be %q or %q, got %q", StatusPending, StatusReplayed, status), runtime.AdminTitles)
		return
	}
	ds, err := listDeadLetters(r.Context(), f.pool, status)
	if err != nil {
		unavailable(w, err)
		return
	}
	out := admin.DeadLetters{Items: make([]admin.DeadLetter, 0, len(ds))}
	for _, d := range ds {
		out.Items = append(out.Items, d.Item())
	}
	writeJSON(w, http.StatusOK, out)
}

// replay answers POST /deadletters/{id}/replay: the stored event goes to
// K_SINK unchanged; 202 and status replayed once the sink accepted it, 502
// (status unchanged) when it refused. The row stays locked while the event
// is sent.
func (f *Function) replay(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if f.sink == "" {
		runtime.WriteError(w, event.Unavailable(nil, "K_SINK is not configured: there is nowhere to replay to; nothing changed"), nil)
		return
	}
	var d *DeadLetter
	var sendErr error
	err := postgres.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		var found bool
		var err error
		if d, found, err = lockDeadLetter(ctx, tx, id); err != nil {
			return err
		}
		if !found {
			return event.NotFound("no dead letter with id %q", id)
		}
		ev, err := d.ReplayEvent()
		if err != nil {
			return fmt.Errorf("rebuild event: %w", err)
		}
		// The replay continues the dead letter's trace: its send span is a
		// child of the stored traceparent and is the request's header.
		tp := d.Extensions["traceparent"]
		sctx, span := telemetry.Current().StartProducer(telemetry.WithTraceParent(ctx, tp, d.Extensions["tracestate"]),
			"replay "+d.Type, append(telemetry.EventAttributes(ev), attribute.String("qinqing.dead_letter", d.ID))...)
		sendErr = runtime.Send(sctx, f.client, f.sink, ev)
		span.End()
		if sendErr != nil {
			return markReplayFailed(context.WithoutCancel(ctx), tx, d.ID, sendErr.Error())
		}
		return markReplayed(ctx, tx, d)
	})
	if d != nil {
		runtime.LogFields(w, "deadLetter", d.ID, "type", d.Type, "id", d.EventID, "source", d.Source)
	}
	switch {
	case event.ErrorCode(err) == event.ENOTFOUND:
		runtime.WriteError(w, err, nil)
	case err != nil:
		unavailable(w, err)
	case sendErr != nil:
		runtime.WriteError(w, &event.Error{Code: event.EREFUSED, Err: sendErr,
			Message: fmt.Sprintf("the sink did not accept the event (%v); the dead letter stays %s", sendErr, d.Status)}, replayTitles)
	default:
		writeJSON(w, http.StatusAccepted, d.Item())
	}
}

// replayTitles names the replay's 502.
var replayTitles = runtime.Titles{event.EREFUSED: "Sink refused the replay"}

func unavailable(w http.ResponseWriter, err error) {
	runtime.WriteError(w, event.Unavailable(err, "the dead letters cannot be read or changed right now; retry later"), nil)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/event"
)

// Meta is what a handler sees of the CloudEvent besides its data.
type Meta struct {
	ID      string
	Source  string
	Type    string
	Subject string
	// Time is the event's time attribute, or the time of receipt when the
	// event has none. Every "as of" and every receipt time is this value,
	// so a replayed event gives the same result.
	Time    time.Time
	HasTime bool
	// Function is the name of the function handling the event.
	Function string
	// TraceParent is the W3C traceparent of the span handling the event
	// ("" when there is none): every follow-up stores it, so the relay
	// sends it on in the same trace.
	TraceParent string
}

// Outgoing is an event a handler emits: its reply or a follow-up.
type Outgoing struct {
	// Key, when set, makes a follow-up unique by business meaning (e.g.
	// "overdue/A-1/reply/supervision"): its id is derived from the key, and
	// a second follow-up with the same key is not queued again. When empty
	// the id is derived from the handled event and the follow-up's position.
	Key     string
	Type    string
	Subject string
	Data    any
	// TraceParent, when set on a follow-up, is the trace it continues
	// instead of the handled event's: a cron job's follow-up about one
	// case continues that case's trace (telemetry.Continue).
	TraceParent string
}

// Result is what a handler returns: the reply and the follow-ups.
type Result struct {
	Reply     Outgoing
	FollowUps []Outgoing
	// AfterCommit, when set, runs once the transaction has committed (never
	// after a rollback, never on a redelivery): for in-process effects
	// that must not get ahead of the database, such as dropping a cache.
	AfterCommit func()
}

// Reply is shorthand for a result with only a reply.
func Reply(eventType string, data any) Result {
	return Result{Reply: Outgoing{Type: eventType, Data: data}}
}

// Run handles one decoded, valid event inside the transaction. It never
// commits, never talks HTTP and never touches the inbox.
type Run func(ctx context.Context, tx pgx.Tx) (Result, error)

// Handler turns an event's data into a Run, or an EINVALID error when the
// data is malformed (then nothing is written).
type Handler interface {
	Prepare(m Meta, data []byte) (Run, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(m Meta, data []byte) (Run, error)

// Prepare implements Handler.
func (f HandlerFunc) Prepare(m Meta, data []byte) (Run, error) { return f(m, data) }

// Validator is implemented by payloads that check themselves.
type Validator interface{ Validate() error }

// On builds a Handler from a typed handler: the data is decoded into a T
// (mistyped fields are EINVALID naming the field) and validated when *T
// implements Validator, before any transaction begins.
func On[T any](fn func(ctx context.Context, tx pgx.Tx, m Meta, p *T) (Result, error)) Handler {
	return HandlerFunc(func(m Meta, data []byte) (Run, error) {
		p, err := decode[T](data)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, tx pgx.Tx) (Result, error) { return fn(ctx, tx, m, p) }, nil
	})
}

func decode[T any](data []byte) (*T, error) {
	p := new(T)
	if err := DecodeJSON(data, p); err != nil {
		return nil, err
	}
	if v, ok := any(p).(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// JobFunc runs one cron job "as of" m.Time.
type JobFunc func(ctx context.Context, tx pgx.Tx, m Meta) (Result, error)

// QueueJob is a cron job whose first statements go with the event's inbox
// row (Queue): it queues them on b and returns the Run that continues
// once b is sent.
type QueueJob func(b *pgx.Batch, m Meta) Run

// A Job is one cron job: a JobFunc or a QueueJob.
type Job interface {
	prepare(m Meta) (Run, Queue)
}

func (f JobFunc) prepare(m Meta) (Run, Queue) {
	return func(ctx context.Context, tx pgx.Tx) (Result, error) { return f(ctx, tx, m) }, nil
}

func (f QueueJob) prepare(m Meta) (Run, Queue) {
	q := Queue(func(b *pgx.Batch) Run { return f(b, m) })
	return q.Run, q
}

// Queue is the start of an event's work whose first statements go in the
// batch that begins the event's transaction and inserts its inbox row,
// after that insert: it queues them on b and returns the Run that
// continues in the transaction once b is sent and read. They cost no round
// trip of their own. For a redelivery they run too (the inbox insert
// finds the row and the runtime rolls everything back), so they must only
// read or write inside the transaction, as any Run.
type Queue func(b *pgx.Batch) Run

// Run runs q on tx alone: its statements in a batch of their own, then
// the rest (for callers that drive a Handler on a transaction).
func (q Queue) Run(ctx context.Context, tx pgx.Tx) (Result, error) {
	b := &pgx.Batch{}
	rest := q(b)
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return Result{}, err
		}
	}
	return rest(ctx, tx)
}

// QueuedHandler is a Handler some of whose events start with a Queue.
// The runtime's server calls PrepareQueue and, when it gives a Queue,
// sends its statements with the inbox row; Prepare (for callers that
// drive a Handler themselves) runs the Queue on the transaction.
type QueuedHandler interface {
	Handler
	PrepareQueue(m Meta, data []byte) (Queue, error)
}

// Jobs dispatches PingSource events ({"job": "<name>"}) to their job.
func Jobs(jobs map[string]Job) QueuedHandler { return jobSet(jobs) }

type jobSet map[string]Job

func (js jobSet) job(m Meta, data []byte) (Job, error) {
	var p struct {
		Job string `json:"job"`
	}
	if err := DecodeJSON(data, &p); err != nil {
		return nil, err
	}
	if p.Job == "" {
		return nil, event.Invalid("job", "is required")
	}
	j, ok := js[p.Job]
	if !ok {
		names := make([]string, 0, len(js))
		for n := range js {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, event.Invalid("job", "unknown job %q for %s (handles %s)", p.Job, m.Function, strings.Join(names, ", "))
	}
	return j, nil
}

// Prepare implements Handler.
func (js jobSet) Prepare(m Meta, data []byte) (Run, error) {
	j, err := js.job(m, data)
	if err != nil {
		return nil, err
	}
	run, _ := j.prepare(m)
	return run, nil
}

// PrepareQueue implements QueuedHandler: the job's Queue, nil for a JobFunc.
func (js jobSet) PrepareQueue(m Meta, data []byte) (Queue, error) {
	j, err := js.job(m, data)
	if err != nil {
		return nil, err
	}
	_, q := j.prepare(m)
	return q, nil
}

// DecodeJSON decodes event data into v. Unknown fields are ignored (senders
// may add fields); syntax errors and mistyped fields are EINVALID errors
// naming the field by its full path with array indexes
// ("documents[2].sizeBytes").
func DecodeJSON(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		data = []byte("{}")
	}
	if data[0] != '{' {
		return event.Invalid("data", "must be a JSON object")
	}
	// json.Unmarshal accepts exactly what the decoder below does (one
	// object, nothing after it) without copying the data into a reader's
	// buffer; only a refusal is decoded again, to name what is wrong.
	if json.Unmarshal(data, v) == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if p := pathAt(data, te.Offset); p != "" {
				field = p // with the array indexes te.Field lacks
			}
			if field == "" {
				field = "data"
			}
			return event.Invalid(field, "must be %s, got JSON %s", jsonKind(te.Type.Kind().String()), te.Value)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
			return event.Invalid("data", "is not valid JSON: %v", err)
		}
		return event.Invalid("data", "%v", err)
	}
	if dec.More() {
		return event.Invalid("data", "has trailing content after the JSON object")
	}
	return nil
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "an integer"
	case strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case k == "slice", k == "array":
		return "an array"
	case k == "struct", k == "map":
		return "an object"
	}
	return "a " + k
}

// idNamespace scopes qinqing's derived ids (UUID v5).
var idNamespace = uuid.MustParse("6f1d6a52-3c1e-4f43-9d3b-8f7f4c2a9e10")

// DeriveID returns a stable UUID for the given parts.
func DeriveID(parts ...string) string {
	return uuid.NewSHA1(idNamespace, []byte(strings.Join(parts, "\x00"))).String()
}

func replyID(m Meta) string { return DeriveID("reply", m.Function, m.Source, m.ID) }

func followUpID(m Meta, o Outgoing, n int) string {
	if o.Key != "" {
		return DeriveID("key", m.Function, o.Key)
	}
	return DeriveID("followup", m.Function, m.Source, m.ID, fmt.Sprint(n))
}

// SourceOf is the CloudEvents source of a function's replies and follow-ups.
func SourceOf(function string) string { return "/qinqing/" + function }

package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
)

// Decision is a handler's whole work as one SQL statement, reply included:
// the runtime adds the inbox row, the stored reply and the follow-ups to
// the same statement and sends it alone, in one round trip, committing on
// its own as a bare receiver's statement does. Whatever lock the decision
// takes is held only while that statement runs and commits, so events
// contending for one row (the weekly burst on one forum) queue for one
// statement each, not for a transaction of several round trips.
//
// With is the statement's WITH list without the word WITH: common table
// expressions separated by commas, which may write (INSERT, UPDATE …
// RETURNING). Its last CTE is answer: one row with the columns
// reply_type (text), reply_subject (text, "" for none), reply_data
// (text, the reply's JSON) and follow_ups (boolean: whether FollowUps are
// sent). A statement whose answer has no row, or a NULL type or data,
// fails and writes nothing.
//
// The statement reads nothing of the inbox: the inbox row it inserts
// last, with the answer's reply, is what tells a redelivery. A delivery
// of an event already in the inbox runs With again and then fails on the
// inbox's key (or earlier, on what its first delivery left), so nothing
// it wrote is kept, and the stored reply answers it (a second round
// trip). With must therefore be written so that running it again for an
// event already handled is harmless once rolled back, as every statement
// is: it may fail, wait for a lock or write, but it never answers in the
// first delivery's place. On a new backend a read of the inbox is most
// of the runtime's part of the statement's planning (README, Speed).
//
// Args are $1…$n of With; the runtime's own parameters come after them.
// FollowUps are the follow-ups queued, in one set-wise insert, when the
// answer's follow_ups is true; their ids, data and traces are made as a
// Result's are. A reply whose data depends on the decision is built in
// SQL, usually from JSON the handler encoded beforehand for each possible
// outcome (forum-signup: functions/forum-signup/store.go).
//
// Serial, when set, names what the statement contends for (forum-signup:
// the forum whose row it locks): the statements of one process with the
// same Serial run one round trip at a time, in order of arrival, the ones
// that arrived meanwhile sent together in the next (turns); and no more
// round trips of such statements go at once than the pool has
// connections, those waiting for one going together (whatever their
// Serial) when one is free. Across processes the statement's own lock
// still decides; within one, a burst on one row then costs no database
// backend waiting on that row, and one lock and one commit for each round
// trip's events. The wait is bounded by the request's deadline.
type Decision struct {
	With      string
	Args      []any
	FollowUps []Outgoing
	Serial    string
}

// OnDecision builds a Handler whose event is handled by one statement:
// the data is decoded and validated as On does, then decide (outside any
// transaction, no database) returns the Decision. Through the server an
// event then costs one round trip; a redelivery two: its statement fails
// whole (on the inbox's key, after waiting for it when the first
// delivery is still in flight), and the stored reply is read. Prepare
// (callers that drive a handler themselves on a transaction) runs the
// decision's With and answer on that transaction, without inbox or
// outbox.
func OnDecision[T any](decide func(ctx context.Context, m Meta, p *T) (Decision, error)) Handler {
	return decisionHandler(func(ctx context.Context, m Meta, data []byte) (Decision, error) {
		p, err := decode[T](data)
		if err != nil {
			return Decision{}, err
		}
		return decide(ctx, m, p)
	})
}

// decisionHandler is the Handler OnDecision builds.
type decisionHandler func(ctx context.Context, m Meta, data []byte) (Decision, error)

// Prepare implements Handler. The data is decoded and validated before
// the Run, as for every handler; the Run runs the decision's statement on
// its transaction and returns the reply (its data as the JSON the
// statement chose) and, when the answer says so, the follow-ups.
func (h decisionHandler) Prepare(m Meta, data []byte) (Run, error) {
	// decide does no I/O: its errors (invalid data) surface here, before
	// any transaction, as every handler's do.
	d, err := h(context.Background(), m, data)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, tx pgx.Tx) (Result, error) {
		var typ, subject, data *string
		var followUps *bool
		if err := tx.QueryRow(ctx, decisionOnTx(d.With), d.Args...).Scan(&typ, &subject, &data, &followUps); err != nil {
			return Result{}, fmt.Errorf("decision: %w", err)
		}
		if typ == nil || data == nil {
			return Result{}, fmt.Errorf("the decision of %s for %s chose no reply", m.Function, m.Type)
		}
		res := Result{Reply: Outgoing{Type: *typ, Data: json.RawMessage(*data)}}
		if subject != nil {
			res.Reply.Subject = *subject
		}
		if followUps != nil && *followUps {
			res.FollowUps = d.FollowUps
		}
		return res, nil
	}, nil
}

// decisionOnTx is a decision's statement for Prepare's Run: the answer is
// the result.
func decisionOnTx(with string) string {
	return "WITH " + with + "\n" +
		"SELECT reply_type, reply_subject, reply_data, follow_ups FROM answer"
}

// decisionSQL caches the server's statements by their parts.
var decisionSQL sync.Map // decisionKey → string

type decisionKey struct {
	with      string
	nargs     int
	followUps bool
}

// decisionStatement is a decision's statement for the server, alone in
// its implicit transaction (with the timeouts set just before it, in the
// same round trip: decisionSettings): the handler's With, then, for a
// decision with follow-ups, those the answer sends (one insert from
// arrays) and the relays' wake-up, and last the inbox row with the
// answer's reply, which returns the reply. The inbox row fails on the
// key of the same event handled before (a redelivery: decideAlone) and
// on a missing answer, whose NULL type the inbox's NOT NULL type column
// refuses. The runtime's parameters follow the handler's n: function,
// source, id, type, traceparent and reply id, and with follow-ups their
// source and time, then their ids, types, subjects, data and traces as
// arrays.
func decisionStatement(with string, n int, followUps bool) string {
	k := decisionKey{with, n, followUps}
	if q, ok := decisionSQL.Load(k); ok {
		return q.(string)
	}
	names := []string{"$FUNCTION", "$SOURCE", "$ID", "$TYPE", "$TRACE", "$REPLY_ID",
		"$PRODUCER", "$TIME", "$F_IDS", "$F_TYPES", "$F_SUBJECTS", "$F_DATA", "$F_TRACES"}
	pairs := make([]string, 0, 2*len(names))
	for i, name := range names {
		pairs = append(pairs, name, fmt.Sprintf("$%d", n+i+1))
	}
	r := strings.NewReplacer(pairs...)
	// Without follow-ups the statement has no outbox part at all.
	outbox, notified := "", "0"
	if followUps {
		outbox = `, qq_outbox AS (
		INSERT INTO qinqing.outbox (id, producer, source, type, subject, data, event_time, traceparent)
		SELECT f.id, $FUNCTION::text, $PRODUCER::text, f.type, NULLIF(f.subject, ''), f.data::json, $TIME::timestamptz, NULLIF(f.traceparent, '')
		FROM answer a,
			unnest($F_IDS::text[], $F_TYPES::text[], $F_SUBJECTS::text[], $F_DATA::text[], $F_TRACES::text[]) WITH ORDINALITY AS f(id, type, subject, data, traceparent, n)
		WHERE a.follow_ups
		ORDER BY f.n
		ON CONFLICT (id) DO NOTHING
		RETURNING 1
	), qq_notify AS (
		SELECT pg_notify('qinqing_outbox', '') FROM (SELECT FROM qq_outbox LIMIT 1) o
	)`
		notified = "(SELECT count(*) FROM qq_notify)"
	}
	q := "WITH " + with + r.Replace(outbox+`
	INSERT INTO qinqing.inbox (function, source, id, type, traceparent, reply_id, reply_type, reply_data, reply_subject)
	SELECT $FUNCTION::text, $SOURCE::text, $ID::text,
		CASE WHEN a.reply_type IS NOT NULL AND a.reply_data IS NOT NULL THEN $TYPE::text END,
		NULLIF($TRACE::text, ''), $REPLY_ID::text, a.reply_type, a.reply_data::json, NULLIF(a.reply_subject, '')
	FROM (SELECT) one LEFT JOIN answer a ON true
	RETURNING reply_type, coalesce(reply_subject, ''), reply_data, received_at, `+notified)
	decisionSQL.Store(k, q)
	return q
}

// decide handles an event of an OnDecision handler: its statement
// (decisionStatement), one round trip; with a Serial, in its key's turn
// and possibly in one round trip with others (turns). A delivery of the
// same event in flight makes the statement wait on the inbox key; when
// that one commits, this statement fails whole and the stored reply is
// read.
func (s *Server) decide(ctx context.Context, m Meta, d Decision) (reply *cloudevents.Event, dup bool, err error) {
	if s.warm != nil {
		select {
		case <-s.warm:
		case <-ctx.Done():
		}
	}
	c := decisionCall{m: m, d: d}
	if len(d.FollowUps) > 0 {
		ids, types, subjects, datas, traces, err := followUpArrays(m, d.FollowUps)
		if err != nil {
			return nil, false, err
		}
		c.followUps = []any{SourceOf(m.Function), m.Time, ids, types, subjects, datas, traces}
	}
	// Behind a transaction pooler every statement is parsed and planned
	// again: queued, that work for the events of one key would run one
	// after another on one backend instead of on several side by side,
	// which costs more than the row lock's wait it saves.
	if d.Serial != "" && !postgres.TransactionPooled(s.pool) {
		return s.turns.do(ctx, s, d.Serial, c)
	}
	return s.decideAlone(ctx, c)
}

// decisionCall is one event's decision, ready to be sent.
type decisionCall struct {
	m         Meta
	d         Decision
	followUps []any // the follow-ups' parameters (decisionStatement)
}

// query is c's statement and its arguments.
func (c decisionCall) query() (string, []any) {
	args := make([]any, 0, len(c.d.Args)+13)
	args = append(args, c.d.Args...)
	args = append(args, c.m.Function, c.m.Source, c.m.ID, c.m.Type, c.m.TraceParent, replyID(c.m))
	args = append(args, c.followUps...)
	return decisionStatement(c.d.With, len(c.d.Args), len(c.d.FollowUps) > 0), args
}

// decideAlone sends c's statement on its own. A statement that fails
// with an error of the database's is a redelivery when its event is in
// the inbox (it failed on the inbox's key, or earlier on what the first
// delivery left): it is answered the stored reply, one more round trip.
func (s *Server) decideAlone(ctx context.Context, c decisionCall) (*cloudevents.Event, bool, error) {
	q, args := c.query()
	var reply *cloudevents.Event
	err := s.queryAlone(ctx, q, args, func(row pgx.Row) (err error) {
		reply, err = scanDecision(row, c.m)
		return err
	})
	if err == nil {
		return reply, false, nil
	}
	if unanswered(ctx, err) {
		return nil, false, event.Unavailable(err, unansweredDetail)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return nil, false, fmt.Errorf("decision: %w", err)
	}
	stored, found, rerr := s.replyIfHandled(ctx, c.m)
	switch {
	case rerr != nil:
		return nil, false, fmt.Errorf("decision: %w (and the inbox could not be read: %v)", err, rerr)
	case found:
		return stored, true, nil
	case pe.Code == "23502" && pe.TableName == "inbox" && pe.ColumnName == "type":
		return nil, false, fmt.Errorf("the decision of %s for %s chose no reply; nothing was written", c.m.Function, c.m.Type)
	}
	return nil, false, fmt.Errorf("decision: %w", err)
}

// queryAlone sends q, one statement alone in its implicit transaction,
// and scans its row: behind PgBouncer, or with the request's deadline
// nearer than the timeouts, after the timeouts' set_config in the same
// round trip (decisionSettings).
func (s *Server) queryAlone(ctx context.Context, q string, args []any, scan func(pgx.Row) error) error {
	return s.withConn(ctx, func(conn *pgxpool.Conn) error {
		err := s.queryOn(ctx, conn, q, args, scan)
		if forgetChanged(ctx, conn, err, q) {
			err = s.queryOn(ctx, conn, q, args, scan) // it failed whole: nothing was written
		}
		return err
	})
}

// queryOn is queryAlone on conn.
func (s *Server) queryOn(ctx context.Context, conn *pgxpool.Conn, q string, args []any, scan func(pgx.Row) error) error {
	if err := prepareDecisions(ctx, conn, q); err != nil {
		return err
	}
	sq, sargs := s.decisionSettings(ctx)
	if sq == "" {
		return scan(conn.QueryRow(ctx, q, args...))
	}
	b := &pgx.Batch{}
	b.Queue(sq, sargs...)
	b.Queue(q, args...)
	br := conn.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		err = scan(br.QueryRow())
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// forgetChanged drops the decision statements qs prepared on conn when
// err is the server's refusal to run one whose result type has changed
// since it was prepared (a migration altered a column it returns: "cached
// plan must not change result type"), and reports whether it did: the
// next use prepares them again, as pgx does with the statements it
// caches itself.
func forgetChanged(ctx context.Context, conn *pgxpool.Conn, err error, qs ...string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "0A000" || pe.Message != "cached plan must not change result type" {
		return false
	}
	for _, q := range qs {
		if derr := conn.Conn().Deallocate(ctx, q); derr != nil {
			return false
		}
	}
	return true
}

// withConn runs f on a connection of the pool.
func (s *Server) withConn(ctx context.Context, f func(*pgxpool.Conn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	return f(conn)
}

// prepareDecisions prepares the statements qs on conn, each once per
// connection (pgx's Prepare keyed by the SQL itself: a later query with
// that SQL executes it). A redelivery's statement fails by design, and
// pgx drops a statement from its own cache on any error, to prepare it
// again (one more round trip, and the server plans it again) the next
// time; a statement prepared here stays. Only where the pool prepares
// its statements anyway (pgx's default mode): behind a transaction pooler
// (postgres.PoolerSafe) none is, and there the description is read again
// after a redelivery.
func prepareDecisions(ctx context.Context, conn *pgxpool.Conn, qs ...string) error {
	if conn.Conn().Config().DefaultQueryExecMode != pgx.QueryExecModeCacheStatement {
		return nil
	}
	for _, q := range qs {
		if _, err := conn.Conn().Prepare(ctx, q, q); err != nil {
			return err
		}
	}
	return nil
}

// unanswered reports whether a statement sent alone (queryAlone) was cut
// off at the request's deadline without an answer from the server (pgx
// closes the connection): alone in its implicit transaction, it may
// still have committed.
func unanswered(ctx context.Context, err error) bool {
	var pe *pgconn.PgError
	return err != nil && !errors.As(err, &pe) && ctx.Err() != nil
}

// unansweredDetail is the answer's detail for an unanswered statement.
const unansweredDetail = "the database did not answer in time; the event may have been handled, and a retry answers what was decided"

// scanDecision reads the row of a decision's statement: the reply, as
// stored in the inbox.
func scanDecision(row pgx.Row, m Meta) (*cloudevents.Event, error) {
	var typ, subject, data string
	var at time.Time
	var notified int64
	if err := row.Scan(&typ, &subject, &data, &at, &notified); err != nil {
		return nil, err
	}
	return newEvent(replyID(m), SourceOf(m.Function), typ, subject, at, []byte(data)), nil
}

// decideTogether sends the statements of cs, decisions waiting in turns
// (sorted by Serial), in one round trip: a pgx batch, which Postgres runs
// as one implicit transaction, so the first statement of a Serial takes
// the lock the others of that Serial need too, and all commit at once.
// Each statement sees the ones before it. When any fails, the
// transaction is rolled back whole: when it is a redelivery's (on the
// inbox's key, or earlier), that one is answered the stored reply and the
// others are sent together again; otherwise each is sent again on its
// own, for its own outcome. turns never puts two deliveries of one event
// in a batch. The batch runs to the earliest deadline among cs (its
// timeouts end before it, decisionSettings), not cut short by any one
// request going away.
func (s *Server) decideTogether(cs []decisionCall, ctxs []context.Context) []decided {
	out := make([]decided, len(cs))
	if len(cs) == 1 {
		out[0].reply, out[0].dup, out[0].err = s.decideAlone(ctxs[0], cs[0])
		return out
	}
	ctx := context.Background()
	var earliest time.Time
	for _, c := range ctxs {
		if dl, ok := c.Deadline(); ok && (earliest.IsZero() || dl.Before(earliest)) {
			earliest = dl
		}
	}
	if !earliest.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, earliest)
		defer cancel()
	}
	b := &pgx.Batch{}
	sq, sargs := s.decisionSettings(ctx)
	if sq != "" {
		b.Queue(sq, sargs...)
	}
	qs := make([]string, 0, len(cs))
	for _, c := range cs {
		q, args := c.query()
		b.Queue(q, args...)
		qs = append(qs, q)
	}
	failedAt := -1 // the decision whose statement failed, when one did
	failed := s.withConn(ctx, func(conn *pgxpool.Conn) error {
		if err := prepareDecisions(ctx, conn, qs...); err != nil {
			return err
		}
		br := conn.SendBatch(ctx, b)
		var err error
		if sq != "" {
			_, err = br.Exec()
		}
		for i, c := range cs {
			if err != nil {
				break
			}
			if out[i].reply, err = scanDecision(br.QueryRow(), c.m); err != nil {
				failedAt = i
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		forgetChanged(ctx, conn, err, qs...) // sent again below
		return err
	})
	if failed == nil {
		return out
	}
	clear(out)
	var pe *pgconn.PgError
	if failedAt >= 0 && errors.As(failed, &pe) {
		// A redelivery fails its batch by design: it is answered the
		// stored reply, and the others go together again.
		if stored, found, err := s.replyIfHandled(ctxs[failedAt], cs[failedAt].m); err == nil && found {
			rest := s.decideTogether(slices.Delete(slices.Clone(cs), failedAt, failedAt+1),
				slices.Delete(slices.Clone(ctxs), failedAt, failedAt+1))
			return slices.Insert(rest, failedAt, decided{reply: stored, dup: true})
		}
	}
	for i, c := range cs {
		out[i].reply, out[i].dup, out[i].err = s.decideAlone(ctxs[i], c)
	}
	return out
}

// deadlineMargin is how long before the request's deadline a decision's
// statement ends on the server (decisionSettings).
const deadlineMargin = 100 * time.Millisecond

// decisionSettings is the statement, and its arguments, that sets the
// statement and lock timeouts of a decision's implicit transaction: sent
// just before the decision's statement, in the same round trip and
// transaction ("" when there is nothing to set: on a direct connection
// the session has the pool's timeouts already, and a request with time
// enough left does not shorten them). They are the pool's
// (postgres.Timeouts), each shortened to end deadlineMargin before the
// request's deadline: pgx answers a context that ends by closing the
// connection, which a backend waiting for a lock does not notice, and the
// statement, committing on its own, would commit after its event was
// answered 503. It ends on the server instead, in time for the answer to
// say so. (A timeout set inside the statement would bound only later
// statements; cancel requests would crash PgBouncer before 1.21.)
func (s *Server) decisionSettings(ctx context.Context) (string, []any) {
	statement, lock := postgres.Timeouts(s.pool)
	shortened := false
	if dl, ok := ctx.Deadline(); ok {
		left := max(time.Until(dl)-deadlineMargin, time.Millisecond)
		if statement <= 0 || left < statement {
			statement, shortened = left, true
		}
		if lock <= 0 || left < lock {
			lock, shortened = left, true
		}
	}
	if !shortened && postgres.SessionTimeouts(s.pool) {
		return "", nil
	}
	var sets []string
	var args []any
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"statement_timeout", statement}, {"lock_timeout", lock}} {
		if t.d > 0 {
			args = append(args, strconv.FormatInt(t.d.Milliseconds(), 10))
			sets = append(sets, fmt.Sprintf("set_config('%s', $%d, true)", t.name, len(args)))
		}
	}
	if len(sets) == 0 {
		return "", nil
	}
	return "SELECT " + strings.Join(sets, ", "), args
}

// readReply reads the reply stored with an event already handled.
func (s *Server) readReply(ctx context.Context, m Meta) (*cloudevents.Event, error) {
	reply, found, err := s.replyIfHandled(ctx, m)
	if err == nil && !found {
		err = fmt.Errorf("inbox reply: %w", pgx.ErrNoRows)
	}
	return reply, err
}

// replyIfHandled reads the reply stored with m's event, if it is in the
// inbox.
func (s *Server) replyIfHandled(ctx context.Context, m Meta) (*cloudevents.Event, bool, error) {
	reply, err := scanStoredReply(s.pool.QueryRow(ctx, storedReplySQL, m.Function, m.Source, m.ID), m)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("inbox reply: %w", err)
	}
	return reply, true, nil
}

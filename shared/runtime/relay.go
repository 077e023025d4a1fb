package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/telemetry"
)

// Relay delivers the outbox to the sink. Every running function runs one;
// any instance may deliver any pending row (the sink is the same broker),
// so events written by a function that has since scaled to zero still go
// out. Rows are leased with FOR UPDATE SKIP LOCKED, so two relays never
// send the same row at the same time; a crash between send and mark means
// a second delivery of the same id, which receivers deduplicate.
type Relay struct {
	// Function is the name of the function running the relay (a metric
	// label).
	Function  string
	Pool      *pgxpool.Pool
	Sink      string
	Client    *http.Client
	Log       *zap.SugaredLogger
	Interval  time.Duration // poll interval besides LISTEN/NOTIFY wake-ups
	BatchSize int
	Lease     time.Duration // how long a claimed row is hidden from other relays
	// OutboxRetention and InboxRetention: delivered outbox rows and inbox
	// rows older than these are pruned, hourly, off the event path. The
	// inbox is what makes a redelivery answer the stored reply, so its
	// retention must outlast any redelivery or dead-letter replay (the
	// business keys still guard most effects after that).
	OutboxRetention time.Duration
	InboxRetention  time.Duration
	// PruneAfter is the first prune after start, PruneEvery the interval
	// after that. The first comes early because a function that scales to
	// zero between bursts may never stay up for a whole interval.
	PruneAfter time.Duration
	PruneEvery time.Duration
	// ListenURL, when set, is a direct (or session-pooled) Postgres URL
	// the relay LISTENs on instead of a connection taken from Pool.
	ListenURL string
	// TransactionPooled says Pool goes through a transaction pooler, where
	// LISTEN never hears a notification: without ListenURL the relay then
	// polls every Interval and says so once in the log.
	TransactionPooled bool
}

// defaults fills the settings left zero: the interval and retentions
// with RELAY_INTERVAL's, OUTBOX_RETENTION's and INBOX_RETENTION's defaults.
func (r *Relay) defaults() {
	if r.Client == nil {
		r.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if r.Interval <= 0 {
		r.Interval = baseDefault("RelayInterval")
	}
	if r.BatchSize <= 0 {
		r.BatchSize = 100
	}
	if r.Lease <= 0 {
		r.Lease = time.Minute
	}
	if r.OutboxRetention <= 0 {
		r.OutboxRetention = baseDefault("OutboxRetention")
	}
	if r.InboxRetention <= 0 {
		r.InboxRetention = baseDefault("InboxRetention")
	}
	if r.PruneAfter <= 0 {
		r.PruneAfter = 30 * time.Second
	}
	if r.PruneEvery <= 0 {
		r.PruneEvery = time.Hour
	}
}

// Run delivers until ctx is cancelled, and prunes. Without a Sink it only
// prunes: follow-ups stay queued for a process that has one.
func (r *Relay) Run(ctx context.Context) {
	r.defaults()
	var wake chan struct{}
	var poll <-chan time.Time
	if r.Sink != "" {
		wake = make(chan struct{}, 1)
		go r.listen(ctx, wake)
		t := time.NewTicker(r.Interval)
		defer t.Stop()
		poll = t.C
	}
	prune := time.NewTimer(r.PruneAfter)
	defer prune.Stop()
	for {
		if r.Sink != "" {
			r.Drain(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-poll:
		case <-wake:
		case <-prune.C:
			outbox, inbox, err := r.Prune(ctx)
			if err != nil && ctx.Err() == nil {
				r.Log.Warnw("prune inbox and outbox", "error", err)
			}
			tel := telemetry.Current().Instruments()
			tel.Pruned(ctx, r.Function, "outbox", outbox)
			tel.Pruned(ctx, r.Function, "inbox", inbox)
			prune.Reset(r.PruneEvery)
		}
	}
}

// pruneBatch bounds one DELETE, so pruning never holds long locks.
const pruneBatch = 5000

// errPruneBusy ends a prune when another relay holds the prune lock.
var errPruneBusy = errors.New("another relay is pruning")

// Prune deletes delivered outbox rows older than OutboxRetention and inbox
// rows older than InboxRetention, in batches, each in its own transaction
// that takes a transaction-scoped advisory lock first: when another relay
// holds it, this one stops and leaves the rest to it. The lock ends with
// the transaction, so it also holds behind a transaction pooler, where a
// session lock would be taken on one server connection and released on
// another. It returns the rows deleted.
func (r *Relay) Prune(ctx context.Context) (outbox, inbox int64, err error) {
	r.defaults()
	for _, step := range []struct {
		n   *int64
		sql string
		age time.Duration
	}{
		{&outbox, `DELETE FROM qinqing.outbox WHERE seq IN (SELECT seq FROM qinqing.outbox
			WHERE delivered_at < now() - $1 * interval '1 microsecond' LIMIT $2)`, r.OutboxRetention},
		{&inbox, `DELETE FROM qinqing.inbox WHERE ctid IN (SELECT ctid FROM qinqing.inbox
			WHERE received_at < now() - $1 * interval '1 microsecond' LIMIT $2)`, r.InboxRetention},
	} {
		for ctx.Err() == nil {
			n, err := postgres.InTxV(ctx, r.Pool, func(tx pgx.Tx) (int64, error) {
				locked, err := postgres.TryLockXact(ctx, tx, "qinqing.prune")
				if err != nil {
					return 0, err
				}
				if !locked {
					return 0, errPruneBusy
				}
				tag, err := tx.Exec(ctx, step.sql, step.age.Microseconds(), pruneBatch)
				return tag.RowsAffected(), err
			})
			if errors.Is(err, errPruneBusy) {
				return outbox, inbox, nil
			}
			if err != nil {
				return outbox, inbox, err
			}
			*step.n += n
			if n < pruneBatch {
				break
			}
		}
	}
	return outbox, inbox, ctx.Err()
}

// listen turns NOTIFY qinqing_outbox into wake-ups, reconnecting on
// error. It listens on ListenURL when given, else on a connection taken
// out of the pool; behind a transaction pooler without ListenURL it
// returns at once and the relay polls.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	if r.ListenURL == "" && r.TransactionPooled {
		r.Log.Infow("outbox relay polls without LISTEN: DATABASE_POOLER is pgbouncer-transaction and DATABASE_LISTEN_URL is unset",
			"interval", r.Interval.String())
		return
	}
	for ctx.Err() == nil {
		pc, err := r.listenConn(ctx)
		if err != nil {
			if r.ListenURL != "" && ctx.Err() == nil {
				r.Log.Warnw("outbox relay: connect to DATABASE_LISTEN_URL", "error", err)
			}
			sleep(ctx, 2*time.Second)
			continue
		}
		if _, err := pc.Exec(ctx, "LISTEN qinqing_outbox"); err == nil {
			for {
				if _, err := pc.WaitForNotification(ctx); err != nil {
					break
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = pc.Close(cctx)
		cancel()
		sleep(ctx, time.Second)
	}
}

// listenConn returns a connection of its own for LISTEN.
func (r *Relay) listenConn(ctx context.Context) (*pgx.Conn, error) {
	if r.ListenURL != "" {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return pgx.Connect(cctx, r.ListenURL)
	}
	conn, err := r.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return conn.Hijack(), nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Drain delivers due rows until none is left or a batch fails to claim.
// It returns how many were delivered.
func (r *Relay) Drain(ctx context.Context) int {
	r.defaults()
	total := 0
	for ctx.Err() == nil {
		n, claimed, err := r.deliverBatch(ctx)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				r.Log.Warnw("outbox relay", "error", err)
			}
			return total
		}
		if claimed < r.BatchSize {
			return total
		}
	}
	return total
}

type pending struct {
	seq      int64
	id       string
	source   string
	typ      string
	subject  string
	data     []byte
	created  time.Time
	attempts int
	// traceparent of the span that handled the causing event ("" if none).
	traceparent string
}

func (r *Relay) deliverBatch(ctx context.Context) (delivered, claimed int, err error) {
	rows, err := r.Pool.Query(ctx, `UPDATE qinqing.outbox SET next_attempt_at = now() + $2 * interval '1 microsecond', attempts = attempts + 1
		WHERE seq IN (SELECT seq FROM qinqing.outbox WHERE delivered_at IS NULL AND next_attempt_at <= now()
		              ORDER BY next_attempt_at, seq LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING seq, id, source, type, coalesce(subject, ''), data::text, coalesce(event_time, created_at), attempts, coalesce(traceparent, '')`,
		r.BatchSize, r.Lease.Microseconds())
	if err != nil {
		return 0, 0, fmt.Errorf("claim outbox: %w", err)
	}
	var batch []pending
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.seq, &p.id, &p.source, &p.typ, &p.subject, &p.data, &p.created, &p.attempts, &p.traceparent); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("claim outbox: %w", err)
		}
		batch = append(batch, p)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("claim outbox: %w", err)
	}
	tel := telemetry.Current().Instruments()
	for _, p := range batch {
		err := r.send(ctx, p)
		tel.Delivery(ctx, r.Function, err == nil, p.attempts)
		if err != nil {
			backoff := Backoff(p.attempts)
			r.Log.Warnw("outbox delivery failed", "type", p.typ, "id", p.id, "attempts", p.attempts, "retryIn", backoff.String(), "error", err)
			if _, uerr := r.Pool.Exec(ctx, `UPDATE qinqing.outbox SET next_attempt_at = now() + $2 * interval '1 microsecond', last_error = $3 WHERE seq = $1`,
				p.seq, backoff.Microseconds(), err.Error()); uerr != nil {
				return delivered, len(batch), uerr
			}
			continue
		}
		if _, err := r.Pool.Exec(ctx, `UPDATE qinqing.outbox SET delivered_at = now(), last_error = NULL WHERE seq = $1`, p.seq); err != nil {
			return delivered, len(batch), err
		}
		delivered++
	}
	return delivered, len(batch), nil
}

// Backoff is the wait after the n-th failed attempt: exponential from one
// second, capped at ten minutes, with jitter so relays do not march in step.
func Backoff(attempts int) time.Duration {
	d := time.Second << min(attempts-1, 10)
	if d > 10*time.Minute || d <= 0 {
		d = 10 * time.Minute
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// send POSTs one follow-up. Its traceparent extension is the stored one:
// the span that handled the causing event. The HTTP traceparent header is
// the relay's own send span, a child of that one (with tracing off it is
// the stored context itself), so the receiving function's span joins the
// same trace either way.
func (r *Relay) send(ctx context.Context, p pending) (err error) {
	ev := newEvent(p.id, p.source, p.typ, p.subject, p.created, p.data)
	if p.traceparent != "" {
		ev.SetExtension("traceparent", p.traceparent)
		var span trace.Span
		ctx, span = telemetry.Current().StartProducer(telemetry.WithTraceParent(ctx, p.traceparent, ""), "send "+p.typ,
			attribute.String(telemetry.AttrEventID, p.id), attribute.String(telemetry.AttrEventType, p.typ),
			attribute.String(telemetry.AttrEventSource, p.source), attribute.Int("qinqing.outbox.attempt", p.attempts))
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}()
	}
	return Send(ctx, r.Client, r.Sink, ev)
}

// Send POSTs ev to url in binary mode; any 2xx is success. The request's
// traceparent header is the span context of ctx, when it has one.
func Send(ctx context.Context, client *http.Client, url string, ev *cloudevents.Event) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(ev), req); err != nil {
		return err
	}
	telemetry.InjectHTTP(ctx, req.Header)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("sink answered %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

package runtime

import (
	"context"
	"slices"
	"strings"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// maxTogether bounds how many decisions go in one round trip.
const maxTogether = 64

// turns queues, within one process, the decisions that name what they
// contend for (Decision.Serial): per key one round trip at a time, and
// at most as many round trips at once as the pool has connections. A
// decision whose key has nothing in flight, while a connection is free
// for it, is sent at once by its own goroutine. The others wait in line:
// behind their key's round trip, or for a connection. Each time a round
// trip ends, its goroutine sends what may go then, together: every
// waiting decision whose key has nothing in flight (up to maxTogether,
// sorted by key, in arrival order within a key) in one round trip
// (Server.decideTogether), until nothing may go.
//
// Events contending for one row (the weekly burst on one forum) would
// otherwise each hold a connection and a backend that waits on the row
// lock: every commit then wakes the next backend, which rechecks the row
// it waited for, while the machine's CPUs are busy with the events
// themselves. Queued here they cost a parked goroutine and no connection,
// and a burst costs one lock, one commit and one round trip for each
// batch instead of for each event. Events for many keys (signups spread
// over many forums) that would wait for a connection go the same way:
// one round trip and one commit for those waiting. The database's own
// locks still order the statements of several processes; sorted by key,
// two batches take their rows in the same order.
type turns struct {
	mu       sync.Mutex
	max      int             // round trips at once: the pool's size (0 until the first decision)
	sending  int             // round trips in flight, or about to leave
	inFlight map[string]bool // keys with a round trip in flight
	line     []*waiting      // decisions waiting, in order of arrival
}

// waiting is one decision in line: taken once its round trip has begun.
type waiting struct {
	ctx   context.Context
	key   string
	call  decisionCall
	taken bool
	done  chan decided
}

// sameEvent reports whether v is a delivery of w's event.
func (w *waiting) sameEvent(v *waiting) bool {
	return v.call.m.Source == w.call.m.Source && v.call.m.ID == w.call.m.ID
}

// decided is what a decision's round trip answered.
type decided struct {
	reply *cloudevents.Event
	dup   bool
	err   error
}

// do queues c under key and waits for its outcome. A decision whose
// request ends (its deadline) while it waits in line leaves the line with
// ctx's error, nothing sent; one whose round trip has begun waits for it,
// which ends by the earliest deadline among its batch.
func (t *turns) do(ctx context.Context, s *Server, key string, c decisionCall) (*cloudevents.Event, bool, error) {
	t.mu.Lock()
	if t.max == 0 {
		t.max = max(int(s.pool.Config().MaxConns), 1)
		t.inFlight = map[string]bool{}
	}
	if !t.inFlight[key] && t.sending < t.max {
		// Nothing in flight for key and a connection free: this
		// decision goes at once, from this goroutine, and whatever
		// arrives meanwhile waits for it.
		t.inFlight[key] = true
		t.sending++
		t.mu.Unlock()
		// Deferred, so that the line moves on even after a panic here
		// (which the server's guard answers).
		defer t.handOn(s, key)
		return s.decideAlone(ctx, c)
	}
	w := &waiting{ctx: ctx, key: key, call: c, done: make(chan decided, 1)}
	t.line = append(t.line, w)
	t.mu.Unlock()
	select {
	case r := <-w.done:
		return r.reply, r.dup, r.err
	case <-ctx.Done():
	}
	t.mu.Lock()
	if !w.taken {
		if i := slices.Index(t.line, w); i >= 0 {
			t.line = slices.Delete(t.line, i, i+1)
		}
		t.mu.Unlock()
		return nil, false, ctx.Err()
	}
	t.mu.Unlock()
	r := <-w.done
	return r.reply, r.dup, r.err
}

// handOn ends the round trip of a decision sent from its own goroutine:
// what may go now is sent by a goroutine of the line's, so that the
// request whose goroutine sent the round trip is answered at once.
func (t *turns) handOn(s *Server, key string) {
	if batch := t.next([]string{key}); len(batch) > 0 {
		go t.serve(s, batch)
	}
}

// next ends a round trip for keys and takes what may go now; with
// nothing, the round trip's place is given up.
func (t *turns) next(keys []string) []*waiting {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.inFlight, k)
	}
	batch := t.takeLocked()
	if len(batch) == 0 {
		t.sending--
	}
	return batch
}

// takeLocked takes from the line what may go now: the decisions whose
// key has nothing in flight, up to maxTogether, in order of arrival, and
// marks their keys in flight. They are returned sorted by key (a key's
// own in order of arrival). A second delivery of an event already in the
// batch stays in line for the next: in the batch it would fail on the
// inbox's key and roll the others back with it (decideTogether).
func (t *turns) takeLocked() []*waiting {
	var batch []*waiting
	var picked []string // the batch's keys: few
	kept := t.line[:0]
	for _, w := range t.line {
		if len(batch) < maxTogether && (slices.Contains(picked, w.key) || !t.inFlight[w.key]) &&
			!slices.ContainsFunc(batch, w.sameEvent) {
			w.taken = true
			if !slices.Contains(picked, w.key) {
				picked = append(picked, w.key)
			}
			batch = append(batch, w)
			continue
		}
		kept = append(kept, w)
	}
	clear(t.line[len(kept):])
	t.line = kept
	for _, k := range picked {
		t.inFlight[k] = true
	}
	if len(picked) > 1 {
		slices.SortStableFunc(batch, func(a, b *waiting) int { return strings.Compare(a.key, b.key) })
	}
	return batch
}

// serve sends batch, then what may go after it, each time together,
// until nothing may go.
func (t *turns) serve(s *Server, batch []*waiting) {
	for len(batch) > 0 {
		calls, ctxs := make([]decisionCall, len(batch)), make([]context.Context, len(batch))
		keys := make([]string, 0, len(batch))
		for i, w := range batch {
			calls[i], ctxs[i] = w.call, w.ctx
			if i == 0 || w.key != batch[i-1].key {
				keys = append(keys, w.key)
			}
		}
		for i, r := range s.decideTogether(calls, ctxs) {
			batch[i].done <- r
		}
		batch = t.next(keys)
	}
}

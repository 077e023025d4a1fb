package runtime

import (
	"context"
	"slices"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// maxTogether bounds how many decisions go in one round trip.
const maxTogether = 64

// turns queues, within one process, the decisions that contend for one
// thing (Decision.Serial): per key one round trip at a time. A decision
// for a key with nothing in flight is sent at once by its own goroutine;
// the ones that arrive meanwhile wait in line, and a goroutine of the
// key's sends each time every decision that waits, together in one round
// trip (Server.decideTogether), until none waits.
//
// Events contending for one row (the weekly burst on one forum) would
// otherwise each hold a connection and a backend that waits on the row
// lock: every commit then wakes the next backend, which rechecks the row
// it waited for, while the machine's CPUs are busy with the events
// themselves. Queued here they cost a parked goroutine and no connection
// (events for other keys keep the pool), and a burst costs one lock, one
// commit and one round trip for each batch instead of for each event.
// The database's own lock still orders the statements of several
// processes.
type turns struct {
	mu   sync.Mutex
	keys map[string][]*waiting // a key is present while its goroutine runs
}

// waiting is one decision in line: taken once its round trip has begun.
type waiting struct {
	ctx   context.Context
	call  decisionCall
	taken bool
	done  chan decided
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
	if t.keys == nil {
		t.keys = map[string][]*waiting{}
	}
	line, running := t.keys[key]
	if !running {
		// Nothing in flight for key: this decision goes at once, from
		// this goroutine, and whatever arrives meanwhile waits for it.
		t.keys[key] = nil
		t.mu.Unlock()
		// Deferred, so that the line moves on even after a panic here
		// (which the server's guard answers).
		defer t.handOn(s, key)
		return s.decideAlone(ctx, c)
	}
	w := &waiting{ctx: ctx, call: c, done: make(chan decided, 1)}
	t.keys[key] = append(line, w)
	t.mu.Unlock()
	select {
	case r := <-w.done:
		return r.reply, r.dup, r.err
	case <-ctx.Done():
	}
	t.mu.Lock()
	if !w.taken {
		line := t.keys[key]
		if i := slices.Index(line, w); i >= 0 {
			t.keys[key] = slices.Delete(line, i, i+1)
		}
		t.mu.Unlock()
		return nil, false, ctx.Err()
	}
	t.mu.Unlock()
	r := <-w.done
	return r.reply, r.dup, r.err
}

// handOn ends the turn of a decision sent from its own goroutine: the
// decisions that came meanwhile are served by a goroutine of the key's,
// or, with none, the key is forgotten.
func (t *turns) handOn(s *Server, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.keys[key]) > 0 {
		go t.serve(s, key)
	} else {
		delete(t.keys, key)
	}
}

// serve sends key's decisions, those waiting at each turn together, until
// none waits; then the key is forgotten.
func (t *turns) serve(s *Server, key string) {
	for {
		t.mu.Lock()
		line := t.keys[key]
		if len(line) == 0 {
			delete(t.keys, key)
			t.mu.Unlock()
			return
		}
		n := min(len(line), maxTogether)
		batch := slices.Clone(line[:n])
		t.keys[key] = slices.Delete(line, 0, n)
		for _, w := range batch {
			w.taken = true
		}
		t.mu.Unlock()
		calls, ctxs := make([]decisionCall, n), make([]context.Context, n)
		for i, w := range batch {
			calls[i], ctxs[i] = w.call, w.ctx
		}
		for i, r := range s.decideTogether(calls, ctxs) {
			batch[i].done <- r
		}
	}
}

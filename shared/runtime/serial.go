package runtime

import (
	"context"
	goruntime "runtime"
	"slices"
	"sync"
)

// serials queues, within one process, the statements of decisions that
// contend for one thing (Decision.Serial): a holder per key at a time, the
// others waiting in line here rather than in the database.
//
// Events contending for one row (the weekly burst on one forum) would
// otherwise each hold a connection and a backend that waits on the row
// lock: every commit then wakes the next backend, which rechecks the row
// it waited for, while the machine's CPUs are busy with the events
// themselves. Waiting here costs a parked goroutine and no connection, so
// events for other keys keep the pool. The database's own lock still
// orders the statements of several processes.
type serials struct {
	mu   sync.Mutex
	keys map[string]*serial
}

// serial is one key's turn: whether it is held, the waiters parked for
// it in order of arrival, and how many hold or wait for it (a key nobody
// holds or waits for is forgotten, so the map stays as small as what is
// in flight). A released turn goes to whoever takes it first, the first
// waiter woken or a goroutine arriving that moment: handing it strictly
// to the parked waiter would idle the turn until the scheduler runs that
// goroutine, and on busy CPUs that wait is most of a turn (a lock
// convoy). A woken waiter that lost the race waits first in line again.
type serial struct {
	held    bool
	waiters []chan struct{}
	refs    int
}

// acquire waits for key's turn, or until ctx is done (then it returns
// ctx's error and holds nothing). The returned release ends the turn.
func (s *serials) acquire(ctx context.Context, key string) (release func(), err error) {
	s.mu.Lock()
	if s.keys == nil {
		s.keys = map[string]*serial{}
	}
	k := s.keys[key]
	if k == nil {
		k = &serial{}
		s.keys[key] = k
	}
	k.refs++
	first := false // whether this waiter was woken before and goes first
	for k.held {
		w := make(chan struct{}, 1)
		if first {
			k.waiters = append([]chan struct{}{w}, k.waiters...)
		} else {
			k.waiters = append(k.waiters, w)
		}
		s.mu.Unlock()
		select {
		case <-w:
			s.mu.Lock()
			first = true
		case <-ctx.Done():
			s.mu.Lock()
			if i := slices.Index(k.waiters, w); i >= 0 {
				k.waiters = slices.Delete(k.waiters, i, i+1)
			} else {
				s.wake(k) // woken as it gave up: the wake is the next one's
			}
			s.forget(key, k)
			s.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	k.held = true
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		k.held = false
		woke := s.wake(k)
		s.forget(key, k)
		s.mu.Unlock()
		if woke {
			// Let the woken waiter run now, on this goroutine's CPU,
			// rather than after this one has written its answer: the
			// turn is idle until it runs.
			goruntime.Gosched()
		}
	}, nil
}

// wake wakes k's first waiter, if any. s.mu is held.
func (s *serials) wake(k *serial) bool {
	if len(k.waiters) == 0 {
		return false
	}
	k.waiters[0] <- struct{}{}
	k.waiters = k.waiters[1:]
	return true
}

// forget drops one hold or wait on k, and k itself when it was the last.
// s.mu is held.
func (s *serials) forget(key string, k *serial) {
	if k.refs--; k.refs == 0 {
		delete(s.keys, key)
	}
}

// size is how many keys are held or waited for.
func (s *serials) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

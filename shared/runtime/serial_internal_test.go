package runtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// One key has one holder at a time; the waiters get their turns in the
// order they came; other keys do not wait; a key nobody holds or waits
// for is forgotten.
func TestSerials(t *testing.T) {
	t.Parallel()
	var s serials
	ctx := context.Background()

	var holders, most atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := s.acquire(ctx, "forum/F1")
			if err != nil {
				t.Error(err)
				return
			}
			n := holders.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(100 * time.Microsecond)
			holders.Add(-1)
			release()
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d holders of one key at once, want 1", most.Load())
	}
	if s.size() != 0 {
		t.Errorf("%d keys kept after every turn ended, want 0", s.size())
	}

	// Waiters queue in order of arrival.
	release, _ := s.acquire(ctx, "forum/F2")
	var order []int
	var mu sync.Mutex
	done := make(chan struct{})
	for i := 0; i < 5; i++ {
		go func() {
			r, err := s.acquire(ctx, "forum/F2")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			r()
			done <- struct{}{}
		}()
		waitFor(t, func() bool { return s.refs("forum/F2") == i+2 })
		time.Sleep(time.Millisecond) // parked in line, not just counted
	}

	// Another key is not held up by F2.
	other, err := s.acquire(ctx, "forum/F3")
	if err != nil {
		t.Fatal(err)
	}
	other()

	release()
	for i := 0; i < 5; i++ {
		<-done
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("turns taken in order %v, want 0…4", order)
		}
	}

	// A wait ends with the request: nothing is held, the key is forgotten
	// with its holder.
	release, _ = s.acquire(ctx, "forum/F4")
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := s.acquire(cctx, "forum/F4"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past the deadline: %v, want context.DeadlineExceeded", err)
	}
	if n := s.refs("forum/F4"); n != 1 {
		t.Errorf("after the wait gave up F4 has %d holders and waiters, want 1", n)
	}
	release()
	if s.size() != 0 {
		t.Errorf("%d keys kept, want 0", s.size())
	}
}

// refs is how many hold or wait for key.
func (s *serials) refs(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[key]; k != nil {
		return k.refs
	}
	return 0
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
	}
}

package runtime_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// Env.Served is closed by the first request other than /healthz, not by
// the readiness probes before it: the background work that waits for it
// (the outbox relay, subsidy-disbursal's policies written at start) does
// not run beside the first event of a cold start.
func TestServedAfterFirstRequest(t *testing.T) {
	t.Parallel()
	port := functest.FreePort(t)
	env := &runtime.Env{Name: "served", Base: runtime.Base{Port: port}, Log: zap.NewNop().Sugar(), Loc: time.UTC}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runtime.Serve(ctx, env, &runtime.Function{Name: "served"}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	get := func(path string) int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
			if err == nil {
				resp.Body.Close()
				return resp.StatusCode
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for range 3 {
		if got := get("/healthz"); got != http.StatusOK {
			t.Fatalf("/healthz: %d", got)
		}
	}
	select {
	case <-env.Served():
		t.Fatal("Served closed by /healthz alone")
	default:
	}
	get("/no-such-route")
	select {
	case <-env.Served():
	case <-time.After(10 * time.Second):
		t.Fatal("Served not closed after the first request")
	}
}

package runtime

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestGuardCountsPanics(t *testing.T) {
	h := guard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }), Base{}, zap.NewNop().Sugar())
	before := Panics.Load()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")))
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d %q, want 500 application/problem+json", rec.Code, rec.Header().Get("Content-Type"))
	}
	if got := Panics.Load() - before; got != 1 {
		t.Fatalf("Panics rose by %d, want 1", got)
	}
}

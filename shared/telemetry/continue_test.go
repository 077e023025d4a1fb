package telemetry

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Continue: a span in the stored case's trace, child of the stored span,
// linked to the span being handled; with tracing off the stored context
// itself; nothing without one.
func TestContinue(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tel := New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)), nil, nil)
	const stored = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx, cron := tel.StartServer(context.Background(), "process job", time.Now())
	got := tel.Continue(ctx, stored, "overdue reply/reminder")
	cron.End()
	if !strings.HasPrefix(got, "00-0af7651916cd43dd8448eb211c80319c-") || got == stored {
		t.Fatalf("Continue = %q, want a new span in the stored trace", got)
	}
	var found bool
	for _, s := range sr.Ended() {
		if s.Name() == "overdue reply/reminder" {
			found = s.Parent().SpanID().String() == "b7ad6b7169203331" && s.SpanContext().SpanID().String() == got[36:52] &&
				len(s.Links()) == 1 && s.Links()[0].SpanContext.SpanID() == cron.SpanContext().SpanID()
		}
	}
	if !found {
		t.Fatal("no span child of the stored one and linked to the handled one")
	}
	off := New(nil, nil, nil)
	if got := off.Continue(context.Background(), stored, "x"); got != stored {
		t.Fatalf("tracing off: Continue = %q, want the stored %q", got, stored)
	}
	if got := tel.Continue(ctx, "", "x"); got != "" {
		t.Fatalf("no stored trace: Continue = %q", got)
	}
}

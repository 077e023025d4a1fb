package docs_test

import (
	"context"
	"errors"
	"io"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/telemetry"
)

// With tracing on, each S3 call is a client span under the event's span,
// named after the operation and carrying the bucket, key and status; a
// failed call is marked as an error with the S3 error code.
func TestS3CallSpans(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	saved := telemetry.Current()
	telemetry.SetCurrent(telemetry.New(tp, nil, nil))
	t.Cleanup(func() { telemetry.SetCurrent(saved) })
	_, store := s3test.New(t) // the client is built on first use: now traced

	ctx, root := tp.Tracer("test").Start(context.Background(), "event")
	if err := store.Put(ctx, "traced/a.txt", "text/plain", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if r, err := store.Open(ctx, "traced/missing.txt"); !errors.Is(err, docs.ErrNotFound) {
		if r != nil {
			_, _ = io.Copy(io.Discard, r)
			r.Close()
		}
		t.Fatalf("open of a missing key: %v", err)
	}
	root.End()

	got := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range sr.Ended() {
		if s.Parent().SpanID() == root.SpanContext().SpanID() {
			got[s.Name()] = s
		}
	}
	attr := func(s sdktrace.ReadOnlySpan, k string) string {
		for _, a := range s.Attributes() {
			if string(a.Key) == k {
				return a.Value.Emit()
			}
		}
		return ""
	}
	put, ok := got["S3.PutObject"]
	if !ok {
		t.Fatalf("no S3.PutObject span under the event's span: %v", got)
	}
	for k, want := range map[string]string{"rpc.system": "aws-api", "rpc.service": "S3", "rpc.method": "PutObject",
		"aws.s3.bucket": "qinqing-test", "aws.s3.key": "traced/a.txt", "http.response.status_code": "200"} {
		if v := attr(put, k); v != want {
			t.Errorf("PutObject span %s = %q, want %q", k, v, want)
		}
	}
	get, ok := got["S3.GetObject"]
	if !ok {
		t.Fatalf("no S3.GetObject span under the event's span: %v", got)
	}
	if get.Status().Code.String() != "Error" || attr(get, "error.type") != "NoSuchKey" || attr(get, "http.response.status_code") != "404" {
		t.Errorf("GetObject of a missing key: status %v, error.type %q, http status %q", get.Status(), attr(get, "error.type"), attr(get, "http.response.status_code"))
	}
}

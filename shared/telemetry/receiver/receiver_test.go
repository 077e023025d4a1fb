package receiver

import (
	"bytes"
	"net/http"
	"testing"

	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// A counting receiver counts the spans of every export, across resources
// and scopes and past the other fields of each message, as many as a
// decoding receiver keeps; a body that is not protobuf is refused.
func TestCountingReceiverCountsWhatTheDecodingOneKeeps(t *testing.T) {
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	span := func(name string) *tracepb.Span {
		return &tracepb.Span{TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{2}, 8), Name: name,
			Attributes: []*commonpb.KeyValue{str("db.query.text", "SELECT 1")}, Events: []*tracepb.Span_Event{{Name: "exception"}},
			Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}}
	}
	msg := &colltrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "a")}}, SchemaUrl: "s",
			ScopeSpans: []*tracepb.ScopeSpans{
				{Scope: &commonpb.InstrumentationScope{Name: "x"}, Spans: []*tracepb.Span{span("1"), span("2")}, SchemaUrl: "s"},
				{Scope: &commonpb.InstrumentationScope{Name: "y"}, Spans: []*tracepb.Span{span("3")}},
			}},
		{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "b")}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{span("4"), span("5"), span("6")}}}},
	}}
	body, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	post := func(r *Receiver, body []byte) int {
		resp, err := http.Post(r.Endpoint()+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	keeping, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer keeping.Close()
	counting, err := StartCounting("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer counting.Close()
	for range 2 {
		if post(keeping, body) != 200 || post(counting, body) != 200 {
			t.Fatal("an export was refused")
		}
	}
	if n := len(keeping.Spans()); n != 12 || keeping.SpanCount() != n || counting.SpanCount() != n || len(counting.Spans()) != 0 {
		t.Fatalf("kept %d (count %d), counted %d, counting kept %d; want 12, 12, 12, 0",
			n, keeping.SpanCount(), counting.SpanCount(), len(counting.Spans()))
	}
	if post(counting, []byte{0x0a, 0x05, 0x12}) != http.StatusBadRequest {
		t.Fatal("a truncated export was accepted")
	}
}

package runtime_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// Requests net/http refuses before any handler runs (a malformed request
// line or header, a missing Host, headers over 1 MiB, an unknown transfer
// encoding or protocol version) are answered with the same status as
// problem+json naming the refused part, like every other 4xx; a valid
// request on the same server still gets its normal answer.
func TestMalformedRequestsAnswerProblemJSON(t *testing.T) {
	t.Parallel()
	fn := functest.Start(t, probe, "DATABASE_URL="+pgtest.URL(t))
	cases := []struct {
		name, head string
		status     int
		field      string
	}{
		{"GarbageRequestLine", "NOT HTTP AT ALL\r\n\r\n", 400, "request"},
		{"NoHost", "GET /healthz HTTP/1.1\r\n\r\n", 400, "Host"},
		{"TwoHosts", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "request"}, // net/http says no more than "400 Bad Request"
		{"HeaderWithoutColon", "GET /healthz HTTP/1.1\r\nHost: probe\r\nno colon here\r\n\r\n", 400, "request"},
		{"HeadersTooLarge", "GET /healthz HTTP/1.1\r\nHost: probe\r\nX-Big: " + strings.Repeat("a", 1<<20+8192) + "\r\n\r\n", 431, "headers"},
		{"UnknownTransferEncoding", "POST / HTTP/1.1\r\nHost: probe\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Transfer-Encoding"},
		{"ProtocolVersion", "GET /healthz HTTP/3.7\r\nHost: probe\r\n\r\n", 505, "protocol"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(fn.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go func() { _, _ = c.Write([]byte(tc.head)) }() // a 431 may come before all is written
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d %q, want %d application/problem+json: %s", resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, body)
			}
			var p struct {
				Type, Title, Detail, Field string
				Status                     int
			}
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, body)
			}
			if p.Type != "urn:qinqing:problem:malformed-request" || p.Status != tc.status || p.Field != tc.field || p.Detail == "" {
				t.Fatalf("problem %+v, want status %d field %q", p, tc.status, tc.field)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, fn.URL+"/healthz", nil)
	if resp := functest.Do(t, req); resp.Status != http.StatusOK || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("GET /healthz after the malformed requests: %d %q", resp.Status, resp.Header.Get("Content-Type"))
	}
}

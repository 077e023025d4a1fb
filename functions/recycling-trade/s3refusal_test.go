package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// An import whose object the bucket refuses: a 4xx that is the key's
// fault (S3's 400 InvalidArgument, 400 KeyTooLongError) is a 400 naming
// key, so the broker does not redeliver a poison event; a refusal of our
// credentials (403) or a throttle (503 SlowDown) is the function's or the
// bucket's fault, answered 5xx so a redelivery can succeed. Nothing is
// written in either case. The S3 server of the tests never refuses a read,
// so a front in the middle answers for it, as S3 would (an XML error body).
func TestImportBucketRefusals(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	s3, _ := s3test.New(t)
	target, _ := url.Parse(s3.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(status int, code string) {
			w.Header().Set("Content-Type", "application/xml")
			w.Header().Set("X-Amz-Request-Id", "REFUSED1")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>refused by the test</Message><RequestId>REFUSED1</RequestId></Error>`))
		}
		switch {
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "invalid-argument"):
			refuse(http.StatusBadRequest, "InvalidArgument")
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "too-long"):
			refuse(http.StatusBadRequest, "KeyTooLongError")
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "denied"):
			refuse(http.StatusForbidden, "AccessDenied")
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "slow-down"):
			refuse(http.StatusServiceUnavailable, "SlowDown")
		default:
			proxy.ServeHTTP(w, r)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = front.Serve(ln) }()
	t.Cleanup(func() { _ = front.Close() })

	env := []string{"DATABASE_URL=" + dbURL, "K_SINK=" + functest.NewSink(t).URL}
	for _, kv := range s3.Env() {
		if strings.HasPrefix(kv, "S3_ENDPOINT=") {
			kv = "S3_ENDPOINT=http://" + ln.Addr().String()
		}
		env = append(env, kv)
	}
	fn := functest.Start(t, binary, env...)
	send := func(key string) *functest.Response {
		return fn.Send(t, functest.Event("cn.huzhou.recycling.trades.imported", "/portals/recycling", functest.NextID(),
			time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC), map[string]any{"batchId": "B-REFUSED", "key": key}))
	}
	for _, key := range []string{"imports/invalid-argument.csv", "imports/too-long.csv"} {
		r := send(key)
		if r.Status != http.StatusBadRequest || r.Problem()["field"] != "key" || !strings.Contains(r.Problem()["detail"].(string), "HTTP 400") {
			t.Errorf("%s: got %d %s, want 400 naming key", key, r.Status, r.Body)
		}
	}
	for _, key := range []string{"imports/denied.csv", "imports/slow-down.csv"} {
		if r := send(key); r.Status < 500 {
			t.Errorf("%s: got %d %s, want 5xx (a redelivery may succeed)", key, r.Status, r.Body)
		}
	}
	pool := pgtest.PoolFor(t, dbURL)
	var batches, inbox int
	if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM recycling.batches), (SELECT count(*) FROM qinqing.inbox)`).Scan(&batches, &inbox); err != nil {
		t.Fatal(err)
	}
	if batches != 0 || inbox != 0 {
		t.Fatalf("refused imports wrote %d batches and %d inbox rows", batches, inbox)
	}
}

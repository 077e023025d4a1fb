package runtime_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
)

// The inbox keeps the traceparent of the span that handled the event, and
// a follow-up with its own TraceParent (a cron job's follow-up about one
// case) is stored with that one instead of the handled event's.
func TestCaseTraceStored(t *testing.T) {
	recorder()
	pool := pgtest.Pool(t)
	const other = "00-11112222333344445555666677778888-9999aaaabbbbcccc-01"
	fn := &runtime.Function{Name: "cased", Handlers: map[string]runtime.Handler{
		"cased": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			res := runtime.Reply("cased.done", nil)
			res.FollowUps = []runtime.Outgoing{{Type: "cased.own", Data: map[string]int{}},
				{Type: "cased.case", Data: map[string]int{}, TraceParent: other}}
			return res, nil
		}),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(`{}`))
	binaryHeaders(req, "cased-1")
	req.Header.Set("Ce-Type", "cased")
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4799-00f067aa0ba902b7-01")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	span := resp.Header.Get("Ce-Traceparent")
	if resp.StatusCode != 200 || !strings.Contains(span, "4bf92f3577b34da6a3ce929d0e0e4799") {
		t.Fatalf("status %d, reply traceparent %q", resp.StatusCode, span)
	}
	ctx := context.Background()
	var inbox, own, cased string
	if err := pool.QueryRow(ctx, `SELECT traceparent FROM qinqing.inbox WHERE function = 'cased' AND id = 'cased-1'`).Scan(&inbox); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT (SELECT traceparent FROM qinqing.outbox WHERE type = 'cased.own'),
		(SELECT traceparent FROM qinqing.outbox WHERE type = 'cased.case')`).Scan(&own, &cased); err != nil {
		t.Fatal(err)
	}
	if inbox != span || own != span || cased != other {
		t.Fatalf("inbox %q, own follow-up %q (want %q), case follow-up %q (want %q)", inbox, own, span, cased, other)
	}
}

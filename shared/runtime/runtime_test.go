package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jackc/pgx/v5"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	type inner struct {
		Amount int64 `json:"amountFen"`
	}
	type payload struct {
		Name  string  `json:"name"`
		Items []inner `json:"items"`
		Owner inner   `json:"owner"`
	}
	cases := []struct {
		name, data, field string
	}{
		{"NotJSON", `{"name":`, "data"},
		{"NotAnObject", `[1,2]`, "data"},
		{"Trailing", `{"name":"a"} {"name":"b"}`, "data"},
		{"MistypedString", `{"name":5}`, "name"},
		{"FractionalFen", `{"owner":{"amountFen":1.5}}`, "owner.amountFen"},
		{"StringFen", `{"owner":{"amountFen":"10"}}`, "owner.amountFen"},
		{"NestedInArray", `{"items":[{"amountFen":1},{"amountFen":true}]}`, "items[1].amountFen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p payload
			err := runtime.DecodeJSON([]byte(tc.data), &p)
			var e *event.Error
			if err == nil || event.ErrorCode(err) != event.EINVALID {
				t.Fatalf("DecodeJSON(%s) = %v, want EINVALID", tc.data, err)
			}
			if ok := errorAs(err, &e); !ok || e.Field != tc.field {
				t.Fatalf("field = %q, want %q (%v)", e.Field, tc.field, err)
			}
		})
	}
	t.Run("OK", func(t *testing.T) {
		var p payload
		if err := runtime.DecodeJSON([]byte(`{"name":"a","extra":1,"owner":{"amountFen":7}}`), &p); err != nil || p.Owner.Amount != 7 {
			t.Fatalf("got %+v, %v", p, err)
		}
		// Missing data is an empty object: required-field checks report it.
		if err := runtime.DecodeJSON(nil, &p); err != nil {
			t.Fatalf("empty data: %v", err)
		}
	})
}

func errorAs(err error, e **event.Error) bool {
	x, ok := err.(*event.Error)
	if ok {
		*e = x
	}
	return ok
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for n := 1; n < 40; n++ {
		d := runtime.Backoff(n)
		full := time.Second << min(n-1, 10)
		if full > 10*time.Minute {
			full = 10 * time.Minute
		}
		if d < full/2 || d > full {
			t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", n, d, full/2, full)
		}
	}
}

func TestDeriveIDStable(t *testing.T) {
	t.Parallel()
	a, b := runtime.DeriveID("signup", "/portals/x", "1"), runtime.DeriveID("signup", "/portals/x", "1")
	if a != b || a == runtime.DeriveID("signup", "/portals/x1", "") {
		t.Fatalf("DeriveID not stable or ambiguous: %s %s", a, b)
	}
}

// Four relays draining one outbox at once deliver every row exactly once:
// the lease (FOR UPDATE SKIP LOCKED, next_attempt_at pushed ahead) keeps
// them off each other's rows.
func TestRelaysShareTheOutbox(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	const rows = 300
	if _, err := pool.Exec(ctx, `INSERT INTO qinqing.outbox (id, producer, source, type, data, event_time)
		SELECT 'ev-' || g, 'test', '/qinqing/test', 'test.happened', json_build_object('n', g), now()
		FROM generate_series(1, $1) g`, rows); err != nil {
		t.Fatal(err)
	}
	sink := functest.NewSink(t)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &runtime.Relay{Pool: pool, Sink: sink.URL, Log: zap.NewNop().Sugar(), BatchSize: 7}
			r.Drain(ctx)
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, ev := range sink.Events() {
		seen[ev.ID()]++
	}
	for i := 1; i <= rows; i++ {
		if n := seen[fmt.Sprintf("ev-%d", i)]; n != 1 {
			t.Fatalf("ev-%d delivered %d times", i, n)
		}
	}
	var pending int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM qinqing.outbox WHERE delivered_at IS NULL`).Scan(&pending)
	if pending != 0 {
		t.Fatalf("%d rows still pending", pending)
	}
}

// A sink that refuses leaves rows pending with a backoff and the error;
// once it accepts, the rows go out with the ids they had.
func TestRelayRetriesAfterRefusal(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO qinqing.outbox (id, producer, source, type, data) VALUES ('only', 'test', '/qinqing/test', 'test.happened', '{}')`); err != nil {
		t.Fatal(err)
	}
	sink := functest.NewSink(t)
	sink.SetDown(true)
	r := &runtime.Relay{Pool: pool, Sink: sink.URL, Log: zap.NewNop().Sugar()}
	if n := r.Drain(ctx); n != 0 {
		t.Fatalf("delivered %d to a refusing sink", n)
	}
	var attempts int
	var lastError string
	var due time.Time
	if err := pool.QueryRow(ctx, `SELECT attempts, last_error, next_attempt_at FROM qinqing.outbox WHERE id = 'only'`).Scan(&attempts, &lastError, &due); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 || lastError == "" || !due.After(time.Now()) {
		t.Fatalf("after refusal: attempts %d, error %q, next attempt %v", attempts, lastError, due)
	}
	sink.SetDown(false)
	if n := r.Drain(ctx); n != 0 {
		t.Fatal("a row in backoff was sent before it was due")
	}
	if _, err := pool.Exec(ctx, `UPDATE qinqing.outbox SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	if n := r.Drain(ctx); n != 1 || len(sink.Events()) != 1 || sink.Events()[0].ID() != "only" {
		t.Fatalf("after recovery delivered %d: %v", n, sink.Events())
	}
}

// AfterCommit runs once the handler's transaction committed: not when the
// handler fails (rollback), not on a redelivery; and a redelivery answers
// the whole stored reply, subject included.
func TestAfterCommit(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	var calls atomic.Int32
	fn := &runtime.Function{Name: "after", Handlers: map[string]runtime.Handler{
		"ok": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			res := runtime.Reply("ok.done", map[string]int{"n": p.N})
			res.Reply.Subject = "subject-" + m.ID
			res.AfterCommit = func() { calls.Add(1) }
			return res, nil
		}),
		"fail": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *benchPayload) (runtime.Result, error) {
			res := runtime.Reply("fail.done", nil)
			res.AfterCommit = func() { calls.Add(100) }
			return res, errors.New("boom")
		}),
	}}
	srv := httptest.NewServer(runtime.NewServer(fn, pool, zap.NewNop().Sugar()))
	defer srv.Close()
	send := func(typ, id string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(`{"n":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Type", typ)
		req.Header.Set("Ce-Source", "/test")
		req.Header.Set("Ce-Id", id)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Ce-Subject")
	}
	if got, subject := send("ok", "1"); got != 200 || subject != "subject-1" {
		t.Fatalf("status %d, subject %q", got, subject)
	}
	// A redelivery answers the stored reply, subject included.
	if got, subject := send("ok", "1"); got != 200 || subject != "subject-1" {
		t.Fatalf("redelivery: status %d, subject %q", got, subject)
	}
	if got, _ := send("fail", "2"); got != 500 {
		t.Fatalf("failing handler: status %d, want 500", got)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("AfterCommit ran %d times (hundreds: after a rollback), want once", n)
	}
}

// Prune removes delivered outbox rows and inbox rows past their retention
// and keeps everything else: pending rows whatever their age, recent rows.
func TestPrune(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO qinqing.outbox (id, producer, source, type, data, created_at, delivered_at)
			SELECT 'old-' || g, 't', '/t', 't', '{}', now() - interval '30 days', now() - interval '30 days' FROM generate_series(1, 12000) g`,
		`INSERT INTO qinqing.outbox (id, producer, source, type, data, created_at, delivered_at)
			VALUES ('recent', 't', '/t', 't', '{}', now(), now())`,
		`INSERT INTO qinqing.outbox (id, producer, source, type, data, created_at)
			VALUES ('pending-old', 't', '/t', 't', '{}', now() - interval '30 days')`,
		`INSERT INTO qinqing.inbox (function, source, id, type, received_at)
			VALUES ('f', '/t', 'old', 't', now() - interval '200 days'), ('f', '/t', 'recent', 't', now() - interval '1 day')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	r := &runtime.Relay{Pool: pool, Sink: "http://127.0.0.1:1", Log: zap.NewNop().Sugar()}
	out, in, err := r.Prune(ctx)
	if err != nil || out != 12000 || in != 1 {
		t.Fatalf("Prune = %d outbox, %d inbox, %v; want 12000, 1", out, in, err)
	}
	var left []string
	rows, _ := pool.Query(ctx, `SELECT id FROM qinqing.outbox UNION ALL SELECT id FROM qinqing.inbox ORDER BY 1`)
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		left = append(left, id)
	}
	if fmt.Sprint(left) != "[pending-old recent recent]" {
		t.Fatalf("left %v", left)
	}
}

// Run prunes soon after start, with or without a sink: a function that
// scales to zero between bursts still prunes.
func TestRunPrunesWithoutSink(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := pool.Exec(ctx, `INSERT INTO qinqing.outbox (id, producer, source, type, data, created_at, delivered_at)
		VALUES ('old', 't', '/t', 't', '{}', now() - interval '30 days', now() - interval '30 days'),
		       ('queued', 't', '/t', 't', '{}', now(), NULL)`); err != nil {
		t.Fatal(err)
	}
	r := &runtime.Relay{Pool: pool, Log: zap.NewNop().Sugar(), PruneAfter: 10 * time.Millisecond}
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ids []string
		rows, _ := pool.Query(ctx, `SELECT id || ':' || attempts FROM qinqing.outbox ORDER BY id`)
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			ids = append(ids, id)
		}
		if fmt.Sprint(ids) == "[queued:0]" {
			break // pruned, and the queued row untouched
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox after Run: %v", ids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}

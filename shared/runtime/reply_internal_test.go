package runtime

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
)

// muteProxy forwards TCP to target; while mute is set it reads what the
// server sends and drops it, so that a statement runs and commits but
// its answer never reaches the client.
type muteProxy struct {
	addr string
	mute atomic.Bool
}

func newMuteProxy(t *testing.T, target string) *muteProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &muteProxy{addr: ln.Addr().String()}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			go func() { _, _ = io.Copy(server, client); server.Close() }()
			go func() {
				defer client.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := server.Read(buf)
					if n > 0 && !p.mute.Load() {
						if _, werr := client.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// A StagedReply event's reply whose one statement is cut off at the
// request's deadline without an answer from the server (it committed,
// the answer was lost) is a 503 saying the event may have been handled;
// a retry is answered the reply stored then, without running the stage.
func TestStoreReplyUnanswered(t *testing.T) {
	t.Parallel()
	if pgtest.ThroughPgBouncer() {
		t.Skip("a direct connection's lost answer: through PgBouncer the pool would need the pooler's query mode")
	}
	direct := pgtest.URL(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newMuteProxy(t, u.Host)
	u.Host = proxy.addr
	ctx := context.Background()
	lossy, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lossy.Close)
	if err := lossy.Ping(ctx); err != nil { // the connection is made before the answers go missing
		t.Fatal(err)
	}
	var stages atomic.Int32
	h := StagedReply(func(_ context.Context, m Meta, _ *struct{}) (Result, error) {
		stages.Add(1)
		return Reply("t.done", map[string]string{"id": m.ID}), nil
	})
	fn := &Function{Name: "unanswered", Handlers: map[string]Handler{"t": h}}
	m := Meta{Function: "unanswered", Source: "/test", ID: "1", Type: "t", Time: time.Now()}

	s := NewServer(fn, lossy, zap.NewNop().Sugar())
	// Another event first, with a deadline too: the timeouts' set_config
	// and the insert are prepared on the connection, so that the muted
	// event's statements are sent and run in one round trip.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, _, err := s.storeReply(wctx, Meta{Function: "unanswered", Source: "/test", ID: "0", Type: "t", Time: time.Now()},
		Reply("t.done", map[string]string{"id": "0"})); err != nil {
		t.Fatal(err)
	}
	proxy.mute.Store(true)
	dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, _, err = s.storeReply(dctx, m, Reply("t.done", map[string]string{"id": m.ID}))
	var e *event.Error
	if !errors.As(err, &e) || e.Code != event.EUNAVAILABLE || e.Message != unansweredDetail {
		t.Fatalf("answer lost: %v; want %s: %q", err, event.EUNAVAILABLE, unansweredDetail)
	}

	pool, err := pgxpool.New(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	reply, dup, err := NewServer(fn, pool, zap.NewNop().Sugar()).handleReplyStaged(ctx, h.(replyStaged), m, []byte(`{}`))
	if err != nil || !dup || string(reply.Data()) != `{"id":"1"}` || stages.Load() != 0 {
		t.Fatalf("retry: %v, dup %v, stages %d; want the stored reply, no second stage", err, dup, stages.Load())
	}
}

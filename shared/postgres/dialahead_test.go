package postgres_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
)

// countingProxy forwards TCP connections to target and counts them; ended
// receives one value per client connection that closed.
type countingProxy struct {
	ln       net.Listener
	mu       sync.Mutex
	accepted int
	ended    chan struct{}
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln, ended: make(chan struct{}, 16)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.accepted++
			p.mu.Unlock()
			go func() {
				defer func() { p.ended <- struct{}{} }()
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c); s.Close() }()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
	return p
}

func (p *countingProxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// settled is count once the proxy has accepted at least want connections
// (or 5 s have passed): its accept loop runs beside the test.
func (p *countingProxy) settled(want int) int {
	for deadline := time.Now().Add(5 * time.Second); p.count() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // room for one accept too many to show
	return p.count()
}

// viaProxy is u with its host replaced by the proxy's address.
func viaProxy(t *testing.T, u string, p *countingProxy) string {
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	parsed.Host = p.ln.Addr().String()
	return parsed.String()
}

// firstConnectionTakesTheSocket opens a pool on u (through p), dials
// ahead, and checks that the pool's first connection is the socket
// DialAhead opened (p accepted one connection in all) and that
// FinishDialAhead leaves it open. It returns the pool.
func firstConnectionTakesTheSocket(t *testing.T, u string, p *countingProxy) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, postgres.Config{URL: u, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	postgres.DialAhead(ctx, pool)
	if n := p.settled(1); n != 1 {
		t.Fatalf("after DialAhead the proxy accepted %d connections, want 1", n)
	}
	var one int
	if err := pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil || one != 1 {
		t.Fatalf("query on the dialled-ahead socket: %v (%d)", err, one)
	}
	if n := p.settled(1); n != 1 {
		t.Fatalf("the first connection opened a socket of its own: %d accepted, want 1", n)
	}
	postgres.FinishDialAhead(pool) // nothing left: the connection took it
	select {
	case <-p.ended:
		t.Fatal("FinishDialAhead closed the socket the pool's connection uses")
	case <-time.After(100 * time.Millisecond):
	}
	return pool
}

// TestDialAheadSocketIsTheFirstConnection: the socket DialAhead opens
// carries the pool's next connection (no second TCP connection), and one
// no connection took is closed by FinishDialAhead.
func TestDialAheadSocketIsTheFirstConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := pgtest.URL(t)
	parsed, _ := url.Parse(u)
	p := newCountingProxy(t, parsed.Host)
	proxied := viaProxy(t, u, p)

	pool := firstConnectionTakesTheSocket(t, proxied, p)
	var one int
	if err := pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		t.Fatalf("query after FinishDialAhead: %v", err)
	}

	// A socket no connection takes is closed, and later connections dial.
	pool2, err := postgres.Open(ctx, postgres.Config{URL: proxied, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool2.Close()
	postgres.DialAhead(ctx, pool2)
	if n := p.settled(2); n != 2 {
		t.Fatalf("after the second DialAhead the proxy accepted %d connections, want 2", n)
	}
	postgres.FinishDialAhead(pool2)
	select {
	case <-p.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("FinishDialAhead left the unused socket open")
	}
	if err := pool2.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		t.Fatalf("query after the unused socket was closed: %v", err)
	}
	if n := p.settled(3); n != 3 {
		t.Fatalf("the pool's connection did not dial a socket of its own: %d accepted, want 3", n)
	}
}

// TestDialAheadUnderAHostName: under a host name (a Kubernetes Service,
// here "localhost") the socket DialAhead opens is still the one the first
// connection takes, although pgx dials the addresses the name resolves
// to, not the name: no second TCP connection.
func TestDialAheadUnderAHostName(t *testing.T) {
	t.Parallel()
	u := pgtest.URL(t)
	parsed, _ := url.Parse(u)
	p := newCountingProxy(t, parsed.Host)
	_, port, _ := net.SplitHostPort(p.ln.Addr().String())
	parsed.Host = net.JoinHostPort("localhost", port)
	firstConnectionTakesTheSocket(t, parsed.String(), p)
}

// TestDialAheadToADeadServer: a failed dial ahead is not kept; the
// connection dials itself and reports the error.
func TestDialAheadToADeadServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	pool, err := postgres.Open(ctx, postgres.Config{URL: "postgres://qinqing@" + addr + "/qinqing?sslmode=disable", MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	postgres.DialAhead(ctx, pool)
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(qctx); err == nil {
		t.Fatal("ping of a server that is not there succeeded")
	}
	postgres.FinishDialAhead(pool)
}

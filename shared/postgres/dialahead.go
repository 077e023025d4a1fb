package postgres

import (
	"context"
	"net"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// dialAhead lets a pool's next connection find its socket already open.
// pgx builds its type map (about 0.7 ms of CPU on the first connection of
// a process) before it dials; with the socket opened first, the server
// forks and starts the session's backend meanwhile, so on a cold start
// the two overlap.
type dialAhead struct {
	dial pgconn.DialFunc

	mu               sync.Mutex
	network, address string
	conn             net.Conn
}

// dialsAhead holds each pool's dialAhead (pools opened by Open).
var dialsAhead sync.Map // *pgxpool.Pool → *dialAhead

// DialAhead opens the socket of pool's next connection, to its first
// host, and keeps it for that connection: the next dial to that address
// takes it. A failed dial is not kept (the connection then dials and
// reports the error itself); FinishDialAhead closes a socket no
// connection took. For pools not opened by Open it does nothing.
func DialAhead(ctx context.Context, pool *pgxpool.Pool) {
	v, ok := dialsAhead.Load(pool)
	if !ok {
		return
	}
	d := v.(*dialAhead)
	cc := pool.Config().ConnConfig
	network, address := pgconn.NetworkAddress(cc.Host, cc.Port)
	if cc.ConnectTimeout > 0 { // as pgconn bounds its own dial
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cc.ConnectTimeout)
		defer cancel()
	}
	conn, err := d.dial(ctx, network, address)
	if err != nil {
		return
	}
	d.mu.Lock()
	old := d.conn
	d.network, d.address, d.conn = network, address, conn
	d.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
}

// FinishDialAhead closes the socket DialAhead opened when no connection
// took it (the connection went to another address, or was not made).
func FinishDialAhead(pool *pgxpool.Pool) {
	v, ok := dialsAhead.Load(pool)
	if !ok {
		return
	}
	d := v.(*dialAhead)
	d.mu.Lock()
	conn := d.conn
	d.conn = nil
	d.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// Dial is the pool's DialFunc: the socket DialAhead opened to this
// address when there is one, else a new one.
func (d *dialAhead) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	conn := d.conn
	if conn != nil && network == d.network && address == d.address {
		d.conn = nil
	} else {
		conn = nil
	}
	d.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	return d.dial(ctx, network, address)
}

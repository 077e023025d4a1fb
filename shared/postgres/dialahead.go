package postgres

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// dialAhead lets a pool's next connection find its socket already open.
// pgx builds its type map (about 0.7 ms of CPU on the first connection of
// a process) before it dials; with the socket opened first, the server
// forks and starts the session's backend meanwhile, so on a cold start
// the two overlap.
//
// pgx dials addresses, not host names: it looks the host up (LookupFunc)
// and dials each address in turn until one answers. DialAhead does the
// same, so that the socket it keeps is the one pgx asks for first under
// a host name too (a Kubernetes Service, "localhost"), and hands its
// lookup to pgx's, which would otherwise repeat it.
type dialAhead struct {
	dial   pgconn.DialFunc
	lookup pgconn.LookupFunc

	mu               sync.Mutex
	network, address string
	conn             net.Conn
	host             string   // the host DialAhead looked up, until pgx's lookup takes addrs
	addrs            []string // what that lookup answered
}

// dialsAhead holds each pool's dialAhead (pools opened by Open).
var dialsAhead sync.Map // *pgxpool.Pool → *dialAhead

// DialAhead opens the socket of pool's next connection, to its first
// host, and keeps it for that connection: the next dial to that address
// takes it. It resolves the host as pgx does and tries its addresses in
// pgx's order, keeping the first that connects; when none does (or the
// lookup fails), nothing is kept, and the connection dials and reports
// the error itself. FinishDialAhead closes a socket no connection took.
// For pools not opened by Open it does nothing.
func DialAhead(ctx context.Context, pool *pgxpool.Pool) {
	v, ok := dialsAhead.Load(pool)
	if !ok {
		return
	}
	d := v.(*dialAhead)
	cc := pool.Config().ConnConfig
	if cc.ConnectTimeout > 0 { // as pgconn bounds its own dial
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cc.ConnectTimeout)
		defer cancel()
	}
	for _, a := range d.addresses(ctx, cc.Host, cc.Port) {
		conn, err := d.dial(ctx, a[0], a[1])
		if err != nil {
			continue
		}
		d.mu.Lock()
		old := d.conn
		d.network, d.address, d.conn = a[0], a[1], conn
		d.mu.Unlock()
		if old != nil {
			_ = old.Close()
		}
		return
	}
}

// addresses are the network and address pairs pgx dials for host and
// port, in its order (pgconn's buildConnectOneConfigs): a Unix socket
// directory as it is; any other host looked up, each answer an address
// (with its own port when the lookup gives one). The lookup's answer is
// kept for pgx's own lookup of the same host.
func (d *dialAhead) addresses(ctx context.Context, host string, port uint16) [][2]string {
	if strings.HasPrefix(host, "/") {
		network, address := pgconn.NetworkAddress(host, port)
		return [][2]string{{network, address}}
	}
	addrs, err := d.lookup(ctx, host)
	if err != nil {
		return nil
	}
	d.mu.Lock()
	d.host, d.addrs = host, addrs
	d.mu.Unlock()
	out := make([][2]string, 0, len(addrs))
	for _, a := range addrs {
		if ip, p, err := net.SplitHostPort(a); err == nil {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				continue
			}
			network, address := pgconn.NetworkAddress(ip, uint16(n))
			out = append(out, [2]string{network, address})
			continue
		}
		network, address := pgconn.NetworkAddress(a, port)
		out = append(out, [2]string{network, address})
	}
	return out
}

// Lookup is the pool's LookupFunc: the answer DialAhead got for host,
// once, else a lookup.
func (d *dialAhead) Lookup(ctx context.Context, host string) ([]string, error) {
	d.mu.Lock()
	addrs := d.addrs
	if addrs != nil && host == d.host {
		d.host, d.addrs = "", nil
	} else {
		addrs = nil
	}
	d.mu.Unlock()
	if addrs != nil {
		return addrs, nil
	}
	return d.lookup(ctx, host)
}

// FinishDialAhead closes the socket DialAhead opened when no connection
// took it (the connection went to another address, or was not made), and
// forgets its lookup.
func FinishDialAhead(pool *pgxpool.Pool) {
	v, ok := dialsAhead.Load(pool)
	if !ok {
		return
	}
	d := v.(*dialAhead)
	d.mu.Lock()
	conn := d.conn
	d.conn = nil
	d.host, d.addrs = "", nil
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

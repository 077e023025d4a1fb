package functest

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of a real server (Postgres, S3) that a
// test can take down and bring back, or freeze and thaw, to produce the
// transient faults the contract says must end in a 5xx, nothing
// half-written, and a successful retry.
type Proxy struct {
	Addr   string
	target string
	ln     net.Listener
	mu     sync.Mutex
	thawed *sync.Cond
	down   bool
	frozen bool
	conns  map[net.Conn]struct{}
	// budget is how many more bytes of the servers' answers the proxy
	// forwards before it goes down (CutAfter); negative for no limit.
	budget int64
}

// NewProxy starts a proxy to target ("host:port"), closed in t.Cleanup.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}, budget: -1}
	p.thawed = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.SetDown(true) })
	return p
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *Proxy) pipe(c net.Conn) {
	defer p.forget(c)
	p.waitThawed()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer p.forget(up)
	done := make(chan struct{}, 2)
	go func() { p.copy(up, c, false); done <- struct{}{} }()
	go func() { p.copy(c, up, true); done <- struct{}{} }()
	<-done
}

// copy forwards src to dst, holding what it read while the proxy is
// frozen; answer says src is the server, whose bytes count against the
// budget of CutAfter.
func (p *Proxy) copy(dst, src net.Conn, answer bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.waitThawed()
			if answer {
				n = p.spend(n)
			}
			if n == 0 {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// spend takes n bytes from the budget and returns how many of them may
// still be forwarded; once the budget is spent, the proxy is down.
func (p *Proxy) spend(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return 0
	}
	if p.budget < 0 {
		return n
	}
	if int64(n) >= p.budget {
		n = int(p.budget)
		p.budget = -1
		p.down = true
		go p.SetDown(true) // after this write: what was sent arrives, then the cut
	} else {
		p.budget -= int64(n)
	}
	return n
}

func (p *Proxy) waitThawed() {
	p.mu.Lock()
	for p.frozen && !p.down {
		p.thawed.Wait()
	}
	p.mu.Unlock()
}

func (p *Proxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// SetDown refuses new connections and cuts open ones (down) or lets
// connections through again.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	p.budget = -1
	if down {
		for c := range p.conns {
			c.Close()
		}
		p.thawed.Broadcast()
	}
}

// CutAfter lets the next n bytes of the servers' answers through (on all
// connections together) and then goes down as SetDown(true) does: an
// outage in the middle of a download, wherever the client's reading is,
// however much the kernel's buffers already hold.
func (p *Proxy) CutAfter(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.budget = n
}

// SetFrozen stops forwarding in both directions without closing anything
// (frozen), as a stalled server does: connections stay open, new ones are
// accepted but get no answer, and bytes already sent wait in the proxy.
// SetFrozen(false) forwards everything held and carries on.
func (p *Proxy) SetFrozen(frozen bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = frozen
	if !frozen {
		p.thawed.Broadcast()
	}
}

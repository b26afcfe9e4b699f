package plugintest

import (
	"database/sql"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/lib/pq"
)

// Proxy forwards 127.0.0.1 connections to the database, and can cut
// them all (and refuse new ones) until restored: a lost server, or a
// network gone, without touching the server other tests share.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func NewProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(c, u)
		go pipe(u, c)
	}
}

// Cut closes every connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Addr is where the proxy listens.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// ProxiedPostgres is a fresh test database, reached directly (for the
// test's own queries) and through a proxy (for the code under test).
func ProxiedPostgres(t *testing.T) (direct *sql.DB, dsn string, px *Proxy) {
	t.Helper()
	raw := PostgresDSN(t)
	cfg, err := pq.NewConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	px = NewProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	host, port, _ := net.SplitHostPort(px.Addr())
	if u, err := url.Parse(raw); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Host = px.Addr()
		dsn = u.String()
	} else {
		dsn = raw + " host=" + host + " port=" + port // lib/pq: a later key wins
	}
	direct, err = sql.Open("postgres", raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	return direct, dsn, px
}

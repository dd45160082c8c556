package dap

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	godap "github.com/google/go-dap"

	"github.com/plldb/plldb/adapter/local"
)

// A DAP session can start processes (a launch names any "python"), so a listener other machines can reach
// must know who is on the other end. ListenRemote's sessions therefore start behind a tokenGate: until a
// launch or attach request carries the token as its "token" attribute, the gate lets through only
// "initialize" (IDEs send it first, and it cannot carry extra fields) and "disconnect"; anything else gets an
// error response and the connection is closed. The gate works on the connection, below the session, so the
// session code is the same for every transport.

// authTimeout is how long an unauthenticated client may hold the listener (sessions are served one at a
// time): IDEs send initialize and launch at once.
const authTimeout = 30 * time.Second

// maxPreAuthBytes bounds what an unauthenticated client may send: go-dap reads a header line without limit.
const maxPreAuthBytes = 1 << 20

// ErrNotLoopback is returned (wrapped) by Listen for an address other machines can reach.
var ErrNotLoopback = errors.New("not a loopback address")

// checkLoopback refuses addresses that listen beyond this machine: "" and 0.0.0.0 / :: (every interface),
// other machines' addresses, and names other than localhost.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen for DAP clients on %q: want HOST:PORT: %w", addr, err)
	}
	if !local.IsLoopbackHost(host) {
		what := host
		if host == "" {
			what = "every interface"
		}
		return fmt.Errorf("listen for DAP clients on %s: %q is %w (%s): a DAP client can run commands on this machine, so plldb listens on 127.0.0.1 only; forward the port over SSH, or use --allow-remote, which requires a token", addr, host, ErrNotLoopback, what)
	}
	return nil
}

// ListenRemote listens on any address, loopback or not. Every session must authenticate with token (see
// tokenGate) before the adapter serves it.
func ListenRemote(addr, token string, opts Options) (*Listener, error) {
	if len(token) < 16 {
		return nil, errors.New("listen for remote DAP clients: the token must be at least 16 characters")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for DAP clients on %s: %w", addr, err)
	}
	return &Listener{ln: ln, opts: opts, token: token}, nil
}

// tokenGate is a client connection whose requests reach the session only once one launch or attach request
// carried the token. It removes the token from that request, so the session never sees it.
type tokenGate struct {
	conn  net.Conn
	token string
	log   *slog.Logger

	br      *bufio.Reader // reads conn through preAuthLimit
	pending []byte        // a frame let through, not yet read by the session
	authed  atomic.Bool
	timer   *time.Timer

	wmu sync.Mutex // the session writes whole frames per Write; the gate's refusal must not land inside one
}

func newTokenGate(conn net.Conn, token string, log *slog.Logger) *tokenGate {
	g := &tokenGate{conn: conn, token: token, log: log}
	g.br = bufio.NewReader(&preAuthLimit{g: g, left: maxPreAuthBytes})
	g.timer = time.AfterFunc(authTimeout, func() {
		if !g.authed.Load() {
			g.log.Warn("DAP client did not authenticate in time; closing", "remote", conn.RemoteAddr().String(), "timeout", authTimeout)
			_ = conn.Close()
		}
	})
	return g
}

// preAuthLimit stops an unauthenticated client after maxPreAuthBytes.
type preAuthLimit struct {
	g    *tokenGate
	left int64
}

func (p *preAuthLimit) Read(b []byte) (int, error) {
	if p.g.authed.Load() {
		return p.g.conn.Read(b)
	}
	if p.left <= 0 {
		return 0, errors.New("DAP client sent too much before authenticating")
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, err := p.g.conn.Read(b)
	p.left -= int64(n)
	return n, err
}

func (g *tokenGate) Read(p []byte) (int, error) {
	for len(g.pending) == 0 {
		if g.authed.Load() {
			return g.br.Read(p)
		}
		if err := g.admitNext(); err != nil {
			return 0, err
		}
	}
	n := copy(p, g.pending)
	g.pending = g.pending[n:]
	return n, nil
}

// admitNext reads one message of an unauthenticated client and lets it through, or refuses it and closes the
// connection.
func (g *tokenGate) admitNext() error {
	content, err := godap.ReadBaseMessage(g.br)
	if err != nil {
		return err
	}
	m, err := parseObj(content)
	if err != nil {
		return g.refuse(0, "", "the first messages must be DAP requests")
	}
	seq, _ := m.num("seq")
	command := m.str("command")
	if m.str("type") != "request" {
		return g.refuse(seq, command, "the first messages must be DAP requests")
	}
	switch command {
	case "initialize", "disconnect":
		g.pending = frame(content)
		return nil
	case "launch", "attach":
		args, _ := m.sub("arguments")
		var got string
		if args != nil {
			got = args.str("token")
		}
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(g.token)) != 1 {
			what := "a wrong"
			if got == "" {
				what = "no"
			}
			return g.refuse(seq, command, fmt.Sprintf(`%s: this plldb dap was started with --allow-remote and the request has %s "token" attribute; add "token": "<the token plldb printed on its stderr>" to the debug configuration`, command, what))
		}
		delete(args, "token")
		m["arguments"] = args.bytes()
		g.pending = frame(m.bytes())
		g.authed.Store(true)
		g.timer.Stop()
		g.log.Info("DAP client authenticated", "remote", g.conn.RemoteAddr().String())
		return nil
	default:
		return g.refuse(seq, command, fmt.Sprintf(`%q before launch: this plldb dap was started with --allow-remote, and a launch or attach request with the "token" attribute must come first`, command))
	}
}

// refuse answers the request with an error and closes the connection, which ends the session.
func (g *tokenGate) refuse(seq int, command, msg string) error {
	g.log.Warn("DAP client refused", "remote", g.conn.RemoteAddr().String(), "command", command)
	resp := obj{}
	resp.set("seq", 0)
	resp.set("type", "response")
	resp.set("request_seq", seq)
	resp.set("command", command)
	resp.set("success", false)
	resp.set("message", msg)
	resp.set("body", map[string]any{"error": map[string]any{"id": 1, "format": msg, "showUser": true}})
	_, _ = g.Write(frame(resp.bytes()))
	_ = g.conn.Close()
	return fmt.Errorf("DAP client refused: %s", msg)
}

func frame(content []byte) []byte {
	var b []byte
	b = fmt.Appendf(b, "Content-Length: %d\r\n\r\n", len(content))
	return append(b, content...)
}

func (g *tokenGate) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	return g.conn.Write(p)
}

func (g *tokenGate) Close() error {
	g.timer.Stop()
	return g.conn.Close()
}

var _ io.ReadWriteCloser = (*tokenGate)(nil)

// Package dap is plldb's debug adapter: it speaks the Debug Adapter Protocol to the IDE and proxies it to the
// debugpy inside every function's executor, so that all the functions of a template debug as one program.
//
// The design follows Delve's DAP server (service/dap/server.go): one session per connection, one goroutine that
// reads the IDE's requests and handles them in order (recovering from a panic in any of them), a single
// serialized sender, and generic handle maps that give the IDE ids that never collide across debuggees and are
// reset when their thread stops or resumes. debugpy's messages are proxied as raw JSON, patching only the ids the
// adapter remaps, so fields and events this adapter does not know reach the IDE unchanged; the messages the
// adapter builds itself are go-dap's types. The IDE sees one thread per invocation in flight, never the
// executor's own threads, and each invocation stops and resumes on its own (threads.go).
package dap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
)

// stdio joins stdin and stdout into one connection.
type stdio struct {
	io.Reader
	io.Writer
	closeOnce sync.Once
}

func (s *stdio) Close() error {
	s.closeOnce.Do(func() {
		if c, ok := s.Reader.(io.Closer); ok {
			_ = c.Close()
		}
	})
	return nil
}

// ServeStdio serves one debug session on r (the IDE's requests, normally os.Stdin) and w (normally os.Stdout).
// Nothing but DAP messages is ever written to w: logs go to opts.Logger.
func ServeStdio(ctx context.Context, r io.Reader, w io.Writer, opts Options) error {
	s := newSession(&stdio{Reader: r, Writer: w}, opts)
	s.detachedReader = true
	return s.run(ctx)
}

// Listener serves debug sessions on a TCP listener: one at a time, or side by side with a Host (which binds one
// IDE at a time and refuses the others).
type Listener struct {
	ln    net.Listener
	opts  Options
	token string // set by ListenRemote: every session must present it (see tokenGate)
}

// Listen listens on addr (host:port, port 0 picks one), which must be a loopback address: a DAP client can run
// commands on this machine. ListenRemote listens anywhere, with a token. Serve then accepts sessions.
func Listen(addr string, opts Options) (*Listener, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for DAP clients on %s: %w", addr, err)
	}
	return &Listener{ln: ln, opts: opts}, nil
}

// Addr is the address the listener accepts on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Serve accepts connections and serves one session per connection, sequentially, until ctx ends. A session's
// failure is logged and the next connection is served. With a Host the connections are served side by side,
// so that a second IDE hears at once that another one is attached (Host allows one at a time); Serve then
// returns once every session has ended.
func (l *Listener) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = l.ln.Close() })
	defer stop()
	defer l.ln.Close()
	var sessions sync.WaitGroup
	defer sessions.Wait()
	log := l.opts.Logger
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept DAP client: %w", err)
		}
		if log != nil {
			log.Info("DAP client connected", "remote", conn.RemoteAddr().String())
		}
		var rw io.ReadWriteCloser = conn
		if l.token != "" {
			gl := log
			if gl == nil {
				gl = slog.New(slog.DiscardHandler)
			}
			rw = newTokenGate(conn, l.token, gl)
		}
		serve := func() {
			if err := Serve(ctx, rw, l.opts); err != nil && log != nil {
				log.Warn("debug session ended with an error", "err", err)
			}
		}
		if l.opts.Host == nil {
			serve()
			continue
		}
		sessions.Add(1)
		go func() {
			defer sessions.Done()
			serve()
		}()
	}
}

// Close stops accepting.
func (l *Listener) Close() error { return l.ln.Close() }

package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// tcpRelay is the child's Runtime API when there is no debugging session: each connection of the child is
// joined to a connection of its own to the real Runtime API, and bytes are copied both ways unchanged (spliced
// in the kernel on Linux). Nothing is parsed, buffered or rewritten, so the runtime and the API see exactly
// what they would see without plldb (only the address differs), and the proxy's cost per invocation is a few
// wake-ups and splice calls instead of an HTTP round trip through net/http's client and server.
type tcpRelay struct {
	upstream string
	log      *slog.Logger
	// sel, in selective mode, reads the API's answers for knocks (selector); ctx bounds what it holds.
	sel *selector
	ctx context.Context

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newTCPRelay(upstream string, log *slog.Logger) *tcpRelay {
	return &tcpRelay{upstream: upstream, log: log, conns: map[net.Conn]struct{}{}}
}

// serve accepts the child's connections until ln is closed.
func (r *tcpRelay) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.log.Error("runtime api accept", "err", err)
			}
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.pipe(c)
		}()
	}
}

func (r *tcpRelay) track(c net.Conn, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.conns[c] = struct{}{}
	} else {
		delete(r.conns, c)
	}
}

// pipe joins one child connection to a new upstream connection until both directions are done.
func (r *tcpRelay) pipe(child net.Conn) {
	r.track(child, true)
	defer r.track(child, false)
	defer child.Close()
	up, err := net.DialTimeout("tcp", r.upstream, 5*time.Second)
	if err != nil {
		// The child meets a dead Runtime API as it would without plldb: its connection goes away.
		r.log.Error("the sandbox's Runtime API cannot be reached", "addr", r.upstream, "err", err)
		return
	}
	r.track(up, true)
	defer r.track(up, false)
	defer up.Close()
	done := make(chan struct{})
	var rc *relayConn
	if r.sel != nil {
		rc = newRelayConn(child)
	}
	go func() {
		defer close(done)
		// Child → API. When the child stops sending (it exited, or closed after its last request), the API
		// gets the same end of input and finishes answering what it was sent.
		var err error
		if rc != nil {
			err = r.sel.requests(rc, up)
		} else {
			_, err = io.Copy(up, child)
		}
		if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
			r.log.Debug("relay to the runtime api", "err", err)
		}
		closeWrite(up)
	}()
	// API → child.
	if r.sel != nil {
		err = r.sel.answers(r.ctx, rc, up)
	} else {
		_, err = io.Copy(child, up)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		r.log.Debug("relay to the runtime", "err", err)
	}
	closeWrite(child)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// shutdown waits up to grace for the relayed connections to end by themselves (an answer the child sent right
// before it exited is still delivered), then closes what is left, e.g. a poll of a child that died waiting.
func (r *tcpRelay) shutdown(grace time.Duration) {
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	r.mu.Lock()
	for c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	<-done
}

package wsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/plldb/plldb/bridge/wire"
)

var errClosing = errors.New("connection is closing")

// conn is one WebSocket connection and the state its goroutines share.
type conn struct {
	id   uint64
	ws   *websocket.Conn
	born time.Time

	// wlock serialises writers (gorilla allows one). It is a channel so waiting for it honours a context.
	wlock  chan struct{}
	closed bool // guarded by wlock: a close frame was sent, nothing more may be written

	// lastRecv is the monotonic time (ns since born) of the last message read or delivered; delivering counts
	// readers blocked handing an envelope to a slow consumer, during which the socket is not read and a missing
	// pong says nothing about the connection.
	lastRecv   atomic.Int64
	delivering atomic.Int32
	pingSent   atomic.Int64 // ns since born of the last ping, taken under the write lock just before the write

	readDone chan struct{} // closed when the reader goroutine exits

	deadOnce sync.Once
	dead     chan struct{} // closed by kill
	deadErr  error         // written before dead is closed

	kaOnce sync.Once
	kaStop chan struct{} // closed to end the keepalive when the connection is replaced
}

func newConn(id uint64, ws *websocket.Conn) *conn {
	return &conn{
		id:       id,
		ws:       ws,
		born:     time.Now(),
		wlock:    make(chan struct{}, 1),
		readDone: make(chan struct{}),
		dead:     make(chan struct{}),
		kaStop:   make(chan struct{}),
	}
}

func (cn *conn) now() int64 { return int64(time.Since(cn.born)) }

func (cn *conn) touch() { cn.lastRecv.Store(cn.now()) }

// kill marks the connection dead and closes the socket without a close handshake, which unblocks its reader.
func (cn *conn) kill(err error) {
	cn.deadOnce.Do(func() {
		cn.deadErr = err
		close(cn.dead)
		_ = cn.ws.Close()
	})
}

func (cn *conn) isDead() bool {
	select {
	case <-cn.dead:
		return true
	default:
		return false
	}
}

// reason is why the connection died; valid once isDead.
func (cn *conn) reason() error {
	if !cn.isDead() {
		return nil
	}
	return cn.deadErr
}

func (cn *conn) stopKeepalive() { cn.kaOnce.Do(func() { close(cn.kaStop) }) }

func (cn *conn) lock(ctx context.Context) error {
	select {
	case cn.wlock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-cn.dead:
		return fmt.Errorf("connection %d is dead: %w", cn.id, cn.deadErr)
	}
}

func (cn *conn) unlock() { <-cn.wlock }

// writeMessages writes msgs back to back while holding the write lock. ctx is checked between messages; a write
// error kills the connection.
func (cn *conn) writeMessages(ctx context.Context, msgs [][]byte) error {
	if err := cn.lock(ctx); err != nil {
		return err
	}
	defer cn.unlock()
	for i, m := range msgs {
		if i > 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("after message %d of %d: %w", i, len(msgs), err)
			}
		}
		if err := cn.writeLocked(m); err != nil {
			return fmt.Errorf("write message %d of %d: %w", i+1, len(msgs), err)
		}
	}
	return nil
}

// writeLocked writes one message through NextWriter, which fragments it into frames of at most the dialer's
// WriteBufferSize (wire.MaxFrameBytes). The caller holds the write lock.
func (cn *conn) writeLocked(m []byte) error {
	if cn.closed {
		return errClosing
	}
	if cn.isDead() {
		return fmt.Errorf("connection %d is dead: %w", cn.id, cn.deadErr)
	}
	err := cn.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err == nil {
		var w io.WriteCloser
		w, err = cn.ws.NextWriter(websocket.TextMessage)
		if err == nil {
			_, err = w.Write(m)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		// After a failed or timed-out write the connection's framing is unknown: it cannot be used again.
		cn.kill(fmt.Errorf("write: %w", err))
		return err
	}
	return nil
}

// readLoop is the only reader of cn. It hands envelopes to Recv and ends when the socket fails or is closed.
func (c *Client) readLoop(cn *conn) {
	defer c.wg.Done()
	defer close(cn.readDone)
	cn.touch()
	for {
		_, data, err := cn.ws.ReadMessage()
		if err != nil {
			cn.kill(fmt.Errorf("read: %w", err))
			return
		}
		cn.touch()
		env := c.handle(cn.id, data)
		if env == nil {
			continue
		}
		if c.ctx.Err() != nil {
			continue // closing: nobody reads Recv any more; keep reading so the close handshake completes
		}
		cn.delivering.Add(1)
		select {
		case c.recv <- env:
		case <-c.ctx.Done():
		}
		cn.delivering.Add(-1)
		cn.touch()
	}
}

// handle decodes one received message. It returns the envelope to deliver, or nil for pongs, incomplete chunked
// messages and messages that cannot be decoded or reassembled (logged without their payload, then dropped).
func (c *Client) handle(connID uint64, data []byte) *wire.Envelope {
	env, err := wire.Unmarshal(data)
	if err != nil {
		c.log.Warn("dropping undecodable message", "conn", connID, "bytes", len(data), "err", err)
		return nil
	}
	switch env.T {
	case wire.TypePong:
		return nil // liveness was recorded by the reader
	case wire.TypeChunk:
		whole, err := c.reasm.Add(env)
		if err != nil {
			c.log.Warn("dropping chunked message: reassembly failed", "conn", connID, "id", env.ID,
				"from", env.From, "err", err)
			return nil
		}
		return whole
	default:
		return env
	}
}

// keepalive sends a wire ping every HeartbeatInterval while cn is the current connection and kills cn when
// nothing arrives within PongTimeout of a ping. Pings keep their cadence while a pong is awaited, because they
// are also what keeps API Gateway's idle timer from firing.
func (c *Client) keepalive(cn *conn) {
	defer c.wg.Done()
	if c.cfg.HeartbeatInterval <= 0 {
		return
	}
	tick := time.NewTicker(c.cfg.HeartbeatInterval)
	defer tick.Stop()
	pong := time.NewTimer(c.cfg.PongTimeout)
	pong.Stop()
	defer pong.Stop()
	var (
		waiting bool  // a pong timeout is running
		since   int64 // pingSent of the ping it is for
	)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-cn.dead:
			return
		case <-cn.kaStop:
			return
		case <-pong.C:
			waiting = false
			if cn.lastRecv.Load() < since && cn.delivering.Load() == 0 {
				c.log.Warn("connection dead: no pong", "conn", cn.id, "pong_timeout", c.cfg.PongTimeout)
				cn.kill(errPongTimeout)
				return
			}
		case <-tick.C:
			if err := c.ping(cn); err != nil {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, errClosing) {
					c.log.Debug("heartbeat stopped", "conn", cn.id, "err", err)
				}
				return
			}
			if !waiting {
				waiting, since = true, cn.pingSent.Load()
				pong.Reset(c.cfg.PongTimeout)
			}
		}
	}
}

func (c *Client) ping(cn *conn) error {
	e, err := wire.NewEnvelope(wire.TypePing, "ping-"+strconv.FormatUint(c.pingSeq.Add(1), 10),
		wire.Ping{Sent: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("build ping: %w", err)
	}
	msg, err := wire.Marshal(e)
	if err != nil {
		return fmt.Errorf("marshal ping: %w", err)
	}
	return c.writePing(cn, msg)
}

// writePing takes pingSent under the write lock just before the write, so a pong can never predate it and a ping
// queued behind a long Send does not start its timeout early.
func (c *Client) writePing(cn *conn, msg []byte) error {
	if err := cn.lock(c.ctx); err != nil {
		return err
	}
	defer cn.unlock()
	cn.pingSent.Store(cn.now())
	return cn.writeLocked(msg)
}

// drain reads a replaced connection until the relay closes it or DrainTimeout passes, so messages already routed
// to it are not lost, then closes it with 1000.
func (c *Client) drain(old *conn) {
	defer c.wg.Done()
	t := time.NewTimer(c.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-old.readDone:
	case <-t.C:
	case <-c.ctx.Done():
	}
	// Nobody waits on this goroutine, so it can give the relay time to answer the close: messages it routed to
	// the old connection before the switch arrive ahead of its close frame.
	c.closeConn(old, false, "reconnected", max(closeWait, c.cfg.DrainTimeout))
	c.log.Debug("old connection closed", "conn", old.id)
}

// closeConn closes cn with 1000 (after a bye envelope when bye is set), waits up to wait for the peer's close
// frame so messages it sent before it are still read, and then closes the socket. It never waits on the
// consumer of Recv.
func (c *Client) closeConn(cn *conn, bye bool, why string, wait time.Duration) {
	cn.stopKeepalive()
	if !cn.isDead() {
		lctx, lcancel := context.WithTimeout(context.Background(), closeWait)
		locked := cn.lock(lctx) == nil
		lcancel()
		if locked {
			if !cn.closed {
				if bye {
					if err := c.writeBye(cn, why); err != nil {
						c.log.Debug("bye not sent", "conn", cn.id, "err", err)
					}
				}
				if !cn.isDead() {
					msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, why)
					if err := cn.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait)); err != nil {
						c.log.Debug("close frame not sent", "conn", cn.id, "err", err)
					}
				}
				cn.closed = true
			}
			cn.unlock()
		}
		var closing <-chan struct{}
		if wait > closeWait {
			closing = c.ctx.Done() // a long wait must not hold up Close
		}
		t := time.NewTimer(wait)
		select {
		case <-cn.readDone:
		case <-t.C:
		case <-closing:
		}
		t.Stop()
	}
	cn.kill(errClosing)
}

// writeBye writes a bye envelope; the caller holds the write lock.
func (c *Client) writeBye(cn *conn, why string) error {
	e, err := wire.NewEnvelope(wire.TypeBye, "", wire.Bye{Reason: why})
	if err != nil {
		return fmt.Errorf("build bye: %w", err)
	}
	msg, err := wire.Marshal(e)
	if err != nil {
		return fmt.Errorf("marshal bye: %w", err)
	}
	return cn.writeLocked(msg)
}

// backoff returns the wait before reconnect attempt n: uniformly random between min and min·2ⁿ, capped at max
// ("full jitter" above a floor, so clients that lost the relay together do not come back together).
func backoff(minD, maxD time.Duration, n int) time.Duration {
	ceil := maxD
	if n < 62 {
		if c := minD << n; c > 0 && c < maxD {
			ceil = c
		}
	}
	if ceil <= minD {
		return minD
	}
	return minD + rand.N(ceil-minD+1)
}

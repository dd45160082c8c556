package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"

	"github.com/plldb/plldb/bridge/relay"
)

// conn is one live WebSocket connection.
type conn struct {
	g     *Gateway
	id    string
	hs    handshake
	authz map[string]any
	ws    *websocket.Conn
	raw   *sniffConn
	log   *slog.Logger

	lastActive atomic.Int64  // unix nanoseconds of the last data message in either direction
	writeSem   chan struct{} // one slot: serialises posts, and makes a close frame wait for a post in flight
	ready      chan struct{} // closed once the upgrade finished (ws set) or failed (ws nil)
	closing    atomic.Bool   // a close is under way: nothing more is routed or posted
	done       chan struct{} // closed once the reader goroutine (and $disconnect) finished

	mu            sync.Mutex
	closeCode     int
	closeReason   string
	idleTimer     *time.Timer
	lifeTimer     *time.Timer
	timersStopped bool
}

// newConn returns a connection that is registered before its upgrade; attach or abandon completes it.
func newConn(g *Gateway, hs handshake, authz map[string]any, log *slog.Logger) *conn {
	c := &conn{
		g:        g,
		id:       hs.connID,
		hs:       hs,
		authz:    authz,
		log:      log,
		writeSem: make(chan struct{}, 1),
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.touch()
	return c
}

// attach completes a successful upgrade. Until then ws and raw are nil and everyone waits on ready.
func (c *conn) attach(ws *websocket.Conn, raw *sniffConn) {
	c.ws, c.raw = ws, raw
	ws.SetReadLimit(int64(c.g.cfg.MaxMessageBytes))
	ws.SetCloseHandler(c.peerClosed)
	c.touch()
	c.startTimers()
	close(c.ready)
}

// abandon ends a connection whose upgrade failed after $connect accepted it.
func (c *conn) abandon() {
	c.markClosing(websocket.CloseAbnormalClosure, "Upgrade failed")
	c.g.unregister(c)
	close(c.ready)
	c.g.disconnect(c.hs, c.authz, websocket.CloseAbnormalClosure, "Upgrade failed", c.log)
	close(c.done)
	c.g.wg.Done()
}

func (c *conn) touch() {
	c.lastActive.Store(time.Now().UnixNano())
}

func (c *conn) startTimers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idleTimer = time.AfterFunc(c.g.cfg.IdleTimeout, c.checkIdle)
	c.lifeTimer = time.AfterFunc(c.g.cfg.MaxConnDuration, func() {
		c.log.Info("connection reached its maximum duration", "max", c.g.cfg.MaxConnDuration)
		c.initiateClose(websocket.CloseGoingAway, "Going away")
	})
}

// checkIdle runs when the idle timer fires. Traffic does not reset the timer (that would cost a timer
// operation per message); the timer instead re-arms itself for the time left since the last message.
func (c *conn) checkIdle() {
	rest := c.g.cfg.IdleTimeout - time.Since(time.Unix(0, c.lastActive.Load()))
	if rest > 0 {
		c.mu.Lock()
		if !c.timersStopped {
			c.idleTimer.Reset(rest)
		}
		c.mu.Unlock()
		return
	}
	c.log.Info("connection idle", "timeout", c.g.cfg.IdleTimeout)
	c.initiateClose(websocket.CloseGoingAway, "Going away")
}

func (c *conn) stopTimers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timersStopped = true
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	if c.lifeTimer != nil {
		c.lifeTimer.Stop()
	}
}

// markClosing records why the connection ends. The first reason wins; it reports whether this call was first.
func (c *conn) markClosing(code int, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing.Load() {
		return false
	}
	c.closeCode, c.closeReason = code, reason
	c.closing.Store(true)
	return true
}

func (c *conn) closeStatus() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode, c.closeReason
}

// initiateClose starts a server-side close: the connection leaves the registry at once (posts get 410), the
// close frame goes out after any post in flight, and the reader goroutine waits a moment for the client's
// reply before hanging up and running $disconnect. Safe from any goroutine; later calls do nothing.
func (c *conn) initiateClose(code int, reason string) {
	if !c.markClosing(code, reason) {
		return
	}
	c.g.unregister(c)
	<-c.ready
	if c.ws == nil {
		return
	}
	c.log.Info("closing connection", "code", code, "reason", reason)
	wait := time.NewTimer(closeWriteWait)
	defer wait.Stop()
	select {
	case c.writeSem <- struct{}{}:
		err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(closeWriteWait))
		<-c.writeSem
		if err != nil {
			_ = c.raw.Close()
			return
		}
	case <-wait.C:
		// A post is stuck behind a client that does not read; hanging up also fails that post.
		_ = c.raw.Close()
		return
	}
	_ = c.raw.SetReadDeadline(time.Now().Add(closeGrace))
}

// peerClosed is the gorilla close handler: it runs on the reader goroutine when the client's close frame arrives.
func (c *conn) peerClosed(code int, text string) error {
	if !c.markClosing(code, text) {
		return nil // the client's reply to our close
	}
	c.g.unregister(c)
	// Echo the code as RFC 6455 asks; gorilla does not answer 1005 (no status) with a body.
	msg := []byte{}
	if code != websocket.CloseNoStatusReceived {
		msg = websocket.FormatCloseMessage(code, "")
	}
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWriteWait))
	return nil
}

// run is the connection's reader goroutine: one message at a time to $default, in arrival order, then
// $disconnect exactly once.
func (c *conn) run() {
	defer c.finish()
	for {
		mt, r, err := c.ws.NextReader()
		var data []byte
		if err == nil {
			data, err = io.ReadAll(r)
		}
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.closing.Load() {
			continue // API Gateway routes nothing after a close began; keep reading for the close reply
		}
		c.touch()
		c.g.route(c, mt, data)
	}
}

func (c *conn) readFailed(err error) {
	var ce *websocket.CloseError
	switch {
	case c.raw.frameTooBig():
		c.log.Warn("inbound frame over the limit; closing 1009", "limit", c.g.cfg.MaxFrameBytes)
		c.initiateClose(websocket.CloseMessageTooBig, "Message too big")
		c.raw.drain(time.Now().Add(closeGrace), drainLimit)
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent the 1009 close frame.
		c.log.Warn("inbound message over the limit; closed 1009", "limit", c.g.cfg.MaxMessageBytes)
		if c.markClosing(websocket.CloseMessageTooBig, "Message too big") {
			c.g.unregister(c)
		}
		c.raw.drain(time.Now().Add(closeGrace), drainLimit)
	case errors.As(err, &ce):
		// Close handshake complete (peerClosed or initiateClose recorded the status).
	default:
		if c.markClosing(websocket.CloseAbnormalClosure, "Connection lost") {
			c.log.Info("connection lost", "err", err)
		}
	}
}

func (c *conn) finish() {
	c.markClosing(websocket.CloseAbnormalClosure, "Connection lost")
	c.g.unregister(c)
	c.stopTimers()
	_ = c.ws.Close()
	code, reason := c.closeStatus()
	c.g.disconnect(c.hs, c.authz, code, reason, c.log)
	close(c.done)
	c.g.wg.Done()
}

// route runs $default for one inbound message.
func (g *Gateway) route(c *conn, mt int, data []byte) {
	c.log.Debug("message", "bytes", len(data), "binary", mt == websocket.BinaryMessage)
	ev := g.baseEvent(c.hs, c.authz, "$default", "MESSAGE")
	ev.RequestContext.MessageID = newAWSID()
	if mt == websocket.BinaryMessage {
		ev.Body = base64.StdEncoding.EncodeToString(data)
		ev.IsBase64Encoded = true
	} else {
		ev.Body = string(data)
	}
	var err error
	if routes := g.currentRoutes(); routes == nil {
		err = errors.New("no routes set")
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), integrationTimeout)
		_, err = invoke("$default", func() (events.APIGatewayProxyResponse, error) { return routes.Default(ctx, ev) })
		cancel()
	}
	if err == nil {
		return
	}
	// API Gateway keeps the connection and tells the client, in a message of its own, that the integration
	// failed.
	c.log.Error("$default handler failed", "err", err, "request", ev.RequestContext.RequestID, "bytes", len(data))
	msg, _ := json.Marshal(struct {
		Message      string `json:"message"`
		ConnectionID string `json:"connectionId"`
		RequestID    string `json:"requestId"`
	}{"Internal server error", c.id, ev.RequestContext.RequestID})
	if serr := c.send(context.Background(), msg); serr != nil {
		c.log.Debug("could not report the handler error to the client", "err", serr)
	}
}

// send writes one message, cut into frames of at most MaxFrameBytes. Posts to one connection are serialised.
// A cancelled ctx in mid-write hangs up the connection: half a message cannot be taken back, so the
// connection could not carry another one anyway.
func (c *conn) send(ctx context.Context, data []byte) error {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return fmt.Errorf("post to connection %s: %w", relay.LogRef(c.id), ctx.Err())
	}
	if c.ws == nil {
		return fmt.Errorf("post to connection %s: %w", relay.LogRef(c.id), relay.ErrGone)
	}
	select {
	case c.writeSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("post to connection %s: %w", relay.LogRef(c.id), ctx.Err())
	case <-c.done:
		return fmt.Errorf("post to connection %s: %w", relay.LogRef(c.id), relay.ErrGone)
	}
	defer func() { <-c.writeSem }()
	if c.closing.Load() {
		return fmt.Errorf("post to connection %s: %w", relay.LogRef(c.id), relay.ErrGone)
	}
	// select picks at random among ready cases: a context that ended while we waited must not start a write
	// (the AfterFunc below would hang up a healthy connection).
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("post to connection %s: %w", relay.LogRef(c.id), err)
	}
	deadline := time.Now().Add(writeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// Safe without gorilla's lock: only data writers read the write deadline, and they all hold writeSem.
	_ = c.ws.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.raw.Close() })
	err := c.writeMessage(data)
	if !stop() && err != nil {
		return fmt.Errorf("post to connection %s: %w", relay.LogRef(c.id), ctx.Err())
	}
	if err != nil {
		_ = c.raw.Close() // gorilla's writer is dead after a failed write; the reader sees it and runs $disconnect
		return fmt.Errorf("post to connection %s: %w: %w", relay.LogRef(c.id), relay.ErrGone, err)
	}
	c.touch()
	c.log.Debug("posted", "bytes", len(data))
	return nil
}

func (c *conn) writeMessage(data []byte) error {
	mt := websocket.TextMessage
	if !utf8.Valid(data) {
		mt = websocket.BinaryMessage // invalid UTF-8 in a text frame is a protocol error for the client
	}
	w, err := c.ws.NextWriter(mt)
	if err != nil {
		return fmt.Errorf("start message: %w", err)
	}
	frame := c.g.cfg.MaxFrameBytes
	for off := 0; off < len(data); off += frame {
		end := min(off+frame, len(data))
		// Never hand gorilla more than one frame at a time: a server-side Write larger than twice the buffer
		// bypasses the buffer and goes out as a single frame.
		if _, err := w.Write(data[off:end]); err != nil {
			_ = w.Close()
			return fmt.Errorf("write bytes %d-%d: %w", off, end, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("finish message: %w", err)
	}
	return nil
}

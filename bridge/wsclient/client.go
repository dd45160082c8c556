// Package wsclient is the resilient WebSocket client that the Lambda layer proxy (role function) and the
// developer's adapter (role developer) use to talk to the relay.
//
// The relay is an API Gateway WebSocket API, or the embedded gateway that behaves like one. API Gateway closes a
// connection after 10 minutes without traffic and at 2 hours of age, and closes it with 1009 on any frame over
// 32 KB or message over 128 KB. The client therefore:
//
//   - splits every envelope with wire.Split and writes frames of at most wire.MaxFrameBytes (gorilla fragments
//     client-side writes at its write buffer size, which is set to that limit);
//   - sends wire ping envelopes as a heartbeat (API Gateway does not reliably count control frames as traffic)
//     and declares a connection dead when nothing at all arrives within PongTimeout of a ping;
//   - reconnects with exponential backoff and full jitter when a connection dies, holding Send calls until the
//     new connection is up, and gives up only when the relay refuses the handshake (401/403, other 4xx);
//   - replaces the connection before the 2 hour cap: it dials the new one first, runs OnConnect on it, moves Send
//     traffic to it, and keeps reading the old one until it closes or DrainTimeout passes.
//
// Goroutine model: one supervisor goroutine (run) owns the choice of the current connection and every
// reconnect. Each connection has a reader goroutine, which is the only caller of ReadMessage on it, and, while it
// is the current connection, a keepalive goroutine. Writes to a connection are serialised by a per-connection
// lock held for a whole Send, so the messages of one envelope go out back to back on one connection. A replaced
// connection gets a drain goroutine that closes it. Close cancels the client's context; the supervisor then
// closes the connections, waits for every other goroutine and finally closes Recv and Done.
package wsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/plldb/plldb/bridge/wire"
)

// Defaults for the zero values of Config.
const (
	DefaultHeartbeatInterval = 4 * time.Minute // below API Gateway's 10 minute idle timeout
	DefaultPongTimeout       = 10 * time.Second
	DefaultMaxConnAge        = 110 * time.Minute // below API Gateway's 2 hour connection cap
	DefaultBackoffMin        = 100 * time.Millisecond
	DefaultBackoffMax        = 30 * time.Second
	DefaultDrainTimeout      = 10 * time.Second
)

const (
	// writeTimeout bounds one message write (at most 128 KB), so a stalled peer kills the connection instead of
	// blocking Send forever.
	writeTimeout = 15 * time.Second
	// handshakeTimeout bounds the HTTP upgrade when the caller's context has no deadline.
	handshakeTimeout = 15 * time.Second
	// closeWait is how long Close and a finished drain wait for the peer's close frame, and how long Close waits
	// for an in-progress write before cutting the connection.
	closeWait = time.Second
	// expireInterval is how often incomplete chunked messages are checked for expiry.
	expireInterval = time.Second
	// recvBuffer lets readers run a little ahead of a slow consumer of Recv.
	recvBuffer = 64
)

var (
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("wsclient: client closed")
	// ErrUnauthorized means the relay refused the WebSocket handshake with 401 or 403: the ticket was rejected.
	// It is never retried.
	ErrUnauthorized = errors.New("wsclient: handshake refused: unauthorized")
	// errPongTimeout marks a connection on which nothing arrived within PongTimeout of a ping.
	errPongTimeout = errors.New("no pong or other message within the pong timeout")
)

// Config configures a Client. Only URL is required.
type Config struct {
	URL string // ws:// or wss://
	// Ticket is called for every dial (tickets are single-use); its result is sent as
	// "Authorization: Bearer <ticket>" and never logged. Nil sends no Authorization header. An error is retried
	// with backoff unless it is wrapped with Permanent.
	Ticket func(ctx context.Context) (string, error)
	Header http.Header // extra handshake headers

	// HeartbeatInterval is how often a wire ping envelope is sent. 0 → 4 min; negative disables the heartbeat.
	HeartbeatInterval time.Duration
	// PongTimeout: nothing received (pong or any other message) this long after a ping → the connection is dead.
	// 0 → 10 s.
	PongTimeout time.Duration
	// MaxConnAge triggers a planned reconnect before API Gateway's 2 h cap. 0 → 1 h 50 min; negative disables it.
	MaxConnAge time.Duration
	// BackoffMin and BackoffMax bound the exponential reconnect backoff (with full jitter). 0 → 100 ms, 30 s.
	BackoffMin, BackoffMax time.Duration
	// DrainTimeout is how long a replaced connection is still read after a planned switch. 0 → 10 s.
	DrainTimeout time.Duration
	// OnConnect runs on every new connection before Send traffic moves to it (e.g. to send hello). Calls to
	// c.Send with the ctx passed to OnConnect (or one derived from it) go to the new connection; an error fails
	// that connection, which is then retried like a failed dial.
	OnConnect func(ctx context.Context, c *Client) error
	// Logger receives connection events, never payloads or tickets. Nil → slog.Default().
	Logger *slog.Logger
}

// Permanent marks an error returned by Config.Ticket or Config.OnConnect as not worth retrying: Dial returns it
// at once and a reconnecting client gives up.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Client is a WebSocket connection to the relay that survives connection loss and API Gateway's limits.
type Client struct {
	cfg    Config
	log    *slog.Logger
	dialer websocket.Dialer
	target string // cfg.URL without query or user info, for logs

	ctx    context.Context // cancelled by Close; the lifetime of every goroutine
	cancel context.CancelFunc

	mu      sync.Mutex
	cur     *conn         // the connection Send writes to; nil while disconnected
	changed chan struct{} // closed and replaced whenever cur or stopped changes
	stopped bool
	err     error // why the client stopped

	recv chan *wire.Envelope
	done chan struct{}

	// reasm is shared by all readers (it is safe for concurrent use): the chunks of one message may arrive
	// partly on a replaced connection and partly on its successor.
	reasm *wire.Reassembler

	wg        sync.WaitGroup // every goroutine except the supervisor
	closeOnce sync.Once
	connSeq   atomic.Uint64
	pingSeq   atomic.Uint64
}

// Dial connects to cfg.URL and returns once the first connection is up and OnConnect has succeeded on it.
// Network errors and 5xx/408/429 handshake answers are retried with backoff until ctx is done; a handshake
// refused with 401 or 403 returns an error wrapping ErrUnauthorized at once, as does any other 4xx answer or an
// invalid Config. ctx bounds only the dial: the client lives until Close or until it gives up.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL) // validated by normalize
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Client{
		cfg:    cfg,
		log:    log.With("component", "wsclient", "url", u.String()),
		target: u.String(),
		dialer: websocket.Dialer{
			Proxy:            http.ProxyFromEnvironment,
			HandshakeTimeout: handshakeTimeout,
			ReadBufferSize:   wire.MaxFrameBytes,
			// Client-side writes are cut into frames of at most the write buffer size (gorilla v1.5.3
			// messageWriter: only the server side has an unbuffered large-write path), which keeps every frame
			// within API Gateway's 32 KB limit.
			WriteBufferSize: wire.MaxFrameBytes,
		},
		changed: make(chan struct{}),
		recv:    make(chan *wire.Envelope, recvBuffer),
		done:    make(chan struct{}),
		reasm:   wire.NewReassembler(wire.ReassemblerOptions{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	// Cancelling ctx must abort the dial, and so must Close (not reachable yet, but keeps connect uniform).
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	cn, err := c.connectRetry(dctx, false, 0)
	if err != nil {
		c.cancel()
		c.wg.Wait()
		return nil, err
	}
	c.setCurrent(cn)
	go c.run(cn)
	return c, nil
}

func (cfg *Config) normalize() error {
	if cfg.URL == "" {
		return errors.New("wsclient: config: URL is empty")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return fmt.Errorf("wsclient: config: parse URL: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return fmt.Errorf("wsclient: config: URL scheme %q is not ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("wsclient: config: URL has no host")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
		neg  bool // negative allowed (disables the feature)
	}{
		{"HeartbeatInterval", &cfg.HeartbeatInterval, DefaultHeartbeatInterval, true},
		{"PongTimeout", &cfg.PongTimeout, DefaultPongTimeout, false},
		{"MaxConnAge", &cfg.MaxConnAge, DefaultMaxConnAge, true},
		{"BackoffMin", &cfg.BackoffMin, DefaultBackoffMin, false},
		{"BackoffMax", &cfg.BackoffMax, DefaultBackoffMax, false},
		{"DrainTimeout", &cfg.DrainTimeout, DefaultDrainTimeout, false},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0 && !d.neg:
			return fmt.Errorf("wsclient: config: %s is negative (%v)", d.name, *d.v)
		}
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		return fmt.Errorf("wsclient: config: BackoffMax %v is below BackoffMin %v", cfg.BackoffMax, cfg.BackoffMin)
	}
	for k := range cfg.Header {
		switch ck := http.CanonicalHeaderKey(k); ck {
		case "Authorization":
			return errors.New("wsclient: config: Header must not set Authorization; use Ticket")
		case "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions":
			// gorilla refuses these on every dial, which would otherwise be retried forever.
			return fmt.Errorf("wsclient: config: Header must not set %s; the WebSocket handshake sets it", ck)
		}
	}
	return nil
}

// Recv returns the reassembled envelopes in arrival order. Pongs are consumed internally. The channel is closed
// after Close or when the client gives up.
func (c *Client) Recv() <-chan *wire.Envelope { return c.recv }

// Done is closed once the client has stopped, after Close or because it gave up (see Err).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the client stopped: nil while it runs, ErrClosed after Close, or the error it gave up on (for
// example one wrapping ErrUnauthorized when the relay refused a reconnect).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Connected reports whether Send would write to a live connection right now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.stopped && c.cur != nil && !c.cur.isDead()
}

// Close sends bye, closes the connection with 1000, stops every goroutine and closes Recv. It waits for all of
// that and is safe to call more than once and concurrently.
func (c *Client) Close() error {
	c.closeOnce.Do(c.cancel)
	<-c.done
	return nil
}

type connKey struct{}

// Send splits e with wire.Split and writes the resulting messages on the current connection. While the client is
// disconnected it waits for the reconnect (or ctx). If the connection dies during the write, the envelope is
// split again and written whole on the next connection; the receiver drops the orphaned chunks of the first
// attempt when they expire. Send is safe for concurrent use.
func (c *Client) Send(ctx context.Context, e *wire.Envelope) error {
	if e == nil {
		return errors.New("wsclient: send: nil envelope")
	}
	if cn, ok := ctx.Value(connKey{}).(*conn); ok {
		// OnConnect traffic goes to the connection being set up, not the current one.
		msgs, err := wire.Split(e)
		if err != nil {
			return fmt.Errorf("wsclient: send %s %q: split: %w", e.T, e.ID, err)
		}
		if err := cn.writeMessages(ctx, msgs); err != nil {
			return fmt.Errorf("wsclient: send %s %q on new connection %d: %w", e.T, e.ID, cn.id, err)
		}
		return nil
	}
	var failed *conn
	for {
		cn, err := c.waitConn(ctx, failed)
		if err != nil {
			return fmt.Errorf("wsclient: send %s %q: %w", e.T, e.ID, err)
		}
		msgs, err := wire.Split(e)
		if err != nil {
			return fmt.Errorf("wsclient: send %s %q: split: %w", e.T, e.ID, err)
		}
		err = cn.writeMessages(ctx, msgs)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wsclient: send %s %q: %w", e.T, e.ID, ctx.Err())
		}
		c.log.Debug("send failed, retrying on the next connection", "conn", cn.id, "type", e.T, "err", err)
		failed = cn
	}
}

// waitConn returns the current connection, waiting while there is none or while it is avoid (a connection a
// write just failed on, which the supervisor has not replaced yet).
func (c *Client) waitConn(ctx context.Context, avoid *conn) (*conn, error) {
	for {
		c.mu.Lock()
		if c.stopped {
			err := c.err
			c.mu.Unlock()
			return nil, err
		}
		cn, ch := c.cur, c.changed
		c.mu.Unlock()
		if cn != nil && cn != avoid && !cn.isDead() {
			return cn, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for connection: %w", ctx.Err())
		case <-ch:
		case <-deadCh(cn):
		}
	}
}

// deadCh returns a channel that is closed when cn dies, so a waiter notices a dead current connection before the
// supervisor replaces it; nil (never ready) when there is nothing to watch.
func deadCh(cn *conn) <-chan struct{} {
	if cn == nil || cn.isDead() {
		return nil
	}
	return cn.dead
}

func (c *Client) setCurrent(cn *conn) {
	c.mu.Lock()
	c.cur = cn
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *Client) setStopped(err error) {
	c.mu.Lock()
	if !c.stopped {
		c.stopped, c.err = true, err
		close(c.changed)
		c.changed = make(chan struct{})
	}
	c.mu.Unlock()
}

// run is the supervisor: it watches the current connection, reconnects when it dies, replaces it before
// MaxConnAge, expires incomplete chunked messages, and shuts everything down on Close or on a permanent error.
func (c *Client) run(cur *conn) {
	defer c.shutdown()
	age := newTimer(c.cfg.MaxConnAge)
	defer age.Stop()
	expire := time.NewTicker(expireInterval)
	defer expire.Stop()
	// quickLosses counts connections in a row that died young; backoff starts that far up the curve, so a relay
	// that accepts and immediately drops connections is not hammered.
	quickLosses := 0
	for {
		select {
		case <-c.ctx.Done():
			c.setStopped(ErrClosed)
			c.closeConn(cur, true, "client closed", closeWait)
			return

		case <-cur.readDone:
			c.setCurrent(nil)
			c.log.Warn("connection lost, reconnecting", "conn", cur.id, "err", cur.reason(),
				"age", time.Since(cur.born).Round(time.Millisecond))
			c.closeConn(cur, false, "", closeWait)
			if time.Since(cur.born) < c.cfg.BackoffMax {
				quickLosses++
			} else {
				quickLosses = 0
			}
			next, err := c.connectRetry(c.ctx, true, quickLosses)
			if err != nil {
				if c.ctx.Err() != nil {
					c.setStopped(ErrClosed)
				} else {
					c.log.Error("giving up on the relay", "err", err)
					c.setStopped(err)
				}
				return
			}
			cur = next
			c.setCurrent(cur)
			age.Reset(c.cfg.MaxConnAge)

		case <-age.C():
			next, err := c.connect(c.ctx)
			if err != nil {
				if c.ctx.Err() != nil {
					continue // Close: handled by the ctx case
				}
				if isPermanent(err) {
					c.log.Error("planned reconnect refused, giving up", "err", err)
					c.setStopped(err)
					c.closeConn(cur, true, "giving up", closeWait)
					return
				}
				// The old connection still has time before the hard cap; try again soon.
				wait := backoff(c.cfg.BackoffMin, c.cfg.BackoffMax, 3)
				c.log.Warn("planned reconnect failed, keeping the old connection", "conn", cur.id, "err", err,
					"retry_in", wait)
				age.Reset(wait)
				continue
			}
			old := cur
			cur = next
			c.setCurrent(cur)
			c.log.Info("planned reconnect", "old", old.id, "new", cur.id,
				"old_age", time.Since(old.born).Round(time.Millisecond))
			old.stopKeepalive()
			c.wg.Add(1)
			go c.drain(old)
			age.Reset(c.cfg.MaxConnAge)

		case <-expire.C:
			if n := c.reasm.Expire(); n > 0 {
				c.log.Warn("dropped incomplete chunked messages", "count", n)
			}
		}
	}
}

func (c *Client) shutdown() {
	c.cancel()
	c.wg.Wait()
	close(c.recv)
	close(c.done)
}

// connectRetry dials until a connection is up, ctx is done, or the error is permanent. A reconnect waits a
// backoff before its first attempt too (clients that lost the relay together must not return together), starting
// at attempt.
func (c *Client) connectRetry(ctx context.Context, reconnect bool, attempt int) (*conn, error) {
	var lastErr error
	gaveUp := func() error {
		if lastErr == nil {
			return fmt.Errorf("wsclient: connect to %s: %w", c.target, ctx.Err())
		}
		return fmt.Errorf("wsclient: connect to %s: %w (last attempt: %w)", c.target, ctx.Err(), lastErr)
	}
	for {
		if reconnect || attempt > 0 {
			t := time.NewTimer(backoff(c.cfg.BackoffMin, c.cfg.BackoffMax, attempt))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, gaveUp()
			case <-t.C:
			}
		}
		cn, err := c.connect(ctx)
		if err == nil {
			return cn, nil
		}
		if isPermanent(err) {
			return nil, err
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, gaveUp()
		}
		attempt++
		c.log.Warn("connect failed, retrying", "attempt", attempt, "err", err)
	}
}

// connect dials one new connection with a fresh ticket, starts its reader and keepalive, and runs OnConnect.
// Errors are wrapped in permanentError when retrying cannot help.
func (c *Client) connect(ctx context.Context) (*conn, error) {
	hdr := http.Header{}
	for k, v := range c.cfg.Header {
		hdr[k] = append([]string(nil), v...)
	}
	if c.cfg.Ticket != nil {
		ticket, err := c.cfg.Ticket(ctx)
		if err != nil {
			err = fmt.Errorf("wsclient: get ticket: %w", err)
			if isPermanent(err) {
				return nil, Permanent(err)
			}
			return nil, err
		}
		hdr.Set("Authorization", "Bearer "+ticket)
	}
	ws, resp, err := c.dialer.DialContext(ctx, c.cfg.URL, hdr)
	if err != nil {
		return nil, classifyDialError(c.target, resp, err)
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	ws.SetReadLimit(wire.MaxMessageBytes)
	cn := newConn(c.connSeq.Add(1), ws)
	c.wg.Add(2)
	go c.readLoop(cn)
	go c.keepalive(cn)
	if c.cfg.OnConnect != nil {
		octx := context.WithValue(ctx, connKey{}, cn)
		if err := c.cfg.OnConnect(octx, c); err != nil {
			c.closeConn(cn, false, "", closeWait)
			err = fmt.Errorf("wsclient: on-connect for connection %d: %w", cn.id, err)
			if isPermanent(err) {
				return nil, Permanent(err)
			}
			return nil, err
		}
	}
	c.log.Info("connected", "conn", cn.id)
	return cn, nil
}

func classifyDialError(target string, resp *http.Response, err error) error {
	if resp == nil || !errors.Is(err, websocket.ErrBadHandshake) {
		return fmt.Errorf("wsclient: dial %s: %w", target, err)
	}
	code := resp.StatusCode
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return Permanent(fmt.Errorf("%w: %s answered HTTP %d %s", ErrUnauthorized, target, code,
			http.StatusText(code)))
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return Permanent(fmt.Errorf("wsclient: dial %s: handshake refused with HTTP %d %s", target, code,
			http.StatusText(code)))
	default:
		return fmt.Errorf("wsclient: dial %s: handshake answered HTTP %d %s: %w", target, code,
			http.StatusText(code), err)
	}
}

// timer wraps time.Timer so a non-positive duration means "never".
type timer struct{ t *time.Timer }

func newTimer(d time.Duration) *timer {
	if d <= 0 {
		return &timer{}
	}
	return &timer{time.NewTimer(d)}
}

func (t *timer) C() <-chan time.Time {
	if t.t == nil {
		return nil
	}
	return t.t.C
}

func (t *timer) Reset(d time.Duration) {
	if t.t != nil {
		t.t.Reset(d)
	}
}

func (t *timer) Stop() {
	if t.t != nil {
		t.t.Stop()
	}
}

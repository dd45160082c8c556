package wsclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/testfixtures/logbuf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ticketSource hands out a new single-use ticket per dial, as the real ticket minters do.
type ticketSource struct{ n atomic.Int64 }

func (s *ticketSource) next(context.Context) (string, error) {
	return fmt.Sprintf("secret-ticket-%d", s.n.Add(1)), nil
}

type harness struct {
	srv     *testServer
	c       *Client
	logs    *logbuf.Buffer
	tickets *ticketSource
}

// dial connects a client to srv with short, test-friendly timings; mod adjusts the config.
func dial(t *testing.T, srv *testServer, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{srv: srv, logs: &logbuf.Buffer{}, tickets: &ticketSource{}}
	cfg := Config{
		URL:          srv.url,
		Ticket:       h.tickets.next,
		BackoffMin:   5 * time.Millisecond,
		BackoffMax:   50 * time.Millisecond,
		DrainTimeout: 500 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	require.NoError(t, err)
	h.c = c
	// The client may see the 101 before the server's handler registers the connection.
	require.Eventually(t, func() bool { return srv.openConns() >= 1 }, 10*time.Second, time.Millisecond)
	t.Cleanup(func() {
		require.NoError(t, c.Close())
		assert.NotContains(t, h.logs.String(), "secret-ticket", "a ticket was logged")
		if t.Failed() {
			t.Logf("client log:\n%s", h.logs.String())
		}
	})
	return h
}

func invokeEnvelope(t testing.TB, id string, eventSize int) (*wire.Envelope, []byte) {
	t.Helper()
	event := make([]byte, eventSize)
	_, err := rand.Read(event) // incompressible, so large events really are chunked
	require.NoError(t, err)
	e, err := wire.NewEnvelope(wire.TypeInvoke, id, wire.Invoke{
		RequestID: id,
		Function:  wire.FunctionIdentity{Name: "fn"},
		Deadline:  time.Date(2026, 11, 21, 18, 0, 0, 0, time.UTC),
		Event:     event,
	})
	require.NoError(t, err)
	return e, event
}

func logEnvelope(t testing.TB, id string) *wire.Envelope {
	t.Helper()
	e, err := wire.NewEnvelope(wire.TypeLog, id, wire.Log{Text: id})
	require.NoError(t, err)
	return e
}

// recvID waits for the envelope with the given id, failing on anything else.
func recvID(t *testing.T, c *Client, id string) *wire.Envelope {
	t.Helper()
	select {
	case e, ok := <-c.Recv():
		require.True(t, ok, "Recv closed while waiting for %s", id)
		require.Equal(t, id, e.ID)
		return e
	case <-time.After(30 * time.Second):
		require.FailNow(t, "no envelope", "waiting for %s", id)
		return nil
	}
}

// requireClosed drains ch (envelopes read before the close may still be buffered) and fails unless it is closed.
func requireClosed(t *testing.T, ch <-chan *wire.Envelope) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			require.FailNow(t, "Recv was not closed")
		}
	}
}

func sendCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Invoke events of every size class go client → server, and results of the same size come back, split by the
// server on its own: both directions through wire.Split and the Reassembler.
func TestRoundTripSizes(t *testing.T) {
	srv := newTestServer(t, 0)
	srv.setReply(func(e *wire.Envelope) *wire.Envelope {
		var inv wire.Invoke
		if e.T != wire.TypeInvoke || e.DecodeBody(&inv) != nil {
			return nil
		}
		r, err := wire.NewEnvelope(wire.TypeResult, e.ID, wire.Result{RequestID: inv.RequestID, Payload: inv.Event})
		if err != nil {
			return nil
		}
		return r
	})
	h := dial(t, srv, nil)
	for _, size := range []int{0, 1, 127 << 10, 129 << 10, 6 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			id := fmt.Sprintf("req-%d", size)
			e, event := invokeEnvelope(t, id, size)
			require.NoError(t, h.c.Send(sendCtx(t), e))

			back := recvID(t, h.c, id)
			require.Equal(t, wire.TypeResult, back.T)
			var res wire.Result
			require.NoError(t, back.DecodeBody(&res))
			assert.Equal(t, id, res.RequestID)
			assert.True(t, bytes.Equal(event, res.Payload), "payload of %d bytes came back different (%d bytes)",
				size, len(res.Payload))

			// What the server reassembled is exactly what was sent.
			got := srv.received()
			require.NotEmpty(t, got)
			last := got[len(got)-1]
			require.Equal(t, id, last.ID)
			var srvInv wire.Invoke
			require.NoError(t, last.DecodeBody(&srvInv))
			assert.True(t, bytes.Equal(event, srvInv.Event))
		})
	}
	frames := srv.frameLog()
	require.NotEmpty(t, frames)
	for _, f := range frames {
		require.LessOrEqual(t, f.size, wire.MaxFrameBytes, "frame over API Gateway's limit")
	}
	srv.mu.Lock()
	sizes := append([]int(nil), srv.msgSizes...)
	srv.mu.Unlock()
	require.Greater(t, len(sizes), 5, "the large payloads should have been chunked")
	for _, n := range sizes {
		require.LessOrEqual(t, n, wire.MaxMessageBytes, "message over API Gateway's limit")
	}
	assert.Equal(t, 1, srv.dials(), "no reconnect expected")
}

// A single message larger than a frame must leave the client as several frames of at most 32 KB.
func TestLargeMessageIsFragmented(t *testing.T) {
	srv := newTestServer(t, 0)
	h := dial(t, srv, nil)
	text := strings.Repeat("x", 100<<10)
	e, err := wire.NewEnvelope(wire.TypeLog, "big", wire.Log{Text: text})
	require.NoError(t, err)
	msg, err := wire.Marshal(e)
	require.NoError(t, err)
	require.Greater(t, len(msg), 3*wire.MaxFrameBytes)

	cn, err := h.c.waitConn(sendCtx(t), nil)
	require.NoError(t, err)
	require.NoError(t, cn.writeMessages(sendCtx(t), [][]byte{msg}))
	back := recvID(t, h.c, "big")
	var l wire.Log
	require.NoError(t, back.DecodeBody(&l))
	assert.Equal(t, text, l.Text)

	var total, frames, maxSize int
	for _, f := range srv.frameLog() {
		if f.op == 0x1 || f.op == 0x0 { // text and continuation frames
			total += f.size
			frames++
			maxSize = max(maxSize, f.size)
		}
	}
	assert.Equal(t, wire.MaxFrameBytes, maxSize, "frames should be filled up to the limit and no further")
	assert.GreaterOrEqual(t, frames, len(msg)/wire.MaxFrameBytes+1)
	assert.GreaterOrEqual(t, total, len(msg))
}

func TestHeartbeatKeepsIdleConnectionAlive(t *testing.T) {
	srv := newTestServer(t, 300*time.Millisecond)
	h := dial(t, srv, func(c *Config) {
		c.HeartbeatInterval = 50 * time.Millisecond // well inside the idle timeout, even on a loaded machine
		c.PongTimeout = time.Second
	})
	assert.Never(t, func() bool { return srv.dials() > 1 || !h.c.Connected() }, time.Second, 20*time.Millisecond,
		"the idle connection was closed despite the heartbeat")
	assert.GreaterOrEqual(t, srv.pingCount(), 5)
	require.NoError(t, h.c.Send(sendCtx(t), logEnvelope(t, "after-idle")))
	recvID(t, h.c, "after-idle")
}

func TestIdleConnectionWithoutHeartbeatIsReplaced(t *testing.T) {
	srv := newTestServer(t, 300*time.Millisecond)
	h := dial(t, srv, func(c *Config) { c.HeartbeatInterval = -1 })
	require.Eventually(t, func() bool { return srv.dials() >= 2 }, 10*time.Second, 10*time.Millisecond,
		"the server's idle close should have forced a reconnect")
	assert.Zero(t, srv.pingCount())
	require.NoError(t, h.c.Send(sendCtx(t), logEnvelope(t, "after-reconnect")))
	recvID(t, h.c, "after-reconnect")
	assert.Contains(t, h.logs.String(), "idle timeout", "the close reason should be logged")
}

func TestPongTimeoutReconnects(t *testing.T) {
	srv := newTestServer(t, 0)
	srv.setNoPong(true)
	h := dial(t, srv, func(c *Config) {
		c.HeartbeatInterval = 50 * time.Millisecond
		c.PongTimeout = 100 * time.Millisecond
	})
	require.Eventually(t, func() bool { return srv.dials() >= 2 }, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, h.logs.String(), "no pong")
	srv.setNoPong(false)
	require.NoError(t, h.c.Send(sendCtx(t), logEnvelope(t, "after-pong-timeout")))
	recvID(t, h.c, "after-pong-timeout")
}

func TestDropReconnectsAndSendsDuringOutageArrive(t *testing.T) {
	srv := newTestServer(t, 0)
	h := dial(t, srv, nil)
	require.NoError(t, h.c.Send(sendCtx(t), logEnvelope(t, "before")))
	recvID(t, h.c, "before")

	srv.setRefuse(http.StatusServiceUnavailable)
	srv.dropAll()
	require.Eventually(t, func() bool { return !h.c.Connected() }, 10*time.Second, 5*time.Millisecond)

	const n = 20
	var sent atomic.Int32
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			var e *wire.Envelope
			if i == n/2 {
				e, _ = invokeEnvelope(t, fmt.Sprintf("outage-%d", i), 300<<10) // chunked
			} else {
				e = logEnvelope(t, fmt.Sprintf("outage-%d", i))
			}
			if err := h.c.Send(context.Background(), e); err != nil {
				errc <- err
				return
			}
			sent.Add(1)
		}
		errc <- nil
	}()
	// The client keeps retrying (and being refused) while the sender is blocked, not failing.
	require.Eventually(t, func() bool { return srv.refusedCount() >= 3 }, 10*time.Second, 5*time.Millisecond)
	assert.Zero(t, sent.Load(), "Send returned while there was no connection")
	assert.False(t, h.c.Connected())

	srv.setRefuse(0)
	seen := map[string]int{}
	for range n {
		select {
		case e := <-h.c.Recv():
			seen[e.ID]++
		case <-time.After(30 * time.Second):
			require.FailNow(t, "missing envelopes", "got %v", seen)
		}
	}
	require.NoError(t, <-errc)
	for i := range n {
		assert.Equal(t, 1, seen[fmt.Sprintf("outage-%d", i)], "outage-%d", i)
	}
	assert.GreaterOrEqual(t, srv.dials(), 2)
}

func TestPlannedReconnectDuringStream(t *testing.T) {
	srv := newTestServer(t, 0)
	var hellos atomic.Int32
	h := dial(t, srv, func(c *Config) {
		c.MaxConnAge = 200 * time.Millisecond
		c.DrainTimeout = 300 * time.Millisecond
		c.OnConnect = func(ctx context.Context, cl *Client) error {
			hellos.Add(1)
			e, err := wire.NewEnvelope(wire.TypeHello, fmt.Sprintf("hello-%d", hellos.Load()),
				wire.Hello{Role: wire.RoleFunction, Peer: "peer-1"})
			if err != nil {
				return err
			}
			return cl.Send(ctx, e)
		}
	})

	const n = 500
	errc := make(chan error, 1)
	go func() {
		tick := time.NewTicker(3 * time.Millisecond) // pace the stream so it spans several switches
		defer tick.Stop()
		for i := range n {
			<-tick.C
			var e *wire.Envelope
			if i%100 == 50 {
				e, _ = invokeEnvelope(t, fmt.Sprintf("m-%d", i), 200<<10) // a chunked message now and then
			} else {
				e = logEnvelope(t, fmt.Sprintf("m-%d", i))
			}
			if err := h.c.Send(context.Background(), e); err != nil {
				errc <- fmt.Errorf("send m-%d: %w", i, err)
				return
			}
		}
		errc <- nil
	}()

	seen := map[string]int{}
	got := 0
	deadline := time.After(60 * time.Second) // one deadline: hello echoes keep arriving on every switch
	for got < n {
		select {
		case e := <-h.c.Recv():
			if strings.HasPrefix(e.ID, "m-") {
				seen[e.ID]++
				got++
			}
		case err := <-errc:
			require.NoError(t, err, "sender failed after %d messages", got)
			errc = nil
		case <-deadline:
			var missing []string
			for i := range n {
				if seen[fmt.Sprintf("m-%d", i)] == 0 {
					missing = append(missing, fmt.Sprint(i))
				}
			}
			require.FailNow(t, "stream stalled", "received %d of %d; missing %v", got, n, missing)
		}
	}
	if errc != nil {
		require.NoError(t, <-errc)
	}
	for i := range n {
		require.Equal(t, 1, seen[fmt.Sprintf("m-%d", i)], "m-%d", i)
	}
	// Nothing arrives twice after the stream either.
	select {
	case e := <-h.c.Recv():
		assert.False(t, strings.HasPrefix(e.ID, "m-"), "duplicate %s", e.ID)
	case <-time.After(100 * time.Millisecond):
	}

	dials := srv.dials()
	assert.GreaterOrEqual(t, dials, 3, "MaxConnAge should have caused planned reconnects")
	srv.mu.Lock()
	for id, typ := range srv.firstType {
		assert.Equal(t, wire.TypeHello, typ, "connection %d: OnConnect's hello must be the first message", id)
	}
	srv.mu.Unlock()
	// Replaced connections were closed by the client with 1000.
	require.Eventually(t, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.closes) >= 2
	}, 10*time.Second, 10*time.Millisecond)
	srv.mu.Lock()
	for id, code := range srv.closes {
		assert.Equal(t, 1000, code, "connection %d", id)
	}
	srv.mu.Unlock()
	// Each dial used a fresh ticket.
	auth := srv.authHeaders()
	assert.GreaterOrEqual(t, len(auth), dials) // a planned reconnect may be under way
	uniq := map[string]bool{}
	for _, a := range auth {
		uniq[a] = true
	}
	assert.Len(t, uniq, len(auth), "a ticket was reused")
}

func TestNewTicketPerDial(t *testing.T) {
	srv := newTestServer(t, 0)
	h := dial(t, srv, nil)
	for i := 2; i <= 3; i++ {
		srv.dropAll()
		require.Eventually(t, func() bool { return srv.dials() >= i && h.c.Connected() }, 10*time.Second,
			5*time.Millisecond)
	}
	assert.Equal(t, []string{"Bearer secret-ticket-1", "Bearer secret-ticket-2", "Bearer secret-ticket-3"},
		srv.authHeaders())
}

func TestUnauthorizedIsNotRetried(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newTestServer(t, 0)
			srv.setRefuse(status)
			logs := &logbuf.Buffer{}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, Config{
				URL:        srv.url,
				Ticket:     (&ticketSource{}).next,
				BackoffMin: time.Millisecond,
				BackoffMax: 2 * time.Millisecond,
				Logger:     slog.New(slog.NewTextHandler(logs, nil)),
			})
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorIs(t, err, ErrUnauthorized)
			assert.Contains(t, err.Error(), fmt.Sprint(status))
			assert.NotContains(t, err.Error(), "secret-ticket")
			assert.NoError(t, ctx.Err(), "Dial must fail at once, not when the context ends")
			assert.Equal(t, 1, srv.refusedCount(), "a refused handshake must not be retried")
		})
	}
}

func TestGivesUpWhenReconnectIsRefused(t *testing.T) {
	srv := newTestServer(t, 0)
	h := dial(t, srv, nil)
	srv.setRefuse(http.StatusForbidden)
	srv.dropAll()
	select {
	case <-h.c.Done():
	case <-time.After(30 * time.Second):
		require.FailNow(t, "client did not give up")
	}
	assert.ErrorIs(t, h.c.Err(), ErrUnauthorized)
	requireClosed(t, h.c.Recv())
	err := h.c.Send(sendCtx(t), logEnvelope(t, "late"))
	assert.ErrorIs(t, err, ErrUnauthorized)
	assert.Equal(t, 1, srv.refusedCount())
}

func TestCloseStopsEverything(t *testing.T) {
	srv := newTestServer(t, 0)
	ignore := goleak.IgnoreCurrent()
	h := dial(t, srv, func(c *Config) { c.HeartbeatInterval = 20 * time.Millisecond })
	require.NoError(t, h.c.Send(sendCtx(t), logEnvelope(t, "x")))
	recvID(t, h.c, "x")

	require.NoError(t, h.c.Close())
	require.NoError(t, h.c.Close(), "Close is idempotent")
	select {
	case <-h.c.Done():
	default:
		require.Fail(t, "Done not closed after Close")
	}
	requireClosed(t, h.c.Recv())
	assert.False(t, h.c.Connected())
	assert.ErrorIs(t, h.c.Send(sendCtx(t), logEnvelope(t, "y")), ErrClosed)
	assert.ErrorIs(t, h.c.Err(), ErrClosed)

	require.Eventually(t, func() bool { return srv.openConns() == 0 }, 10*time.Second, 5*time.Millisecond)
	srv.mu.Lock()
	assert.Equal(t, map[int]int{1: 1000}, srv.closes)
	var byes int
	for _, e := range srv.got {
		if e.T == wire.TypeBye {
			byes++
		}
	}
	srv.mu.Unlock()
	assert.Equal(t, 1, byes, "Close sends bye")
	goleak.VerifyNone(t, ignore)
}

func TestCloseWhileSendsWaitForReconnect(t *testing.T) {
	srv := newTestServer(t, 0)
	h := dial(t, srv, nil)
	srv.setRefuse(http.StatusServiceUnavailable)
	srv.dropAll()
	require.Eventually(t, func() bool { return !h.c.Connected() }, 10*time.Second, 5*time.Millisecond)
	errc := make(chan error, 3)
	for i := range 3 {
		go func() { errc <- h.c.Send(context.Background(), logEnvelope(t, fmt.Sprint("w", i))) }()
	}
	require.Eventually(t, func() bool { return srv.refusedCount() >= 2 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, h.c.Close())
	for range 3 {
		assert.ErrorIs(t, <-errc, ErrClosed)
	}
}

func TestSendHonoursContextWhileDisconnected(t *testing.T) {
	srv := newTestServer(t, 0)
	h := dial(t, srv, nil)
	srv.setRefuse(http.StatusServiceUnavailable)
	srv.dropAll()
	require.Eventually(t, func() bool { return !h.c.Connected() }, 10*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.c.Send(ctx, logEnvelope(t, "cancelled")) }()
	require.Eventually(t, func() bool { return srv.refusedCount() >= 2 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	err := <-errc
	assert.ErrorIs(t, err, context.Canceled)
	srv.setRefuse(0)
	require.Eventually(t, h.c.Connected, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, h.c.Send(sendCtx(t), logEnvelope(t, "after")))
	assert.Equal(t, "after", recvID(t, h.c, "after").ID, "the cancelled envelope must not have been sent later")
}

func TestBadInboundMessagesAreDropped(t *testing.T) {
	srv := newTestServer(t, 0)
	h := dial(t, srv, nil)

	bad := func(seq, count int) []byte {
		e, err := wire.NewEnvelope(wire.TypeChunk, "bad-chunk", wire.Chunk{
			Msg: "m1", Seq: seq, Count: count, Size: 4, Sum: strings.Repeat("0", 64), Enc: "zstd",
			Data: []byte("abcd"),
		})
		require.NoError(t, err)
		b, err := wire.Marshal(e)
		require.NoError(t, err)
		return b
	}
	srv.push([]byte("this is not an envelope"))
	srv.push(bad(5, 2)) // seq outside 0..count-1
	srv.push(bad(0, 1)) // checksum does not match
	srv.push([]byte(`{"v":1,"t":"pong","id":"p"}`))

	require.NoError(t, h.c.Send(sendCtx(t), logEnvelope(t, "still-alive")))
	recvID(t, h.c, "still-alive") // recvID fails on anything delivered before it
	logs := h.logs.String()
	assert.Contains(t, logs, "dropping undecodable message")
	assert.Contains(t, logs, "reassembly failed")
	assert.NotContains(t, logs, "this is not an envelope", "payloads must not be logged")
	assert.Equal(t, 1, srv.dials())
}

func TestOnConnectErrorFailsThatConnection(t *testing.T) {
	srv := newTestServer(t, 0)
	var calls atomic.Int32
	h := dial(t, srv, func(c *Config) {
		c.OnConnect = func(ctx context.Context, cl *Client) error {
			if calls.Add(1) == 1 {
				return errors.New("hello rejected")
			}
			return nil
		}
	})
	assert.Equal(t, int32(2), calls.Load())
	require.Eventually(t, func() bool { return srv.dials() == 2 }, 10*time.Second, time.Millisecond)
	assert.True(t, h.c.Connected())
	assert.Contains(t, h.logs.String(), "hello rejected")
}

func TestPermanentOnConnectErrorFailsDial(t *testing.T) {
	srv := newTestServer(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, Config{
		URL: srv.url,
		OnConnect: func(context.Context, *Client) error {
			return Permanent(errors.New("protocol version refused"))
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "protocol version refused")
	assert.Equal(t, 1, srv.dials())
	require.Eventually(t, func() bool { return srv.openConns() == 0 }, 10*time.Second, 5*time.Millisecond)
}

func TestDialGivesUpWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, Config{URL: "ws://" + addr, Logger: slog.New(slog.DiscardHandler),
		BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "last attempt", "the last dial error should be reported")
	assert.Contains(t, err.Error(), addr)
}

func TestInvalidConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"URL is empty":                   {},
		`scheme "http"`:                  {URL: "http://127.0.0.1:1"},
		"no host":                        {URL: "ws:///path"},
		"PongTimeout is negative":        {URL: "ws://127.0.0.1:1", PongTimeout: -time.Second},
		"BackoffMax 1ms is below":        {URL: "ws://127.0.0.1:1", BackoffMin: time.Second, BackoffMax: time.Millisecond},
		"must not set Authorization":     {URL: "ws://127.0.0.1:1", Header: http.Header{"Authorization": {"x"}}},
		"must not set Sec-Websocket-Key": {URL: "ws://127.0.0.1:1", Header: http.Header{"Sec-WebSocket-Key": {"x"}}},
		"DrainTimeout is negative":       {URL: "ws://127.0.0.1:1", DrainTimeout: -1},
		"BackoffMin is negative (-1ns)":  {URL: "ws://127.0.0.1:1", BackoffMin: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Dial(context.Background(), cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), name)
		})
	}
	err := (&Client{}).Send(context.Background(), nil)
	assert.ErrorContains(t, err, "nil envelope")
}

func TestBackoffBounds(t *testing.T) {
	for n := range 70 {
		d := backoff(100*time.Millisecond, 30*time.Second, n)
		require.GreaterOrEqual(t, d, 100*time.Millisecond)
		require.LessOrEqual(t, d, 30*time.Second)
		if n < 8 {
			require.LessOrEqual(t, d, 100*time.Millisecond<<n)
		}
	}
	assert.Equal(t, time.Second, backoff(time.Second, time.Second, 5))
}

func BenchmarkRoundTripSmall(b *testing.B) {
	benchRoundTrip(b, 1<<10)
}

func BenchmarkRoundTrip6MB(b *testing.B) {
	benchRoundTrip(b, 6<<20)
}

func benchRoundTrip(b *testing.B, size int) {
	srv := newTestServer(b, 0)
	ctx := context.Background()
	c, err := Dial(ctx, Config{URL: srv.url, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	defer func() { _ = c.Close() }()
	e, _ := invokeEnvelope(b, "bench", size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		if err := c.Send(ctx, e); err != nil {
			b.Fatal(err)
		}
		if got := <-c.Recv(); got == nil || got.ID != "bench" {
			b.Fatal("bad echo")
		}
	}
}

// A consumer that stops reading Recv stalls the reader, so pongs queue unread behind the backlog; that must not
// be mistaken for a dead connection, and nothing may be lost once the consumer reads again.
func TestSlowConsumerIsNotAPongTimeout(t *testing.T) {
	srv := newTestServer(t, 0)
	h := dial(t, srv, func(c *Config) {
		c.HeartbeatInterval = 20 * time.Millisecond
		c.PongTimeout = 60 * time.Millisecond
	})
	const n = 3 * recvBuffer
	for i := range n {
		b, err := wire.Marshal(logEnvelope(t, fmt.Sprintf("push-%d", i)))
		require.NoError(t, err)
		srv.push(b)
	}
	assert.Never(t, func() bool { return srv.dials() > 1 }, 500*time.Millisecond, 10*time.Millisecond,
		"a stalled consumer made the connection look dead")
	for i := range n {
		recvID(t, h.c, fmt.Sprintf("push-%d", i))
	}
	assert.Equal(t, 1, srv.dials())
	assert.NotContains(t, h.logs.String(), "no pong")
}

func TestConcurrentSends(t *testing.T) {
	srv := newTestServer(t, 0)
	h := dial(t, srv, nil)
	const senders, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("s%d-%d", s, i)
				e := logEnvelope(t, id)
				if i == each/2 {
					e, _ = invokeEnvelope(t, id, 300<<10) // chunked, interleaved with the others' messages
				}
				if err := h.c.Send(sendCtx(t), e); err != nil {
					errs <- fmt.Errorf("send %s: %w", id, err)
					return
				}
			}
		}()
	}
	seen := map[string]int{}
	for range senders * each {
		select {
		case e := <-h.c.Recv():
			seen[e.ID]++
		case err := <-errs:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			require.FailNow(t, "missing envelopes", "got %d", len(seen))
		}
	}
	wg.Wait()
	require.Len(t, seen, senders*each)
	for id, n := range seen {
		assert.Equal(t, 1, n, id)
	}
}

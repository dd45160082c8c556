package gateway

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
)

func TestInboundFrameOverTheLimitCloses1009(t *testing.T) {
	g, r := startGateway(t, Config{})
	// A client whose write buffer holds a whole 40 KiB message sends it as one frame.
	ws, _, err := dial(t, g, urlValues("name", "a"), &websocket.Dialer{WriteBufferSize: 64 << 10})
	require.NoError(t, err)
	id := r.id(t, "a")

	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("before")))
	// Exactly the limit in one frame is allowed.
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("y"), DefaultMaxFrameBytes)))
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("z"), 40<<10)))

	ce := readClose(t, ws)
	assert.Equal(t, websocket.CloseMessageTooBig, ce.Code)
	assert.Equal(t, "Message too big", ce.Text)
	d := r.waitDisconnect(t, id)
	assert.EqualValues(t, websocket.CloseMessageTooBig, d.RequestContext.DisconnectStatusCode)

	msgs := r.messagesOf(id)
	require.Len(t, msgs, 2, "messages before the oversized frame are routed, the oversized one is not")
	assert.Equal(t, "before", msgs[0].Body)
	assert.Len(t, msgs[1].Body, DefaultMaxFrameBytes)
}

func TestInboundRawOversizedFrameInOneWrite(t *testing.T) {
	// A small message and the oversized frame arrive in the same TCP segment: the small one is still routed.
	g, r := startGateway(t, Config{MaxFrameBytes: 1000})
	rec := &recordingConn{}
	d := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		rec.Conn = c
		return rec, err
	}}
	ws, _, err := dial(t, g, urlValues("name", "a"), d)
	require.NoError(t, err)
	id := r.id(t, "a")

	stream := append(rawFrame(websocket.TextMessage, true, []byte("small")), rawFrame(websocket.BinaryMessage, true, make([]byte, 1001))...)
	_, err = rec.Conn.Write(stream)
	require.NoError(t, err)
	ce := readClose(t, ws)
	assert.Equal(t, websocket.CloseMessageTooBig, ce.Code)
	r.waitDisconnect(t, id)
	msgs := r.messagesOf(id)
	require.Len(t, msgs, 1)
	assert.Equal(t, "small", msgs[0].Body)
}

func TestInboundMessageOverTheLimitCloses1009(t *testing.T) {
	g, r := startGateway(t, Config{})
	ws, id := mustDial(t, g, r, "a") // default client: 4 KiB frames

	// Exactly the limit in small frames is fine.
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("a"), DefaultMaxMessageBytes)))
	require.Eventually(t, func() bool { return len(r.messagesOf(id)) == 1 }, eventually, tick)
	assert.Len(t, r.messagesOf(id)[0].Body, DefaultMaxMessageBytes)

	err := ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("b"), DefaultMaxMessageBytes+1))
	if err != nil {
		// The server may hang up while the tail is still being written; the close frame still arrives first.
		t.Logf("write of the oversized message: %v", err)
	}
	ce := readClose(t, ws)
	assert.Equal(t, websocket.CloseMessageTooBig, ce.Code)
	d := r.waitDisconnect(t, id)
	assert.EqualValues(t, websocket.CloseMessageTooBig, d.RequestContext.DisconnectStatusCode)
	assert.Len(t, r.messagesOf(id), 1)
}

func TestOutboundFramesStayWithinTheFrameLimit(t *testing.T) {
	g, r := startGateway(t, Config{})
	rec := &recordingConn{}
	d := &websocket.Dialer{ReadBufferSize: 256 << 10, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		rec.Conn = c
		return rec, err
	}}
	ws, _, err := dial(t, g, urlValues("name", "a"), d)
	require.NoError(t, err)
	id := r.id(t, "a")

	payload := bytes.Repeat([]byte("0123456789"), 12_000) // 120 KB
	require.NoError(t, g.PostToConnection(context.Background(), id, payload))
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, data, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, payload, data)

	raw := rec.bytes()
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	require.Positive(t, i)
	frames := parseFrames(t, raw[i+4:])
	require.Len(t, frames, 4, "120 KB in frames of at most 32 KiB")
	total := 0
	for k, f := range frames {
		assert.LessOrEqual(t, f.size, DefaultMaxFrameBytes, "frame %d", k)
		assert.Equal(t, k == len(frames)-1, f.fin, "only the last frame ends the message")
		if k == 0 {
			assert.Equal(t, byte(websocket.TextMessage), f.opcode)
		} else {
			assert.Equal(t, byte(0), f.opcode, "continuation")
		}
		total += f.size
	}
	assert.Equal(t, len(payload), total)
}

func TestIdleTimeout(t *testing.T) {
	// Generous against scheduling stalls on a loaded machine: traffic every 50 ms must never leave a 1 s gap.
	const idle = time.Second
	g, r := startGateway(t, Config{IdleTimeout: idle})
	ws, id := mustDial(t, g, r, "a")
	connected := time.Now()

	// Traffic in either direction keeps the connection open well past the idle timeout.
	tk := time.NewTicker(idle / 20)
	defer tk.Stop()
	for i := 0; time.Since(connected) < 2*idle; i++ {
		<-tk.C
		if i%2 == 0 {
			require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("tick")))
		} else {
			require.NoError(t, g.PostToConnection(context.Background(), id, []byte("tock")))
			require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
			_, _, err := ws.ReadMessage()
			require.NoError(t, err)
		}
	}
	_, err := g.GetConnection(context.Background(), id)
	require.NoError(t, err, "a connection with traffic must stay open")
	assert.Empty(t, r.disconnectsOf(id))

	// Silence closes it with 1001.
	ce := readClose(t, ws)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	assert.Equal(t, "Going away", ce.Text)
	d := r.waitDisconnect(t, id)
	assert.EqualValues(t, websocket.CloseGoingAway, d.RequestContext.DisconnectStatusCode)
	assert.GreaterOrEqual(t, time.Since(connected), 2*idle)
}

func TestMaxConnectionDuration(t *testing.T) {
	const maxDur = 500 * time.Millisecond
	g, r := startGateway(t, Config{MaxConnDuration: maxDur})
	started := time.Now() // before the dial, so the connection's clock cannot have started earlier
	ws, id := mustDial(t, g, r, "a")

	// Even a busy connection is closed at the cap.
	done := make(chan struct{})
	defer close(done)
	go func() {
		tk := time.NewTicker(maxDur / 10)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				if g.PostToConnection(context.Background(), id, []byte("busy")) != nil {
					return
				}
			}
		}
	}()
	ce := readClose(t, ws)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	assert.GreaterOrEqual(t, time.Since(started), maxDur)
	d := r.waitDisconnect(t, id)
	assert.EqualValues(t, websocket.CloseGoingAway, d.RequestContext.DisconnectStatusCode)
}

func TestPostWaitsForNoClientForever(t *testing.T) {
	// A client that never reads: posts fill the socket buffers, then the caller's deadline ends the blocked post
	// and the connection with it (it cannot carry a half-written message).
	g, r := startGateway(t, Config{})
	_, id := mustDial(t, g, r, "a")

	// A post whose context is already over does not start, and costs the connection nothing.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, g.PostToConnection(cancelled, id, []byte("x")), context.Canceled)
	_, err := g.GetConnection(context.Background(), id)
	require.NoError(t, err)

	for err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err = g.PostToConnection(ctx, id, bytes.Repeat([]byte("q"), 100_000))
		cancel()
	}
	assert.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, relay.ErrGone), err.Error())
	d := r.waitDisconnect(t, id)
	assert.EqualValues(t, websocket.CloseAbnormalClosure, d.RequestContext.DisconnectStatusCode)
}

package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/plldb/plldb/bridge/relay"
)

func TestMessagesReachDefaultInOrder(t *testing.T) {
	g, r := startGateway(t, Config{})
	ws, id := mustDial(t, g, r, "a")

	const n = 200
	for i := 0; i < n; i++ {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("m%03d", i))))
	}
	require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2, 0xff}))
	require.Eventually(t, func() bool { return len(r.messagesOf(id)) == n+1 }, eventually, tick)

	msgs := r.messagesOf(id)
	seen := map[string]bool{}
	for i, m := range msgs[:n] {
		assert.Equal(t, fmt.Sprintf("m%03d", i), m.Body)
		assert.False(t, m.IsBase64Encoded)
		assert.Equal(t, "$default", m.RequestContext.RouteKey)
		assert.Equal(t, "MESSAGE", m.RequestContext.EventType)
		assert.Equal(t, id, m.RequestContext.ConnectionID)
		assert.Equal(t, g.cfg.Stage, m.RequestContext.Stage)
		mid, _ := m.RequestContext.MessageID.(string)
		assert.Regexp(t, awsIDPattern, mid)
		assert.False(t, seen[m.RequestContext.RequestID], "request ids are unique")
		seen[m.RequestContext.RequestID] = true
	}
	bin := msgs[n]
	assert.True(t, bin.IsBase64Encoded)
	raw, err := base64.StdEncoding.DecodeString(bin.Body)
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 1, 2, 0xff}, raw)
}

func TestConnectionsAreHandledConcurrently(t *testing.T) {
	g, r := startGateway(t, Config{})
	wsA, idA := mustDial(t, g, r, "a")
	wsB, idB := mustDial(t, g, r, "b")

	// A's handler blocks; A's next message waits behind it, B's does not.
	require.NoError(t, wsA.WriteMessage(websocket.TextMessage, []byte("block")))
	require.NoError(t, wsA.WriteMessage(websocket.TextMessage, []byte("after block")))
	require.Eventually(t, func() bool { return len(r.messagesOf(idA)) == 1 }, eventually, tick)
	require.NoError(t, wsB.WriteMessage(websocket.TextMessage, []byte("from b")))
	require.Eventually(t, func() bool { return len(r.messagesOf(idB)) == 1 }, eventually, tick)
	assert.Len(t, r.messagesOf(idA), 1, "a connection's messages are handled one at a time")

	close(r.release)
	require.Eventually(t, func() bool { return len(r.messagesOf(idA)) == 2 }, eventually, tick)
	assert.Equal(t, "after block", r.messagesOf(idA)[1].Body)
}

func TestDefaultErrorIsReportedAndKeepsTheConnection(t *testing.T) {
	g, r := startGateway(t, Config{})
	ws, id := mustDial(t, g, r, "a")

	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("fail")))
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, data, err := ws.ReadMessage()
	require.NoError(t, err)
	var m map[string]string
	require.NoError(t, json.Unmarshal(data, &m))
	assert.Equal(t, "Internal server error", m["message"])
	assert.Equal(t, id, m["connectionId"])
	assert.Equal(t, r.messagesOf(id)[0].RequestContext.RequestID, m["requestId"])

	// A panicking handler is an error too, as the Lambda runtime reports it; the gateway survives it.
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("panic")))
	_, data, err = ws.ReadMessage()
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &m))
	assert.Equal(t, "Internal server error", m["message"])

	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("echo still here")))
	_, data, err = ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "still here", string(data))
	assert.Empty(t, r.disconnectsOf(id))
}

func TestPostToConnection(t *testing.T) {
	g, r := startGateway(t, Config{})
	ws, id := mustDial(t, g, r, "a")
	ctx := context.Background()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))

	require.NoError(t, g.PostToConnection(ctx, id, []byte(`{"t":"pong"}`)))
	mt, data, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, websocket.TextMessage, mt)
	assert.Equal(t, `{"t":"pong"}`, string(data))

	require.NoError(t, g.PostToConnection(ctx, id, []byte{0xff, 0xfe}))
	mt, data, err = ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, websocket.BinaryMessage, mt, "invalid UTF-8 goes out as a binary message")
	assert.Equal(t, []byte{0xff, 0xfe}, data)

	status, _, _ := mgmt(t, g, http.MethodPost, id, []byte("over http"))
	assert.Equal(t, http.StatusOK, status)
	_, data, err = ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "over http", string(data))

	// Exactly the limit is fine; one byte more is API Gateway's 413.
	big := bytes.Repeat([]byte("x"), DefaultMaxMessageBytes)
	require.NoError(t, g.PostToConnection(ctx, id, big))
	_, data, err = ws.ReadMessage()
	require.NoError(t, err)
	assert.Len(t, data, DefaultMaxMessageBytes)
	err = g.PostToConnection(ctx, id, append(big, 'x'))
	require.ErrorIs(t, err, ErrPayloadTooLarge)
	status, body, hdr := mgmt(t, g, http.MethodPost, id, append(big, 'x'))
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)
	assert.Equal(t, "PayloadTooLargeException", hdr.Get("X-Amzn-ErrorType"))
	assert.Contains(t, string(body), "message")

	// Unknown ids are 410 Gone, both ways.
	err = g.PostToConnection(ctx, "AAAAAAAAAAAAAAA=", []byte("x"))
	require.ErrorIs(t, err, relay.ErrGone)
	status, body, hdr = mgmt(t, g, http.MethodPost, "AAAAAAAAAAAAAAA=", []byte("x"))
	assert.Equal(t, http.StatusGone, status)
	assert.JSONEq(t, `{"message":"Gone"}`, string(body))
	assert.Equal(t, "GoneException", hdr.Get("X-Amzn-ErrorType"))

	// A closed connection is gone too.
	require.NoError(t, ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second)))
	d := r.waitDisconnect(t, id)
	assert.Equal(t, "$disconnect", d.RequestContext.RouteKey)
	assert.Equal(t, "DISCONNECT", d.RequestContext.EventType)
	assert.EqualValues(t, websocket.CloseNormalClosure, d.RequestContext.DisconnectStatusCode)
	require.NotNil(t, d.RequestContext.DisconnectReason)
	assert.Equal(t, "bye", *d.RequestContext.DisconnectReason)
	require.ErrorIs(t, g.PostToConnection(ctx, id, []byte("x")), relay.ErrGone)
	status, _, _ = mgmt(t, g, http.MethodPost, id, []byte("x"))
	assert.Equal(t, http.StatusGone, status)
}

func TestPostsToOneConnectionAreNotInterleaved(t *testing.T) {
	g, r := startGateway(t, Config{})
	ws, id := mustDial(t, g, r, "a")
	const posters, each = 4, 10
	errs := make(chan error, posters)
	for p := 0; p < posters; p++ {
		go func(p int) {
			var err error
			for i := 0; i < each && err == nil; i++ {
				err = g.PostToConnection(context.Background(), id, bytes.Repeat([]byte{byte('a' + p)}, 100_000))
			}
			errs <- err
		}(p)
	}
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(20*time.Second)))
	for i := 0; i < posters*each; i++ {
		_, data, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Len(t, data, 100_000)
		assert.Equal(t, bytes.Repeat(data[:1], len(data)), data, "message %d mixes two posts", i)
	}
	for p := 0; p < posters; p++ {
		require.NoError(t, <-errs)
	}
}

func TestGetAndDeleteConnection(t *testing.T) {
	g, r := startGateway(t, Config{})
	ws, id := mustDial(t, g, r, "a")

	status, body, _ := mgmt(t, g, http.MethodGet, id, nil)
	require.Equal(t, http.StatusOK, status)
	var got struct {
		ConnectedAt  time.Time
		LastActiveAt time.Time
		Identity     struct{ SourceIp, UserAgent string }
		Wire         time.Time `json:"connectedAt"`
	}
	require.NoError(t, json.Unmarshal(body, &got), "%s", body)
	assert.WithinDuration(t, time.Now(), got.ConnectedAt, time.Minute)
	assert.False(t, got.LastActiveAt.Before(got.ConnectedAt))
	assert.Equal(t, "127.0.0.1", got.Identity.SourceIp)
	assert.Equal(t, "plldb-test/1", got.Identity.UserAgent)
	assert.True(t, got.Wire.Equal(got.ConnectedAt), "the AWS wire name carries the same value")

	status, _, _ = mgmt(t, g, http.MethodPut, id, nil)
	assert.Equal(t, http.StatusForbidden, status)

	status, _, _ = mgmt(t, g, http.MethodDelete, id, nil)
	assert.Equal(t, http.StatusNoContent, status)
	ce := readClose(t, ws)
	assert.Equal(t, websocket.CloseNormalClosure, ce.Code)
	d := r.waitDisconnect(t, id)
	assert.EqualValues(t, websocket.CloseNormalClosure, d.RequestContext.DisconnectStatusCode)

	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		status, body, _ = mgmt(t, g, m, id, nil)
		assert.Equal(t, http.StatusGone, status, m)
		assert.JSONEq(t, `{"message":"Gone"}`, string(body))
	}
	_, err := g.GetConnection(context.Background(), id)
	require.ErrorIs(t, err, relay.ErrGone)
	require.ErrorIs(t, g.DeleteConnection(context.Background(), id), relay.ErrGone)
}

func TestCloseDisconnectsEveryone(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	r := newFakeRoutes()
	g := New(Config{Logger: testLogger(t)}, nil)
	r.gw = g
	g.SetRoutes(r)
	require.NoError(t, g.Start(context.Background()))

	var clients []*websocket.Conn
	var ids []string
	for i := 0; i < 5; i++ {
		ws, id := mustDial(t, g, r, fmt.Sprintf("c%d", i))
		clients = append(clients, ws)
		ids = append(ids, id)
	}
	// One connection is busy in its handler when Close starts: its message completes, then it disconnects.
	require.NoError(t, clients[0].WriteMessage(websocket.TextMessage, []byte("block")))
	require.Eventually(t, func() bool { return len(r.messagesOf(ids[0])) == 1 }, eventually, tick)
	go func() {
		// Release the blocked handler once Close has begun (the connection has left the registry).
		assertEventually(eventually, func() bool { return g.lookup(ids[0]) == nil })
		close(r.release)
	}()

	require.NoError(t, g.Close())
	for i, ws := range clients {
		ce := readClose(t, ws)
		assert.Equal(t, websocket.CloseGoingAway, ce.Code, "client %d", i)
		assert.Equal(t, "Going away", ce.Text)
	}
	// Close returned only after every $disconnect ran.
	_, _, _, disconnects := r.counts()
	assert.Equal(t, len(ids), disconnects)
	for _, id := range ids {
		ds := r.disconnectsOf(id)
		require.Len(t, ds, 1)
		assert.EqualValues(t, websocket.CloseGoingAway, ds[0].RequestContext.DisconnectStatusCode)
	}
	require.ErrorIs(t, g.PostToConnection(context.Background(), ids[1], []byte("x")), relay.ErrGone)
	goleak.VerifyNone(t, ignore)
}

func TestClientVanishingIsADisconnect(t *testing.T) {
	g, r := startGateway(t, Config{})
	ws, id := mustDial(t, g, r, "a")
	// No close frame: the TCP connection just goes away.
	require.NoError(t, ws.NetConn().(*net.TCPConn).SetLinger(0))
	require.NoError(t, ws.NetConn().Close())
	d := r.waitDisconnect(t, id)
	assert.EqualValues(t, websocket.CloseAbnormalClosure, d.RequestContext.DisconnectStatusCode)
	require.ErrorIs(t, g.PostToConnection(context.Background(), id, []byte("x")), relay.ErrGone)
}

func TestLogsCarryNoSecretsOrBodies(t *testing.T) {
	var logs strings.Builder
	var mu = make(chan struct{}, 1)
	w := writerFunc(func(p []byte) (int, error) {
		mu <- struct{}{}
		logs.Write(p)
		<-mu
		return len(p), nil
	})
	g, r := startGateway(t, Config{Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	ws, id := mustDial(t, g, r, "a")
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("fail")))
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("echo body-secret")))
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, _, err := ws.ReadMessage() // the error report
	require.NoError(t, err)
	_, _, err = ws.ReadMessage() // the echo
	require.NoError(t, err)
	require.NoError(t, g.DeleteConnection(context.Background(), id))
	r.waitDisconnect(t, id)

	mu <- struct{}{}
	out := logs.String()
	<-mu
	assert.NotContains(t, out, id, "connection ids are @connections addresses: not logged above DEBUG")
	assert.Contains(t, out, "conn="+relay.LogRef(id), "logs name connections by their ref")
	assert.Contains(t, out, "connected")
	assert.NotContains(t, out, "secret-ticket")
	assert.NotContains(t, out, "body-secret")
}

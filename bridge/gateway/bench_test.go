package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/url"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// BenchmarkPostToConnection measures a 120 KB post (4 frames) through the gateway to a loopback client that
// reads every message: the relay's cost per chunk of a 6 MB payload.
func BenchmarkPostToConnection(b *testing.B) {
	r := newFakeRoutes()
	g := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	r.gw = g
	g.SetRoutes(r)
	require.NoError(b, g.Start(context.Background()))
	defer func() { require.NoError(b, g.Close()) }()

	ws, resp, err := (&websocket.Dialer{ReadBufferSize: 64 << 10}).Dial(g.URL()+"?"+url.Values{"name": {"bench"}}.Encode(), nil)
	require.NoError(b, err)
	_ = resp.Body.Close()
	defer ws.Close()
	r.mu.Lock()
	id := r.ids["bench"]
	r.mu.Unlock()

	payload := bytes.Repeat([]byte(`{"t":"chunk","data":"0123456789abcdef"}`), 120_000/39)
	received := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < b.N && err == nil; i++ {
			var rd io.Reader
			if _, rd, err = ws.NextReader(); err == nil {
				_, err = io.Copy(io.Discard, rd)
			}
		}
		received <- err
	}()

	ctx := context.Background()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := g.PostToConnection(ctx, id, payload); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, <-received)
}

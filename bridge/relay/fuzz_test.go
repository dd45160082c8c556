package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/wire"
)

// FuzzDefault throws arbitrary bodies at $default from a function or a developer of session A, with peers of
// the same names in session B, and checks that nothing ever reaches B, that forwarded messages carry the
// sender's peer id, and that the sender hears back (pong or nack) whenever nothing was forwarded.
func FuzzDefault(f *testing.F) {
	f.Add([]byte(`{"v":1,"t":"invoke","id":"r1","body":{"requestId":"r1"}}`), false)
	f.Add([]byte(`{"v":1,"t":"result","id":"r1","to":"f/fn-1","from":"f/fn-1","body":{}}`), true)
	f.Add([]byte(`{"v":1,"t":"ack","id":"r1","to":"dev-1","body":{}}`), true)
	f.Add([]byte(`{"v":1,"t":"ping","id":"p"}`), false)
	f.Add([]byte(`{"v":1,"T":"result","TO":"f/fn-1","Fr\u006fm":"dev-1","from":"x","from":"y"}`), true)
	f.Add([]byte(`{"v":1,"t":"chunk","id":"c","to":"f/fn-1","body":{"msg":"m","seq":0,"count":2,"data":"AAAA"}}`), true)
	f.Add([]byte(`{"v":2,"t":"invoke"}`), false)
	f.Add([]byte(`[]`), true)
	f.Add([]byte(``), false)

	f.Fuzz(func(t *testing.T, msg []byte, fromDeveloper bool) {
		x := newHarness(t, "A", "B")
		devA := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
		fnA := x.connect(t, "A", wire.RoleFunction, "f/fn-1")
		devB := x.connect(t, "B", wire.RoleDeveloper, "dev-1")
		fnB := x.connect(t, "B", wire.RoleFunction, "f/fn-1")
		fnB2 := x.connect(t, "B", wire.RoleFunction, "f/fn-2")
		sender, senderPeer, other := fnA, "f/fn-1", devA
		if fromDeveloper {
			sender, senderPeer, other = devA, "dev-1", fnA
		}

		resp, err := x.send(t, sender, msg)
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)

		for _, b := range []string{devB, fnB, fnB2} {
			assert.Empty(t, x.conns.take(b), "nothing reaches another session")
		}
		forwarded := x.conns.take(other)
		back := x.conns.take(sender)
		require.LessOrEqual(t, len(forwarded), 1)
		require.Equal(t, 1, len(forwarded)+len(back), "exactly one message results: forwarded, pong or nack")
		if len(forwarded) == 1 {
			h, err := wire.PeekHeader(forwarded[0])
			require.NoError(t, err, "forwarded messages are valid")
			assert.Equal(t, senderPeer, h.From, "from is always the sender's peer")
			e, err := wire.Unmarshal(forwarded[0])
			if err == nil {
				// The body passes untouched whenever the receiver can parse the message.
				orig, err := wire.Unmarshal(msg)
				require.NoError(t, err, "the original parses if the forwarded copy does")
				assert.True(t, bytes.Equal(orig.Body, e.Body) || (len(orig.Body) == 0 && len(e.Body) == 0))
			}
			return
		}
		h, err := wire.PeekHeader(back[0])
		require.NoError(t, err)
		assert.Contains(t, []wire.Type{wire.TypeNack, wire.TypePong}, h.T)
		assert.Empty(t, h.From)
	})
}

// BenchmarkDefaultRoute routes a 120 KB chunk from a function to its developer: the relay's hot path for large
// payloads.
func BenchmarkDefaultRoute(b *testing.B) {
	x := newHarness(b, "A")
	dev := x.connect(b, "A", wire.RoleDeveloper, "dev-1")
	fn := x.connect(b, "A", wire.RoleFunction, "f/fn-1")
	x.h.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) // Info, as deployed: routing logs nothing
	x.conns = nil
	sink := &discardConns{}
	x.h.Conns = sink

	data := make([]byte, 90*1024) // base64 → 120 KB
	_, _ = rand.Read(data)
	msg := envelope(b, wire.TypeChunk, "chunk-1", "", "", wire.Chunk{
		Msg: "m1", Seq: 3, Count: 50, Size: 50 * len(data), Sum: "00", Enc: "zstd", Data: data,
	})
	require.Greater(b, len(msg), 120*1024)
	require.Less(b, len(msg), wire.MaxMessageBytes-wire.RestampHeadroom)
	req := wsRequest(fn, "$default", string(msg))
	ctx := context.Background()

	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.h.Default(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	require.Equal(b, b.N, sink.posts[dev])
}

type discardConns struct{ posts map[string]int }

func (d *discardConns) PostToConnection(_ context.Context, id string, _ []byte) error {
	if d.posts == nil {
		d.posts = map[string]int{}
	}
	d.posts[id]++
	return nil
}

func (d *discardConns) DeleteConnection(context.Context, string) error { return nil }

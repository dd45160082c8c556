package wsclient

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/wire"
)

// FuzzHandle feeds arbitrary relay messages (newline-separated, so chunk sequences can form) through the
// client's receive path: it must never panic, never deliver a pong, and deliver only well-formed envelopes.
func FuzzHandle(f *testing.F) {
	f.Add([]byte(`{"v":1,"t":"log","id":"a","body":{"text":"hi"}}`))
	f.Add([]byte(`{"v":1,"t":"pong","id":"p"}`))
	f.Add([]byte(`{"v":1,"t":"chunk","id":"c","body":{"msg":"m","seq":0,"count":2,"size":3,"sum":"00","enc":"zstd","data":"YWJj"}}`))
	f.Add([]byte("not json"))
	big, err := wire.NewEnvelope(wire.TypeLog, "big", wire.Log{Text: string(bytes.Repeat([]byte("ab"), 150<<10))})
	require.NoError(f, err)
	msgs, err := wire.Split(big)
	require.NoError(f, err)
	f.Add(bytes.Join(msgs, []byte("\n")))

	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Client{log: slog.New(slog.DiscardHandler), reasm: wire.NewReassembler(wire.ReassemblerOptions{})}
		for _, msg := range bytes.Split(data, []byte("\n")) {
			env := c.handle(1, msg)
			if env == nil {
				continue
			}
			require.NotEqual(t, wire.TypePong, env.T, "pongs are consumed")
			require.NotEqual(t, wire.TypeChunk, env.T, "chunks are reassembled, never delivered")
			require.Equal(t, wire.Version, env.V)
		}
	})
}

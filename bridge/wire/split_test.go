package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// compressibleEvent returns n bytes of repetitive JSON, like a typical API Gateway event.
func compressibleEvent(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"records":[`)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"item-%d","tags":["a","b"],"ok":true},`, i, i%97)
	}
	return b.Bytes()[:n]
}

// randomEvent returns n incompressible bytes from a seeded generator, so failures reproduce.
func randomEvent(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n / 8 * 8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func invokeEnvelope(t testing.TB, event []byte) *Envelope {
	t.Helper()
	e, err := NewEnvelope(TypeInvoke, "req-42", Invoke{
		RequestID: "req-42",
		Function:  FunctionIdentity{Name: "orders", Region: "eu-west-1"},
		Deadline:  time.Date(2026, 11, 21, 18, 0, 0, 0, time.UTC),
		Event:     event,
	})
	require.NoError(t, err)
	return e
}

func TestSplitReassembleRoundTrip(t *testing.T) {
	sizes := []struct {
		name string
		n    int
	}{{"0B", 0}, {"1B", 1}, {"127KB", 127 << 10}, {"129KB", 129 << 10}, {"6MB", 6 << 20}}
	kinds := []struct {
		name string
		gen  func(n int) []byte
	}{
		{"compressible", compressibleEvent},
		{"random", func(n int) []byte { return randomEvent(n, uint64(n)) }},
	}
	peer := strings.Repeat("f", MaxPeerLen)
	for _, size := range sizes {
		for _, kind := range kinds {
			for _, shuffled := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/shuffled=%v", size.name, kind.name, shuffled)
				t.Run(name, func(t *testing.T) {
					orig := invokeEnvelope(t, kind.gen(size.n))
					orig.To = "fn-instance-1"
					msgs, err := Split(orig)
					require.NoError(t, err)
					raw, err := Marshal(orig)
					require.NoError(t, err)
					if size.n <= 1 {
						require.Equal(t, [][]byte{raw}, msgs, "small envelopes travel as one message")
					} else {
						// Compressible events may compress into a single chunk; random ones need several.
						require.Greater(t, len(raw), MaxMessageBytes-RestampHeadroom)
						for _, m := range msgs {
							h, err := PeekHeader(m)
							require.NoError(t, err)
							require.Equal(t, TypeChunk, h.T, "large envelopes are compressed into chunks")
						}
						if kind.name == "random" {
							require.Greater(t, len(msgs), 1)
						}
					}
					if shuffled {
						r := rand.New(rand.NewPCG(7, uint64(len(msgs))))
						r.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
					}

					re := NewReassembler(ReassemblerOptions{})
					var got *Envelope
					for i, msg := range msgs {
						require.LessOrEqual(t, len(msg), MaxMessageBytes-RestampHeadroom)
						h, err := PeekHeader(msg)
						require.NoError(t, err)
						assert.Equal(t, orig.To, h.To, "every message is routable by its header")
						stamped, err := Restamp(msg, peer)
						require.NoError(t, err)
						require.LessOrEqual(t, len(stamped), MaxMessageBytes, "still fits after the relay adds from")

						e, err := Unmarshal(stamped)
						require.NoError(t, err)
						out, err := re.Add(e)
						require.NoError(t, err)
						if i < len(msgs)-1 {
							require.Nil(t, out)
						} else {
							got = out
						}
					}
					require.NotNil(t, got)
					want := *orig
					want.From = peer
					assert.Equal(t, want.V, got.V)
					assert.Equal(t, want.T, got.T)
					assert.Equal(t, want.ID, got.ID)
					assert.Equal(t, want.To, got.To)
					assert.Equal(t, want.From, got.From)
					require.True(t, bytes.Equal(want.Body, got.Body), "body differs")
					var inv Invoke
					require.NoError(t, got.DecodeBody(&inv))
					assert.Len(t, inv.Event, size.n)
					m, b := re.Pending()
					assert.Zero(t, m)
					assert.Zero(t, b)
				})
			}
		}
	}
}

func TestSplitSmallIsMarshal(t *testing.T) {
	e, err := NewEnvelope(TypeAck, "r", Ack{RequestID: "r"})
	require.NoError(t, err)
	msgs, err := Split(e)
	require.NoError(t, err)
	want, err := Marshal(e)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{want}, msgs)

	re := NewReassembler(ReassemblerOptions{})
	back, err := Unmarshal(msgs[0])
	require.NoError(t, err)
	got, err := re.Add(back)
	require.NoError(t, err)
	assert.Same(t, back, got, "non-chunk envelopes pass through the reassembler unchanged")
}

func TestSplitChunkFields(t *testing.T) {
	orig := invokeEnvelope(t, randomEvent(20_000, 1))
	orig.To = "fn-7"
	orig.From = "ignored"
	const limit = 2048
	msgs, err := SplitWith(orig, SplitOptions{MaxMessage: limit})
	require.NoError(t, err)
	require.Greater(t, len(msgs), 10)

	var comp []byte
	ids := map[string]bool{}
	var first Chunk
	for i, msg := range msgs {
		require.LessOrEqual(t, len(msg), limit)
		e, err := Unmarshal(msg)
		require.NoError(t, err)
		assert.Equal(t, TypeChunk, e.T)
		assert.Equal(t, "fn-7", e.To, "chunks copy to")
		assert.Empty(t, e.From, "the relay sets from")
		assert.NotEmpty(t, e.ID)
		assert.False(t, ids[e.ID], "chunk envelope ids are fresh")
		ids[e.ID] = true
		var c Chunk
		require.NoError(t, e.DecodeBody(&c))
		if i == 0 {
			first = c
			assert.NotEqual(t, orig.ID, c.Msg, "the message id is fresh")
		}
		assert.Equal(t, first.Msg, c.Msg)
		assert.Equal(t, i, c.Seq)
		assert.Equal(t, len(msgs), c.Count)
		assert.Equal(t, first.Size, c.Size)
		assert.Equal(t, first.Sum, c.Sum)
		assert.Equal(t, EncZstd, c.Enc)
		assert.NotEmpty(t, c.Data)
		comp = append(comp, c.Data...)
	}
	assert.Len(t, comp, first.Size)
	sum := sha256.Sum256(comp)
	assert.Equal(t, hex.EncodeToString(sum[:]), first.Sum)

	// Chunks are cut as large as the limit allows: the fullest message is close to it.
	longest := 0
	for _, m := range msgs {
		longest = max(longest, len(m))
	}
	assert.Greater(t, longest, limit-16)
}

func TestSplitTwiceUsesFreshIDs(t *testing.T) {
	orig := invokeEnvelope(t, randomEvent(200_000, 3))
	a, err := Split(orig)
	require.NoError(t, err)
	b, err := Split(orig)
	require.NoError(t, err)
	ca, cb := decodeChunk(t, a[0]), decodeChunk(t, b[0])
	assert.NotEqual(t, ca.Msg, cb.Msg)
}

func TestSplitErrors(t *testing.T) {
	small := invokeEnvelope(t, randomEvent(10_000, 2))

	_, err := Split(nil)
	require.ErrorContains(t, err, "nil envelope")

	_, err = SplitWith(small, SplitOptions{MaxMessage: -1})
	require.ErrorContains(t, err, "negative MaxMessage")

	_, err = SplitWith(small, SplitOptions{MaxMessage: 100})
	require.ErrorContains(t, err, "too small for a chunk")

	_, err = Split(&Envelope{T: TypeInvoke})
	require.ErrorContains(t, err, "unsupported protocol version 0")

	huge := invokeEnvelope(t, compressibleEvent(MaxEnvelopeBytes))
	_, err = Split(huge)
	require.ErrorContains(t, err, "exceeds the 10485760-byte envelope limit")

	chunk, err := NewEnvelope(TypeChunk, "c", Chunk{Msg: "m", Data: randomEvent(5000, 4)})
	require.NoError(t, err)
	_, err = SplitWith(chunk, SplitOptions{MaxMessage: 1000})
	require.ErrorContains(t, err, "cannot be chunked again")

	_, err = SplitWith(invokeEnvelope(t, randomEvent(3<<20, 5)), SplitOptions{MaxMessage: 300})
	require.ErrorContains(t, err, "chunk limit")
}

func TestSplitLongestPeerStillFits(t *testing.T) {
	// The chunk overhead depends on "to"; the longest legal one, made of characters JSON escapes, must fit.
	orig := invokeEnvelope(t, randomEvent(300_000, 6))
	orig.To = strings.Repeat("<", MaxPeerLen)
	msgs, err := Split(orig)
	require.NoError(t, err)
	for _, m := range msgs {
		require.LessOrEqual(t, len(m), MaxMessageBytes-RestampHeadroom)
		stamped, err := Restamp(m, strings.Repeat("\x01", MaxPeerLen))
		require.NoError(t, err)
		require.LessOrEqual(t, len(stamped), MaxMessageBytes)
	}
}

func decodeChunk(t testing.TB, msg []byte) Chunk {
	t.Helper()
	e, err := Unmarshal(msg)
	require.NoError(t, err)
	require.Equal(t, TypeChunk, e.T)
	var c Chunk
	require.NoError(t, e.DecodeBody(&c))
	return c
}

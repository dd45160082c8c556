package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// makeChunks cuts comp into n chunks of message msg with the metadata a correct sender would write.
func makeChunks(t testing.TB, msg string, comp []byte, n int) []Chunk {
	t.Helper()
	sum := sha256.Sum256(comp)
	per := (len(comp) + n - 1) / n
	out := make([]Chunk, 0, n)
	for seq := range n {
		data := comp[min(seq*per, len(comp)):min((seq+1)*per, len(comp))]
		out = append(out, Chunk{Msg: msg, Seq: seq, Count: n, Size: len(comp), Sum: hex.EncodeToString(sum[:]),
			Enc: EncZstd, Data: append([]byte(nil), data...)})
	}
	return out
}

func chunkEnvelope(t testing.TB, from string, c Chunk) *Envelope {
	t.Helper()
	e, err := NewEnvelope(TypeChunk, newID(), c)
	require.NoError(t, err)
	e.From = from
	return e
}

// compressedEnvelope returns the zstd form of the marshalled envelope, as Split would send it.
func compressedEnvelope(t testing.TB, e *Envelope) []byte {
	t.Helper()
	raw, err := Marshal(e)
	require.NoError(t, err)
	comp, err := compress(raw)
	require.NoError(t, err)
	return comp
}

func mustCompress(t testing.TB, raw []byte) []byte {
	t.Helper()
	comp, err := compress(raw)
	require.NoError(t, err)
	return comp
}

func requireChunkError(t *testing.T, err error, msg, reason string) *ChunkError {
	t.Helper()
	var ce *ChunkError
	require.True(t, errors.As(err, &ce), "want *ChunkError, got %v", err)
	assert.Equal(t, msg, ce.Msg)
	assert.Contains(t, ce.Reason, reason)
	assert.Contains(t, ce.Error(), reason)
	return ce
}

// feed adds chunks in order and returns the result and error of the last Add.
func feed(t *testing.T, r *Reassembler, from string, chunks []Chunk) (*Envelope, error) {
	t.Helper()
	for i, c := range chunks {
		out, err := r.Add(chunkEnvelope(t, from, c))
		if err != nil || i == len(chunks)-1 {
			return out, err
		}
		require.Nil(t, out, "incomplete message returned an envelope")
	}
	return nil, nil
}

func TestReassembleErrors(t *testing.T) {
	inner := invokeEnvelope(t, randomEvent(4000, 9))
	comp := compressedEnvelope(t, inner)
	good := func() []Chunk { return makeChunks(t, "m1", comp, 4) }
	otherSum := strings.Repeat("ab", 32)

	cases := []struct {
		name   string
		opts   ReassemblerOptions
		chunks func() []Chunk
		reason string
	}{
		{"duplicate seq", ReassemblerOptions{}, func() []Chunk { c := good(); return []Chunk{c[0], c[1], c[1]} }, "duplicate seq"},
		{"seq equal to count", ReassemblerOptions{}, func() []Chunk { c := good(); c[1].Seq = 4; return c[:2] }, "seq out of range 0..3"},
		{"negative seq", ReassemblerOptions{}, func() []Chunk { c := good(); c[0].Seq = -1; return c[:1] }, "seq out of range"},
		{"count disagrees", ReassemblerOptions{}, func() []Chunk { c := good(); c[1].Count = 5; return c[:2] }, "count 5 disagrees with 4"},
		{"size disagrees", ReassemblerOptions{}, func() []Chunk { c := good(); c[1].Size++; return c[:2] }, "disagrees"},
		{"sum disagrees", ReassemblerOptions{}, func() []Chunk { c := good(); c[2].Sum = otherSum; return c[:3] }, "sum disagrees"},
		{"zero count", ReassemblerOptions{}, func() []Chunk { c := good(); c[0].Count = 0; return c[:1] }, "count 0 is not positive"},
		{"negative count", ReassemblerOptions{}, func() []Chunk { c := good(); c[0].Count = -3; return c[:1] }, "count -3 is not positive"},
		{"absurd count", ReassemblerOptions{}, func() []Chunk { c := good(); c[0].Count = MaxChunks + 1; return c[:1] }, "exceeds the 65536-chunk limit"},
		{"count above size", ReassemblerOptions{}, func() []Chunk {
			c := good()
			c[0].Count = c[0].Size + 1
			return c[:1]
		}, "is more than size"},
		{"zero size", ReassemblerOptions{}, func() []Chunk { c := good(); c[0].Size = 0; return c[:1] }, "size 0 is not positive"},
		{"size over limit", ReassemblerOptions{}, func() []Chunk { c := good(); c[0].Size = 20 << 20; return c[:1] }, "exceeds the"},
		{"data longer than size", ReassemblerOptions{}, func() []Chunk {
			c := good()
			c[0].Data = make([]byte, c[0].Size+1)
			return c[:1]
		}, "longer than size"},
		{"data adds up to more than size", ReassemblerOptions{}, func() []Chunk {
			c := good()
			c[1].Data = make([]byte, len(comp)-len(c[0].Data)+1)
			return c[:2]
		}, "more than size"},
		{"total short of size", ReassemblerOptions{}, func() []Chunk {
			c := good()
			c[3].Data = c[3].Data[:len(c[3].Data)-1]
			return c
		}, "data totals"},
		{"sha256 mismatch", ReassemblerOptions{}, func() []Chunk { c := good(); c[2].Data[0] ^= 0xff; return c }, "sha256 mismatch"},
		{"unknown enc", ReassemblerOptions{}, func() []Chunk { c := good(); c[0].Enc = "gzip"; return c[:1] }, `unknown enc "gzip"`},
		{"enc of a later chunk", ReassemblerOptions{}, func() []Chunk { c := good(); c[1].Enc = "br"; return c[:2] }, `unknown enc "br"`},
		{"sum not hex", ReassemblerOptions{}, func() []Chunk { c := good(); c[0].Sum = "xyz"; return c[:1] }, "not a hex SHA-256"},
		{"upper-case sum", ReassemblerOptions{}, func() []Chunk {
			c := good()
			c[0].Sum = strings.ToUpper(c[0].Sum)
			return c[:1]
		}, "not a hex SHA-256"},
		{"long msg id", ReassemblerOptions{}, func() []Chunk {
			c := good()
			c[0].Msg = strings.Repeat("m", MaxIDLen+1)
			return c[:1]
		}, "longer than 256"},
		{"decompression failure", ReassemblerOptions{}, func() []Chunk {
			return makeChunks(t, "m1", randomEvent(3000, 11), 3)
		}, "decompression failed"},
		{"decompressed over MaxEnvelope", ReassemblerOptions{MaxEnvelope: 1000}, func() []Chunk {
			return makeChunks(t, "m1", mustCompress(t, compressibleEvent(5000)), 1)
		}, "decompressed envelope exceeds 1000 bytes"},
		{"decompression bomb", ReassemblerOptions{}, func() []Chunk {
			return makeChunks(t, "m1", mustCompress(t, make([]byte, MaxEnvelopeBytes+1)), 1)
		}, "decompressed envelope exceeds 10485760 bytes"},
		{"pending bytes over bound", ReassemblerOptions{MaxPending: len(comp) + 2*chunkOverhead}, good, "pending chunk data would exceed"},
		{"size over pending bound", ReassemblerOptions{MaxPending: len(comp) - 1}, func() []Chunk { return good()[:1] }, "pending limit"},
		{"inner envelope not JSON", ReassemblerOptions{}, func() []Chunk {
			return makeChunks(t, "m1", mustCompress(t, []byte("not json at all")), 2)
		}, "inner envelope invalid"},
		{"inner envelope wrong version", ReassemblerOptions{}, func() []Chunk {
			return makeChunks(t, "m1", mustCompress(t, []byte(`{"v":9,"t":"invoke"}`)), 2)
		}, "inner envelope invalid"},
		{"chunk inside a chunk", ReassemblerOptions{}, func() []Chunk {
			c := good()[0]
			e, err := NewEnvelope(TypeChunk, "x", c)
			require.NoError(t, err)
			return makeChunks(t, "m1", compressedEnvelope(t, e), 2)
		}, "a chunk inside a chunk"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReassembler(tc.opts)
			chunks := tc.chunks()
			out, err := feed(t, r, "fn", chunks)
			assert.Nil(t, out)
			ce := requireChunkError(t, err, chunks[0].Msg, tc.reason)
			assert.Equal(t, chunks[len(chunks)-1].Seq, ce.Seq)

			m, b := r.Pending()
			assert.Zero(t, m, "a message that errors is dropped entirely")
			assert.Zero(t, b, "its memory is released")

			// Any later chunk of the message, even a good one, is refused instead of starting it again.
			late := good()[0]
			late.Msg = chunks[0].Msg
			_, err = r.Add(chunkEnvelope(t, "fn", late))
			if r.checkChunk(&late) == nil {
				requireChunkError(t, err, late.Msg, "message already dropped")
			} else {
				require.Error(t, err, "the chunk is refused on its own merits under these options")
			}
		})
	}
}

func TestReassembleUnreadableBody(t *testing.T) {
	r := NewReassembler(ReassemblerOptions{})
	for _, body := range []string{`{"seq":"zero"}`, `{"data":"***"}`, `{"msg":5}`} {
		_, err := r.Add(&Envelope{V: Version, T: TypeChunk, From: "fn", Body: []byte(body)})
		ce := requireChunkError(t, err, "", "unreadable chunk body")
		assert.Equal(t, -1, ce.Seq)
		assert.Error(t, errors.Unwrap(ce), "the decode error is kept as the cause")
	}
	_, err := r.Add(&Envelope{V: Version, T: TypeChunk, From: "fn"})
	requireChunkError(t, err, "", "missing message id")
	_, err = r.Add(nil)
	requireChunkError(t, err, "", "nil envelope")
}

func TestReassembleCompletedMessageRefusesDuplicates(t *testing.T) {
	inner := invokeEnvelope(t, randomEvent(3000, 12))
	chunks := makeChunks(t, "m", compressedEnvelope(t, inner), 3)
	r := NewReassembler(ReassemblerOptions{})
	out, err := feed(t, r, "fn", chunks)
	require.NoError(t, err)
	require.NotNil(t, out)
	assert.Equal(t, inner.Body, out.Body)

	_, err = r.Add(chunkEnvelope(t, "fn", chunks[1]))
	requireChunkError(t, err, "m", "message already complete")
	m, _ := r.Pending()
	assert.Zero(t, m, "a replayed chunk does not start a partial that would linger")
}

func TestReassembleFromOfInnerEnvelope(t *testing.T) {
	inner := invokeEnvelope(t, randomEvent(3000, 13))
	inner.From = "spoofed"
	chunks := makeChunks(t, "m", compressedEnvelope(t, inner), 2)

	out, err := feed(t, NewReassembler(ReassemblerOptions{}), "fn-real", chunks)
	require.NoError(t, err)
	assert.Equal(t, "fn-real", out.From, "the relay-stamped from of the chunks wins")

	out, err = feed(t, NewReassembler(ReassemblerOptions{}), "", chunks)
	require.NoError(t, err)
	assert.Equal(t, "spoofed", out.From, "without a relay the inner from is kept")

	inner.From = ""
	chunks = makeChunks(t, "m", compressedEnvelope(t, inner), 2)
	out, err = feed(t, NewReassembler(ReassemblerOptions{}), "fn-real", chunks)
	require.NoError(t, err)
	assert.Equal(t, "fn-real", out.From)
}

func TestReassembleSameMsgIDFromTwoSenders(t *testing.T) {
	a := invokeEnvelope(t, randomEvent(5000, 20))
	b := invokeEnvelope(t, compressibleEvent(5000))
	b.ID = "req-b"
	ca := makeChunks(t, "same", compressedEnvelope(t, a), 3)
	cb := makeChunks(t, "same", compressedEnvelope(t, b), 3)

	r := NewReassembler(ReassemblerOptions{})
	var gotA, gotB *Envelope
	for i := range 3 {
		out, err := r.Add(chunkEnvelope(t, "sender-a", ca[i]))
		require.NoError(t, err)
		if out != nil {
			gotA = out
		}
		out, err = r.Add(chunkEnvelope(t, "sender-b", cb[2-i]))
		require.NoError(t, err)
		if out != nil {
			gotB = out
		}
		if i < 2 {
			m, _ := r.Pending()
			assert.Equal(t, 2, m, "the two messages are held apart")
		}
	}
	require.NotNil(t, gotA)
	require.NotNil(t, gotB)
	assert.Equal(t, a.Body, gotA.Body)
	assert.Equal(t, "sender-a", gotA.From)
	assert.Equal(t, b.Body, gotB.Body)
	assert.Equal(t, "sender-b", gotB.From)

	// An error in one sender's message does not drop the other's.
	ca = makeChunks(t, "again", compressedEnvelope(t, a), 3)
	cb = makeChunks(t, "again", compressedEnvelope(t, b), 3)
	_, err := r.Add(chunkEnvelope(t, "sender-a", ca[0]))
	require.NoError(t, err)
	_, err = r.Add(chunkEnvelope(t, "sender-b", cb[0]))
	require.NoError(t, err)
	_, err = r.Add(chunkEnvelope(t, "sender-b", cb[0]))
	requireChunkError(t, err, "again", "duplicate seq")
	out, err := feed(t, r, "sender-a", ca[1:])
	require.NoError(t, err)
	assert.Equal(t, a.Body, out.Body)
}

// fakeClock is a settable clock for timeout tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestReassembleTimeout(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC)}
	r := NewReassembler(ReassemblerOptions{Now: clock.Now})
	inner := invokeEnvelope(t, randomEvent(3000, 30))
	comp := compressedEnvelope(t, inner)
	chunks := makeChunks(t, "slow", comp, 3)

	_, err := r.Add(chunkEnvelope(t, "fn", chunks[0]))
	require.NoError(t, err)
	clock.Advance(DefaultChunkTimeout)
	assert.Zero(t, r.Expire(), "exactly the timeout is not older than it")
	m, b := r.Pending()
	assert.Equal(t, 1, m)
	assert.Equal(t, len(chunks[0].Data)+chunkOverhead, b)

	clock.Advance(time.Millisecond)
	assert.Equal(t, 1, r.Expire())
	m, b = r.Pending()
	assert.Zero(t, m)
	assert.Zero(t, b)
	_, err = r.Add(chunkEnvelope(t, "fn", chunks[1]))
	requireChunkError(t, err, "slow", "timed out")

	// A message that completes within the timeout is delivered.
	chunks = makeChunks(t, "quick", comp, 3)
	for i, c := range chunks {
		out, err := r.Add(chunkEnvelope(t, "fn", c))
		require.NoError(t, err)
		if i == 2 {
			require.NotNil(t, out)
			assert.Equal(t, inner.Body, out.Body)
		}
		clock.Advance(DefaultChunkTimeout / 3)
	}

	// Add expires lazily: a stale partial is dropped when any chunk arrives.
	r = NewReassembler(ReassemblerOptions{Now: clock.Now, Timeout: time.Second})
	stale := makeChunks(t, "stale", comp, 3)
	_, err = r.Add(chunkEnvelope(t, "fn", stale[0]))
	require.NoError(t, err)
	clock.Advance(2 * time.Second)
	fresh := makeChunks(t, "fresh", comp, 3)
	_, err = r.Add(chunkEnvelope(t, "fn", fresh[0]))
	require.NoError(t, err)
	m, _ = r.Pending()
	assert.Equal(t, 1, m, "only the fresh message is held")

	// Dropped keys are forgotten after another timeout, so the table of them stays bounded in time too.
	clock.Advance(3 * time.Second)
	r.Expire()
	_, err = r.Add(chunkEnvelope(t, "fn", stale[1]))
	require.NoError(t, err, "a key forgotten after the timeout starts a new partial")
}

func TestReassembleMemoryBounds(t *testing.T) {
	inner := invokeEnvelope(t, randomEvent(6000, 40))
	comp := compressedEnvelope(t, inner)

	t.Run("partials", func(t *testing.T) {
		r := NewReassembler(ReassemblerOptions{MaxPartial: 3})
		for i := range 3 {
			_, err := r.Add(chunkEnvelope(t, "fn", makeChunks(t, fmt.Sprint("m", i), comp, 2)[0]))
			require.NoError(t, err)
		}
		_, err := r.Add(chunkEnvelope(t, "fn", makeChunks(t, "m3", comp, 2)[0]))
		requireChunkError(t, err, "m3", "too many partial messages (limit 3)")
		m, _ := r.Pending()
		assert.Equal(t, 3, m)

		// Chunks of messages already held still complete.
		out, err := r.Add(chunkEnvelope(t, "fn", makeChunks(t, "m1", comp, 2)[1]))
		require.NoError(t, err)
		require.NotNil(t, out)
		m, _ = r.Pending()
		assert.Equal(t, 2, m)
	})

	t.Run("pending bytes", func(t *testing.T) {
		limit := len(comp) + len(comp)/2
		r := NewReassembler(ReassemblerOptions{MaxPending: limit})
		a := makeChunks(t, "a", comp, 4)
		b := makeChunks(t, "b", comp, 4)
		for i := range 3 {
			_, err := r.Add(chunkEnvelope(t, "fn", a[i]))
			require.NoError(t, err)
		}
		_, held := r.Pending()
		want := 0
		for _, c := range a[:3] {
			want += len(c.Data) + chunkOverhead
		}
		assert.Equal(t, want, held)

		var err error
		for i := 0; i < 4 && err == nil; i++ {
			_, err = r.Add(chunkEnvelope(t, "fn", b[i]))
		}
		requireChunkError(t, err, "b", fmt.Sprintf("pending chunk data would exceed %d bytes", limit))
		m, held := r.Pending()
		assert.Equal(t, 1, m, "only the message that overflowed is dropped")
		assert.Equal(t, want, held)
		assert.LessOrEqual(t, held, limit)

		out, err := r.Add(chunkEnvelope(t, "fn", a[3]))
		require.NoError(t, err)
		require.NotNil(t, out)
		m, held = r.Pending()
		assert.Zero(t, m)
		assert.Zero(t, held)
	})

	t.Run("many tiny chunks are charged overhead", func(t *testing.T) {
		r := NewReassembler(ReassemblerOptions{MaxPending: len(comp) + 100*chunkOverhead})
		chunks := makeChunks(t, "tiny", comp, len(comp))
		_, err := feed(t, r, "fn", chunks)
		requireChunkError(t, err, "tiny", "pending chunk data would exceed")
		assert.Less(t, r.mustSeq(t, err), len(comp)/10, "one-byte chunks cost more than their byte")
	})

	t.Run("remembered keys are bounded", func(t *testing.T) {
		r := NewReassembler(ReassemblerOptions{})
		c := makeChunks(t, "x", comp, 1)[0]
		for i := range maxRecent + 10 {
			c.Msg = fmt.Sprint("msg-", i)
			out, err := r.Add(chunkEnvelope(t, "fn", c))
			require.NoError(t, err)
			require.NotNil(t, out)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		assert.Len(t, r.recent, maxRecent)
		assert.Len(t, r.recentQ, maxRecent)
	})
}

func (r *Reassembler) mustSeq(t *testing.T, err error) int {
	t.Helper()
	var ce *ChunkError
	require.True(t, errors.As(err, &ce))
	return ce.Seq
}

func TestReassembleConcurrent(t *testing.T) {
	r := NewReassembler(ReassemblerOptions{})
	const senders = 6
	envs := make([]*Envelope, senders)
	msgs := make([][][]byte, senders)
	for i := range senders {
		envs[i] = invokeEnvelope(t, randomEvent(150_000+i*1000, uint64(100+i)))
		var err error
		msgs[i], err = SplitWith(envs[i], SplitOptions{MaxMessage: 16 << 10})
		require.NoError(t, err)
	}
	results := make([]*Envelope, senders)
	errs := make([]error, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			from := fmt.Sprint("fn-", i)
			for _, m := range msgs[i] {
				stamped, err := Restamp(m, from)
				if err != nil {
					errs[i] = err
					return
				}
				e, err := Unmarshal(stamped)
				if err != nil {
					errs[i] = err
					return
				}
				out, err := r.Add(e)
				if err != nil {
					errs[i] = err
					return
				}
				if out != nil {
					results[i] = out
				}
			}
		})
	}
	wg.Wait()
	for i := range senders {
		require.NoError(t, errs[i])
		require.NotNil(t, results[i])
		assert.Equal(t, envs[i].Body, results[i].Body)
		assert.Equal(t, fmt.Sprint("fn-", i), results[i].From)
	}
	m, b := r.Pending()
	assert.Zero(t, m)
	assert.Zero(t, b)
}

func TestReassemblerDefaults(t *testing.T) {
	r := NewReassembler(ReassemblerOptions{MaxPending: -1, MaxPartial: -5, Timeout: -time.Second, MaxEnvelope: -1})
	assert.Equal(t, MaxEnvelopeBytes, r.maxEnvelope)
	assert.Equal(t, DefaultMaxPending, r.maxPending)
	assert.Equal(t, DefaultMaxPartial, r.maxPartial)
	assert.Equal(t, DefaultChunkTimeout, r.timeout)
	assert.NotNil(t, r.now)
}

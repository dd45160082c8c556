package gateway

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refFrameLimit is the obvious whole-buffer version of frameLimiter.feed: the offset of the first oversized
// frame's header, or (len(b), false).
func refFrameLimit(b []byte, limit uint64) (int, bool) {
	off := 0
	for off < len(b) {
		if len(b)-off < 2 {
			return len(b), false
		}
		hdr := 2
		n := uint64(b[off+1] & 0x7f)
		switch n {
		case 126:
			hdr = 4
		case 127:
			hdr = 10
		}
		if b[off+1]&0x80 != 0 {
			hdr += 4
		}
		if len(b)-off < hdr {
			return len(b), false
		}
		switch n {
		case 126:
			n = uint64(b[off+2])<<8 | uint64(b[off+3])
		case 127:
			n = 0
			for _, x := range b[off+2 : off+10] {
				n = n<<8 | uint64(x)
			}
		}
		if n > limit {
			return off, true
		}
		if uint64(len(b)-off-hdr) < n {
			return len(b), false
		}
		off += hdr + int(n)
	}
	return len(b), false
}

// feedInPieces feeds b to a fresh limiter cut at the given sizes and returns the clean byte count and verdict.
func feedInPieces(b []byte, limit int, cuts []byte) (int, bool) {
	f := newFrameLimiter(limit)
	clean := 0
	for i := 0; len(b) > 0; i++ {
		n := len(b)
		if len(cuts) > 0 {
			n = int(cuts[i%len(cuts)])%len(b) + 1
		}
		c, bad := f.feed(b[:n])
		clean += c
		if bad {
			return clean, true
		}
		b = b[n:]
	}
	return clean, false
}

// assertCleanPrefix checks what the limiter let through before an oversized frame: everything up to the
// frame's header, plus possibly the part of that header that arrived in earlier reads (harmless: a reader
// cannot act on half a header).
func assertCleanPrefix(t *testing.T, headerAt, clean int) {
	t.Helper()
	assert.GreaterOrEqual(t, clean, headerAt)
	assert.Less(t, clean, headerAt+14, "more than a header's worth of the oversized frame got through")
}

func TestFrameLimiter(t *testing.T) {
	ok := rawFrame(1, true, make([]byte, 100))
	atLimit := rawFrame(2, true, make([]byte, 1000))
	over := rawFrame(2, true, make([]byte, 1001))
	huge := []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4} // 2^63: invalid, and over any limit
	ping := rawFrame(9, true, []byte("p"))

	stream := bytes.Join([][]byte{ok, ping, atLimit, over, ok}, nil)
	for _, cuts := range [][]byte{nil, {0}, {1}, {2, 5}, {13, 200, 3}} {
		clean, bad := feedInPieces(stream, 1000, cuts)
		assert.True(t, bad, "cuts %v", cuts)
		assertCleanPrefix(t, len(ok)+len(ping)+len(atLimit), clean)
	}

	clean, bad := feedInPieces(append(append([]byte{}, ok...), huge...), 1000, []byte{3})
	assert.True(t, bad)
	assertCleanPrefix(t, len(ok), clean)

	clean, bad = feedInPieces(bytes.Repeat(atLimit, 5), 1000, []byte{7})
	assert.False(t, bad)
	assert.Equal(t, 5*len(atLimit), clean)

	// Once violated, it stays violated.
	f := newFrameLimiter(10)
	_, bad = f.feed(rawFrame(1, true, make([]byte, 11)))
	require.True(t, bad)
	n, bad := f.feed(ok)
	assert.True(t, bad)
	assert.Zero(t, n)
}

func FuzzFrameLimiter(f *testing.F) {
	f.Add(rawFrame(1, true, []byte("hello")), uint16(100), []byte{1, 2, 3})
	f.Add(append(rawFrame(1, false, make([]byte, 50)), rawFrame(0, true, make([]byte, 200))...), uint16(100), []byte{7})
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, uint16(0), []byte{})
	f.Add([]byte{0x81, 0xfe, 0x01}, uint16(125), []byte{1})
	f.Fuzz(func(t *testing.T, stream []byte, limit uint16, cuts []byte) {
		wantClean, wantBad := refFrameLimit(stream, uint64(limit))
		clean, bad := feedInPieces(stream, int(limit), cuts)
		if bad != wantBad || (!bad && clean != wantClean) || (bad && (clean < wantClean || clean >= wantClean+14)) {
			t.Fatalf("pieces %v: got (%d, %v), whole-buffer reference says (%d, %v)", cuts, clean, bad, wantClean, wantBad)
		}
	})
}

func TestFrameLimiterWatchFindsTheCloseAfterAViolation(t *testing.T) {
	f := newFrameLimiter(10)
	over := rawFrame(2, true, make([]byte, 50))
	closeFrame := rawFrame(8, true, []byte{0x03, 0xf1})
	// The oversized frame arrives with part of its payload; the rest and the close come later, split.
	clean, bad := f.feed(over[:20])
	require.True(t, bad)
	require.Zero(t, clean)
	assert.False(t, f.watch(f.rest))
	tail := append(append([]byte{}, over[20:]...), rawFrame(1, true, []byte("late"))...)
	assert.False(t, f.watch(tail))
	assert.False(t, f.watch(closeFrame[:1]))
	assert.True(t, f.watch(closeFrame[1:]))
}

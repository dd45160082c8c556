package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Reassembler defaults.
const (
	DefaultMaxPending   = 64 << 20
	DefaultMaxPartial   = 64
	DefaultChunkTimeout = 30 * time.Second

	// chunkOverhead is what each held chunk is charged on top of its data, so that many tiny chunks cannot
	// hold more memory than MaxPending says.
	chunkOverhead = 64
	// maxRecent bounds how many finished or dropped message keys are remembered to reject their late chunks.
	maxRecent = 1024
)

// ReassemblerOptions bounds what a Reassembler holds. Zero values mean the defaults.
type ReassemblerOptions struct {
	MaxEnvelope int              // 0 → MaxEnvelopeBytes: limit on the decompressed size; also bounds Size
	MaxPending  int              // 0 → 64 MiB: total bytes of all partial messages held
	MaxPartial  int              // 0 → 64: partial messages held at once
	Timeout     time.Duration    // 0 → 30 s: an incomplete message older than this is dropped
	Now         func() time.Time // nil → time.Now (tests inject a clock)
}

// ChunkError is why a chunk was refused. The whole message it belongs to is dropped with it.
type ChunkError struct {
	Msg    string // the chunk's message id ("" when the chunk body could not be read)
	Seq    int    // the chunk's seq (-1 when unknown)
	Reason string
	Err    error // underlying cause, if any
}

func (e *ChunkError) Error() string {
	s := fmt.Sprintf("chunk %d of message %q: %s", e.Seq, e.Msg, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ChunkError) Unwrap() error { return e.Err }

// Reassembler collects chunks into the envelopes they carry. It is safe for concurrent use.
type Reassembler struct {
	maxEnvelope int
	maxSize     int // largest acceptable Chunk.Size
	maxPending  int
	maxPartial  int
	timeout     time.Duration
	now         func() time.Time

	decOnce sync.Once
	dec     *zstd.Decoder
	decErr  error

	mu       sync.Mutex
	partials map[msgKey]*partial
	pending  int // bytes charged for all partials
	recent   map[msgKey]recentEntry
	recentQ  []recentItem // insertion order of recent, oldest first
	recentN  uint64
}

type msgKey struct{ from, msg string }

type partial struct {
	count, size int
	sum, enc    string
	created     time.Time
	chunks      map[int][]byte
	received    int // data bytes held
	charged     int // bytes charged against pending
}

type recentEntry struct {
	reason string
	at     time.Time
	n      uint64 // matches recentItem.n of the queue entry that added it
}

type recentItem struct {
	key msgKey
	at  time.Time
	n   uint64
}

// NewReassembler returns an empty Reassembler. Negative options are treated as zero (the default).
func NewReassembler(o ReassemblerOptions) *Reassembler {
	r := &Reassembler{
		maxEnvelope: o.MaxEnvelope,
		maxPending:  o.MaxPending,
		maxPartial:  o.MaxPartial,
		timeout:     o.Timeout,
		now:         o.Now,
		partials:    make(map[msgKey]*partial),
		recent:      make(map[msgKey]recentEntry),
	}
	if r.maxEnvelope <= 0 {
		r.maxEnvelope = MaxEnvelopeBytes
	}
	if r.maxPending <= 0 {
		r.maxPending = DefaultMaxPending
	}
	if r.maxPartial <= 0 {
		r.maxPartial = DefaultMaxPartial
	}
	if r.timeout <= 0 {
		r.timeout = DefaultChunkTimeout
	}
	if r.now == nil {
		r.now = time.Now
	}
	// zstd adds a few bytes per 128 KB block to data it cannot compress, so the compressed form of the largest
	// envelope may be slightly larger than the envelope.
	r.maxSize = r.maxEnvelope + r.maxEnvelope/64 + 1024
	return r
}

// Add takes one received envelope. Envelopes that are not chunks are returned unchanged. A chunk returns
// (nil, nil) while its message is incomplete and the carried envelope once the last chunk arrives; chunks are
// grouped by (e.From, Chunk.Msg), so two senders cannot interfere. The carried envelope's From is set to
// e.From: the relay stamped the chunks, not the envelope inside them, so its own From is not trusted
// (when e.From is empty, as without a relay, the inner From is kept).
//
// A bad chunk returns a *ChunkError and drops its whole message; the message's later chunks are refused too.
func (r *Reassembler) Add(e *Envelope) (*Envelope, error) {
	if e == nil {
		return nil, &ChunkError{Seq: -1, Reason: "nil envelope"}
	}
	if e.T != TypeChunk {
		return e, nil
	}
	c, err := decodeChunkBody(e)
	if err != nil {
		return nil, &ChunkError{Seq: -1, Reason: "unreadable chunk body", Err: err}
	}
	key := msgKey{from: e.From, msg: c.Msg}
	if cerr := r.checkChunk(&c); cerr != nil {
		if c.Msg != "" && len(c.Msg) <= MaxIDLen {
			r.mu.Lock()
			now := r.now()
			if p := r.partials[key]; p != nil {
				r.dropLocked(key, p, "dropped ("+cerr.Reason+")", now)
			} else if _, ok := r.recent[key]; !ok {
				r.rememberLocked(key, "dropped ("+cerr.Reason+")", now)
			}
			r.mu.Unlock()
		}
		return nil, cerr
	}

	r.mu.Lock()
	now := r.now()
	r.expireLocked(now)
	if rec, ok := r.recent[key]; ok {
		r.mu.Unlock()
		return nil, &ChunkError{Msg: c.Msg, Seq: c.Seq, Reason: "message already " + rec.reason}
	}
	p := r.partials[key]
	if p == nil {
		if len(r.partials) >= r.maxPartial {
			r.rememberLocked(key, "dropped (too many partial messages)", now)
			r.mu.Unlock()
			return nil, &ChunkError{Msg: c.Msg, Seq: c.Seq,
				Reason: fmt.Sprintf("too many partial messages (limit %d)", r.maxPartial)}
		}
		p = &partial{count: c.Count, size: c.Size, sum: c.Sum, enc: c.Enc, created: now,
			chunks: make(map[int][]byte, min(c.Count, 16))}
		r.partials[key] = p
	}
	fail := func(reason string) (*Envelope, error) {
		r.dropLocked(key, p, "dropped ("+reason+")", now)
		r.mu.Unlock()
		return nil, &ChunkError{Msg: c.Msg, Seq: c.Seq, Reason: reason}
	}
	switch {
	case c.Count != p.count:
		return fail(fmt.Sprintf("count %d disagrees with %d in earlier chunks", c.Count, p.count))
	case c.Size != p.size:
		return fail(fmt.Sprintf("size %d disagrees with %d in earlier chunks", c.Size, p.size))
	case c.Sum != p.sum:
		return fail("sum disagrees with earlier chunks")
	case c.Enc != p.enc:
		return fail(fmt.Sprintf("enc %q disagrees with %q in earlier chunks", c.Enc, p.enc))
	}
	if _, dup := p.chunks[c.Seq]; dup {
		return fail("duplicate seq")
	}
	if p.received+len(c.Data) > p.size {
		return fail(fmt.Sprintf("data adds up to more than size %d", p.size))
	}
	cost := len(c.Data) + chunkOverhead
	if r.pending+cost > r.maxPending {
		return fail(fmt.Sprintf("pending chunk data would exceed %d bytes", r.maxPending))
	}
	p.chunks[c.Seq] = c.Data
	p.received += len(c.Data)
	p.charged += cost
	r.pending += cost
	if len(p.chunks) < p.count {
		r.mu.Unlock()
		return nil, nil
	}
	// Complete: take it out of the table and do the expensive part without the lock.
	r.dropLocked(key, p, "complete", now)
	r.mu.Unlock()

	inner, reason, err := r.assemble(p)
	if reason != "" {
		r.mu.Lock()
		r.rememberLocked(key, "dropped ("+reason+")", r.now())
		r.mu.Unlock()
		return nil, &ChunkError{Msg: c.Msg, Seq: c.Seq, Reason: reason, Err: err}
	}
	if e.From != "" {
		inner.From = e.From
	}
	return inner, nil
}

// checkChunk validates what a chunk says about itself, before it touches any state.
func (r *Reassembler) checkChunk(c *Chunk) *ChunkError {
	bad := func(format string, args ...any) *ChunkError {
		return &ChunkError{Msg: c.Msg, Seq: c.Seq, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.Msg == "":
		return bad("missing message id")
	case len(c.Msg) > MaxIDLen:
		return bad("message id is %d bytes, longer than %d", len(c.Msg), MaxIDLen)
	case c.Enc != EncZstd:
		return bad("unknown enc %q", c.Enc)
	case c.Count <= 0:
		return bad("count %d is not positive", c.Count)
	case c.Count > MaxChunks:
		return bad("count %d exceeds the %d-chunk limit", c.Count, MaxChunks)
	case c.Size <= 0:
		return bad("size %d is not positive", c.Size)
	case c.Size > r.maxSize:
		return bad("size %d exceeds the %d-byte limit", c.Size, r.maxSize)
	case c.Size > r.maxPending:
		return bad("size %d exceeds the %d-byte pending limit", c.Size, r.maxPending)
	case c.Count > c.Size:
		return bad("count %d is more than size %d", c.Count, c.Size)
	case c.Seq < 0 || c.Seq >= c.Count:
		return bad("seq out of range 0..%d", c.Count-1)
	case len(c.Data) > c.Size:
		return bad("data of %d bytes is longer than size %d", len(c.Data), c.Size)
	case !isHexSum(c.Sum):
		return bad("sum is not a hex SHA-256")
	}
	return nil
}

// assemble joins, verifies and decodes a complete message. On failure it returns a reason (and maybe a cause).
func (r *Reassembler) assemble(p *partial) (*Envelope, string, error) {
	if p.received != p.size {
		return nil, fmt.Sprintf("data totals %d bytes, size says %d", p.received, p.size), nil
	}
	comp := make([]byte, 0, p.size)
	for seq := range p.count {
		comp = append(comp, p.chunks[seq]...)
	}
	p.chunks = nil
	got := sha256.Sum256(comp)
	if hex.EncodeToString(got[:]) != p.sum {
		return nil, "sha256 mismatch", nil
	}
	dec, err := r.decoder()
	if err != nil {
		return nil, "no decoder", err
	}
	raw, err := dec.DecodeAll(comp, nil)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) ||
		(err == nil && len(raw) > r.maxEnvelope) {
		return nil, fmt.Sprintf("decompressed envelope exceeds %d bytes", r.maxEnvelope), nil
	}
	if err != nil {
		return nil, "decompression failed", err
	}
	inner, err := unmarshalLimit(raw, r.maxEnvelope, true)
	if err != nil {
		return nil, "inner envelope invalid", err
	}
	if inner.T == TypeChunk {
		return nil, "a chunk inside a chunk", nil
	}
	return inner, "", nil
}

func (r *Reassembler) decoder() (*zstd.Decoder, error) {
	if r.maxEnvelope == MaxEnvelopeBytes {
		return sharedDecoder()
	}
	r.decOnce.Do(func() { r.dec, r.decErr = newDecoder(r.maxEnvelope) })
	return r.dec, r.decErr
}

// Expire drops incomplete messages older than the timeout and returns how many it dropped. Add does the same
// on every call, so calling Expire is only needed to free memory when no chunks arrive.
func (r *Reassembler) Expire() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.expireLocked(r.now())
}

// Pending returns how many partial messages are held and the bytes charged for them (their data plus a small
// fixed overhead per chunk); the latter is what MaxPending bounds.
func (r *Reassembler) Pending() (messages, bytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.partials), r.pending
}

func (r *Reassembler) expireLocked(now time.Time) int {
	n := 0
	for key, p := range r.partials {
		if now.Sub(p.created) > r.timeout {
			r.dropLocked(key, p, "dropped (timed out)", now)
			n++
		}
	}
	// Finished keys are remembered for one timeout: long enough for any straggling chunk of the message.
	for len(r.recentQ) > 0 && now.Sub(r.recentQ[0].at) > r.timeout {
		r.popRecentLocked()
	}
	return n
}

func (r *Reassembler) dropLocked(key msgKey, p *partial, reason string, now time.Time) {
	if r.partials[key] == p {
		delete(r.partials, key)
		r.pending -= p.charged
		p.charged = 0
	}
	if reason != "complete" {
		p.chunks = nil
	}
	r.rememberLocked(key, reason, now)
}

func (r *Reassembler) rememberLocked(key msgKey, reason string, now time.Time) {
	r.recentN++
	r.recent[key] = recentEntry{reason: reason, at: now, n: r.recentN}
	r.recentQ = append(r.recentQ, recentItem{key: key, at: now, n: r.recentN})
	for len(r.recentQ) > maxRecent {
		r.popRecentLocked()
	}
}

func (r *Reassembler) popRecentLocked() {
	it := r.recentQ[0]
	r.recentQ[0] = recentItem{}
	r.recentQ = r.recentQ[1:]
	if cur, ok := r.recent[it.key]; ok && cur.n == it.n {
		delete(r.recent, it.key)
	}
	if len(r.recentQ) == 0 {
		r.recentQ = nil
	}
}

func isHexSum(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

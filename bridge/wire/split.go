package wire

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// MaxChunks is the most chunks one message may be cut into, on both sides. With the default message size a
// MaxEnvelopeBytes envelope needs about a hundred; the bound only stops absurd counts from a hostile peer.
const MaxChunks = 1 << 16

// SplitOptions tunes SplitWith.
type SplitOptions struct {
	// MaxMessage is the largest message SplitWith returns. 0 means MaxMessageBytes - RestampHeadroom, which
	// leaves room for the relay to add "from".
	MaxMessage int
}

// Split is SplitWith with the default options.
func Split(e *Envelope) ([][]byte, error) {
	return SplitWith(e, SplitOptions{})
}

// SplitWith turns e into the WebSocket messages that carry it. An envelope whose JSON fits in o.MaxMessage is
// returned as one message. A larger one is compressed with zstd and the compressed bytes are cut into chunk
// envelopes (see Chunk) of at most o.MaxMessage bytes each, all addressed to e.To so the relay can route them
// one by one. Envelopes over MaxEnvelopeBytes are refused.
func SplitWith(e *Envelope, o SplitOptions) ([][]byte, error) {
	limit := o.MaxMessage
	if limit == 0 {
		limit = MaxMessageBytes - RestampHeadroom
	}
	if limit < 0 {
		return nil, fmt.Errorf("split: negative MaxMessage %d", limit)
	}
	if e == nil {
		return nil, errors.New("split: nil envelope")
	}
	raw, err := Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	if len(raw) > MaxEnvelopeBytes {
		return nil, fmt.Errorf("split %s envelope %q: %d bytes exceeds the %d-byte envelope limit",
			e.T, e.ID, len(raw), MaxEnvelopeBytes)
	}
	if len(raw) <= limit {
		return [][]byte{raw}, nil
	}
	if e.T == TypeChunk {
		// The receiver rejects chunks inside chunks; say so here instead.
		return nil, fmt.Errorf("split: chunk envelope %q of %d bytes exceeds %d and cannot be chunked again",
			e.ID, len(raw), limit)
	}

	comp, err := compress(raw)
	if err != nil {
		return nil, fmt.Errorf("split %s envelope %q: %w", e.T, e.ID, err)
	}
	sum := sha256.Sum256(comp)
	c := Chunk{Msg: newID(), Size: len(comp), Sum: hex.EncodeToString(sum[:]), Enc: EncZstd}

	// Measure a chunk envelope with empty data. Seq and Count are set to len(comp), which has at least as many
	// digits as any real seq or count, so every real chunk's overhead is at most this.
	probe := c
	probe.Seq, probe.Count, probe.Data = len(comp), len(comp), []byte{}
	overhead, err := chunkLen(e.To, probe)
	if err != nil {
		return nil, fmt.Errorf("split %s envelope %q: %w", e.T, e.ID, err)
	}
	// Data is base64 with padding: n bytes take 4*ceil(n/3) characters.
	per := (limit - overhead) / 4 * 3
	if per < 1 {
		return nil, fmt.Errorf("split: MaxMessage %d is too small for a chunk (needs more than %d)", limit, overhead+3)
	}
	c.Count = (len(comp) + per - 1) / per
	if c.Count > MaxChunks {
		return nil, fmt.Errorf("split %s envelope %q: %d chunks of %d bytes exceeds the %d-chunk limit; raise MaxMessage",
			e.T, e.ID, c.Count, per, MaxChunks)
	}

	out := make([][]byte, 0, c.Count)
	for seq := range c.Count {
		c.Seq = seq
		c.Data = comp[seq*per : min((seq+1)*per, len(comp))]
		msg, err := marshalChunk(e.To, c)
		if err != nil {
			return nil, fmt.Errorf("split %s envelope %q: chunk %d: %w", e.T, e.ID, seq, err)
		}
		if len(msg) > limit {
			// Cannot happen unless the overhead estimate above is wrong; never send a message API Gateway
			// would close the connection for.
			return nil, fmt.Errorf("split %s envelope %q: chunk %d is %d bytes, over the %d limit",
				e.T, e.ID, seq, len(msg), limit)
		}
		out = append(out, msg)
	}
	return out, nil
}

// marshalChunk writes a chunk envelope directly, byte for byte what Marshal(NewEnvelope(TypeChunk, …)) would
// write, without encoding/json's reflection and its second pass over the data.
func marshalChunk(to string, c Chunk) ([]byte, error) {
	if len(to) > MaxPeerLen {
		return nil, fmt.Errorf(`peer id "to" is %d bytes, longer than %d`, len(to), MaxPeerLen)
	}
	b := make([]byte, 0, 256+len(to)+len(c.Msg)+base64.StdEncoding.EncodedLen(len(c.Data)))
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, Version, 10)
	b = append(b, `,"t":"chunk","id":`...)
	b = appendString(b, newID())
	if to != "" {
		b = append(b, `,"to":`...)
		b = appendString(b, to)
	}
	b = append(b, `,"body":{"msg":`...)
	b = appendString(b, c.Msg)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, int64(c.Seq), 10)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(c.Count), 10)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(c.Size), 10)
	b = append(b, `,"sum":`...)
	b = appendString(b, c.Sum)
	b = append(b, `,"enc":`...)
	b = appendString(b, c.Enc)
	b = append(b, `,"data":"`...)
	b = base64.StdEncoding.AppendEncode(b, c.Data)
	return append(b, `"}}`...), nil
}

func chunkLen(to string, c Chunk) (int, error) {
	b, err := marshalChunk(to, c)
	return len(b), err
}

// newID returns a random id (26 base32 characters, 130 bits), always of the same length, which the chunk
// overhead estimate relies on.
func newID() string {
	return rand.Text()
}

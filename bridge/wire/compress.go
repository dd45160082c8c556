package wire

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// EncZstd is the only chunk encoding: zstd at its fastest level.
const EncZstd = "zstd"

// The encoder and decoder are shared and created on first use: the layer proxy runs inside a Lambda sandbox
// with an RSS target of 15 MB and, when no session is live, never compresses anything. One of each, with
// concurrency 1 and the low-memory options, keeps their tables small; EncodeAll and DecodeAll are safe for
// concurrent use (callers queue for the single block coder).
var (
	encOnce sync.Once
	encZ    *zstd.Encoder
	encErr  error

	decOnce sync.Once
	decZ    *zstd.Decoder
	decErr  error
)

func sharedEncoder() (*zstd.Encoder, error) {
	encOnce.Do(func() {
		encZ, encErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true))
		if encErr != nil {
			encErr = fmt.Errorf("create zstd encoder: %w", encErr)
		}
	})
	return encZ, encErr
}

// sharedDecoder is the decoder for the default limit, MaxEnvelopeBytes.
func sharedDecoder() (*zstd.Decoder, error) {
	decOnce.Do(func() {
		decZ, decErr = newDecoder(MaxEnvelopeBytes)
	})
	return decZ, decErr
}

// newDecoder makes a decoder that refuses to produce more than limit bytes, which is what makes a
// decompression bomb harmless.
func newDecoder(limit int) (*zstd.Decoder, error) {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(limit)))
	if err != nil {
		return nil, fmt.Errorf("create zstd decoder: %w", err)
	}
	return d, nil
}

func compress(src []byte) ([]byte, error) {
	enc, err := sharedEncoder()
	if err != nil {
		return nil, err
	}
	return enc.EncodeAll(src, make([]byte, 0, len(src)/2+64)), nil
}

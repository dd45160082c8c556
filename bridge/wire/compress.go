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
//
// The window is 512 KiB instead of the default 8 MiB: with WithLowerEncoderMem the encoder keeps one window of
// history and slides it down on every 128 KiB block, so a large window made compressing a 6 MB payload several
// times slower and kept 8 MiB of history alive for the life of the process, while JSON gains almost nothing
// from matches further back (measured on a 6 MB JSON event: the output was no larger). Entropy coding of
// literals is switched on although no matches are found: Invoke.Event and Result.Payload travel as base64,
// which Huffman coding shrinks by a quarter even when the bytes underneath are random, and every chunk saved
// is one less message through API Gateway.
const zstdWindow = 512 << 10

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
			zstd.WithLowerEncoderMem(true),
			zstd.WithWindowSize(zstdWindow),
			zstd.WithAllLitEntropyCompression(true))
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

package carrier

import (
	"encoding/binary"
	"math/bits"
)

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// zeroBytes marks (high bit) the bytes of v that are zero. A byte above a zero byte may be marked too; that only
// makes a candidate the caller checks.
func zeroBytes(v uint64) uint64 { return (v - ones) &^ v & highs }

// mayHoldWords is mayHold reading eight bytes at a time: in each word, it marks the bytes that fold to 'k' and
// are preceded by one that folds to 'b' or '-' (OR 0x20 folds ASCII case; it also folds CR to '-', a candidate
// knockAt then refuses). Words overlap by one byte so that every pair of neighbours is inside some word.
func mayHoldWords(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 7 {
		f := binary.LittleEndian.Uint64(b[i:]) | 0x2020202020202020
		k := zeroBytes(f ^ ('k' * ones))
		if k == 0 {
			continue
		}
		p := zeroBytes(f^('b'*ones)) | zeroBytes(f^('-'*ones))
		for c := k & (p << 8); c != 0; c &= c - 1 {
			if knockAt(b, i+bits.TrailingZeros64(c)/8) {
				return true
			}
		}
	}
	for ; i < len(b); i++ {
		if b[i]|0x20 == 'k' && knockAt(b, i) {
			return true
		}
	}
	return false
}

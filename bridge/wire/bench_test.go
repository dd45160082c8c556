package wire

import (
	"strings"
	"testing"
)

func BenchmarkSplitReassemble(b *testing.B) {
	const size = 6 << 20
	cases := []struct {
		name  string
		event []byte
	}{
		{"6MB-compressible", compressibleEvent(size)},
		{"6MB-random", randomEvent(size, 1)},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			e := invokeEnvelope(b, tc.event)
			e.To = "fn-1"
			r := NewReassembler(ReassemblerOptions{})
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				msgs, err := Split(e)
				if err != nil {
					b.Fatal(err)
				}
				var out *Envelope
				for _, m := range msgs {
					env, err := Unmarshal(m)
					if err != nil {
						b.Fatal(err)
					}
					if out, err = r.Add(env); err != nil {
						b.Fatal(err)
					}
				}
				if out == nil {
					b.Fatal("not reassembled")
				}
			}
			b.ReportMetric(float64(len(mustSplit(b, e))), "msgs/op")
		})
	}
}

func mustSplit(b *testing.B, e *Envelope) [][]byte {
	msgs, err := Split(e)
	if err != nil {
		b.Fatal(err)
	}
	return msgs
}

func BenchmarkMarshalSmall(b *testing.B) {
	e, err := NewEnvelope(TypeAck, "c0ffee00-1234-5678-9abc-def012345678", Ack{RequestID: "c0ffee00-1234-5678-9abc-def012345678"})
	if err != nil {
		b.Fatal(err)
	}
	e.To = "fn-3a9c0d"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelayHop is what the relay does to every message: peek the header and restamp "from".
func BenchmarkRelayHop(b *testing.B) {
	msgs := mustSplit(b, invokeEnvelope(b, randomEvent(1<<20, 2)))
	msg := msgs[0]
	peer := strings.Repeat("p", 36)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PeekHeader(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := Restamp(msg, peer); err != nil {
			b.Fatal(err)
		}
	}
}

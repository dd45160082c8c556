package carrier

import (
	"bytes"
	"strings"
	"testing"
)

// naiveHold is what mayHold and mayHoldWords must agree with.
func naiveHold(b []byte) bool {
	l := bytes.Map(func(r rune) rune { // ASCII only: bytes.ToLower would also fold the Kelvin sign to 'k'
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, b)
	return bytes.Contains(l, []byte("plldb-knock")) || bytes.Contains(l, []byte("plldbknock"))
}

func TestScansAgree(t *testing.T) {
	for _, s := range []string{
		"", "k", "plldbknock", "PLLDBKNOCK", "x-plldb-knock", "X-Plldb-Knock", "plldb\rknock", "plldb knock",
		"plldb-knoc", "lldbknock", "1234567plldbknock", "123456plldbknock", "1234567x-plldb-knock",
		strings.Repeat("k", 200) + "plldb-knock", strings.Repeat("bk-k", 100), strings.Repeat("bk-k", 100) + "PlLdBkNoCk",
	} {
		want := naiveHold([]byte(s))
		if mayHold([]byte(s)) != want || mayHoldWords([]byte(s)) != want || mayHoldString(s) != want {
			t.Errorf("scans disagree on %q (want %v)", s, want)
		}
		// At every offset, so each pair position inside and across words is covered.
		for pad := 1; pad < 9; pad++ {
			p := strings.Repeat(".", pad) + s
			if mayHoldWords([]byte(p)) != naiveHold([]byte(p)) {
				t.Errorf("mayHoldWords wrong on %q", p)
			}
		}
	}
}

func FuzzScans(f *testing.F) {
	f.Add([]byte("x-plldb-knock"))
	f.Add([]byte("aaaaaaaplldbKnockbbbb"))
	f.Add([]byte("plldb\rknock"))
	f.Add([]byte(strings.Repeat("kK", 40) + "plldbKNOCK"))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := naiveHold(b)
		if mayHold(b) != want || mayHoldWords(b) != want || mayHoldString(string(b)) != want {
			t.Fatalf("scans disagree on %q (want %v)", b, want)
		}
	})
}

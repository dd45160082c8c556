package knock_test

import (
	"testing"
	"time"

	"github.com/plldb/plldb/bridge/knock"
)

// BenchmarkVerify is one route-bound knock checked: strict parse, Ed25519 verification, claims.
func BenchmarkVerify(b *testing.B) {
	c := &clock{t0.Add(time.Minute)}
	v := verifier(b, c, nil)
	tok := mint(b, alicePriv, claims(func(c *knock.Claims) { c.Route = "POST /orders/*" }))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, httpPost); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyOversize is the cost of refusing an oversize token: a length check.
func BenchmarkVerifyOversize(b *testing.B) {
	v := verifier(b, &clock{t0}, nil)
	tok := string(make([]byte, 1<<20))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, httpPost); err == nil {
			b.Fatal("accepted")
		}
	}
}

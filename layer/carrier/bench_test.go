package carrier_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/layer/carrier"
)

// benchEvent is an HTTP API (v2) event of about 2 KB: the fixture with a JSON body.
func benchEvent(b *testing.B) []byte {
	ev := load(b, "apigw-http-v2.json")
	body := `"body": "{\"order\": {\"sku\": \"book-keeping-kit\", \"quantity\": 2, \"notes\": \"` + strings.Repeat("knock twice, ", 20) + `\"}}", `
	ev = bytes.Replace(ev, []byte(`"isBase64Encoded"`), []byte(body+`"isBase64Encoded"`), 1)
	if len(ev) < 1900 || len(ev) > 2200 {
		b.Fatalf("bench event is %d bytes", len(ev))
	}
	return ev
}

// BenchmarkUnknocked is what every invocation without a knock pays in selective mode.
func BenchmarkUnknocked(b *testing.B) {
	ev := benchEvent(b)
	benchUnknocked(b, ev)
}

// BenchmarkUnknocked6MB is the same on an event of Lambda's largest size.
func BenchmarkUnknocked6MB(b *testing.B) {
	ev := []byte(`{"headers": {}, "body": "` + strings.Repeat("knock knock, who is there? plldb ", 6*1024*1024/34) + `"}`)
	benchUnknocked(b, ev)
}

// BenchmarkUnknocked6MBBase64 is a 6 MB event whose body is random base64, where one byte in 32 is a 'k' or 'K'.
func BenchmarkUnknocked6MBBase64(b *testing.B) {
	raw := make([]byte, 6*1024*1024*3/4-64)
	for i := range raw {
		raw[i] = byte(i*7919 + i/251)
	}
	ev := []byte(`{"headers": {}, "body": "` + base64.StdEncoding.EncodeToString(raw) + `"}`)
	benchUnknocked(b, ev)
}

// benchUnknocked measures carrier.Check on ev, an event without a knock.
func benchUnknocked(b *testing.B, ev []byte) {
	v := benchVerifier(b)
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	for b.Loop() {
		if o := carrier.Check(v, ev, ""); o.Found != 0 {
			b.Fatal("found a knock")
		}
	}
}

func benchVerifier(b *testing.B) *knock.Verifier {
	v, err := knock.NewVerifier(knock.Config{
		Keys:      map[string]ed25519.PublicKey{"s-alice": benchKey.Public().(ed25519.PublicKey)},
		Audiences: knock.Audiences("orders", "CreateOrder"),
	})
	if err != nil {
		b.Fatal(err)
	}
	return v
}

var benchKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

// BenchmarkKnocked is a knocked invocation: find, verify (Ed25519) and strip the knock.
func BenchmarkKnocked(b *testing.B) {
	tok, err := knock.Mint(benchKey, knock.Claims{Issuer: "s-alice", Audience: "orders/CreateOrder", IssuedAt: time.Now(), Route: "GET /**"})
	if err != nil {
		b.Fatal(err)
	}
	ev := insert(b, benchEvent(b), "headers", hdr("X-Plldb-Knock", tok))
	v := benchVerifier(b)
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	for b.Loop() {
		if o := carrier.Check(v, ev, ""); !o.Knocked {
			b.Fatal(o.Err)
		}
	}
}

// BenchmarkExtractKnocked is the knocked path without the signature check: finding and stripping alone.
func BenchmarkExtractKnocked(b *testing.B) {
	ev := insert(b, benchEvent(b), "headers", hdr("X-Plldb-Knock", tokA))
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	for b.Loop() {
		if r, err := carrier.Extract(ev, ""); err != nil || r.Token == "" {
			b.Fatal(err)
		}
	}
}

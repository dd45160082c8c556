package carrier_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/layer/carrier"
)

// The layer's decision for one HTTP API invocation: the knock is verified and removed, nothing else changes.
func ExampleCheck() {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	tok, _ := knock.Mint(priv, knock.Claims{Issuer: "s-alice", Audience: "orders"})
	v, _ := knock.NewVerifier(knock.Config{
		Keys:      map[string]ed25519.PublicKey{"s-alice": priv.Public().(ed25519.PublicKey)},
		Audiences: knock.Audiences("orders", "CreateOrder"),
	})

	event := []byte(`{"version": "2.0", "rawPath": "/orders/42", "headers": {"content-type": "application/json", "x-plldb-knock": "` +
		tok + `"}, "requestContext": {"http": {"method": "POST"}}}`)
	o := carrier.Check(v, event, "")
	fmt.Println(o.Knocked, o.Claims.Issuer, o.Err)
	fmt.Println(string(o.Event))

	o = carrier.Check(v, []byte(`{"version": "2.0", "headers": {"x-plldb-knock": "forged"}}`), "")
	fmt.Println(o.Knocked, o.Err)
	fmt.Println(string(o.Event))
	// Output:
	// true s-alice <nil>
	// {"version": "2.0", "rawPath": "/orders/42", "headers": {"content-type": "application/json"}, "requestContext": {"http": {"method": "POST"}}}
	// false knock malformed: not three dot-separated parts
	// {"version": "2.0", "headers": {}}
}

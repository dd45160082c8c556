package knock_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/plldb/plldb/bridge/knock"
)

// A developer mints a knock for one route of a function; the function's layer verifies it.
func Example() {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)) // knock.NewKey() in real use
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

	tok, err := knock.Mint(priv, knock.Claims{Issuer: "s-alice", Audience: "orders/CreateOrder", IssuedAt: now, Route: "POST /orders/*"})
	if err != nil {
		panic(err)
	}

	v, err := knock.NewVerifier(knock.Config{
		Keys:      map[string]ed25519.PublicKey{"s-alice": priv.Public().(ed25519.PublicKey)},
		Audiences: knock.Audiences("orders", "CreateOrder"),
		Now:       func() time.Time { return now.Add(time.Minute) },
	})
	if err != nil {
		panic(err)
	}
	c, err := v.Verify(tok, knock.Request{HTTP: true, Method: "POST", Path: "/orders/42"})
	fmt.Println(c.Issuer, c.Expires.Sub(c.IssuedAt), err)
	_, err = v.Verify(tok, knock.Request{HTTP: true, Method: "GET", Path: "/orders/42"})
	fmt.Println(err)
	// Output:
	// s-alice 15m0s <nil>
	// knock bound to another route: POST /orders/*
}

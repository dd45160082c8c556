package knock_test

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/plldb/plldb/bridge/knock"
)

// FuzzVerify feeds arbitrary tokens to the verifier: it must never panic, never accept a token that is not exactly
// a knock Alice or Bob signed, and never show the token in its error.
func FuzzVerify(f *testing.F) {
	f.Add(mint(f, alicePriv, claims()))
	f.Add(mint(f, bobPriv, claims(func(c *knock.Claims) { c.Issuer = bob; c.Route = "POST /orders/*" })))
	f.Add(mint(f, alicePriv, claims(func(c *knock.Claims) {
		c.Request = &knock.RequestBinding{Method: "POST", Path: "/orders/42", Time: t0}
	})))
	f.Add(pinned(alicePriv, fmt.Sprintf(`{"iss":"s-alice","aud":"orders","aud":"x","jti":"j","iat":%d,"nbf":%d,"exp":%d}`, t0.Unix(), t0.Unix(), t0.Unix()+60)))
	f.Add(signRaw(alicePriv, `{"alg":"none"}`, `{}`))
	f.Add("")
	f.Add("a.b.c")
	v := verifier(f, &clock{t0.Add(time.Second)}, nil)
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok, httpPost)
		if err != nil {
			if len(tok) >= 16 && strings.Contains(err.Error(), tok) {
				t.Fatalf("error shows the token: %v", err)
			}
			return
		}
		if !strings.HasPrefix(tok, knock.Header+".") || len(tok) > knock.MaxTokenLen {
			t.Fatalf("accepted a token without the pinned header or oversize")
		}
		if c.Issuer != alice && c.Issuer != bob {
			t.Fatalf("accepted issuer %q", c.Issuer)
		}
	})
}

// FuzzRouteMatch checks the route matcher against a plain recursive glob on small inputs.
func FuzzRouteMatch(f *testing.F) {
	f.Add("/orders/*", "/orders/42")
	f.Add("/a**b/*", "/axx/yb/c")
	f.Add("/**/c", "/a/b/c")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		if len(pattern) > 24 || len(path) > 24 {
			return
		}
		r, err := knock.ParseRoute("GET " + pattern)
		if err != nil {
			return
		}
		if got, want := r.Match("GET", path), naive(pattern, path); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pattern, path, got, want)
		}
	})
}

func naive(p, s string) bool {
	switch {
	case p == "":
		return s == ""
	case strings.HasPrefix(p, "**"):
		for i := 0; i <= len(s); i++ {
			if naive(p[2:], s[i:]) {
				return true
			}
		}
		return false
	case p[0] == '*':
		for i := 0; i <= len(s); i++ {
			if naive(p[1:], s[i:]) {
				return true
			}
			if i < len(s) && s[i] == '/' {
				return false
			}
		}
		return false
	default:
		return s != "" && s[0] == p[0] && naive(p[1:], s[1:])
	}
}

// FuzzMintVerify checks that whatever Mint accepts, Verify accepts back with the same claims, so the minting and
// verifying sides never disagree about what a valid knock is.
func FuzzMintVerify(f *testing.F) {
	f.Add("s-alice", "orders/CreateOrder", "j1", "POST /orders/*", "POST", "/orders/42", int64(900))
	f.Add("a", "b", "c", "", "", "", int64(1))
	f.Add("s:1.2_3", "o/p/q", "x-y", "ANY /**", "GET", "/%2F<>&\"", int64(43200))
	f.Fuzz(func(t *testing.T, iss, aud, jti, route, method, path string, ttl int64) {
		c := knock.Claims{Issuer: iss, Audience: aud, ID: jti, IssuedAt: t0, Expires: t0.Add(time.Duration(ttl) * time.Second), Route: route}
		if ttl <= 0 || ttl > int64(knock.MaxTTL/time.Second) {
			return
		}
		req := knock.Request{}
		if method != "" || path != "" {
			c.Request = &knock.RequestBinding{Method: method, Path: path, Time: t0}
			req = knock.Request{HTTP: true, Method: method, Path: path}
		}
		if route != "" {
			r, err := knock.ParseRoute(route)
			if err != nil || !r.Match(method, path) {
				return
			}
			req = knock.Request{HTTP: true, Method: method, Path: path}
		}
		tok, err := knock.Mint(alicePriv, c)
		if err != nil {
			return
		}
		v, err := knock.NewVerifier(knock.Config{
			Keys:      map[string]ed25519.PublicKey{iss: alicePub},
			Audiences: []string{aud},
			Now:       func() time.Time { return t0 },
		})
		if err != nil {
			t.Fatalf("Mint accepted claims the verifier cannot be configured for: %v", err)
		}
		got, err := v.Verify(tok, req)
		if err != nil {
			t.Fatalf("Mint made a knock Verify refuses: %v", err)
		}
		if got.Issuer != iss || got.Audience != aud || (jti != "" && got.ID != jti) || got.Route != route || !got.Expires.Equal(c.Expires) {
			t.Fatalf("claims changed: %+v", got)
		}
		if (got.Request == nil) != (c.Request == nil) || got.Request != nil && (got.Request.Method != method || got.Request.Path != path) {
			t.Fatalf("request binding changed: %+v", got.Request)
		}
	})
}

package knock_test

import (
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

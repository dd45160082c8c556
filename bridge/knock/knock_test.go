package knock_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/knock"
)

const (
	stack   = "orders"
	fn      = "CreateOrder"
	alice   = "s-alice"
	bob     = "s-bob"
	carol   = "s-carol" // attached once, now detached: not in the verifier's keys
	b64Sig0 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)

var (
	t0 = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	// The developers' key pairs, fixed so failures reproduce.
	alicePub, alicePriv = key(1)
	bobPub, bobPriv     = key(2)
	carolPub, carolPriv = key(3)
)

func key(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytesOf(seed, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

func bytesOf(b byte, n int) []byte { return []byte(strings.Repeat(string([]byte{b}), n)) }

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func verifier(t testing.TB, c *clock, replay knock.Replay) *knock.Verifier {
	t.Helper()
	v, err := knock.NewVerifier(knock.Config{
		Keys:      map[string]ed25519.PublicKey{alice: alicePub, bob: bobPub},
		Audiences: knock.Audiences(stack, fn, "orders-CreateOrder-1A2B3C"),
		Now:       c.Now,
		Replay:    replay,
	})
	require.NoError(t, err)
	return v
}

func claims(mod ...func(*knock.Claims)) knock.Claims {
	c := knock.Claims{Issuer: alice, Audience: stack, IssuedAt: t0}
	for _, m := range mod {
		m(&c)
	}
	return c
}

func mint(t testing.TB, priv ed25519.PrivateKey, c knock.Claims) string {
	t.Helper()
	tok, err := knock.Mint(priv, c)
	require.NoError(t, err)
	return tok
}

var b64 = base64.RawURLEncoding

// signRaw builds a token from any header and payload JSON, signed with priv over header.payload as JWS does.
func signRaw(priv ed25519.PrivateKey, header, payload string) string {
	signed := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	return signed + "." + b64.EncodeToString(ed25519.Sign(priv, []byte(signed)))
}

// pinned signs payload under the pinned header.
func pinned(priv ed25519.PrivateKey, payload string) string {
	signed := knock.Header + "." + b64.EncodeToString([]byte(payload))
	return signed + "." + b64.EncodeToString(ed25519.Sign(priv, []byte(signed)))
}

var httpPost = knock.Request{HTTP: true, Method: "POST", Path: "/orders/42"}

// refused checks that verification fails with want and that the error shows no part of the token.
func refused(t *testing.T, v *knock.Verifier, tok string, req knock.Request, want error) {
	t.Helper()
	_, err := v.Verify(tok, req)
	require.ErrorIs(t, err, want)
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 8 {
			assert.NotContains(t, err.Error(), part, "a refusal must not show the token")
		}
	}
}

func TestHeaderIsPinnedConstant(t *testing.T) {
	h, err := b64.DecodeString(knock.Header)
	require.NoError(t, err)
	assert.JSONEq(t, `{"alg":"EdDSA","typ":"plldb-knock+v1"}`, string(h))
}

func TestMintVerifyRoundTrip(t *testing.T) {
	c := &clock{t0.Add(time.Minute)}
	v := verifier(t, c, nil)
	tok := mint(t, alicePriv, claims(func(c *knock.Claims) { c.Audience = stack + "/" + fn }))
	got, err := v.Verify(tok, knock.Request{})
	require.NoError(t, err)
	assert.Equal(t, alice, got.Issuer)
	assert.Equal(t, "orders/CreateOrder", got.Audience)
	assert.Equal(t, t0, got.IssuedAt.UTC())
	assert.Equal(t, t0, got.NotBefore.UTC())
	assert.Equal(t, t0.Add(knock.DefaultTTL), got.Expires.UTC(), "the default lifetime is 15 minutes")
	assert.Len(t, got.ID, 22, "a random 128-bit id")
	assert.Less(t, len(tok), 400)

	// Each developer's knock routes to that developer.
	got, err = v.Verify(mint(t, bobPriv, claims(func(c *knock.Claims) { c.Issuer = bob })), knock.Request{})
	require.NoError(t, err)
	assert.Equal(t, bob, got.Issuer)

	// The function's physical name is an audience too.
	_, err = v.Verify(mint(t, alicePriv, claims(func(c *knock.Claims) { c.Audience = "orders/orders-CreateOrder-1A2B3C" })), knock.Request{})
	require.NoError(t, err)
}

func TestMintRefuses(t *testing.T) {
	for name, c := range map[string]knock.Claims{
		"lifetime over 12 h": claims(func(c *knock.Claims) { c.Expires = t0.Add(knock.MaxTTL + time.Second) }),
		"no issuer":          claims(func(c *knock.Claims) { c.Issuer = "" }),
		"issuer with space":  claims(func(c *knock.Claims) { c.Issuer = "s alice" }),
		"no audience":        claims(func(c *knock.Claims) { c.Audience = "" }),
		"expires before iat": claims(func(c *knock.Claims) { c.Expires = t0.Add(-time.Second) }),
		"bad route":          claims(func(c *knock.Claims) { c.Route = "post /orders" }),
		"bad request":        claims(func(c *knock.Claims) { c.Request = &knock.RequestBinding{Method: "POST", Path: "orders", Time: t0} }),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := knock.Mint(alicePriv, c)
			assert.Error(t, err)
		})
	}
	_, err := knock.Mint(alicePriv, claims(func(c *knock.Claims) { c.Expires = t0.Add(knock.MaxTTL) }))
	assert.NoError(t, err, "exactly 12 h is allowed")
	// The longest claims of plain characters still make a knock within MaxTokenLen; characters JSON escapes can
	// push it over, and Mint says so.
	tok, err := knock.Mint(alicePriv, claims(func(c *knock.Claims) {
		c.Issuer = strings.Repeat("s", knock.MaxIssuerLen)
		c.Audience = strings.Repeat("a", knock.MaxAudienceLen)
		c.ID = strings.Repeat("j", knock.MaxIDLen)
		c.Route = "OPTIONS /" + strings.Repeat("r", knock.MaxRouteLen-9)
		c.Request = &knock.RequestBinding{Method: strings.Repeat("M", knock.MaxMethodLen), Path: "/" + strings.Repeat("p", knock.MaxPathLen-1), Time: t0}
	}))
	require.NoError(t, err)
	assert.LessOrEqual(t, len(tok), knock.MaxTokenLen)
	_, err = knock.Mint(alicePriv, claims(func(c *knock.Claims) {
		c.Request = &knock.RequestBinding{Method: "GET", Path: "/" + strings.Repeat("<", knock.MaxPathLen-1), Time: t0}
	}))
	require.ErrorIs(t, err, knock.ErrOversize)
	_, err = knock.Mint(ed25519.PrivateKey(bytesOf(1, 10)), claims())
	assert.Error(t, err)
}

func TestForgedSignature(t *testing.T) {
	v := verifier(t, &clock{t0}, nil)
	tok := mint(t, alicePriv, claims())
	h, p, s := parts(tok)

	sig, _ := b64.DecodeString(s)
	sig[0] ^= 1
	refused(t, v, h+"."+p+"."+b64.EncodeToString(sig), knock.Request{}, knock.ErrSignature)
	refused(t, v, h+"."+p+"."+b64Sig0, knock.Request{}, knock.ErrSignature)

	// A payload changed after signing (a widened audience, a later expiry).
	pay, _ := b64.DecodeString(p)
	changed := strings.Replace(string(pay), `"aud":"orders"`, `"aud":"orderz"`, 1)
	require.NotEqual(t, string(pay), changed)
	refused(t, v, h+"."+b64.EncodeToString([]byte(changed))+"."+s, knock.Request{}, knock.ErrSignature)

	// Signed by a key no developer has.
	_, stranger := key(9)
	refused(t, v, mint(t, stranger, claims()), knock.Request{}, knock.ErrSignature)
}

func TestAlgorithmIsPinned(t *testing.T) {
	v := verifier(t, &clock{t0}, nil)
	good := mint(t, alicePriv, claims())
	_, p, _ := parts(good)
	pay, _ := b64.DecodeString(p)

	// alg none, with and without a signature part, and with a valid EdDSA signature over the new header.
	none := b64.EncodeToString([]byte(`{"alg":"none","typ":"plldb-knock+v1"}`))
	refused(t, v, none+"."+p+".", knock.Request{}, knock.ErrHeader)
	refused(t, v, none+"."+p, knock.Request{}, knock.ErrHeader)
	refused(t, v, signRaw(alicePriv, `{"alg":"none","typ":"plldb-knock+v1"}`, string(pay)), knock.Request{}, knock.ErrHeader)
	refused(t, v, signRaw(alicePriv, `{"alg":"NONE","typ":"plldb-knock+v1"}`, string(pay)), knock.Request{}, knock.ErrHeader)

	// Algorithm confusion: HS256 keyed with Alice's public key (which an attacker knows), built with a real
	// JWT library the way an attacker would.
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": alice, "aud": stack, "jti": "x", "iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Minute).Unix()})
	hs.Header["typ"] = "plldb-knock+v1"
	hsTok, err := hs.SignedString([]byte(alicePub))
	require.NoError(t, err)
	refused(t, v, hsTok, knock.Request{}, knock.ErrHeader)
	// The same, hand-made with the pinned header but an HMAC in the signature slot.
	signed := knock.Header + "." + p
	mac := hmac.New(sha256.New, alicePub)
	mac.Write([]byte(signed))
	refused(t, v, signed+"."+b64.EncodeToString(mac.Sum(nil)), knock.Request{}, knock.ErrMalformed)

	// A standard EdDSA JWT from a JWT library, signed with Alice's real key: right algorithm, but not the pinned
	// header (typ JWT), so not a knock.
	ed := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"iss": alice, "aud": stack, "jti": "x", "iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Minute).Unix()})
	edTok, err := ed.SignedString(alicePriv)
	require.NoError(t, err)
	refused(t, v, edTok, knock.Request{}, knock.ErrHeader)

	// The pinned header's content in another spelling (key order, spaces, a kid, padding) is refused too: the
	// header is compared byte for byte, never parsed.
	for _, h := range []string{
		`{"typ":"plldb-knock+v1","alg":"EdDSA"}`,
		`{"alg":"EdDSA", "typ":"plldb-knock+v1"}`,
		`{"alg":"EdDSA","typ":"plldb-knock+v1","kid":"s-alice"}`,
		`{"alg":"Ed25519","typ":"plldb-knock+v1"}`,
		`{"alg":"ES256","typ":"plldb-knock+v1"}`,
	} {
		refused(t, v, signRaw(alicePriv, h, string(pay)), knock.Request{}, knock.ErrHeader)
	}
	refused(t, v, knock.Header+"="+"."+p+"."+b64Sig0, knock.Request{}, knock.ErrHeader)
}

func parts(tok string) (h, p, s string) {
	ps := strings.Split(tok, ".")
	return ps[0], ps[1], ps[2]
}

func TestTimes(t *testing.T) {
	c := &clock{}
	v := verifier(t, c, nil)
	tok := mint(t, alicePriv, claims(func(c *knock.Claims) { c.Expires = t0.Add(10 * time.Minute) }))

	for _, ok := range []time.Duration{0, 10 * time.Minute, 10*time.Minute + knock.DefaultLeeway, -knock.DefaultLeeway} {
		c.now = t0.Add(ok)
		_, err := v.Verify(tok, knock.Request{})
		assert.NoError(t, err, "at t0%+v", ok)
	}
	c.now = t0.Add(10*time.Minute + knock.DefaultLeeway + time.Second)
	refused(t, v, tok, knock.Request{}, knock.ErrExpired)
	c.now = t0.Add(-knock.DefaultLeeway - time.Second)
	refused(t, v, tok, knock.Request{}, knock.ErrNotYetValid)

	// nbf in the future.
	later := mint(t, alicePriv, claims(func(c *knock.Claims) { c.NotBefore = t0.Add(5 * time.Minute) }))
	c.now = t0.Add(time.Minute)
	refused(t, v, later, knock.Request{}, knock.ErrNotYetValid)
	c.now = t0.Add(5 * time.Minute)
	_, err := v.Verify(later, knock.Request{})
	assert.NoError(t, err)

	// A lifetime over 12 h, signed by a developer's key but not by plldb's Mint, is refused by the verifier too.
	long := pinned(alicePriv, fmt.Sprintf(`{"iss":%q,"aud":%q,"jti":"j1","iat":%d,"nbf":%d,"exp":%d}`, alice, stack, t0.Unix(), t0.Unix(), t0.Add(13*time.Hour).Unix()))
	c.now = t0
	refused(t, v, long, knock.Request{}, knock.ErrLifetime)
	// The same claims unsigned by any attached developer: the signature is what is wrong with it.
	refused(t, v, pinned(carolPriv, fmt.Sprintf(`{"iss":%q,"aud":%q,"jti":"j1","iat":%d,"nbf":%d,"exp":%d}`, alice, stack, t0.Unix(), t0.Unix(), t0.Add(13*time.Hour).Unix())), knock.Request{}, knock.ErrSignature)
}

func TestAudience(t *testing.T) {
	v := verifier(t, &clock{t0}, nil)
	for _, aud := range []string{"payments", "orders/ListOrders", "ordersx", "orders/", "payments/CreateOrder", "orders/CreateOrder/x", "Orders"} {
		refused(t, v, mint(t, alicePriv, claims(func(c *knock.Claims) { c.Audience = aud })), knock.Request{}, knock.ErrAudience)
	}
}

func TestOtherDevelopers(t *testing.T) {
	v := verifier(t, &clock{t0}, nil)
	// Bob signs a knock naming Alice's session: it would route to Alice, but her key does not verify it.
	refused(t, v, mint(t, bobPriv, claims(func(c *knock.Claims) { c.Issuer = alice })), knock.Request{}, knock.ErrSignature)
	// Alice's key for Bob's session.
	refused(t, v, mint(t, alicePriv, claims(func(c *knock.Claims) { c.Issuer = bob })), knock.Request{}, knock.ErrSignature)
	// Carol detached: her key is gone from the function's set, so her still-unexpired knocks are refused.
	refused(t, v, mint(t, carolPriv, claims(func(c *knock.Claims) { c.Issuer = carol })), knock.Request{}, knock.ErrUnknownSession)
	_ = carolPub
}

func TestRouteBinding(t *testing.T) {
	v := verifier(t, &clock{t0}, nil)
	tok := mint(t, alicePriv, claims(func(c *knock.Claims) { c.Route = "POST /orders/*" }))
	_, err := v.Verify(tok, httpPost)
	require.NoError(t, err)
	for _, req := range []knock.Request{
		{HTTP: true, Method: "GET", Path: "/orders/42"},
		{HTTP: true, Method: "POST", Path: "/orders/42/items"},
		{HTTP: true, Method: "POST", Path: "/payments/42"},
		{HTTP: true, Method: "post", Path: "/orders/42"},
	} {
		refused(t, v, tok, req, knock.ErrRoute)
	}
	refused(t, v, tok, knock.Request{}, knock.ErrRoute) // an SQS or direct invocation has no route
}

func TestRequestBinding(t *testing.T) {
	c := &clock{t0}
	v := verifier(t, c, nil)
	bound := func(ts time.Time) string {
		return mint(t, alicePriv, claims(func(c *knock.Claims) {
			c.Request = &knock.RequestBinding{Method: "POST", Path: "/orders/42", Time: ts}
		}))
	}
	tok := bound(t0)
	_, err := v.Verify(tok, httpPost)
	require.NoError(t, err)
	// Replayed on another request.
	refused(t, v, tok, knock.Request{HTTP: true, Method: "POST", Path: "/orders/43"}, knock.ErrRequest)
	refused(t, v, tok, knock.Request{HTTP: true, Method: "DELETE", Path: "/orders/42"}, knock.ErrRequest)
	refused(t, v, tok, knock.Request{HTTP: true, Method: "POST", Path: "/orders/42/"}, knock.ErrRequest)
	refused(t, v, tok, knock.Request{}, knock.ErrRequest)
	// Its timestamp must be within ±5 minutes of the verifier's clock (the knock itself lives 15).
	c.now = t0.Add(knock.RequestWindow)
	_, err = v.Verify(tok, httpPost)
	require.NoError(t, err)
	c.now = t0.Add(knock.RequestWindow + time.Second)
	refused(t, v, tok, httpPost, knock.ErrRequest)
	c.now = t0
	refused(t, v, bound(t0.Add(knock.RequestWindow+time.Second)), httpPost, knock.ErrRequest)

	// With a replay record a request-bound knock is single use; plain knocks stay reusable.
	rv := verifier(t, c, knock.NewMemoryReplay(16, c.Now))
	_, err = rv.Verify(tok, httpPost)
	require.NoError(t, err)
	refused(t, rv, tok, httpPost, knock.ErrReplayed)
	plain := mint(t, alicePriv, claims())
	for range 3 {
		_, err = rv.Verify(plain, httpPost)
		require.NoError(t, err)
	}
}

func TestMemoryReplayFailsClosedWhenFull(t *testing.T) {
	c := &clock{t0}
	m := knock.NewMemoryReplay(2, c.Now)
	assert.True(t, m.Use(alice, "a", t0.Add(time.Minute)))
	assert.True(t, m.Use(alice, "b", t0.Add(2*time.Minute)))
	assert.False(t, m.Use(alice, "a", t0.Add(time.Minute)))
	assert.False(t, m.Use(alice, "c", t0.Add(time.Minute)), "full of live knocks: refuse rather than forget one")
	c.now = t0.Add(90 * time.Second)
	assert.True(t, m.Use(alice, "c", t0.Add(3*time.Minute)), "a expired and is forgotten")
	assert.False(t, m.Use(alice, "b", t0.Add(2*time.Minute)))
	m = knock.NewMemoryReplay(2, c.Now)
	assert.True(t, m.Use(alice, "b", t0.Add(2*time.Minute)))
	assert.True(t, m.Use(bob, "b", t0.Add(2*time.Minute)), "ids are per issuer")
}

func TestOversizeRefusedBeforeDecoding(t *testing.T) {
	v := verifier(t, &clock{t0}, nil)
	// Oversize junk, and an oversize token that would otherwise verify: both refused on size alone.
	refused(t, v, strings.Repeat("A", knock.MaxTokenLen+1), knock.Request{}, knock.ErrOversize)
	refused(t, v, knock.Header+"."+strings.Repeat("!", knock.MaxTokenLen), knock.Request{}, knock.ErrOversize)
	big := pinned(alicePriv, fmt.Sprintf(`{"iss":%q,"aud":%q,"jti":"j1","iat":%d,"nbf":%d,"exp":%d,"route":"POST /%s"}`, alice, stack, t0.Unix(), t0.Unix(), t0.Add(time.Minute).Unix(), strings.Repeat("a", 3000)))
	require.Greater(t, len(big), knock.MaxTokenLen)
	refused(t, v, big, knock.Request{}, knock.ErrOversize)
	refused(t, v, "", knock.Request{}, knock.ErrMissing)
}

func TestMalformed(t *testing.T) {
	v := verifier(t, &clock{t0}, nil)
	iat, exp := t0.Unix(), t0.Add(time.Minute).Unix()
	base := func(extra string) string {
		return fmt.Sprintf(`{"iss":"s-alice","aud":"orders","jti":"j1","iat":%d,"nbf":%d,"exp":%d%s}`, iat, iat, exp, extra)
	}
	_, err := v.Verify(pinned(alicePriv, base("")), knock.Request{})
	require.NoError(t, err, "the base payload is valid")

	for name, pay := range map[string]string{
		"not JSON":               `not json`,
		"array":                  `[1,2]`,
		"duplicate aud":          strings.Replace(base(""), `"aud":"orders"`, `"aud":"orders","aud":"orders"`, 1),
		"duplicate aud, widened": strings.Replace(base(""), `"aud":"orders"`, `"aud":"payments","aud":"orders"`, 1),
		"duplicate exp":          base(fmt.Sprintf(`,"exp":%d`, exp+3600)),
		"duplicate route":        base(`,"route":"POST /a","route":"ANY /**"`),
		"duplicate in req":       base(fmt.Sprintf(`,"req":{"method":"POST","path":"/a","path":"/b","ts":%d}`, iat)),
		"unknown field":          base(`,"admin":true`),
		"unknown field in req":   base(fmt.Sprintf(`,"req":{"method":"POST","path":"/a","ts":%d,"body":"x"}`, iat)),
		"case-folded field":      strings.Replace(base(""), `"aud"`, `"AUD"`, 1),
		"missing exp":            fmt.Sprintf(`{"iss":"s-alice","aud":"orders","jti":"j1","iat":%d,"nbf":%d}`, iat, iat),
		"missing req.ts":         base(`,"req":{"method":"POST","path":"/a"}`),
		"float time":             strings.Replace(base(""), fmt.Sprintf(`"exp":%d`, exp), fmt.Sprintf(`"exp":%d.5`, exp), 1),
		"exponent time":          strings.Replace(base(""), fmt.Sprintf(`"exp":%d`, exp), `"exp":1e10`, 1),
		"string time":            strings.Replace(base(""), fmt.Sprintf(`"exp":%d`, exp), fmt.Sprintf(`"exp":"%d"`, exp), 1),
		"null iss":               strings.Replace(base(""), `"iss":"s-alice"`, `"iss":null`, 1),
		"trailing data":          base("") + `{}`,
		"trailing junk":          base("") + `x`,
		"invalid UTF-8":          base(",\"route\":\"POST /\xff\""),
		"negative time":          strings.Replace(base(""), fmt.Sprintf(`"iat":%d`, iat), `"iat":-1`, 1),
		"route not a pattern":    base(`,"route":"/orders"`),
		"route three stars":      base(`,"route":"GET /***"`),
		"req not an object":      base(`,"req":"POST /a"`),
		"req method lower case":  base(fmt.Sprintf(`,"req":{"method":"post","path":"/a","ts":%d}`, iat)),
		"iss with newline":       strings.Replace(base(""), `"iss":"s-alice"`, `"iss":"s-alice\n"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			refused(t, v, pinned(alicePriv, pay), knock.Request{}, knock.ErrMalformed)
		})
	}

	good := pinned(alicePriv, base(""))
	h, p, s := parts(good)
	for name, tok := range map[string]string{
		"one part":            h,
		"two parts":           h + "." + p,
		"four parts":          good + "." + s,
		"payload not base64":  h + ".@@@." + s,
		"payload padded":      h + "." + p + "==." + s,
		"std base64 alphabet": h + "." + strings.NewReplacer("-", "+", "_", "/").Replace(p) + "x." + s,
		"short signature":     h + "." + p + "." + s[:40],
		"long signature":      h + "." + p + "." + s + "AA",
		"empty signature":     h + "." + p + ".",
		"spaces":              h + "." + p + " ." + s,
	} {
		t.Run(name, func(t *testing.T) {
			refused(t, v, tok, knock.Request{}, knock.ErrMalformed)
		})
	}
	// The same signature with non-zero trailing bits in its last character decodes to the same bytes with a
	// lax decoder; the strict one refuses it, so a knock has one spelling.
	last := s[len(s)-1]
	alt := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last) + 1
	mangled := h + "." + p + "." + s[:len(s)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[alt%64])
	_, err = v.Verify(mangled, knock.Request{})
	assert.Error(t, err)
}

func TestNewVerifierRefuses(t *testing.T) {
	for name, c := range map[string]knock.Config{
		"no audience":   {Keys: map[string]ed25519.PublicKey{alice: alicePub}},
		"short key":     {Keys: map[string]ed25519.PublicKey{alice: alicePub[:10]}, Audiences: []string{stack}},
		"bad session":   {Keys: map[string]ed25519.PublicKey{"a b": alicePub}, Audiences: []string{stack}},
		"bad audience":  {Keys: map[string]ed25519.PublicKey{alice: alicePub}, Audiences: []string{"a b"}},
		"negative skew": {Keys: map[string]ed25519.PublicKey{alice: alicePub}, Audiences: []string{stack}, Leeway: -1},
	} {
		_, err := knock.NewVerifier(c)
		assert.Error(t, err, name)
	}
}

func TestRoutePatterns(t *testing.T) {
	for _, tc := range []struct {
		route, method, path string
		want                bool
	}{
		{"POST /orders/*", "POST", "/orders/42", true},
		{"POST /orders/*", "POST", "/orders/", true},
		{"POST /orders/*", "POST", "/orders", false},
		{"POST /orders/*", "POST", "/orders/42/items", false},
		{"POST /orders/*/items", "POST", "/orders/42/items", true},
		{"POST /orders/**", "POST", "/orders/42/items", true},
		{"POST /orders/**", "POST", "/orders/", true},
		{"ANY /orders", "DELETE", "/orders", true},
		{"* /orders", "GET", "/orders", true},
		{"GET /orders", "GET", "/orders/", false},
		{"GET /a*b", "GET", "/axxb", true},
		{"GET /a*b", "GET", "/ax/xb", false},
		{"GET /a**b", "GET", "/ax/xb", true},
		{"GET /*/*", "GET", "/a/b", true},
		{"GET /*/*", "GET", "/a/b/c", false},
		{"GET /**/c", "GET", "/a/b/c", true},
		{"GET /%2F*", "GET", "/%2Fa", true},
	} {
		r, err := knock.ParseRoute(tc.route)
		require.NoError(t, err, tc.route)
		assert.Equal(t, tc.want, r.Match(tc.method, tc.path), "%s vs %s %s", tc.route, tc.method, tc.path)
	}
	r, err := knock.ParseRoute("GET /**")
	require.NoError(t, err)
	assert.True(t, r.Match("GET", "/"+strings.Repeat("a", knock.MaxMatchPathLen-1)))
	assert.False(t, r.Match("GET", "/"+strings.Repeat("a", knock.MaxMatchPathLen)))
	for _, bad := range []string{"", "POST", "POST orders", "post /x", "POST  /x", "POST /a b", "GET /***", "GET /\x01"} {
		_, err := knock.ParseRoute(bad)
		assert.ErrorIs(t, err, knock.ErrMalformed, "%q", bad)
	}
}

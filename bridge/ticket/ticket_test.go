package ticket_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
)

const (
	audience = "wss://relay.example/test"
	session  = "sess-1"
)

// world is a session registry and ticket-use record, the two things a Verifier consults.
type world struct {
	mu   sync.Mutex
	keys map[string]map[wire.Role][]byte
	used map[string]time.Time
	now  time.Time
	useN int // calls to Use
}

func newWorld() *world {
	return &world{
		keys: map[string]map[wire.Role][]byte{
			session:  {wire.RoleDeveloper: ticket.NewKey(), wire.RoleFunction: ticket.NewKey()},
			"sess-2": {wire.RoleDeveloper: ticket.NewKey(), wire.RoleFunction: ticket.NewKey()},
		},
		used: map[string]time.Time{},
		now:  time.Date(2026, 11, 21, 17, 30, 0, 0, time.UTC),
	}
}

func (w *world) verifier() *ticket.Verifier {
	return &ticket.Verifier{
		Audience: audience,
		Key: func(_ context.Context, s string, r wire.Role) ([]byte, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			keys, ok := w.keys[s]
			if !ok {
				return nil, fmt.Errorf("session %q: %w", s, ticket.ErrUnknownSession)
			}
			return keys[r], nil
		},
		Use: func(_ context.Context, jti string, exp time.Time) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.useN++
			if _, ok := w.used[jti]; ok {
				return fmt.Errorf("jti: %w", ticket.ErrReplayed)
			}
			w.used[jti] = exp
			return nil
		},
		Now: func() time.Time { return w.now },
	}
}

func (w *world) key(s string, r wire.Role) []byte { return w.keys[s][r] }

// fnKey is the key attach gives function fn of session s.
func (w *world) fnKey(s, fn string) []byte {
	return ticket.FunctionKey(w.key(s, wire.RoleFunction), fn)
}

func (w *world) claims(r wire.Role) ticket.Claims {
	c := ticket.Claims{Session: session, Role: r, Peer: "peer-" + string(r), Audience: audience, IssuedAt: w.now}
	if r == wire.RoleFunction {
		c.Function = "orders"
		c.Peer = ticket.FunctionPeer("orders", "peer-function")
	}
	return c
}

func (w *world) mint(t *testing.T, r wire.Role, edit func(*ticket.Claims)) string {
	t.Helper()
	c := w.claims(r)
	if edit != nil {
		edit(&c)
	}
	key := w.key(c.Session, r)
	if r == wire.RoleFunction {
		key = w.fnKey(c.Session, c.Function)
	}
	tok, err := ticket.Mint(key, c)
	require.NoError(t, err)
	return tok
}

// raw builds a token from an arbitrary header and payload, HMAC-signed with key: the tool for tickets Mint
// refuses to make.
func raw(t *testing.T, key []byte, header, payload map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	require.NoError(t, err)
	p, err := json.Marshal(payload)
	require.NoError(t, err)
	signing := b64(h) + "." + b64(p)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + b64(mac.Sum(nil))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (w *world) payload(r wire.Role) map[string]any {
	return map[string]any{
		"iss": "plldb", "sub": session, "aud": []string{audience}, "role": string(r), "peer": "p1",
		"iat": w.now.Unix(), "exp": w.now.Add(time.Minute).Unix(), "jti": "jti-raw",
	}
}

func TestVerify(t *testing.T) {
	dev, fn := wire.RoleDeveloper, wire.RoleFunction
	tests := []struct {
		name  string
		token func(t *testing.T, w *world) string
		want  error // nil: accepted
	}{
		{"valid developer", func(t *testing.T, w *world) string { return w.mint(t, dev, nil) }, nil},
		{"valid function", func(t *testing.T, w *world) string { return w.mint(t, fn, nil) }, nil},
		{"valid raw (aud as a string)", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			p["aud"] = audience
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "typ": "JWT", "kid": "developer"}, p)
		}, nil},
		{"missing", func(*testing.T, *world) string { return "" }, ticket.ErrMissing},
		{"malformed: not a JWT", func(*testing.T, *world) string { return "hello" }, ticket.ErrMalformed},
		{"malformed: bad base64", func(*testing.T, *world) string { return "a.b.c" }, ticket.ErrMalformed},
		{"malformed: payload not JSON", func(t *testing.T, w *world) string {
			h := b64([]byte(`{"alg":"HS256","kid":"developer"}`))
			return h + "." + b64([]byte("not json")) + "." + b64([]byte("sig"))
		}, ticket.ErrMalformed},
		{"malformed: no exp", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			delete(p, "exp")
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "kid": "developer"}, p)
		}, ticket.ErrMalformed},
		{"malformed: no iat", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			delete(p, "iat")
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "kid": "developer"}, p)
		}, ticket.ErrMalformed},
		{"malformed: no jti", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			delete(p, "jti")
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "kid": "developer"}, p)
		}, ticket.ErrMalformed},
		{"malformed: wrong issuer", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			p["iss"] = "someone-else"
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "kid": "developer"}, p)
		}, ticket.ErrMalformed},
		{"malformed: no peer", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			delete(p, "peer")
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "kid": "developer"}, p)
		}, ticket.ErrMalformed},
		{"malformed: peer too long", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			p["peer"] = strings.Repeat("p", wire.MaxPeerLen+1)
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "kid": "developer"}, p)
		}, ticket.ErrMalformed},
		{"malformed: exp is a string", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			p["exp"] = "tomorrow"
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "kid": "developer"}, p)
		}, ticket.ErrMalformed},
		{"expired", func(t *testing.T, w *world) string {
			return w.mint(t, dev, func(c *ticket.Claims) {
				c.IssuedAt = w.now.Add(-2 * time.Minute)
				c.Expires = w.now.Add(-time.Minute)
			})
		}, ticket.ErrExpired},
		{"expired beyond the leeway", func(t *testing.T, w *world) string {
			return w.mint(t, dev, func(c *ticket.Claims) {
				c.IssuedAt = w.now.Add(-time.Minute)
				c.Expires = w.now.Add(-6 * time.Second)
			})
		}, ticket.ErrExpired},
		{"expired within the leeway", func(t *testing.T, w *world) string {
			return w.mint(t, dev, func(c *ticket.Claims) {
				c.IssuedAt = w.now.Add(-time.Minute)
				c.Expires = w.now.Add(-3 * time.Second)
			})
		}, nil},
		{"issued in the future", func(t *testing.T, w *world) string {
			return w.mint(t, dev, func(c *ticket.Claims) { c.IssuedAt = w.now.Add(time.Minute) })
		}, ticket.ErrExpired},
		{"wrong audience", func(t *testing.T, w *world) string {
			return w.mint(t, dev, func(c *ticket.Claims) { c.Audience = "wss://other-relay" })
		}, ticket.ErrAudience},
		{"wrong role", func(t *testing.T, w *world) string {
			p := w.payload("admin")
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "kid": "admin"}, p)
		}, ticket.ErrRole},
		{"no kid", func(t *testing.T, w *world) string {
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256"}, w.payload(dev))
		}, ticket.ErrRole},
		{"kid/role mismatch", func(t *testing.T, w *world) string {
			return raw(t, w.key(session, fn), map[string]any{"alg": "HS256", "kid": "function"}, w.payload(dev))
		}, ticket.ErrRole},
		{"tampered payload", func(t *testing.T, w *world) string {
			tok := w.mint(t, fn, nil)
			parts := strings.Split(tok, ".")
			p, err := base64.RawURLEncoding.DecodeString(parts[1])
			require.NoError(t, err)
			p = []byte(strings.Replace(string(p), `"peer":"orders/peer-function"`, `"peer":"orders/peer-evil"`, 1))
			require.Contains(t, string(p), "peer-evil")
			return parts[0] + "." + b64(p) + "." + parts[2]
		}, ticket.ErrSignature},
		{"tampered signature", func(t *testing.T, w *world) string {
			tok := w.mint(t, dev, nil)
			parts := strings.Split(tok, ".")
			sig, err := base64.RawURLEncoding.DecodeString(parts[2])
			require.NoError(t, err)
			sig[0] ^= 1
			return parts[0] + "." + parts[1] + "." + b64(sig)
		}, ticket.ErrSignature},
		{"signature stripped", func(t *testing.T, w *world) string {
			tok := w.mint(t, dev, nil)
			return tok[:strings.LastIndex(tok, ".")+1]
		}, ticket.ErrSignature},
		{"alg none", func(t *testing.T, w *world) string {
			h := b64([]byte(`{"alg":"none","kid":"developer"}`))
			p, err := json.Marshal(w.payload(dev))
			require.NoError(t, err)
			return h + "." + b64(p) + "."
		}, ticket.ErrSignature},
		{"RS256 header (HMAC-signed with the session key)", func(t *testing.T, w *world) string {
			return raw(t, w.key(session, dev), map[string]any{"alg": "RS256", "kid": "developer"}, w.payload(dev))
		}, ticket.ErrSignature},
		{"HS512", func(t *testing.T, w *world) string {
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS512", "kid": "developer"}, w.payload(dev))
		}, ticket.ErrSignature},
		{"TTL too long", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			p["exp"] = w.now.Add(ticket.MaxTTL + time.Second).Unix()
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "kid": "developer"}, p)
		}, ticket.ErrTTL},
		{"unknown session", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			p["sub"] = "no-such-session"
			return raw(t, ticket.NewKey(), map[string]any{"alg": "HS256", "kid": "developer"}, p)
		}, ticket.ErrUnknownSession},
		{"function key signing a developer ticket", func(t *testing.T, w *world) string {
			tok, err := ticket.Mint(w.key(session, fn), w.claims(dev))
			require.NoError(t, err)
			return tok
		}, ticket.ErrSignature},
		{"function ticket signed with the session's function key itself", func(t *testing.T, w *world) string {
			tok, err := ticket.Mint(w.key(session, fn), w.claims(fn))
			require.NoError(t, err)
			return tok
		}, ticket.ErrSignature},
		{"one function's key used to connect as another function", func(t *testing.T, w *world) string {
			c := w.claims(fn)
			c.Function, c.Peer = "payments", ticket.FunctionPeer("payments", "p1")
			tok, err := ticket.Mint(w.fnKey(session, "orders"), c)
			require.NoError(t, err)
			return tok
		}, ticket.ErrSignature},
		{"function peer outside its function's namespace", func(t *testing.T, w *world) string {
			p := w.payload(fn)
			p["fn"], p["peer"] = "orders", "payments/p1"
			return raw(t, w.fnKey(session, "orders"), map[string]any{"alg": "HS256", "kid": "function"}, p)
		}, ticket.ErrMalformed},
		{"function peer without a namespace", func(t *testing.T, w *world) string {
			p := w.payload(fn)
			p["fn"], p["peer"] = "orders", "fn-1"
			return raw(t, w.fnKey(session, "orders"), map[string]any{"alg": "HS256", "kid": "function"}, p)
		}, ticket.ErrMalformed},
		{"function ticket naming no function", func(t *testing.T, w *world) string {
			p := w.payload(fn)
			p["peer"] = "/p1"
			return raw(t, w.fnKey(session, ""), map[string]any{"alg": "HS256", "kid": "function"}, p)
		}, ticket.ErrMalformed},
		{"developer ticket naming a function", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			p["fn"] = "orders"
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "kid": "developer"}, p)
		}, ticket.ErrMalformed},
		{"developer peer in a function's namespace", func(t *testing.T, w *world) string {
			p := w.payload(dev)
			p["peer"] = "orders/p1"
			return raw(t, w.key(session, dev), map[string]any{"alg": "HS256", "kid": "developer"}, p)
		}, ticket.ErrMalformed},
		{"another session's key", func(t *testing.T, w *world) string {
			tok, err := ticket.Mint(w.key("sess-2", dev), w.claims(dev))
			require.NoError(t, err)
			return tok
		}, ticket.ErrSignature},
	}
	sentinels := []error{ticket.ErrMissing, ticket.ErrMalformed, ticket.ErrSignature, ticket.ErrExpired,
		ticket.ErrAudience, ticket.ErrRole, ticket.ErrTTL, ticket.ErrReplayed, ticket.ErrUnknownSession}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			tok := tt.token(t, w)
			c, err := w.verifier().Verify(context.Background(), tok)
			if tt.want == nil {
				require.NoError(t, err)
				assert.Equal(t, session, c.Session)
				assert.NotEmpty(t, c.Peer)
				assert.NotEmpty(t, c.ID)
				assert.Equal(t, audience, c.Audience)
				assert.Equal(t, 1, w.useN, "a valid ticket is consumed")
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.want)
			for _, s := range sentinels {
				if s != tt.want {
					assert.NotErrorIs(t, err, s, "errors must be distinct")
				}
			}
			assert.Zero(t, w.useN, "the jti is consumed only after every other check passed")
			assertNoTokenIn(t, err.Error(), tok)
		})
	}
}

// assertNoTokenIn checks that msg quotes neither the token nor any of its segments.
func assertNoTokenIn(t *testing.T, msg, tok string) {
	t.Helper()
	if tok == "" {
		return
	}
	assert.NotContains(t, msg, tok)
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 8 {
			assert.NotContains(t, msg, part)
		}
	}
}

func TestVerifyReplayed(t *testing.T) {
	w := newWorld()
	v := w.verifier()
	tok := w.mint(t, wire.RoleFunction, nil)
	c, err := v.Verify(context.Background(), tok)
	require.NoError(t, err)
	assert.True(t, w.now.Add(time.Minute).Add(ticket.DefaultLeeway).Equal(w.used[c.ID]),
		"the jti is remembered until the ticket can no longer be accepted, leeway included: %s", w.used[c.ID])

	_, err = v.Verify(context.Background(), tok)
	require.ErrorIs(t, err, ticket.ErrReplayed)
	assertNoTokenIn(t, err.Error(), tok)
}

// A forged ticket that reuses a genuine ticket's jti must not burn it.
func TestVerifyForgeryDoesNotConsumeJTI(t *testing.T) {
	w := newWorld()
	v := w.verifier()
	good := w.mint(t, wire.RoleDeveloper, func(c *ticket.Claims) { c.ID = "shared-jti" })
	forged := w.mint(t, wire.RoleDeveloper, func(c *ticket.Claims) { c.ID = "shared-jti"; c.Audience = "elsewhere" })
	bad := good[:len(good)-2] + "AA"

	_, err := v.Verify(context.Background(), forged)
	require.ErrorIs(t, err, ticket.ErrAudience)
	_, err = v.Verify(context.Background(), bad)
	require.Error(t, err)
	_, err = v.Verify(context.Background(), good)
	require.NoError(t, err)
}

func TestVerifyRoundTripClaims(t *testing.T) {
	w := newWorld()
	want := ticket.Claims{
		Session: session, Role: wire.RoleFunction, Function: "orders", Peer: "orders/fn-3a9", Audience: audience,
		IssuedAt: w.now.Add(-10 * time.Second), Expires: w.now.Add(100 * time.Second), ID: "jti-1",
	}
	tok, err := ticket.Mint(w.fnKey(session, "orders"), want)
	require.NoError(t, err)
	got, err := w.verifier().Verify(context.Background(), tok)
	require.NoError(t, err)
	assert.Equal(t, want.Session, got.Session)
	assert.Equal(t, want.Role, got.Role)
	assert.Equal(t, want.Function, got.Function)
	assert.Equal(t, "orders", ticket.PeerFunction(got.Peer))
	assert.Equal(t, want.Peer, got.Peer)
	assert.Equal(t, want.Audience, got.Audience)
	assert.Equal(t, want.ID, got.ID)
	assert.True(t, want.IssuedAt.Equal(got.IssuedAt), "iat %s != %s", got.IssuedAt, want.IssuedAt)
	assert.True(t, want.Expires.Equal(got.Expires), "exp %s != %s", got.Expires, want.Expires)
}

func TestMintDefaultsAndHeader(t *testing.T) {
	key := ticket.NewKey()
	before := time.Now().Truncate(time.Second)
	tok, err := ticket.Mint(key, ticket.Claims{Session: "s", Role: wire.RoleFunction, Function: "f", Peer: "f/p", Audience: "a"})
	require.NoError(t, err)

	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	var header map[string]any
	decodeSegment(t, parts[0], &header)
	assert.Equal(t, "HS256", header["alg"])
	assert.Equal(t, "function", header["kid"])

	var payload struct {
		Iss, Sub, Role, Fn, Peer, Jti string
		Aud                           []string
		Iat, Exp                      int64
	}
	decodeSegment(t, parts[1], &payload)
	assert.Equal(t, "plldb", payload.Iss)
	assert.Equal(t, "s", payload.Sub)
	assert.Equal(t, "function", payload.Role)
	assert.Equal(t, "f", payload.Fn)
	assert.Equal(t, "f/p", payload.Peer)
	assert.Equal(t, []string{"a"}, payload.Aud)
	assert.GreaterOrEqual(t, len(payload.Jti), 16, "jti is random")
	assert.GreaterOrEqual(t, payload.Iat, before.Unix())
	assert.Equal(t, int64(ticket.DefaultTTL/time.Second), payload.Exp-payload.Iat)

	other, err := ticket.Mint(key, ticket.Claims{Session: "s", Role: wire.RoleFunction, Function: "f", Peer: "f/p", Audience: "a"})
	require.NoError(t, err)
	var p2 struct{ Jti string }
	decodeSegment(t, strings.Split(other, ".")[1], &p2)
	assert.NotEqual(t, payload.Jti, p2.Jti)
}

func decodeSegment(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

func TestMintRefuses(t *testing.T) {
	now := time.Now()
	ok := ticket.Claims{Session: "s", Role: wire.RoleDeveloper, Peer: "p", Audience: "a"}
	tests := []struct {
		name string
		key  []byte
		edit func(*ticket.Claims)
		want string
	}{
		{"short key", []byte("short"), nil, "key is 5 bytes"},
		{"no key", nil, nil, "key is 0 bytes"},
		{"empty session", nil, func(c *ticket.Claims) { c.Session = "" }, "session is empty"},
		{"empty peer", nil, func(c *ticket.Claims) { c.Peer = "" }, "peer is empty"},
		{"long peer", nil, func(c *ticket.Claims) { c.Peer = strings.Repeat("x", wire.MaxPeerLen+1) }, "peer is 129 bytes"},
		{"unknown role", nil, func(c *ticket.Claims) { c.Role = "admin" }, `unknown role "admin"`},
		{"empty role", nil, func(c *ticket.Claims) { c.Role = "" }, `unknown role ""`},
		{"empty audience", nil, func(c *ticket.Claims) { c.Audience = "" }, "audience is empty"},
		{"TTL too long", nil, func(c *ticket.Claims) {
			c.IssuedAt = now
			c.Expires = now.Add(ticket.MaxTTL + time.Second)
		}, "exceeds the maximum"},
		{"expires before issued", nil, func(c *ticket.Claims) {
			c.IssuedAt = now
			c.Expires = now.Add(-time.Minute)
		}, "is not after issued-at"},
		{"developer naming a function", nil, func(c *ticket.Claims) { c.Function = "f" }, "must not name a function"},
		{"developer peer with a namespace", nil, func(c *ticket.Claims) { c.Peer = "f/p" }, `must not contain "/"`},
		{"function naming none", nil, func(c *ticket.Claims) { c.Role, c.Peer = wire.RoleFunction, "f/p" }, "must name its function"},
		{"function peer outside its namespace", nil, func(c *ticket.Claims) { c.Role, c.Function, c.Peer = wire.RoleFunction, "f", "g/p" }, "function peer id"},
		{"function peer with an empty id", nil, func(c *ticket.Claims) { c.Role, c.Function, c.Peer = wire.RoleFunction, "f", "f/" }, "function peer id"},
		{"function name with a slash", nil, func(c *ticket.Claims) { c.Role, c.Function, c.Peer = wire.RoleFunction, "f/g", "f/g/p" }, "not a Lambda function name"},
		{"function name too long", nil, func(c *ticket.Claims) {
			c.Role, c.Function = wire.RoleFunction, strings.Repeat("f", ticket.MaxFunctionLen+1)
			c.Peer = c.Function + "/p"
		}, "longer than 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			if tt.edit != nil {
				tt.edit(&c)
			}
			key := tt.key
			if key == nil && !strings.HasPrefix(tt.name, "no key") {
				key = ticket.NewKey()
			}
			tok, err := ticket.Mint(key, c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, tok)
		})
	}

	tok, err := ticket.Mint(ticket.NewKey(), ticket.Claims{
		Session: "s", Role: wire.RoleDeveloper, Peer: "p", Audience: "a", IssuedAt: now, Expires: now.Add(ticket.MaxTTL),
	})
	require.NoError(t, err, "exactly MaxTTL is allowed")
	assert.NotEmpty(t, tok)
}

func TestFunctionKey(t *testing.T) {
	secret, other := ticket.NewKey(), ticket.NewKey()
	k := ticket.FunctionKey(secret, "orders")
	assert.Len(t, k, ticket.KeyLen)
	assert.Equal(t, k, ticket.FunctionKey(secret, "orders"), "the relay derives the same key again")
	assert.NotEqual(t, k, ticket.FunctionKey(secret, "payments"), "each function has its own key")
	assert.NotEqual(t, k, ticket.FunctionKey(other, "orders"), "and each session")
	assert.NotEqual(t, k, secret)
	assert.Equal(t, "orders", ticket.PeerFunction(ticket.FunctionPeer("orders", "fn-1")))
	assert.Empty(t, ticket.PeerFunction("developer-1"))
}

func TestNewKey(t *testing.T) {
	a, b := ticket.NewKey(), ticket.NewKey()
	assert.Len(t, a, ticket.KeyLen)
	assert.NotEqual(t, a, b)
}

func TestVerifierMisconfigured(t *testing.T) {
	w := newWorld()
	v := w.verifier()
	v.Audience = ""
	_, err := v.Verify(context.Background(), w.mint(t, wire.RoleDeveloper, nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Audience")
	assert.Zero(t, w.useN)
}

func TestVerifyKeyLookupFailure(t *testing.T) {
	w := newWorld()
	v := w.verifier()
	boom := errors.New("store unavailable")
	v.Key = func(context.Context, string, wire.Role) ([]byte, error) { return nil, boom }
	tok := w.mint(t, wire.RoleDeveloper, nil)
	_, err := v.Verify(context.Background(), tok)
	require.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, ticket.ErrUnknownSession)
	assert.NotErrorIs(t, err, ticket.ErrSignature)
	assertNoTokenIn(t, err.Error(), tok)

	v.Key = func(context.Context, string, wire.Role) ([]byte, error) { return []byte("short"), nil }
	_, err = v.Verify(context.Background(), tok)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "need 32")
	assert.Zero(t, w.useN)
}

func TestVerifyUseFailure(t *testing.T) {
	w := newWorld()
	v := w.verifier()
	boom := errors.New("table throttled")
	v.Use = func(context.Context, string, time.Time) error { return boom }
	_, err := v.Verify(context.Background(), w.mint(t, wire.RoleDeveloper, nil))
	require.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, ticket.ErrReplayed)
}

func FuzzVerify(f *testing.F) {
	w := newWorld()
	for _, r := range []wire.Role{wire.RoleDeveloper, wire.RoleFunction} {
		c := w.claims(r)
		tok, err := ticket.Mint(w.key(session, r), c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		fw := newWorld()
		c, err := fw.verifier().Verify(context.Background(), tok)
		if err != nil {
			// Only a JWS-shaped input can be told apart from the fixed words of the messages.
			if strings.Count(tok, ".") == 2 && len(tok) > 40 {
				assert.NotContains(t, err.Error(), tok)
			}
			assert.Zero(t, fw.useN)
			return
		}
		// Anything accepted must be a ticket signed by a key the fuzzer cannot know: the random keys of fw
		// differ from those the seeds were minted with.
		t.Fatalf("accepted a ticket without knowing the key: %+v", c)
	})
}

package knock

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Config configures a Verifier.
type Config struct {
	// Keys are the public keys of the sessions whose knocks this function honours, by session id (the iss claim).
	// Each developer attached selectively has their own key pair; the private key never leaves their machine.
	Keys map[string]ed25519.PublicKey
	// Audiences are the aud values this function answers to: its stack, and stack/function for each name the
	// function goes by (Audiences builds them).
	Audiences []string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Leeway is the clock skew tolerated on iat, nbf and exp; zero is DefaultLeeway.
	Leeway time.Duration
	// Replay, if set, makes request-bound knocks single use (within what it remembers). Knocks without a request
	// binding are meant to mark every request of a short window and are not checked against it.
	Replay Replay
}

// Replay records the knocks already used.
type Replay interface {
	// Use records the knock (issuer, id) as used until it expires and reports whether it was unused before.
	Use(issuer, id string, expires time.Time) bool
}

// Verifier checks knocks against the keys and audiences of one function. It is safe for concurrent use; to change
// the keys (a developer attaches or detaches), build a new Verifier and swap it in.
type Verifier struct {
	keys      map[string]ed25519.PublicKey
	audiences map[string]struct{}
	now       func() time.Time
	leeway    time.Duration
	replay    Replay
}

// Audiences returns the aud values a function of stack answers to: the stack itself and stack/name for each of
// the function's names (say its logical id and its physical name).
func Audiences(stack string, names ...string) []string {
	out := []string{stack}
	for _, n := range names {
		if n != "" {
			out = append(out, stack+"/"+n)
		}
	}
	return out
}

// NewVerifier checks c and returns a Verifier. It copies the keys and audiences.
func NewVerifier(c Config) (*Verifier, error) {
	v := &Verifier{
		keys:      make(map[string]ed25519.PublicKey, len(c.Keys)),
		audiences: make(map[string]struct{}, len(c.Audiences)),
		now:       c.Now,
		leeway:    c.Leeway,
		replay:    c.Replay,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.leeway == 0 {
		v.leeway = DefaultLeeway
	}
	if v.leeway < 0 {
		return nil, errors.New("knock verifier: negative leeway")
	}
	for id, k := range c.Keys {
		if !validName(id, MaxIssuerLen, false) {
			return nil, fmt.Errorf("knock verifier: session id %q is not valid", id)
		}
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("knock verifier: key of session %s is not an Ed25519 public key", id)
		}
		v.keys[id] = append(ed25519.PublicKey(nil), k...)
	}
	for _, a := range c.Audiences {
		if !validName(a, MaxAudienceLen, true) {
			return nil, fmt.Errorf("knock verifier: audience %q is not a stack or stack/function", a)
		}
		v.audiences[a] = struct{}{}
	}
	if len(v.audiences) == 0 {
		return nil, errors.New("knock verifier: no audience")
	}
	return v, nil
}

// Verify checks tok for the invocation req and returns its claims. In order: size, the pinned header, the strict
// payload, the issuer's key, the signature, then (now that the claims are known to be the issuer's) lifetime,
// times, audience, route, request binding and replay. A refused knock's error wraps one of the Err… sentinels and never
// contains the token.
func (v *Verifier) Verify(tok string, req Request) (Claims, error) {
	signed, pay, sig, err := split(tok)
	if err != nil {
		return Claims{}, err
	}
	p, err := decodePayload(pay)
	if err != nil {
		return Claims{}, err
	}
	if err := p.check(); err != nil {
		return Claims{}, err
	}
	key, ok := v.keys[p.Iss]
	if !ok {
		return Claims{}, fmt.Errorf("%w: %s", ErrUnknownSession, p.Iss)
	}
	if !ed25519.Verify(key, []byte(signed), sig) {
		return Claims{}, ErrSignature
	}
	if err := p.checkLifetime(); err != nil {
		return Claims{}, err
	}
	c := p.claims()
	now := v.now()
	switch {
	case now.After(c.Expires.Add(v.leeway)):
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, c.Expires.UTC().Format(time.RFC3339))
	case now.Add(v.leeway).Before(c.NotBefore):
		return Claims{}, fmt.Errorf("%w until %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	case now.Add(v.leeway).Before(c.IssuedAt):
		return Claims{}, fmt.Errorf("%w: issued in the future, at %s", ErrNotYetValid, c.IssuedAt.UTC().Format(time.RFC3339))
	}
	if _, ok := v.audiences[c.Audience]; !ok {
		return Claims{}, fmt.Errorf("%w: knock is for %s", ErrAudience, c.Audience)
	}
	if c.Route != "" {
		r, err := ParseRoute(c.Route) // checked in p.check
		if err != nil {
			return Claims{}, err
		}
		if !req.HTTP {
			return Claims{}, fmt.Errorf("%w: the invocation is not an HTTP request", ErrRoute)
		}
		if !r.Match(req.Method, req.Path) {
			return Claims{}, fmt.Errorf("%w: %s", ErrRoute, c.Route)
		}
	}
	if b := c.Request; b != nil {
		switch {
		case !req.HTTP:
			return Claims{}, fmt.Errorf("%w: the invocation is not an HTTP request", ErrRequest)
		case b.Method != req.Method || b.Path != req.Path:
			return Claims{}, fmt.Errorf("%w: method or path differs", ErrRequest)
		case now.Sub(b.Time) > RequestWindow || b.Time.Sub(now) > RequestWindow:
			return Claims{}, fmt.Errorf("%w: its time %s is more than %s away", ErrRequest, b.Time.UTC().Format(time.RFC3339), RequestWindow)
		}
		if v.replay != nil && !v.replay.Use(c.Issuer, c.ID, c.Expires.Add(v.leeway)) {
			return Claims{}, fmt.Errorf("%w: token id %s", ErrReplayed, c.ID)
		}
	}
	return c, nil
}

func (p *payload) claims() Claims {
	c := Claims{
		Issuer: p.Iss, Audience: p.Aud, ID: p.Jti,
		IssuedAt: time.Unix(p.Iat, 0), NotBefore: time.Unix(p.Nbf, 0), Expires: time.Unix(p.Exp, 0),
		Route: p.Route,
	}
	if p.Req != nil {
		c.Request = &RequestBinding{Method: p.Req.Method, Path: p.Req.Path, Time: time.Unix(p.Req.Ts, 0)}
	}
	return c
}

// MemoryReplay is a Replay that remembers up to a fixed number of knocks in memory. In Lambda each sandbox has
// its own, so a request-bound knock is single use per sandbox; its RequestWindow bounds the rest.
type MemoryReplay struct {
	now  func() time.Time
	mu   sync.Mutex
	max  int
	seen map[[2]string]time.Time
}

// NewMemoryReplay returns a MemoryReplay remembering at most limit knocks (at least 1), telling expired ones by
// the clock now (nil is time.Now; give it the Verifier's).
func NewMemoryReplay(limit int, now func() time.Time) *MemoryReplay {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplay{now: now, max: max(limit, 1), seen: map[[2]string]time.Time{}}
}

// Use implements Replay. When full, it forgets expired knocks; if none has expired it refuses new ones, failing
// closed rather than forgetting a live knock that could then be replayed.
func (m *MemoryReplay) Use(issuer, id string, expires time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{issuer, id}
	if _, ok := m.seen[k]; ok {
		return false
	}
	if len(m.seen) >= m.max {
		now := m.now()
		for k, exp := range m.seen {
			if now.After(exp) {
				delete(m.seen, k)
			}
		}
		if len(m.seen) >= m.max {
			return false
		}
	}
	m.seen[k] = expires
	return true
}

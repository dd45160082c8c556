// Package knock mints and verifies plldb knocks: short-lived Ed25519-signed tokens that mark one invocation (or
// the invocations of a short window) for one developer's debug session in selective mode (docs/knock.md).
//
// A knock is a compact JWS (RFC 7515) with one fixed protected header, base64url("{"alg":"EdDSA","typ":
// "plldb-knock+v1"}"). The verifier compares the header segment byte for byte with that constant and never reads
// an algorithm from the token, so "alg":"none", HS256 with a public key as the secret, or any other header is
// refused before anything else is looked at. The payload is a strict JSON object: every field is known, none is
// repeated, times are integer seconds. The issuer (iss) is the developer's session id; it selects that session's
// public key and routes the knocked invocation to that developer, so a knock signed with one developer's key and
// naming another's session fails its signature check.
//
// Verification failures are reported with sentinel errors (errors.Is) whose messages say why and never contain
// the token: a knock is a bearer credential for as long as it lives.
package knock

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Header is the only protected header a knock may have, as its base64url encoding appears in the token.
const Header = "eyJhbGciOiJFZERTQSIsInR5cCI6InBsbGRiLWtub2NrK3YxIn0" // {"alg":"EdDSA","typ":"plldb-knock+v1"}

// MaxTokenLen is the longest knock Verify looks at; longer ones are refused before any decoding. A knock with the
// longest route and request path fits with room to spare, and an HTTP header of 4 KB is within every AWS front
// door's header limits.
const MaxTokenLen = 4096

// DefaultTTL is the lifetime Mint gives a knock whose Expires is zero.
const DefaultTTL = 15 * time.Minute

// MaxTTL is the longest lifetime (exp - iat) a knock may have, at minting and at verification.
const MaxTTL = 12 * time.Hour

// RequestWindow is how far a request-bound knock's timestamp may be from the verifier's clock, either way.
const RequestWindow = 5 * time.Minute

// DefaultLeeway is the clock skew tolerated on iat, nbf and exp when the Verifier does not say otherwise: the
// developer's laptop and the Lambda sandbox keep their own clocks.
const DefaultLeeway = 30 * time.Second

// Limits on claim values, so a payload stays small and prints safely in diagnostics.
const (
	MaxIssuerLen   = 128
	MaxAudienceLen = 256
	MaxIDLen       = 64
	MaxRouteLen    = 256
	MaxPathLen     = 1024
	MaxMethodLen   = 16
)

// The reasons Verify refuses a knock. Each is wrapped with a short explanation; test with errors.Is.
var (
	ErrMissing        = errors.New("knock missing")
	ErrOversize       = errors.New("knock too long")
	ErrMalformed      = errors.New("knock malformed")
	ErrHeader         = errors.New("knock header not the pinned EdDSA header")
	ErrUnknownSession = errors.New("knock issuer is not an attached session")
	ErrSignature      = errors.New("knock signature invalid")
	ErrExpired        = errors.New("knock expired")
	ErrNotYetValid    = errors.New("knock not yet valid")
	ErrLifetime       = errors.New("knock lifetime too long")
	ErrAudience       = errors.New("knock audience mismatch")
	ErrRoute          = errors.New("knock bound to another route")
	ErrRequest        = errors.New("knock bound to another request")
	ErrReplayed       = errors.New("knock already used")
)

// Claims is what a knock asserts.
type Claims struct {
	Issuer    string    // iss: the developer's session id; selects the key and routes the invocation
	Audience  string    // aud: a stack ("orders") or one function of it ("orders/CreateOrder")
	ID        string    // jti
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf
	Expires   time.Time // exp
	// Route (optional) limits the knock to HTTP requests matching a pattern "METHOD /path/glob" (Route).
	Route string
	// Request (optional) binds the knock to one HTTP request: its method, its path, and a moment within
	// RequestWindow of the verifier's clock.
	Request *RequestBinding
}

// RequestBinding is a knock's binding to one HTTP request.
type RequestBinding struct {
	Method string    // exact, e.g. "POST"
	Path   string    // exact, as the event carries it (v1 path, v2 rawPath)
	Time   time.Time // when the request is made; must be within RequestWindow of verification
}

// Request is what the verifier knows of the invocation a knock arrived with.
type Request struct {
	HTTP   bool   // the event is an HTTP request (API Gateway, Function URL, ALB)
	Method string // for HTTP
	Path   string // for HTTP: v1/ALB path, v2 rawPath
}

// payload is a knock's JSON payload. Field names follow JWT where one exists.
type payload struct {
	Iss   string      `json:"iss"`
	Aud   string      `json:"aud"`
	Jti   string      `json:"jti"`
	Iat   int64       `json:"iat"`
	Nbf   int64       `json:"nbf"`
	Exp   int64       `json:"exp"`
	Route string      `json:"route,omitempty"`
	Req   *reqPayload `json:"req,omitempty"`
}

type reqPayload struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Ts     int64  `json:"ts"`
}

var b64 = base64.RawURLEncoding

// b64Strict refuses padding and non-zero trailing bits, so each token has exactly one spelling.
var b64Strict = base64.RawURLEncoding.Strict()

// NewKey returns a fresh Ed25519 key pair for a developer session.
func NewKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate knock key: %w", err)
	}
	return pub, priv, nil
}

// NewID returns a random token id: 128 bits, base64url.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return b64.EncodeToString(b[:])
}

// Mint signs c with priv. Zero IssuedAt is now, zero NotBefore is IssuedAt, zero Expires is IssuedAt +
// DefaultTTL, empty ID is NewID(). Claims the Verifier would refuse on their own (a lifetime over MaxTTL, a bad
// route, values over their limits) are refused here too.
func Mint(priv ed25519.PrivateKey, c Claims) (string, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return "", errors.New("mint knock: not an Ed25519 private key")
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = c.IssuedAt
	}
	if c.Expires.IsZero() {
		c.Expires = c.IssuedAt.Add(DefaultTTL)
	}
	if c.ID == "" {
		c.ID = NewID()
	}
	p := payload{
		Iss: c.Issuer, Aud: c.Audience, Jti: c.ID,
		Iat: c.IssuedAt.Unix(), Nbf: c.NotBefore.Unix(), Exp: c.Expires.Unix(),
		Route: c.Route,
	}
	if c.Request != nil {
		p.Req = &reqPayload{Method: c.Request.Method, Path: c.Request.Path, Ts: c.Request.Time.Unix()}
	}
	if err := p.check(); err != nil {
		return "", fmt.Errorf("mint knock: %w", err)
	}
	if err := p.checkLifetime(); err != nil {
		return "", fmt.Errorf("mint knock: %w", err)
	}
	js, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("mint knock: %w", err)
	}
	signed := Header + "." + b64.EncodeToString(js)
	tok := signed + "." + b64.EncodeToString(ed25519.Sign(priv, []byte(signed)))
	if len(tok) > MaxTokenLen {
		return "", fmt.Errorf("mint knock: %w: %d bytes, at most %d", ErrOversize, len(tok), MaxTokenLen)
	}
	return tok, nil
}

// check validates the claims' shapes (not times against a clock): what both Mint and Verify insist on.
func (p *payload) check() error {
	switch {
	case !validName(p.Iss, MaxIssuerLen, false):
		return fmt.Errorf("%w: iss is not a session id", ErrMalformed)
	case !validName(p.Aud, MaxAudienceLen, true):
		return fmt.Errorf("%w: aud is not a stack or stack/function", ErrMalformed)
	case !validName(p.Jti, MaxIDLen, false):
		return fmt.Errorf("%w: jti is not a token id", ErrMalformed)
	case p.Iat <= 0 || p.Nbf <= 0 || p.Exp <= 0:
		return fmt.Errorf("%w: iat, nbf and exp must be positive", ErrMalformed)
	case p.Exp <= p.Nbf || p.Exp <= p.Iat:
		return fmt.Errorf("%w: exp is not after iat and nbf", ErrMalformed)
	}
	if p.Route != "" {
		if _, err := ParseRoute(p.Route); err != nil {
			return err
		}
	}
	if r := p.Req; r != nil {
		switch {
		case !validMethod(r.Method):
			return fmt.Errorf("%w: req.method is not an HTTP method", ErrMalformed)
		case !validPath(r.Path):
			return fmt.Errorf("%w: req.path is not an absolute path", ErrMalformed)
		case r.Ts <= 0:
			return fmt.Errorf("%w: req.ts must be positive", ErrMalformed)
		}
	}
	return nil
}

// checkLifetime refuses a lifetime (exp - iat) over MaxTTL. Verify calls it only once the signature is known to be
// good, so that it never reports an unsigned claim as a fact.
func (p *payload) checkLifetime() error {
	if p.Exp-p.Iat > int64(MaxTTL/time.Second) {
		return fmt.Errorf("%w: %s, at most %s", ErrLifetime, time.Duration(p.Exp-p.Iat)*time.Second, MaxTTL)
	}
	return nil
}

// ValidIssuer tells whether s may be a knock's issuer: a session id (bridge/selenv checks the selective
// settings' session ids with it, so that a session the settings accept is one a knock can name).
func ValidIssuer(s string) bool { return validName(s, MaxIssuerLen, false) }

// validName accepts 1..max of [A-Za-z0-9._:-], and '/' too when slash is set: session ids, token ids, stack and
// function names. Keeping them to this alphabet makes them safe to print in diagnostics.
func validName(s string, max int, slash bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		case c == '/' && slash:
		default:
			return false
		}
	}
	return true
}

// validMethod accepts an HTTP method token of upper-case letters.
func validMethod(s string) bool {
	if s == "" || len(s) > MaxMethodLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// validPath accepts an absolute path of printable ASCII without spaces (a raw, still percent-encoded path).
func validPath(s string) bool {
	if s == "" || s[0] != '/' || len(s) > MaxPathLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// decodePayload parses a knock's payload strictly: one JSON object, valid UTF-8, only the known fields, each at
// most once, of the right type (times as integers), nothing after it. Unknown fields are refused rather than
// ignored so that a knock carrying a restriction this verifier does not know is refused, not widened; duplicate
// fields are refused so that no two JSON parsers can read one knock two ways.
func decodePayload(b []byte) (payload, error) {
	var p payload
	if !utf8.Valid(b) {
		return p, fmt.Errorf("%w: payload is not UTF-8", ErrMalformed)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	err := object(d, func(key string) error {
		switch key {
		case "iss":
			return str(d, &p.Iss)
		case "aud":
			return str(d, &p.Aud)
		case "jti":
			return str(d, &p.Jti)
		case "iat":
			return integer(d, &p.Iat)
		case "nbf":
			return integer(d, &p.Nbf)
		case "exp":
			return integer(d, &p.Exp)
		case "route":
			return str(d, &p.Route)
		case "req":
			p.Req = &reqPayload{}
			return object(d, func(key string) error {
				switch key {
				case "method":
					return str(d, &p.Req.Method)
				case "path":
					return str(d, &p.Req.Path)
				case "ts":
					return integer(d, &p.Req.Ts)
				}
				return fmt.Errorf("unknown field req.%q", key)
			}, "method", "path", "ts")
		}
		return fmt.Errorf("unknown field %q", key)
	}, "iss", "aud", "jti", "iat", "nbf", "exp")
	if err != nil {
		return p, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return p, fmt.Errorf("%w: payload: data after the object", ErrMalformed)
	}
	return p, nil
}

// object reads one JSON object from d, calling field for each key (which must consume the value) and refusing
// repeated keys and missing required ones.
func object(d *json.Decoder, field func(key string) error, required ...string) error {
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return errors.New("not an object")
	}
	seen := make(map[string]bool, 8)
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return errors.New("bad key")
		}
		key, _ := t.(string)
		if seen[key] {
			return fmt.Errorf("field %q repeated", key)
		}
		seen[key] = true
		if err := field(key); err != nil {
			return err
		}
	}
	if _, err := d.Token(); err != nil {
		return errors.New("unterminated object")
	}
	for _, k := range required {
		if !seen[k] {
			return fmt.Errorf("field %q missing", k)
		}
	}
	return nil
}

func str(d *json.Decoder, dst *string) error {
	t, err := d.Token()
	s, ok := t.(string)
	if err != nil || !ok {
		return errors.New("a string field is not a string")
	}
	*dst = s
	return nil
}

func integer(d *json.Decoder, dst *int64) error {
	t, err := d.Token()
	n, ok := t.(json.Number)
	if err != nil || !ok {
		return errors.New("a time field is not a number")
	}
	v, err := n.Int64()
	if err != nil {
		return errors.New("a time field is not an integer")
	}
	*dst = v
	return nil
}

// split checks a knock's outer shape and returns its payload and signature, decoded. Nothing of the payload is
// interpreted yet.
func split(tok string) (signed string, pay, sig []byte, err error) {
	switch {
	case tok == "":
		return "", nil, nil, ErrMissing
	case len(tok) > MaxTokenLen:
		return "", nil, nil, fmt.Errorf("%w: %d bytes, at most %d", ErrOversize, len(tok), MaxTokenLen)
	}
	h, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return "", nil, nil, fmt.Errorf("%w: not three dot-separated parts", ErrMalformed)
	}
	// The header is public and fixed, so a plain comparison leaks nothing.
	if h != Header {
		return "", nil, nil, ErrHeader
	}
	ps, ss, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(ss, ".") {
		return "", nil, nil, fmt.Errorf("%w: not three dot-separated parts", ErrMalformed)
	}
	pay, err = b64Strict.DecodeString(ps)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	sig, err = b64Strict.DecodeString(ss)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return "", nil, nil, fmt.Errorf("%w: signature is not %d bytes of base64url", ErrMalformed, ed25519.SignatureSize)
	}
	return tok[:len(h)+1+len(ps)], pay, sig, nil
}

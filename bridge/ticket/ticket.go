// Package ticket mints and verifies the short-lived, single-use tickets that authorize a WebSocket connection to
// the relay: HS256 JWTs bound to one session, one role and one peer (docs/protocol.md, "Peers, sessions and
// tickets").
//
// Each session has one HMAC key per role and the token header's kid names the role whose key signed it, so a
// function sandbox cannot mint a developer ticket. The session's function key is not handed to functions either:
// it is a secret from which each function's own key is derived (FunctionKey), and a function ticket names its
// function (the fn claim) and a peer id inside that function's namespace (FunctionPeer). So a function's key
// connects only as that function, and only under peer ids no other function can claim. Verification failures are
// reported with distinct sentinel errors (errors.Is) whose messages never contain the token.
package ticket

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/plldb/plldb/bridge/wire"
)

// Issuer is the iss claim of every ticket.
const Issuer = "plldb"

// MaxTTL is the longest lifetime (exp - iat) a ticket may have. Tickets only need to survive one dial.
const MaxTTL = 2 * time.Minute

// DefaultTTL is the lifetime Mint gives a ticket whose Expires is zero.
const DefaultTTL = 60 * time.Second

// KeyLen is the size of the keys NewKey returns and the minimum size Mint and Verify accept: HS256 keys shorter
// than the hash output weaken the MAC.
const KeyLen = 32

// DefaultLeeway is the clock skew Verify tolerates when the Verifier does not say otherwise.
const DefaultLeeway = 5 * time.Second

// The reasons Verify rejects a ticket. Each is wrapped with a short explanation; test with errors.Is.
var (
	ErrMissing        = errors.New("ticket missing")
	ErrMalformed      = errors.New("ticket malformed")
	ErrSignature      = errors.New("ticket signature invalid")
	ErrExpired        = errors.New("ticket expired or not yet valid")
	ErrAudience       = errors.New("ticket audience mismatch")
	ErrRole           = errors.New("ticket role invalid")
	ErrTTL            = errors.New("ticket lifetime too long")
	ErrReplayed       = errors.New("ticket already used")
	ErrUnknownSession = errors.New("ticket session unknown")
)

// Claims is what a ticket asserts.
type Claims struct {
	Session string    // sub
	Role    wire.Role // role, also the header's kid
	// Function (fn) is, for the function role, the function's name (AWS_LAMBDA_FUNCTION_NAME); the ticket is
	// signed with FunctionKey(session's function key, Function), and Peer must be FunctionPeer(Function, …).
	// Empty for the developer role.
	Function string
	Peer     string    // peer
	Audience string    // aud: the relay the ticket is for
	IssuedAt time.Time // iat
	Expires  time.Time // exp
	ID       string    // jti: single use
}

// jwtClaims is the token's JSON form.
type jwtClaims struct {
	jwt.RegisteredClaims
	Role     wire.Role `json:"role"`
	Function string    `json:"fn,omitempty"`
	Peer     string    `json:"peer"`
}

// MaxFunctionLen is the longest function name a ticket may carry: Lambda's limit for a function name.
const MaxFunctionLen = 64

// functionKeyLabel separates the derivation of function keys from any other use of the session's function key.
const functionKeyLabel = "plldb function key v1\x00"

// FunctionKey derives the key of one function from the session's function key (relay.Session.Keys[function]):
// HMAC-SHA256(sessionKey, label || function). attach gives each function its own (PLLDB_FUNCTION_KEY); the
// relay derives it again to verify a ticket naming that function, so one function's key is useless for any
// other function, and the session's function key itself never leaves the developer and the relay.
func FunctionKey(sessionKey []byte, function string) []byte {
	mac := hmac.New(sha256.New, sessionKey)
	mac.Write([]byte(functionKeyLabel))
	mac.Write([]byte(function))
	return mac.Sum(nil)
}

// FunctionPeer returns the peer id id within function's namespace: function + "/" + id. Every function ticket's
// peer has this form, so a peer id names its function, and the relay-stamped from of a function's message tells
// the developer which function sent it.
func FunctionPeer(function, id string) string { return function + "/" + id }

// PeerFunction returns the function whose namespace peer is in ("" when peer is not a function peer id). For
// the from the relay stamps on a function connection's messages, that is the function its ticket proved.
func PeerFunction(peer string) string {
	fn, _, ok := strings.Cut(peer, "/")
	if !ok {
		return ""
	}
	return fn
}

// checkIdentity checks that role, function and peer fit together: a developer names no function and its peer
// is outside every function's namespace; a function names a valid function and its peer is in its namespace.
func checkIdentity(role wire.Role, function, peer string) error {
	if role == wire.RoleDeveloper {
		switch {
		case function != "":
			return errors.New("a developer ticket must not name a function")
		case strings.Contains(peer, "/"):
			return errors.New("a developer peer id must not contain \"/\"")
		}
		return nil
	}
	if function == "" {
		return errors.New("a function ticket must name its function")
	}
	if err := ValidFunction(function); err != nil {
		return err
	}
	if !strings.HasPrefix(peer, function+"/") || len(peer) == len(function)+1 {
		return errors.New("a function peer id must be the function name, \"/\" and an id")
	}
	return nil
}

// ValidFunction checks that a function name can be a ticket's fn claim: a Lambda function name (at most 64
// bytes) has no "/", NUL or surrounding space.
func ValidFunction(function string) error {
	switch {
	case function == "":
		return errors.New("function name is empty")
	case len(function) > MaxFunctionLen:
		return fmt.Errorf("function name longer than %d bytes", MaxFunctionLen)
	case !utf8.ValidString(function) || strings.ContainsAny(function, "/\x00") || strings.TrimSpace(function) != function:
		return errors.New("function name is not a Lambda function name")
	}
	return nil
}

// NewKey returns a fresh random key for one session and role.
func NewKey() []byte {
	k := make([]byte, KeyLen)
	// crypto/rand.Read never returns an error (it crashes the program instead when the OS has no randomness).
	_, _ = rand.Read(k)
	return k
}

// ValidRole reports whether r is one of the roles a ticket may carry.
func ValidRole(r wire.Role) bool {
	return r == wire.RoleDeveloper || r == wire.RoleFunction
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Mint signs a ticket for c with key, which must be the key of c.Session for c.Role. Zero ID, IssuedAt and
// Expires are filled in: a random id, now, and IssuedAt+DefaultTTL.
func Mint(key []byte, c Claims) (string, error) {
	switch {
	case len(key) < KeyLen:
		return "", fmt.Errorf("mint ticket: key is %d bytes, need at least %d", len(key), KeyLen)
	case c.Session == "":
		return "", errors.New("mint ticket: session is empty")
	case c.Peer == "":
		return "", errors.New("mint ticket: peer is empty")
	case len(c.Peer) > wire.MaxPeerLen:
		return "", fmt.Errorf("mint ticket: peer is %d bytes, at most %d allowed", len(c.Peer), wire.MaxPeerLen)
	case !ValidRole(c.Role):
		return "", fmt.Errorf("mint ticket: unknown role %q", c.Role)
	case c.Audience == "":
		return "", errors.New("mint ticket: audience is empty")
	}
	if err := checkIdentity(c.Role, c.Function, c.Peer); err != nil {
		return "", fmt.Errorf("mint ticket: %w", err)
	}
	if c.ID == "" {
		c.ID = randomID()
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.Expires.IsZero() {
		c.Expires = c.IssuedAt.Add(DefaultTTL)
	}
	// The token carries whole seconds; check the lifetime it will actually have.
	iat, exp := jwt.NewNumericDate(c.IssuedAt), jwt.NewNumericDate(c.Expires)
	ttl := exp.Sub(iat.Time)
	if ttl <= 0 {
		return "", fmt.Errorf("mint ticket: expires (%s) is not after issued-at (%s)",
			c.Expires.UTC().Format(time.RFC3339), c.IssuedAt.UTC().Format(time.RFC3339))
	}
	if ttl > MaxTTL {
		return "", fmt.Errorf("mint ticket: lifetime %s exceeds the maximum %s", ttl, MaxTTL)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   c.Session,
			Audience:  jwt.ClaimStrings{c.Audience},
			IssuedAt:  iat,
			ExpiresAt: exp,
			ID:        c.ID,
		},
		Role:     c.Role,
		Function: c.Function,
		Peer:     c.Peer,
	})
	tok.Header["kid"] = string(c.Role)
	s, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("mint ticket: sign: %w", err)
	}
	return s, nil
}

// Verifier checks tickets presented to the relay.
type Verifier struct {
	// Audience is the relay's audience; a ticket for another audience is refused. Required.
	Audience string
	// Key returns the key of session for role. It returns an error wrapping ErrUnknownSession when the session
	// does not exist (or has expired); other errors are treated as lookup failures. For the function role it is
	// the session's function key, from which Verify derives the key of the function the ticket names
	// (FunctionKey). Required.
	Key func(ctx context.Context, session string, role wire.Role) ([]byte, error)
	// Use records the ticket id as used until expires and returns an error wrapping ErrReplayed if it already
	// was. Required.
	Use func(ctx context.Context, jti string, expires time.Time) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp and iat; zero means DefaultLeeway, negative means none.
	Leeway time.Duration
}

// Verify checks token and, only if everything about it is valid, consumes its jti. The MAC comparison is
// constant-time: jwt's SigningMethodHMAC.Verify uses hmac.Equal (checked in golang-jwt/jwt v5.3.1, hmac.go). The error wraps one of the
// sentinels above (or is a key-lookup or use-recording failure) and never contains the token.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if v.Audience == "" || v.Key == nil || v.Use == nil {
		return Claims{}, errors.New("verify ticket: verifier needs Audience, Key and Use")
	}
	if token == "" {
		return Claims{}, ErrMissing
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	leeway := v.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}

	var claims jwtClaims
	// keyErr keeps our own sentinel from the key function: jwt wraps it in ErrTokenUnverifiable.
	var keyErr error
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(v.Audience),
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
	)
	_, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		keyErr = v.lookupKey(ctx, t, &claims)
		if keyErr != nil {
			return nil, keyErr
		}
		key, err := v.Key(ctx, claims.Subject, claims.Role)
		if err != nil {
			if errors.Is(err, ErrUnknownSession) {
				keyErr = err
			} else {
				keyErr = fmt.Errorf("verify ticket: look up key of session %q: %w", claims.Subject, err)
			}
			return nil, keyErr
		}
		if len(key) < KeyLen {
			keyErr = fmt.Errorf("verify ticket: key of session %q role %s is %d bytes, need %d",
				claims.Subject, claims.Role, len(key), KeyLen)
			return nil, keyErr
		}
		if claims.Role == wire.RoleFunction {
			return FunctionKey(key, claims.Function), nil
		}
		return key, nil
	})
	if keyErr != nil {
		return Claims{}, keyErr
	}
	if err != nil {
		return Claims{}, classify(err)
	}

	// jwt has checked signature, iss, aud, exp and (if present) iat; the rest is ours.
	switch {
	case claims.IssuedAt == nil:
		return Claims{}, fmt.Errorf("%w: no iat claim", ErrMalformed)
	case claims.ID == "":
		return Claims{}, fmt.Errorf("%w: no jti claim", ErrMalformed)
	}
	if ttl := claims.ExpiresAt.Sub(claims.IssuedAt.Time); ttl > MaxTTL {
		return Claims{}, fmt.Errorf("%w: %s, at most %s", ErrTTL, ttl, MaxTTL)
	}

	exp := claims.ExpiresAt.Time
	// The jti must be remembered for as long as the ticket would still be accepted, leeway included.
	if err := v.Use(ctx, claims.ID, exp.Add(leeway)); err != nil {
		if errors.Is(err, ErrReplayed) {
			return Claims{}, err
		}
		return Claims{}, fmt.Errorf("verify ticket: record use: %w", err)
	}
	aud := ""
	if len(claims.Audience) > 0 {
		aud = claims.Audience[0]
	}
	return Claims{
		Session:  claims.Subject,
		Role:     claims.Role,
		Function: claims.Function,
		Peer:     claims.Peer,
		Audience: aud,
		IssuedAt: claims.IssuedAt.Time,
		Expires:  exp,
		ID:       claims.ID,
	}, nil
}

// lookupKey checks what must hold before a key is looked up: the key is chosen by (sub, kid), so both must be
// present and kid must equal the role claim.
func (v *Verifier) lookupKey(_ context.Context, t *jwt.Token, c *jwtClaims) error {
	kid, ok := t.Header["kid"].(string)
	switch {
	case !ok || kid == "":
		return fmt.Errorf("%w: header has no kid", ErrRole)
	case !ValidRole(wire.Role(kid)):
		return fmt.Errorf("%w: header kid names no known role", ErrRole)
	case !ValidRole(c.Role):
		return fmt.Errorf("%w: unknown role claim", ErrRole)
	case wire.Role(kid) != c.Role:
		return fmt.Errorf("%w: header kid %s does not match role claim %s", ErrRole, kid, c.Role)
	case c.Subject == "":
		return fmt.Errorf("%w: no sub (session) claim", ErrMalformed)
	case c.Peer == "":
		return fmt.Errorf("%w: no peer claim", ErrMalformed)
	case len(c.Peer) > wire.MaxPeerLen:
		return fmt.Errorf("%w: peer claim longer than %d bytes", ErrMalformed, wire.MaxPeerLen)
	}
	if err := checkIdentity(c.Role, c.Function, c.Peer); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// classify maps jwt's errors to ours. jwt's own messages are not passed on: some of them quote parts of the
// token.
func classify(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: not a well-formed JWS compact token", ErrMalformed)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("%w: not signed with HS256 by the session's key", ErrSignature)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fmt.Errorf("%w: no exp claim", ErrMalformed)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: exp is in the past", ErrExpired)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return fmt.Errorf("%w: iat or nbf is in the future", ErrExpired)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fmt.Errorf("%w: issued for another relay", ErrAudience)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fmt.Errorf("%w: iss is not %q", ErrMalformed, Issuer)
	case errors.Is(err, jwt.ErrInvalidType):
		return fmt.Errorf("%w: a claim has the wrong JSON type", ErrMalformed)
	default:
		return fmt.Errorf("%w: token rejected", ErrMalformed)
	}
}

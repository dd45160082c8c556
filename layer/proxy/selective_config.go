package proxy

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/plldb/plldb/bridge/knock"
)

// The environment of a selectively attached function (docs/knock.md, docs/layer.md).
const (
	// EnvSelective turns selective mode on: only invocations with a valid knock go to a developer.
	EnvSelective = "PLLDB_SELECTIVE"
	// EnvKnockKeys lists the public keys of the sessions attached selectively:
	// "<session id>=<base64url Ed25519 public key>,…" (43 characters per key, no padding).
	EnvKnockKeys = "PLLDB_KNOCK_KEYS"
	// EnvKnockStack is the stack the function belongs to: knocks for the stack, or for stack/<logical id> or
	// stack/<function name>, are the function's.
	EnvKnockStack = "PLLDB_KNOCK_STACK"
)

// MaxKnockKeys is the most sessions PLLDB_KNOCK_KEYS may list. With session ids of 26 characters (what attach
// makes) an entry is 71 bytes, so 32 of them take 2.3 KB of Lambda's 4 KB environment; attach must still check
// the total with the function's own variables.
const MaxKnockKeys = 32

// SelectiveConfig is selective mode (issue 14): every invocation runs the deployed code in the child runtime,
// byte for byte as in pass-through, except those with a valid knock, which go to the knock's session.
type SelectiveConfig struct {
	// Verifier checks knocks; nil when the selective settings were wrong (Broken says why): every knock found is
	// then removed and refused, and every invocation runs the deployed code.
	Verifier *knock.Verifier
	// Sessions are the session ids with a key, sorted (for logs; ids are not secret).
	Sessions []string
	// Broken says why the settings could not be used; nil when they could.
	Broken error
}

// ErrSelectiveConfig marks a problem with the selective settings. ConfigFromEnv then returns a Config that runs
// every invocation as the deployed code, with knocks removed, and no session at all.
var ErrSelectiveConfig = errors.New("plldb selective settings")

// selectiveWanted tells whether the environment asks for selective mode in any way. Any PLLDB_KNOCK_* variable
// counts, so that a typo in PLLDB_SELECTIVE can never turn a selective attach into one that sends every
// invocation to a developer.
func selectiveWanted(env map[string]string) bool {
	if v, ok := env[EnvSelective]; ok && v != "" {
		if b, err := strconv.ParseBool(v); err != nil || b {
			return true
		}
	}
	return env[EnvKnockKeys] != "" || env[EnvKnockStack] != ""
}

// selectiveFromEnv builds the selective settings from env. Errors never contain key material.
func selectiveFromEnv(env map[string]string) (*knock.Config, error) {
	switch v := env[EnvSelective]; v {
	case "":
		return nil, fmt.Errorf("%s is not set but %s or %s is", EnvSelective, EnvKnockKeys, EnvKnockStack)
	default:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s %q is not a boolean (true/false/1/0)", EnvSelective, v)
		}
		if !b {
			return nil, fmt.Errorf("%s is false but %s or %s is set", EnvSelective, EnvKnockKeys, EnvKnockStack)
		}
	}
	keys, err := ParseKnockKeys(env[EnvKnockKeys])
	if err != nil {
		return nil, err
	}
	stack := env[EnvKnockStack]
	if stack == "" {
		return nil, fmt.Errorf("%s is not set", EnvKnockStack)
	}
	if strings.Contains(stack, "/") {
		return nil, fmt.Errorf("%s is not a stack name", EnvKnockStack)
	}
	// The function answers to knocks for its stack and for itself by logical id or physical name.
	c := &knock.Config{Keys: keys, Audiences: knock.Audiences(stack, env["PLLDB_LOGICAL_ID"], env["AWS_LAMBDA_FUNCTION_NAME"])}
	return c, nil
}

// ParseKnockKeys parses PLLDB_KNOCK_KEYS: one or more "<session id>=<key>" separated by commas, the key the 32
// bytes of an Ed25519 public key in base64url without padding. It is strict (no spaces, no empty entries, no
// repeated session, canonical base64), because a lenient parser is how two readers of one value disagree; its
// errors name entries by position and never quote a key.
func ParseKnockKeys(v string) (map[string]ed25519.PublicKey, error) {
	if v == "" {
		return nil, fmt.Errorf("%s is not set", EnvKnockKeys)
	}
	entries := strings.Split(v, ",")
	if len(entries) > MaxKnockKeys {
		return nil, fmt.Errorf("%s lists %d sessions, at most %d", EnvKnockKeys, len(entries), MaxKnockKeys)
	}
	keys := make(map[string]ed25519.PublicKey, len(entries))
	for i, e := range entries {
		id, k, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("%s entry %d is not <session id>=<public key>", EnvKnockKeys, i+1)
		}
		if !validSessionID(id) {
			return nil, fmt.Errorf("%s entry %d: the session id is not 1-%d of [A-Za-z0-9._:-]", EnvKnockKeys, i+1, knock.MaxIssuerLen)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("%s entry %d: session %s is listed twice", EnvKnockKeys, i+1, id)
		}
		if len(k) != base64.RawURLEncoding.EncodedLen(ed25519.PublicKeySize) {
			return nil, fmt.Errorf("%s entry %d (session %s): the key is not %d characters of base64url", EnvKnockKeys, i+1, id,
				base64.RawURLEncoding.EncodedLen(ed25519.PublicKeySize))
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(k)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%s entry %d (session %s): the key is not canonical base64url", EnvKnockKeys, i+1, id)
		}
		keys[id] = b
	}
	return keys, nil
}

// FormatKnockKeys is the PLLDB_KNOCK_KEYS value for keys, sessions in sorted order: what attach sets.
func FormatKnockKeys(keys map[string]ed25519.PublicKey) string {
	var b strings.Builder
	for i, id := range slices.Sorted(maps.Keys(keys)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(id)
		b.WriteByte('=')
		b.WriteString(base64.RawURLEncoding.EncodeToString(keys[id]))
	}
	return b.String()
}

// validSessionID is the knock package's rule for an issuer: what a knock's iss may be.
func validSessionID(s string) bool {
	if s == "" || len(s) > knock.MaxIssuerLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

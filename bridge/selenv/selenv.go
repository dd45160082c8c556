// Package selenv is the environment of a selectively attached function (docs/knock.md): the variables
// `plldb attach --selective` writes (cloud/instrument) and the layer reads (layer/proxy), in one place so that
// the writer and the reader cannot disagree.
//
// Several developers can attach one stack selectively at once. Each of them adds one entry to two lists:
//
//	PLLDB_KNOCK_KEYS=<session>=<Ed25519 public key, base64url>,…   who may knock (the layer verifies with these)
//	PLLDB_SESSIONS=<session>=<function key, base64>[;creds][;mirror],…   where a knock of that session goes
//
// The function key is the session's own ticket key for this function (ticket.FunctionKey), so a sandbox's link
// for one session can never speak in another; `creds` sends the function's role credentials with that session's
// knocked invocations, `mirror` makes them copies (the deployed code answers the caller). Both lists are strict:
// no spaces, no empty or repeated entries, canonical base64, because two readers of one lenient value is how
// checks get bypassed. Errors name entries by position and session, never a key.
package selenv

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/plldb/plldb/bridge/knock"
)

// The variables of selective mode.
const (
	// EnvSelective turns selective mode on: only invocations with a valid knock go to a developer.
	EnvSelective = "PLLDB_SELECTIVE"
	// EnvKnockKeys lists the public keys of the sessions attached selectively.
	EnvKnockKeys = "PLLDB_KNOCK_KEYS"
	// EnvKnockStack is the stack the function belongs to: knocks for the stack, or for stack/<logical id> or
	// stack/<function name>, are the function's.
	EnvKnockStack = "PLLDB_KNOCK_STACK"
	// EnvSessions lists, per session attached selectively, its function key and options: the sandbox's links.
	EnvSessions = "PLLDB_SESSIONS"
)

// MaxSessions is the most sessions either list may hold. An entry of both lists takes about 130 bytes with
// attach's 18-character session ids, so 32 developers would take 4 KB, all of Lambda's environment: attach
// checks the real total with the function's own variables.
const MaxSessions = 32

// FunctionKeyLen is the least a function key may decode to (ticket.KeyLen, which bridge/ticket checks too).
const FunctionKeyLen = 32

// Options of a PLLDB_SESSIONS entry.
const (
	OptCredentials = "creds"
	OptMirror      = "mirror"
)

// Link is one session's entry in PLLDB_SESSIONS.
type Link struct {
	Session     string
	FunctionKey []byte // never printed: String and GoString leave it out
	Credentials bool   // send the function's role credentials with this session's invocations
	Mirror      bool   // this session's knocked invocations are copies; the deployed code answers the caller
}

func (l Link) String() string {
	return fmt.Sprintf("link{session:%s credentials:%t mirror:%t key:[redacted]}", l.Session, l.Credentials, l.Mirror)
}

func (l Link) GoString() string { return l.String() }

// ParseSessions parses PLLDB_SESSIONS. The links come in the order of the value.
func ParseSessions(v string) ([]Link, error) {
	if v == "" {
		return nil, fmt.Errorf("%s is not set", EnvSessions)
	}
	entries := strings.Split(v, ",")
	if len(entries) > MaxSessions {
		return nil, fmt.Errorf("%s lists %d sessions, at most %d", EnvSessions, len(entries), MaxSessions)
	}
	links := make([]Link, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for i, e := range entries {
		id, rest, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("%s entry %d is not <session id>=<function key>[;creds][;mirror]", EnvSessions, i+1)
		}
		if !ValidSessionID(id) {
			return nil, fmt.Errorf("%s entry %d: the session id is not 1-%d of [A-Za-z0-9._:-]", EnvSessions, i+1, knock.MaxIssuerLen)
		}
		if seen[id] {
			return nil, fmt.Errorf("%s entry %d: session %s is listed twice", EnvSessions, i+1, id)
		}
		seen[id] = true
		parts := strings.Split(rest, ";")
		key, err := base64.StdEncoding.Strict().DecodeString(parts[0])
		if err != nil || len(key) < FunctionKeyLen {
			return nil, fmt.Errorf("%s entry %d (session %s): the function key is not canonical padded base64 of at least %d bytes",
				EnvSessions, i+1, id, FunctionKeyLen)
		}
		l := Link{Session: id, FunctionKey: key}
		for _, o := range parts[1:] {
			var flag *bool
			switch o {
			case OptCredentials:
				flag = &l.Credentials
			case OptMirror:
				flag = &l.Mirror
			default:
				// An option this layer does not know could be a restriction: refuse rather than ignore it.
				return nil, fmt.Errorf("%s entry %d (session %s): unknown option %q (known: %s, %s)", EnvSessions, i+1, id,
					clip(o), OptCredentials, OptMirror)
			}
			if *flag {
				return nil, fmt.Errorf("%s entry %d (session %s): option %s given twice", EnvSessions, i+1, id, o)
			}
			*flag = true
		}
		links = append(links, l)
	}
	return links, nil
}

// FormatSessions is the PLLDB_SESSIONS value for links, sorted by session: what attach sets. Options come in
// a fixed order, so one set of links has one spelling.
func FormatSessions(links []Link) string {
	sorted := slices.Clone(links)
	slices.SortFunc(sorted, func(a, b Link) int { return strings.Compare(a.Session, b.Session) })
	var b strings.Builder
	for i, l := range sorted {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Session)
		b.WriteByte('=')
		b.WriteString(base64.StdEncoding.EncodeToString(l.FunctionKey))
		if l.Credentials {
			b.WriteString(";" + OptCredentials)
		}
		if l.Mirror {
			b.WriteString(";" + OptMirror)
		}
	}
	return b.String()
}

// ParseKnockKeys parses PLLDB_KNOCK_KEYS: one or more "<session id>=<key>" separated by commas, the key the 32
// bytes of an Ed25519 public key in base64url without padding.
func ParseKnockKeys(v string) (map[string]ed25519.PublicKey, error) {
	if v == "" {
		return nil, fmt.Errorf("%s is not set", EnvKnockKeys)
	}
	entries := strings.Split(v, ",")
	if len(entries) > MaxSessions {
		return nil, fmt.Errorf("%s lists %d sessions, at most %d", EnvKnockKeys, len(entries), MaxSessions)
	}
	keys := make(map[string]ed25519.PublicKey, len(entries))
	for i, e := range entries {
		id, k, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("%s entry %d is not <session id>=<public key>", EnvKnockKeys, i+1)
		}
		if !ValidSessionID(id) {
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

// ValidSessionID is the knock package's rule for an issuer: what a knock's iss, and so a selective session's
// id, may be.
func ValidSessionID(s string) bool { return knock.ValidIssuer(s) }

// clip keeps an unknown option short in an error; options hold no secrets, but the value is outside input.
func clip(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

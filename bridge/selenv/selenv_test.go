package selenv

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, FunctionKeyLen) }

func TestSessionsRoundTrip(t *testing.T) {
	links := []Link{
		{Session: "s-bob", FunctionKey: key(2), Mirror: true},
		{Session: "s-alice", FunctionKey: key(1), Credentials: true},
		{Session: "s-carol", FunctionKey: key(3), Credentials: true, Mirror: true},
	}
	v := FormatSessions(links)
	k1 := base64.StdEncoding.EncodeToString(key(1))
	assert.True(t, strings.HasPrefix(v, "s-alice="+k1+";creds,s-bob="), v)
	assert.True(t, strings.HasSuffix(v, ";creds;mirror"), v)
	got, err := ParseSessions(v)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, Link{Session: "s-alice", FunctionKey: key(1), Credentials: true}, got[0])
	assert.Equal(t, Link{Session: "s-bob", FunctionKey: key(2), Mirror: true}, got[1])
	assert.Equal(t, Link{Session: "s-carol", FunctionKey: key(3), Credentials: true, Mirror: true}, got[2])
}

func TestSessionsRefusesBadValues(t *testing.T) {
	k := base64.StdEncoding.EncodeToString(key(1))
	short := base64.StdEncoding.EncodeToString(key(1)[:16])
	for name, v := range map[string]string{
		"empty":            "",
		"no key":           "s-a",
		"empty entry":      "s-a=" + k + ",",
		"bad id":           "s a=" + k,
		"repeated session": "s-a=" + k + ",s-a=" + k,
		"short key":        "s-a=" + short,
		"unpadded key":     "s-a=" + strings.TrimRight(k, "="),
		"url alphabet":     "s-a=" + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))),
		"unknown option":   "s-a=" + k + ";strict",
		"option twice":     "s-a=" + k + ";mirror;mirror",
		"empty option":     "s-a=" + k + ";",
		"space":            "s-a=" + k + " ",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseSessions(v)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), k, "errors never quote a key")
		})
	}
	var many []string
	for i := range MaxSessions + 1 {
		many = append(many, fmt.Sprintf("s-%d=%s", i, k))
	}
	_, err := ParseSessions(strings.Join(many, ","))
	assert.ErrorContains(t, err, "at most")
}

func TestLinkNeverPrintsItsKey(t *testing.T) {
	l := Link{Session: "s-a", FunctionKey: []byte("0123456789abcdef0123456789abcdef")}
	for _, s := range []string{fmt.Sprint(l), fmt.Sprintf("%v %+v %#v", l, l, l), fmt.Sprint([]Link{l})} {
		assert.NotContains(t, s, "0123456789abcdef")
	}
}

func pub(b byte) ed25519.PublicKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
}

func TestKnockKeysRoundTrip(t *testing.T) {
	keys := map[string]ed25519.PublicKey{"s-b": pub(7), "s-a": pub(7)}
	v := FormatKnockKeys(keys)
	assert.True(t, strings.HasPrefix(v, "s-a="), v)
	got, err := ParseKnockKeys(v)
	require.NoError(t, err)
	assert.Equal(t, keys, got)
}

// FuzzParseSessions: whatever is accepted has valid entries and formats back to a value that parses to the
// same links (one spelling per set of links, up to order).
func FuzzParseSessions(f *testing.F) {
	k := base64.StdEncoding.EncodeToString(key(1))
	for _, s := range []string{"s-a=" + k, "s-a=" + k + ";creds;mirror,s-b=" + k + ";mirror", "s-a=" + k + ";x", "=", ",", "s-a=" + k + ";;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		links, err := ParseSessions(v)
		if err != nil {
			if strings.Contains(err.Error(), k) {
				t.Fatalf("error quotes a key: %v", err)
			}
			return
		}
		if len(links) == 0 || len(links) > MaxSessions {
			t.Fatalf("accepted %d links", len(links))
		}
		for _, l := range links {
			if !ValidSessionID(l.Session) || len(l.FunctionKey) < FunctionKeyLen {
				t.Fatalf("accepted a bad link %v", l)
			}
		}
		again, err := ParseSessions(FormatSessions(links))
		if err != nil || len(again) != len(links) {
			t.Fatalf("formatted value does not parse back: %v", err)
		}
	})
}

// TestKnockKeysFitLambdaEnvironment: what the docs claim about Lambda's 4 KB environment.
func TestKnockKeysFitLambdaEnvironment(t *testing.T) {
	keys := map[string]ed25519.PublicKey{}
	for i := range MaxSessions {
		keys[fmt.Sprintf("s-%024d", i)] = pub(byte(i))
	}
	v := FormatKnockKeys(keys)
	assert.Len(t, "PLLDB_KNOCK_KEYS"+v, 16+MaxSessions*71-1, "71 bytes per developer with 26-character session ids")
	got, err := ParseKnockKeys(v)
	require.NoError(t, err)
	assert.True(t, maps.EqualFunc(keys, got, func(a, b ed25519.PublicKey) bool { return a.Equal(b) }))
}

func FuzzParseKnockKeys(f *testing.F) {
	seeds := []string{
		FormatKnockKeys(map[string]ed25519.PublicKey{"s-alice": pub(1), "s-bob": pub(2)}),
		"s=" + base64.RawURLEncoding.EncodeToString(pub(3)) + "=",
		"=,=", ",", "a=b=c", "s:1.x_y-z=" + strings.Repeat("A", 43),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		keys, err := ParseKnockKeys(v)
		if err != nil {
			var ids []string
			for _, e := range strings.Split(v, ",") {
				id, _, _ := strings.Cut(e, "=")
				ids = append(ids, id)
			}
			for _, e := range strings.Split(v, ",") {
				_, k, _ := strings.Cut(e, "=")
				// Key material is 43 characters of base64url. Session ids are quoted, and a "key" that is also part of
				// an id cannot be told apart.
				if len(k) == 43 && strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == "" &&
					!strings.Contains(strings.Join(ids, ","), k) && strings.Contains(err.Error(), k) {
					t.Fatalf("error quotes key material: %v", err)
				}
			}
			return
		}
		if len(keys) == 0 || len(keys) > MaxSessions {
			t.Fatalf("accepted %d keys", len(keys))
		}
		for id, k := range keys {
			if !ValidSessionID(id) || len(k) != ed25519.PublicKeySize {
				t.Fatalf("accepted a bad entry %q", id)
			}
		}
		// One spelling per value: what is accepted formats back to itself, in some order.
		again, err := ParseKnockKeys(FormatKnockKeys(keys))
		if err != nil || len(again) != len(keys) || len(FormatKnockKeys(keys)) != len(v) {
			t.Fatalf("accepted a value that does not format back: %q", v)
		}
	})
}

// TestFuzzSeedsKnockKeys keeps the committed seed corpus in step with the fuzz target's argument list.
func TestFuzzSeedsKnockKeys(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzParseKnockKeys"))
	require.NoError(t, err)
	assert.NotEmpty(t, entries)
}

// TestValidSessionID: a session id the settings accept is exactly one a knock's issuer can be.
func TestValidSessionID(t *testing.T) {
	for _, ok := range []string{"s", "s-alice", "a.b_c:d-E9", strings.Repeat("x", knock.MaxIssuerLen)} {
		assert.True(t, ValidSessionID(ok), ok)
	}
	for _, bad := range []string{"", "s a", "s/a", "s=a", "s,a", "é", strings.Repeat("x", knock.MaxIssuerLen+1)} {
		assert.False(t, ValidSessionID(bad), bad)
	}
}

package proxy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plldb/plldb/bridge/selenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testPub(b byte) ed25519.PublicKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
}

func selectiveEnv(extra ...string) []string {
	keys := selenv.FormatKnockKeys(map[string]ed25519.PublicKey{"s-alice": testPub(1), "s-bob": testPub(2)})
	return sessionEnv(append([]string{"PLLDB_SELECTIVE=true", "PLLDB_KNOCK_STACK=shop", "PLLDB_KNOCK_KEYS=" + keys}, extra...)...)
}

func TestConfigFromEnvSelective(t *testing.T) {
	cfg, err := ConfigFromEnv([]string{"python3"}, selectiveEnv())
	require.NoError(t, err)
	require.NotNil(t, cfg.Selective)
	require.NotNil(t, cfg.Selective.Verifier)
	assert.NoError(t, cfg.Selective.Broken)
	assert.Equal(t, []string{"s-alice", "s-bob"}, cfg.Selective.Sessions)
	assert.Nil(t, cfg.Session, "selective mode's sessions are its links")
	require.Len(t, cfg.Selective.Links, 1, "PLLDB_SESSION of an older attach is one link")
	assert.Equal(t, "sess-1", cfg.Selective.Links[0].SessionID)
	assert.Equal(t, cfg.Selective.Links, cfg.Sessions())
}

func sessionsValue(t *testing.T, links ...selenv.Link) string {
	t.Helper()
	return selenv.FormatSessions(links)
}

func TestConfigFromEnvSelectiveSessions(t *testing.T) {
	ka, kb := bytes.Repeat([]byte{'a'}, 32), bytes.Repeat([]byte{'b'}, 32)
	list := sessionsValue(t, selenv.Link{Session: "s-alice", FunctionKey: ka}, selenv.Link{Session: "s-bob", FunctionKey: kb, Credentials: true, Mirror: true})
	env := selectiveEnv("PLLDB_SESSIONS="+list, "PLLDB_ACK_TIMEOUT=5s", "PLLDB_AUDIENCE=aud")
	env = slices.DeleteFunc(env, func(kv string) bool {
		return strings.HasPrefix(kv, "PLLDB_SESSION=") || strings.HasPrefix(kv, "PLLDB_FUNCTION_KEY=")
	})
	cfg, err := ConfigFromEnv([]string{"python3"}, env)
	require.NoError(t, err)
	require.Len(t, cfg.Selective.Links, 2)
	a, b := cfg.Selective.Links[0], cfg.Selective.Links[1]
	assert.Equal(t, "s-alice", a.SessionID)
	assert.Equal(t, ka, []byte(a.FunctionKey))
	assert.False(t, a.SendCredentials)
	assert.False(t, a.Mirror)
	assert.Equal(t, "s-bob", b.SessionID)
	assert.Equal(t, kb, []byte(b.FunctionKey))
	assert.True(t, b.SendCredentials)
	assert.True(t, b.Mirror)
	for _, l := range cfg.Selective.Links {
		assert.Equal(t, 5*time.Second, l.AckTimeout, "shared settings apply to every link")
		assert.Equal(t, "aud", l.Audience)
		assert.Equal(t, "orders", l.Function.Name)
		assert.True(t, strings.HasPrefix(l.Peer, "orders/"), l.Peer)
	}
	assert.NotEqual(t, a.Peer, b.Peer, "each link is a connection of its own")
	assert.NotContains(t, fmt.Sprintf("%v %v %v", a.FunctionKey, b.FunctionKey, cfg.Selective.Links), base64.StdEncoding.EncodeToString(ka))
	kept, redacted := Redact(a.Env)
	assert.NotContains(t, kept, "PLLDB_SESSIONS", "no developer gets the other sessions' function keys")
	assert.Contains(t, redacted, "PLLDB_SESSIONS")

	// With an older attach's PLLDB_SESSION too: one more link, and PLLDB_CREDENTIALS applies to it alone.
	cfg, err = ConfigFromEnv([]string{"python3"}, selectiveEnv("PLLDB_SESSIONS="+list, "PLLDB_CREDENTIALS=function"))
	require.NoError(t, err)
	require.Len(t, cfg.Selective.Links, 3)
	assert.Equal(t, "sess-1", cfg.Selective.Links[0].SessionID)
	assert.True(t, cfg.Selective.Links[0].SendCredentials)
	assert.False(t, cfg.Selective.Links[1].SendCredentials, "s-alice's entry has no creds option")
}

func TestConfigFromEnvSelectiveSessionsInconsistent(t *testing.T) {
	ka := bytes.Repeat([]byte{'a'}, 32)
	good := sessionsValue(t, selenv.Link{Session: "s-alice", FunctionKey: ka})
	withoutLegacy := func(env []string) []string {
		return slices.DeleteFunc(env, func(kv string) bool {
			return strings.HasPrefix(kv, "PLLDB_SESSION=") || strings.HasPrefix(kv, "PLLDB_FUNCTION_KEY=")
		})
	}
	noEndpoint := func(env []string) []string {
		return slices.DeleteFunc(withoutLegacy(env), func(kv string) bool { return strings.HasPrefix(kv, "PLLDB_ENDPOINT=") })
	}
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"sessions without the flag", withoutLegacy(sessionEnv("PLLDB_SESSIONS=" + good)), "PLLDB_SELECTIVE is not set"},
		{"no endpoint", noEndpoint(selectiveEnv("PLLDB_SESSIONS=" + good)), "without PLLDB_ENDPOINT"},
		{"malformed list", withoutLegacy(selectiveEnv("PLLDB_SESSIONS=s-alice")), "PLLDB_SESSIONS entry 1 is not"},
		{"unknown option", withoutLegacy(selectiveEnv("PLLDB_SESSIONS=" + good + ";debug-all")), "unknown option"},
		{"session both ways", selectiveEnv("PLLDB_SESSIONS=" + sessionsValue(t, selenv.Link{Session: "sess-1", FunctionKey: ka})), "session sess-1 is both PLLDB_SESSION and in PLLDB_SESSIONS"},
		{"credentials for no one", withoutLegacy(selectiveEnv("PLLDB_SESSIONS="+good, "PLLDB_CREDENTIALS=function")), "PLLDB_CREDENTIALS=function without PLLDB_SESSION"},
		{"half a legacy link", slices.DeleteFunc(selectiveEnv("PLLDB_SESSIONS="+good), func(kv string) bool { return strings.HasPrefix(kv, "PLLDB_FUNCTION_KEY=") }), "PLLDB_FUNCTION_KEY missing"},
		{"no link at all", withoutLegacy(selectiveEnv()), "no developer to send knocked invocations to"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ConfigFromEnv([]string{"python3"}, c.env)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrSessionConfig)
			assert.ErrorIs(t, err, ErrSelectiveConfig)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), base64.StdEncoding.EncodeToString(ka))
			assert.Nil(t, cfg.Session)
			require.NotNil(t, cfg.Selective)
			assert.Nil(t, cfg.Selective.Verifier)
			assert.Empty(t, cfg.Selective.Links)
			assert.Empty(t, cfg.Sessions())
		})
	}
	// A link without a knock key is accepted: no knock of it verifies, so it is never dialled.
	cfg, err := ConfigFromEnv([]string{"python3"}, withoutLegacy(selectiveEnv("PLLDB_SESSIONS="+sessionsValue(t,
		selenv.Link{Session: "s-alice", FunctionKey: ka}, selenv.Link{Session: "s-zed", FunctionKey: ka}))))
	require.NoError(t, err)
	assert.Len(t, cfg.Selective.Links, 2)
}

func TestConfigFromEnvSelectiveBrokenRunsDeployedCode(t *testing.T) {
	good := selenv.FormatKnockKeys(map[string]ed25519.PublicKey{"s-alice": testPub(1)})
	key := base64.RawURLEncoding.EncodeToString(testPub(1))
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"keys without the flag", []string{"PLLDB_KNOCK_KEYS=" + good, "PLLDB_KNOCK_STACK=shop"}, "PLLDB_SELECTIVE is not set"},
		{"flag false with keys", []string{"PLLDB_SELECTIVE=false", "PLLDB_KNOCK_KEYS=" + good, "PLLDB_KNOCK_STACK=shop"}, "PLLDB_SELECTIVE is false"},
		{"flag not a boolean", []string{"PLLDB_SELECTIVE=yes please", "PLLDB_KNOCK_KEYS=" + good, "PLLDB_KNOCK_STACK=shop"}, "is not a boolean"},
		{"no keys", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_STACK=shop"}, "PLLDB_KNOCK_KEYS is not set"},
		{"no stack", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_KEYS=" + good}, "PLLDB_KNOCK_STACK is not set"},
		{"stack with a slash", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_KEYS=" + good, "PLLDB_KNOCK_STACK=shop/Fn"}, "not a stack name"},
		{"stack not a name", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_KEYS=" + good, "PLLDB_KNOCK_STACK=sh op"}, "is not a stack"},
		{"no equals", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_KEYS=" + key, "PLLDB_KNOCK_STACK=shop"}, "entry 1 is not <session id>=<public key>"},
		{"padded key", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_KEYS=s-a=" + key + "=", "PLLDB_KNOCK_STACK=shop"}, "entry 1 (session s-a): the key is not 43 characters"},
		{"std base64 key", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_KEYS=s-a=" + strings.NewReplacer("-", "+", "_", "/").Replace(key) + ",s-b=" + key[:42] + "+", "PLLDB_KNOCK_STACK=shop"}, "not canonical base64url"},
		{"non-canonical trailing bits", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_KEYS=s-a=" + key[:42] + "B", "PLLDB_KNOCK_STACK=shop"}, "not canonical base64url"},
		{"space", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_KEYS=s-a=" + key + ", s-b=" + key, "PLLDB_KNOCK_STACK=shop"}, "entry 2: the session id is not"},
		{"empty entry", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_KEYS=s-a=" + key + ",", "PLLDB_KNOCK_STACK=shop"}, "entry 2 is not"},
		{"twice", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_KEYS=s-a=" + key + ",s-a=" + key, "PLLDB_KNOCK_STACK=shop"}, "session s-a is listed twice"},
		{"too many", []string{"PLLDB_SELECTIVE=1", "PLLDB_KNOCK_KEYS=" + strings.Repeat("s="+key+",", selenv.MaxSessions) + "t=" + key, "PLLDB_KNOCK_STACK=shop"}, "at most 32"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := sessionEnv(c.env...)
			cfg, err := ConfigFromEnv([]string{"python3"}, env)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrSessionConfig, "the function keeps working")
			assert.ErrorIs(t, err, ErrSelectiveConfig)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), "every invocation runs the deployed code")
			assert.NotContains(t, err.Error(), key[:20], "no key material in the error")
			assert.NotContains(t, err.Error(), testKey)
			assert.Nil(t, cfg.Session, "never a session that would take every invocation")
			require.NotNil(t, cfg.Selective, "selective, broken: knocks are still removed")
			assert.Nil(t, cfg.Selective.Verifier)
			assert.Error(t, cfg.Selective.Broken)
			assert.Equal(t, []string{"python3"}, cfg.Command)
		})
	}
	t.Run("no session settings", func(t *testing.T) {
		env := []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "AWS_LAMBDA_FUNCTION_NAME=fn", "PLLDB_SELECTIVE=1", "PLLDB_KNOCK_STACK=shop", "PLLDB_KNOCK_KEYS=" + good}
		cfg, err := ConfigFromEnv([]string{"python3"}, env)
		require.ErrorIs(t, err, ErrSelectiveConfig)
		assert.Contains(t, err.Error(), "no developer to send knocked invocations to")
		assert.Nil(t, cfg.Session)
	})
	t.Run("bad session settings", func(t *testing.T) {
		cfg, err := ConfigFromEnv([]string{"python3"}, selectiveEnv("PLLDB_ENDPOINT=http://x"))
		require.ErrorIs(t, err, ErrSelectiveConfig)
		assert.Nil(t, cfg.Session)
	})
}

func TestSelectiveOffIsUnchanged(t *testing.T) {
	cfg, err := ConfigFromEnv([]string{"python3"}, sessionEnv("PLLDB_SELECTIVE=false"))
	require.NoError(t, err)
	assert.Nil(t, cfg.Selective)
	assert.NotNil(t, cfg.Session)
}

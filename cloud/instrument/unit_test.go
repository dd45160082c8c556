package instrument

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/selenv"
)

// pythonStyleSize measures vars the way Lambda's quoted "String measured" and LocalStack's
// json.dumps(separators=(",", ":")) write it: compact JSON with everything outside printable ASCII escaped.
// It starts from encoding/json's output and widens what Go leaves raw.
func pythonStyleSize(t testing.TB, vars map[string]string) int {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(vars))
	out := strings.TrimSuffix(buf.String(), "\n")
	n := 0
	for _, r := range out {
		switch {
		case r == 0x7f:
			n += 6
		case r < 0x80:
			n++
		case r <= 0xffff:
			n += 6
		default:
			n += 12
		}
	}
	return n
}

func TestEnvironmentSizeIsTheCompactJSONLambdaMeasures(t *testing.T) {
	assert.Equal(t, 2, EnvironmentSize(nil))
	assert.Equal(t, len(`{"A":"1"}`), EnvironmentSize(map[string]string{"A": "1"}))
	assert.Equal(t, len(`{"A":"1","BB":"x\"y\\z\n"}`), EnvironmentSize(map[string]string{"A": "1", "BB": "x\"y\\z\n"}))
	assert.Equal(t, len(`{"E":"\u00e9\ud83d\ude00\u0001\u007f<&>"}`), EnvironmentSize(map[string]string{"E": "é😀\x01\x7f<&>"}))

	// The boundary: 4096 bytes fit, 4097 do not.
	fill := func(total int) map[string]string {
		return map[string]string{"K": strings.Repeat("v", total-len(`{"K":""}`))}
	}
	assert.Equal(t, MaxEnvironmentBytes, EnvironmentSize(fill(MaxEnvironmentBytes)))
	assert.Equal(t, MaxEnvironmentBytes+1, EnvironmentSize(fill(MaxEnvironmentBytes+1)))
}

func FuzzEnvironmentSize(f *testing.F) {
	f.Add("A", "1", "B", "")
	f.Add("KEY", "é😀\x01\x7f<&>\"\\\n\t\b\f\r", "X", "\u2028")
	f.Add("", "\xff\xfe", "K", "v")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		vars := map[string]string{k1: v1, k2: v2}
		got := EnvironmentSize(vars)
		assert.Equal(t, pythonStyleSize(t, vars), got)
		if utf8.ValidString(k1 + v1 + k2 + v2) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			require.NoError(t, enc.Encode(vars))
			assert.GreaterOrEqual(t, got, buf.Len()-1, "never less than the UTF-8 serialisation")
		}
	})
}

func TestParseStackARN(t *testing.T) {
	loc, err := parseStackARN("arn:aws:cloudformation:us-east-1:123456789012:stack/app/5b9f-11e8")
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:lambda:us-east-1:123456789012:function:f", loc.functionARN("f"))
	loc, err = parseStackARN("arn:aws-cn:cloudformation:cn-north-1:123456789012:stack/app/x")
	require.NoError(t, err)
	assert.Equal(t, "aws-cn", loc.partition)
	for _, bad := range []string{"", "app", "arn:aws:s3:::bucket", "arn:aws:cloudformation:us-east-1:123:changeSet/x/y",
		"arn::cloudformation:us-east-1:123:stack/a/b", "arn:aws:cloudformation:us-east-1:12:3:stack/a/b", "arn:aws:cloudformation:US EAST:123:stack/a/b"} {
		_, err := parseStackARN(bad)
		assert.Error(t, err, bad)
	}
}

func FuzzParseStackARN(f *testing.F) {
	f.Add("arn:aws:cloudformation:us-east-1:123456789012:stack/app/5b9f-11e8")
	f.Add("arn:aws:cloudformation:::stack/")
	f.Add("arn:aws:cloudformation:us-east-1:1:stack/a:b:c")
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := parseStackARN(s)
		if err != nil {
			return
		}
		arn := loc.functionARN("f")
		assert.True(t, strings.HasPrefix(arn, "arn:"+loc.partition+":lambda:"+loc.region+":"+loc.account+":function:"))
		assert.Equal(t, 7, len(strings.Split(arn, ":")), "a well-formed function ARN: %s", arn)
	})
}

func TestRuntimeProblem(t *testing.T) {
	for rt, ok := range map[string]bool{
		"python3.12": true, "python3.9": true, "nodejs20.x": true, "ruby3.3": true, "java21": true, "java8.al2": true, "dotnet8": true,
		"provided.al2023": false, "provided.al2": false, "provided": false, "go1.x": false, "java8": false, "": false, "cobol1": false,
	} {
		problem := runtimeProblem(&fnConfig{Runtime: rt, PackageType: "Zip"})
		assert.Equal(t, ok, problem == "", "%q: %s", rt, problem)
	}
	assert.Contains(t, runtimeProblem(&fnConfig{PackageType: "Image"}), "container image")
}

func TestLayerForArchitecture(t *testing.T) {
	l := LayerARNs{X86_64: "x", Arm64: "a"}
	assert.Equal(t, "a", l.For([]string{"arm64"}))
	assert.Equal(t, "x", l.For([]string{"x86_64"}))
	assert.Equal(t, "x", l.For(nil), "Lambda's default architecture is x86_64")
}

func TestSessionEnvironmentChainsAWrapperAndNeverItself(t *testing.T) {
	s := Session{ID: "s", Endpoint: "wss://e"}
	tg := Target{StackFunction: StackFunction{LogicalID: "F"}, Key: []byte{1, 2, 3}}
	env := sessionEnvironment(map[string]string{EnvExecWrapper: "/opt/other", "A": "b"}, s, tg)
	assert.Equal(t, "/opt/other", env[EnvPrevWrapper])
	assert.Equal(t, WrapperPath, env[EnvExecWrapper])
	assert.Equal(t, "AQID", env[EnvFunctionKey])
	assert.NotContains(t, env, EnvAudience, "left to the layer when empty")
	env = sessionEnvironment(map[string]string{EnvExecWrapper: WrapperPath}, s, tg)
	assert.NotContains(t, env, EnvPrevWrapper, "plldb's own wrapper is never chained to itself")
	assert.NotContains(t, env, EnvStrict)
	s.Strict = true
	assert.Equal(t, "true", sessionEnvironment(nil, s, tg)[EnvStrict], "strict sessions tell the layer not to fall back")
}

func TestMemoryClaims(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryClaims()
	first := Snapshot{FunctionARN: "arn:f", FunctionName: "f", Session: "s1", Environment: map[string]string{"A": "1"}, Layers: []string{"l"}}
	require.NoError(t, m.Claim(ctx, first, "alice"))

	again := first
	again.Environment = map[string]string{"A": "instrumented"}
	require.NoError(t, m.Claim(ctx, again, "alice"), "a re-claim by the same session")
	got, ok, err := m.GetSnapshot(ctx, "arn:f")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "1", got.Environment["A"], "the first snapshot stands")
	got.Environment["A"] = "mutated"
	got2, _, _ := m.GetSnapshot(ctx, "arn:f")
	assert.Equal(t, "1", got2.Environment["A"], "callers get copies")

	other := first
	other.Session = "s2"
	err = m.Claim(ctx, other, "bob")
	var held *HeldError
	require.ErrorAs(t, err, &held)
	assert.Equal(t, "s1", held.Session)
	assert.Equal(t, "alice", held.Owner)
	assert.ErrorIs(t, m.SetRevisionAfter(ctx, "arn:f", "s2", "r"), ErrNotHeld)
	require.NoError(t, m.Release(ctx, "arn:f", "s2"), "releasing someone else's claim is a no-op")
	_, ok, _ = m.GetSnapshot(ctx, "arn:f")
	assert.True(t, ok)

	require.NoError(t, m.SetRevisionAfter(ctx, "arn:f", "s1", "r1"))
	snaps, err := m.SessionSnapshots(ctx, "s1")
	require.NoError(t, err)
	require.Len(t, snaps, 1)
	assert.Equal(t, "r1", snaps[0].RevisionAfter)

	m.EndSession("s1")
	require.NoError(t, m.Claim(ctx, other, "bob"), "an ended session's claim can be taken over")
	got, _, _ = m.GetSnapshot(ctx, "arn:f")
	assert.Equal(t, "s2", got.Session)
	require.NoError(t, m.Release(ctx, "arn:f", "s2"))
	_, ok, _ = m.GetSnapshot(ctx, "arn:f")
	assert.False(t, ok)

	assert.Error(t, m.Claim(ctx, Snapshot{}, "x"), "a claim needs a function and a session")
}

func TestRefusedErrorNamesEveryFunction(t *testing.T) {
	err := &RefusedError{Refusals: []Refusal{
		{Function: StackFunction{LogicalID: "Api/Orders", Name: "orders-fn"}, Reason: "it already has 5 layers"},
		{Function: StackFunction{LogicalID: "Users", Name: "users-fn"}, Reason: "held by live session s9 of bob"},
	}}
	msg := err.Error()
	for _, want := range []string{"nothing was changed", "Api/Orders (orders-fn): it already has 5 layers", "Users (users-fn): held by live session s9 of bob"} {
		assert.Contains(t, msg, want)
	}
}

func TestRedactSessionsCutsEveryFunctionKey(t *testing.T) {
	k1, k2 := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	v := selenv.FormatSessions([]selenv.Link{{Session: "s-1", FunctionKey: k1, Credentials: true}, {Session: "s-2", FunctionKey: k2}})
	quoted := errors.New(`InvalidParameterValueException: Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {"PLLDB_SESSIONS":"` + v + `"}`)
	got := redactSessions(quoted, v).Error()
	for _, k := range [][]byte{k1, k2} {
		assert.NotContains(t, got, base64.StdEncoding.EncodeToString(k))
	}
	assert.Contains(t, got, "s-1=[redacted];creds")
	assert.Contains(t, got, "exceeded the 4KB limit")
}

func TestJoinRefusedPastMaxSessions(t *testing.T) {
	links := []selenv.Link{}
	keys := map[string]ed25519.PublicKey{}
	var holders []Holder
	for i := range selenv.MaxSessions {
		id := fmt.Sprintf("s-%02d", i)
		links = append(links, selenv.Link{Session: id, FunctionKey: bytes.Repeat([]byte{byte(i)}, 32)})
		keys[id] = ed25519.PublicKey(bytes.Repeat([]byte{byte(i)}, ed25519.PublicKeySize))
		holders = append(holders, Holder{Session: id, Owner: id})
	}
	vars := map[string]string{EnvExecWrapper: WrapperPath, EnvSelective: "true", EnvSessions: selenv.FormatSessions(links), EnvKnockKeys: selenv.FormatKnockKeys(keys)}
	pub := ed25519.PublicKey(bytes.Repeat([]byte{0xee}, ed25519.PublicKeySize))
	s := Session{ID: "s-new", Endpoint: "wss://x", Selective: true, KnockKey: pub, KnockStack: "st"}
	t.Run("full", func(t *testing.T) {
		_, err := joinedEnvironment(vars, append(holders, Holder{Session: "s-new"}), s, Target{Key: bytes.Repeat([]byte{1}, 32)})
		require.Error(t, err)
		assert.Contains(t, err.Error(), fmt.Sprintf("%d selective sessions share it already", selenv.MaxSessions))
	})
	t.Run("ended sessions make room", func(t *testing.T) {
		env, err := joinedEnvironment(vars, append(holders[1:], Holder{Session: "s-new"}), s, Target{Key: bytes.Repeat([]byte{1}, 32)})
		require.NoError(t, err)
		got, err := selenv.ParseSessions(env[EnvSessions])
		require.NoError(t, err)
		assert.Len(t, got, selenv.MaxSessions)
		assert.NotContains(t, env[EnvSessions], "s-00=", "a session that no longer holds the function loses its entry")
		assert.Contains(t, env[EnvSessions], "s-new=")
	})
}

func TestWithLayer(t *testing.T) {
	got, err := withLayer(nil, "plldb")
	require.NoError(t, err)
	assert.Equal(t, []string{"plldb"}, got)

	own := []string{"deps", "plldb"}
	got, err = withLayer(own, "plldb")
	require.NoError(t, err)
	assert.Equal(t, own, got, "already there: unchanged")
	got[0] = "changed"
	assert.Equal(t, "deps", own[0], "a copy, not the caller's slice")

	_, err = withLayer([]string{"a", "b", "c", "d", "e"}, "plldb")
	assert.EqualError(t, err, "it already has 5 layers, Lambda's limit, so the plldb layer does not fit")
	got, err = withLayer([]string{"a", "b", "c", "d", "plldb"}, "plldb")
	require.NoError(t, err, "five layers with plldb's among them need no room")
	assert.Len(t, got, 5)
}

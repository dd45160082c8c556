package wire

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testKeyID  = "ASIAROLEKEYIDROLE123"
	testSecret = "role-secret-access-key-value"
	testToken  = "role-session-token-value"
)

func credentialedInvoke() Invoke {
	return Invoke{
		RequestID:   "req-1",
		Function:    FunctionIdentity{Name: "fn"},
		Deadline:    time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC),
		Event:       []byte(`{"k":"v"}`),
		Credentials: &Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret, SessionToken: testToken},
	}
}

// The credentials travel in JSON (the wire) and in nothing else: every way an envelope, an invocation or the
// credentials can be logged or printed shows them redacted.
func TestCredentialsCrossTheWireButNeverALog(t *testing.T) {
	inv := credentialedInvoke()
	env, err := NewEnvelope(TypeInvoke, inv.RequestID, inv)
	require.NoError(t, err)
	msg, err := Marshal(env)
	require.NoError(t, err)
	back, err := Unmarshal(msg)
	require.NoError(t, err)
	var got Invoke
	require.NoError(t, back.DecodeBody(&got))
	require.NotNil(t, got.Credentials)
	assert.Equal(t, Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret, SessionToken: testToken}, *got.Credentials)
	assert.True(t, got.Credentials.Valid())

	// A big event takes the fast decoding path; the credentials still arrive.
	big := inv
	big.Event = []byte(`{"pad":"` + strings.Repeat("x", 8000) + `"}`)
	env2, err := NewEnvelope(TypeInvoke, big.RequestID, big)
	require.NoError(t, err)
	var got2 Invoke
	require.NoError(t, env2.DecodeBody(&got2))
	require.NotNil(t, got2.Credentials)
	assert.Equal(t, testSecret, got2.Credentials.SecretAccessKey)

	var out bytes.Buffer
	for _, h := range []slog.Handler{
		slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}),
	} {
		log := slog.New(h)
		log.Info("envelope", "env", env, "envValue", *env, "invoke", inv, "invokePtr", &inv, "creds", inv.Credentials, "credsValue", *inv.Credentials)
		log.Info("group", slog.Group("g", "env", env, "invoke", got))
	}
	fmt.Fprintf(&out, "%v %+v %#v %s\n", env, env, env, env)
	fmt.Fprintf(&out, "%v %+v %#v\n", inv, inv, inv)
	fmt.Fprintf(&out, "%v %+v %#v %s %q %x\n", inv.Credentials, *inv.Credentials, *inv.Credentials, *inv.Credentials, *inv.Credentials, *inv.Credentials)
	for _, secret := range []string{testKeyID, testSecret, testToken} {
		assert.NotContains(t, out.String(), secret)
		assert.NotContains(t, out.String(), fmt.Sprintf("%x", secret), "nor as hex bytes")
		assert.NotContains(t, out.String(), strings.Trim(fmt.Sprint([]byte(secret)), "[]"), "nor as decimal bytes")
		assert.NotContains(t, out.String(), strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", []byte(secret)), "[]byte{"), "}"), "nor as Go bytes")
	}
	assert.Contains(t, out.String(), "[redacted]")
	assert.Contains(t, out.String(), "req-1", "the header is still logged")

	// Invalid credential sets are told apart from valid ones.
	assert.False(t, (*Credentials)(nil).Valid())
	assert.False(t, (&Credentials{AccessKeyID: testKeyID}).Valid())
}

package proxy

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/runtimeapi"
	"github.com/plldb/plldb/testfixtures/logbuf"
)

const (
	roleKeyID  = "ASIAROLEROLEROLEROLE"
	roleSecret = "sandbox-role-secret-access-key"
	roleToken  = "sandbox-role-session-token"
)

var roleEnv = []string{"AWS_ACCESS_KEY_ID=" + roleKeyID, "AWS_SECRET_ACCESS_KEY=" + roleSecret, "AWS_SESSION_TOKEN=" + roleToken}

// relayedInvoke runs one invocation through a real wrapper and proxy, the embedded gateway and the relay
// handlers, answers it as the developer, and returns the invoke body the developer received.
func relayedInvoke(t *testing.T, rig *relayRig, env []string, id string) (wire.Invoke, *sandbox) {
	t.Helper()
	sb := startSandbox(t, sandboxOpts{handler: "echo.handler", env: rig.env(append(env, "PLLDB_LOG_LEVEL=debug")...)})
	rig.waitHello(t)
	answer := asyncInvoke(sb, runtimeapi.Invocation{RequestID: id, Deadline: time.Now().Add(time.Minute), Event: []byte(`{}`)})
	e := rig.expect(t, wire.TypeInvoke)
	var body wire.Invoke
	require.NoError(t, e.DecodeBody(&body))
	rig.reply(t, e.From, wire.TypeAck, id, wire.Ack{RequestID: id})
	rig.reply(t, e.From, wire.TypeResult, id, wire.Result{RequestID: id, Payload: []byte(`{}`)})
	select {
	case r := <-answer:
		require.False(t, r.Error, "%s", r.Payload)
	case <-time.After(30 * time.Second):
		t.Fatal("no answer")
	}
	return body, sb
}

func TestRoleCredentialsTravelOnlyWhenAskedFor(t *testing.T) {
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rig := startRelayLogged(t, log)

	// PLLDB_CREDENTIALS=function: the role's credentials come with the invocation, in their own field.
	body, sb1 := relayedInvoke(t, rig, append(roleEnv, "PLLDB_CREDENTIALS=function"), "req-creds-1")
	require.NotNil(t, body.Credentials, "the developer asked for the function's credentials")
	assert.Equal(t, wire.Credentials{AccessKeyID: roleKeyID, SecretAccessKey: roleSecret, SessionToken: roleToken}, *body.Credentials)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		assert.NotContains(t, body.Env, k, "credentials never travel in Env")
		assert.Contains(t, body.Redacted, k)
	}

	// Without it (the developer's own credentials, or an older attach), they never leave the sandbox.
	body, sb2 := relayedInvoke(t, rig, append(roleEnv, "PLLDB_CREDENTIALS=developer"), "req-creds-2")
	assert.Nil(t, body.Credentials)
	assert.NotContains(t, body.Env, "AWS_SECRET_ACCESS_KEY")

	for _, out := range []string{logs.String(), sb1.stdout.String(), sb1.stderr.String(), sb2.stdout.String(), sb2.stderr.String()} {
		for _, secret := range []string{roleKeyID, roleSecret, roleToken} {
			assert.NotContains(t, out, secret, "no log line of the proxy, gateway or relay holds a credential")
		}
	}
	assert.Contains(t, sb1.stderr.String(), "plldb-proxy", "the proxy logged at debug level meanwhile")
	assert.Contains(t, logs.String(), "relay", "the relay logged meanwhile")
}

func TestCredentialsSetting(t *testing.T) {
	base := []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "PLLDB_ENDPOINT=wss://x.example/", "PLLDB_SESSION=s",
		"PLLDB_FUNCTION_KEY=" + "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=", "AWS_LAMBDA_FUNCTION_NAME=fn"}
	cfg, err := ConfigFromEnv([]string{"python3"}, append(base, "PLLDB_CREDENTIALS=function"))
	require.NoError(t, err)
	assert.True(t, cfg.Session.SendCredentials)
	cfg, err = ConfigFromEnv([]string{"python3"}, base)
	require.NoError(t, err)
	assert.False(t, cfg.Session.SendCredentials, "off unless asked for")
	_, err = ConfigFromEnv([]string{"python3"}, append(base, "PLLDB_CREDENTIALS=mine"))
	require.ErrorIs(t, err, ErrSessionConfig)
}

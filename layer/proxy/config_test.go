package proxy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func sessionEnv(extra ...string) []string {
	return append([]string{
		"AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001",
		"AWS_LAMBDA_FUNCTION_NAME=orders",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"AWS_REGION=eu-central-1",
		"AWS_EXECUTION_ENV=AWS_Lambda_python3.12",
		"_HANDLER=app.handler",
		"PLLDB_ENDPOINT=wss://abc.execute-api.eu-central-1.amazonaws.com/plldb",
		"PLLDB_SESSION=sess-1",
		"PLLDB_FUNCTION_KEY=" + testKey,
		"PLLDB_LOGICAL_ID=OrdersFunction",
	}, extra...)
}

func TestConfigFromEnvSessionMode(t *testing.T) {
	cfg, err := ConfigFromEnv([]string{"/var/lang/bin/python3", "/var/runtime/bootstrap.py"}, sessionEnv(
		"PLLDB_ACK_TIMEOUT=1500ms", "PLLDB_STRICT=true", "PLLDB_PREV_WRAPPER=/opt/other/wrapper"))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9001", cfg.RuntimeAPI)
	assert.Equal(t, []string{"/var/lang/bin/python3", "/var/runtime/bootstrap.py"}, cfg.Command)
	assert.Equal(t, "/opt/other/wrapper", cfg.PrevWrapper)
	require.NotNil(t, cfg.Session)
	s := cfg.Session
	assert.Equal(t, 1500*time.Millisecond, s.AckTimeout)
	assert.True(t, s.Strict)
	assert.Equal(t, DefaultDeadlineMargin, s.DeadlineMargin)
	assert.Equal(t, DefaultDisconnectGrace, s.DisconnectGrace)
	assert.Equal(t, "sess-1", s.SessionID)
	assert.Equal(t, "abc.execute-api.eu-central-1.amazonaws.com", s.Audience, "audience defaults to the endpoint host")
	assert.Equal(t, []byte("0123456789abcdef0123456789abcdef"), []byte(s.FunctionKey))
	assert.Regexp(t, `^orders/fn-[0-9a-f]{16}$`, s.Peer, "the peer id is in the function's namespace")
	assert.Equal(t, "orders", s.Function.Name)
	assert.Equal(t, "OrdersFunction", s.Function.LogicalID)
	assert.Equal(t, 512, s.Function.MemoryMB)
	assert.Equal(t, "eu-central-1", s.Function.Region)
	assert.Equal(t, "AWS_Lambda_python3.12", s.Function.Runtime)
	assert.Equal(t, "app.handler", s.Function.Handler)
	assert.Equal(t, "$LATEST", s.Function.Version)
	assert.Equal(t, "orders", s.Env["AWS_LAMBDA_FUNCTION_NAME"])
	assert.Nil(t, s.Dial, "the caller wires the relay client")

	for _, out := range []string{fmt.Sprint(s.FunctionKey), fmt.Sprintf("%v %+v %#v", *s, *s, *s)} {
		assert.NotContains(t, out, "0123456789abcdef", "the key never prints")
	}
}

func TestConfigFromEnvPassThrough(t *testing.T) {
	cfg, err := ConfigFromEnv([]string{"python3"}, []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "PLLDB_AUDIENCE=x"})
	require.NoError(t, err)
	assert.Nil(t, cfg.Session)
	assert.NotNil(t, cfg.Logger)
	assert.NotNil(t, cfg.Stdout)
}

func TestConfigFromEnvFatalErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		env  []string
		want string
	}{
		"no runtime api":  {[]string{"python3"}, nil, "AWS_LAMBDA_RUNTIME_API is not set"},
		"no command":      {nil, []string{"AWS_LAMBDA_RUNTIME_API=h:1"}, "no runtime command"},
		"bad log level":   {[]string{"p"}, []string{"AWS_LAMBDA_RUNTIME_API=h:1", "PLLDB_LOG_LEVEL=loud"}, `PLLDB_LOG_LEVEL "loud"`},
		"bad redact glob": {[]string{"p"}, []string{"AWS_LAMBDA_RUNTIME_API=h:1", "PLLDB_REDACT=OK_*,[bad"}, `PLLDB_REDACT: pattern "[bad"`},
		"wrapper loops":   {[]string{"p"}, []string{"AWS_LAMBDA_RUNTIME_API=h:1", "AWS_LAMBDA_EXEC_WRAPPER=/opt/plldb/wrapper", "PLLDB_PREV_WRAPPER=/opt/plldb/wrapper"}, "wrapper itself"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ConfigFromEnv(tc.args, tc.env)
			require.ErrorContains(t, err, tc.want)
			assert.False(t, errors.Is(err, ErrSessionConfig))
		})
	}
}

func TestConfigFromEnvSessionErrorsKeepPassThrough(t *testing.T) {
	for name, tc := range map[string]struct {
		env  []string
		want string
	}{
		"partial":        {[]string{"AWS_LAMBDA_RUNTIME_API=h:1", "PLLDB_SESSION=s"}, "PLLDB_SESSION set but PLLDB_ENDPOINT, PLLDB_FUNCTION_KEY missing"},
		"endpoint":       {sessionEnv("PLLDB_ENDPOINT=https://x"), `PLLDB_ENDPOINT "https://x" is not a ws:// or wss:// URL`},
		"key not base64": {sessionEnv("PLLDB_FUNCTION_KEY=***"), "PLLDB_FUNCTION_KEY is not valid base64"},
		"key too short":  {sessionEnv("PLLDB_FUNCTION_KEY=c2hvcnQ="), "decodes to 5 bytes"},
		"ack timeout":    {sessionEnv("PLLDB_ACK_TIMEOUT=soon"), `PLLDB_ACK_TIMEOUT: "soon" is neither`},
		"ack negative":   {sessionEnv("PLLDB_ACK_TIMEOUT=-1s"), "out of range"},
		"strict":         {sessionEnv("PLLDB_STRICT=maybe"), `PLLDB_STRICT "maybe" is not a boolean`},
		"memory":         {sessionEnv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=lots"), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"},
		// The key is the function's own: without its name the proxy cannot say which function it is.
		"no function name":    {sessionEnv("AWS_LAMBDA_FUNCTION_NAME="), "AWS_LAMBDA_FUNCTION_NAME \"\": function name is empty"},
		"function name slash": {sessionEnv("AWS_LAMBDA_FUNCTION_NAME=a/b"), "is not a Lambda function name"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := ConfigFromEnv([]string{"python3"}, tc.env)
			require.ErrorIs(t, err, ErrSessionConfig)
			assert.Contains(t, err.Error(), tc.want)
			assert.Nil(t, cfg.Session)
			assert.Equal(t, "python3", cfg.Command[0], "a usable pass-through config comes with the error")
			assert.NotContains(t, err.Error(), testKey)
		})
	}
}

func TestAckTimeoutAcceptsSeconds(t *testing.T) {
	cfg, err := ConfigFromEnv([]string{"p"}, sessionEnv("PLLDB_ACK_TIMEOUT=2.5"))
	require.NoError(t, err)
	assert.Equal(t, 2500*time.Millisecond, cfg.Session.AckTimeout)
}

func TestRedact(t *testing.T) {
	kept, redacted := Redact(map[string]string{
		"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_SESSION_TOKEN": "c",
		"PLLDB_FUNCTION_KEY": "d", "AWS_LAMBDA_RUNTIME_API": "e",
		"DB_PASSWORD": "f", "API_TOKEN": "g", "TABLE": "h", "PLLDB_REDACT": "*_PASSWORD, API_*",
	})
	assert.Equal(t, map[string]string{"TABLE": "h", "PLLDB_REDACT": "*_PASSWORD, API_*"}, kept)
	assert.Equal(t, []string{"API_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_LAMBDA_RUNTIME_API", "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN", "DB_PASSWORD", "PLLDB_FUNCTION_KEY"}, redacted)
}

func TestChildEnv(t *testing.T) {
	env := childEnv([]string{"A=1", "AWS_LAMBDA_RUNTIME_API=real:1", "AWS_LAMBDA_EXEC_WRAPPER=/opt/plldb/wrapper",
		"PLLDB_FUNCTION_KEY=k", "PLLDB_SESSION=s", "B=x=y"}, "127.0.0.1:5", "")
	assert.Equal(t, []string{"A=1", "B=x=y", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:5"}, env)
	env = childEnv([]string{"AWS_LAMBDA_EXEC_WRAPPER=/opt/plldb/wrapper"}, "127.0.0.1:5", "/opt/theirs")
	assert.Equal(t, []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:5", "AWS_LAMBDA_EXEC_WRAPPER=/opt/theirs"}, env)
}

func FuzzConfigFromEnv(f *testing.F) {
	aKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	keys := "s-a=" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	f.Add("wss://h/x", "s", testKey, "3s", "true", "*_KEY", "128", "info", "", "", "")
	f.Add("ws://", "", "", "", "", "[", "-1", "", "", "", "")
	f.Add("wss://h", "s", "////", "1e400", "2", ",,,", "0x10", "DEBUG+2", "", "", "")
	f.Add("wss://h/x", "", "", "3s", "", "", "128", "info", "true", keys, "s-a="+aKey+";creds;mirror,s-b="+aKey)
	f.Add("wss://h/x", "s", testKey, "", "", "", "", "", "1", keys, "s="+aKey)
	f.Add("wss://h/x", "", "", "", "", "", "", "", "true", keys, "s-a="+aKey+";mirror;mirror")
	f.Add("", "", "", "", "", "", "", "", "", "", "s-a="+aKey+",")
	f.Fuzz(func(t *testing.T, endpoint, session, key, ack, strict, redact, mem, level, selective, knockKeys, sessions string) {
		env := []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "AWS_LAMBDA_FUNCTION_NAME=fn", "PLLDB_ENDPOINT=" + endpoint, "PLLDB_SESSION=" + session,
			"PLLDB_FUNCTION_KEY=" + key, "PLLDB_ACK_TIMEOUT=" + ack, "PLLDB_STRICT=" + strict, "PLLDB_REDACT=" + redact,
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + mem, "PLLDB_LOG_LEVEL=" + level, "PLLDB_SELECTIVE=" + selective,
			"PLLDB_KNOCK_KEYS=" + knockKeys, "PLLDB_KNOCK_STACK=shop", "PLLDB_SESSIONS=" + sessions}
		cfg, err := ConfigFromEnv([]string{"python3"}, env)
		if err != nil && !errors.Is(err, ErrSessionConfig) {
			return
		}
		for _, secret := range []string{key, sessions} {
			if len(secret) >= 8 && strings.Contains(fmt.Sprint(err), secret) {
				t.Fatalf("error shows the key: %v", err)
			}
		}
		if cfg.Selective != nil && cfg.Session != nil {
			t.Fatalf("selective mode with a session that would take every invocation")
		}
		if cfg.Selective != nil && cfg.Selective.Verifier == nil && len(cfg.Selective.Links) > 0 {
			t.Fatalf("broken selective settings with links")
		}
		seen := map[string]bool{}
		for _, s := range cfg.Sessions() {
			if s.AckTimeout <= 0 || len(s.FunctionKey) < 16 || s.SessionID == "" {
				t.Fatalf("accepted a bad session: %+v", s)
			}
			if seen[s.SessionID] {
				t.Fatalf("two links for session %s", s.SessionID)
			}
			seen[s.SessionID] = true
		}
		kept, redacted := Redact(map[string]string{"PLLDB_REDACT": redact, "AWS_SESSION_TOKEN": "x", "Y": "1"})
		if _, ok := kept["AWS_SESSION_TOKEN"]; ok || len(kept)+len(redacted) != 3 {
			t.Fatalf("redaction lost or leaked a name: %v %v", kept, redacted)
		}
	})
}

// _LAMBDA_TELEMETRY_LOG_FD: an open fd becomes the proxy's telemetry writer, which writes to that fd without
// owning it; anything else leaves relayed logs on stdout. The child keeps the variable, the developer never
// gets it.
func TestConfigTelemetryFD(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	base := []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "AWS_LAMBDA_FUNCTION_NAME=fn"}
	fd := fmt.Sprint(w.Fd())
	cfg, err := ConfigFromEnv([]string{"python3"}, append(base, "_LAMBDA_TELEMETRY_LOG_FD="+fd))
	require.NoError(t, err)
	require.NotNil(t, cfg.Telemetry)
	n, err := cfg.Telemetry.Write([]byte("frame"))
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	got := make([]byte, 5)
	_, err = io.ReadFull(r, got)
	require.NoError(t, err)
	assert.Equal(t, "frame", string(got))
	assert.Contains(t, childEnv(cfg.Env, "127.0.0.1:5", ""), "_LAMBDA_TELEMETRY_LOG_FD="+fd)
	kept, redacted := Redact(envMap(cfg.Env))
	assert.NotContains(t, kept, "_LAMBDA_TELEMETRY_LOG_FD")
	assert.Contains(t, redacted, "_LAMBDA_TELEMETRY_LOG_FD")

	for _, v := range []string{"", "three", "-1", "987654"} {
		cfg, err := ConfigFromEnv([]string{"python3"}, append(base, "_LAMBDA_TELEMETRY_LOG_FD="+v))
		require.NoError(t, err, v)
		assert.Nil(t, cfg.Telemetry, "%q", v)
	}
	cfg, err = ConfigFromEnv([]string{"python3"}, base)
	require.NoError(t, err)
	assert.Nil(t, cfg.Telemetry)
}

package executor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// credsApp reports the credential variables its module saw at import (Lambda's init phase), its handler saw, and a
// process the handler started saw.
const credsApp = `import os, subprocess, sys
NAMES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']
AT_IMPORT = {k: os.environ.get(k) for k in NAMES}
def handler(event, context):
    child = subprocess.run([sys.executable, '-c', 'import os, json; print(json.dumps({k: os.environ.get(k) for k in %r}))' % NAMES],
                           capture_output=True, text=True, check=True).stdout
    print('handler ran')
    return {'import': AT_IMPORT, 'handler': {k: os.environ.get(k) for k in NAMES}, 'child': child}
`

func TestInvocationCredentials(t *testing.T) {
	// The developer's shell holds credentials of its own: a handler must never see them by accident.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIASHELLSHELLSHELL1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "shell-secret-never-in-a-handler")
	t.Setenv("AWS_SESSION_TOKEN", "shell-token-never-in-a-handler")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, sink := start(t, Spec{Logger: logger}, map[string]string{"app.py": credsApp})

	first := &Credentials{AccessKeyID: "AKIAFIRSTFIRSTFIRST1", SecretAccessKey: "first-secret-value", SessionToken: "first-session-token"}
	m := payload(t, invoke(t, e, Invocation{RequestID: "r1", Credentials: first}))
	want := map[string]any{"AWS_ACCESS_KEY_ID": first.AccessKeyID, "AWS_SECRET_ACCESS_KEY": first.SecretAccessKey, "AWS_SESSION_TOKEN": first.SessionToken}
	assert.Equal(t, want, m["import"], "the handler's module is imported within the invocation, with its credentials")
	assert.Equal(t, want, m["handler"])
	assert.JSONEq(t, mustMarshal(t, want), m["child"].(string), "processes the handler starts inherit them")

	// An invocation without credentials has none: neither the shell's nor the previous invocation's.
	none := map[string]any{"AWS_ACCESS_KEY_ID": nil, "AWS_SECRET_ACCESS_KEY": nil, "AWS_SESSION_TOKEN": nil}
	m = payload(t, invoke(t, e, Invocation{RequestID: "r2"}))
	assert.Equal(t, none, m["handler"])
	assert.JSONEq(t, mustMarshal(t, none), m["child"].(string))

	// Long-term keys have no session token: none is set, not the previous one.
	second := &Credentials{AccessKeyID: "AKIASECONDSECONDSEC2", SecretAccessKey: "second-secret-value"}
	m = payload(t, invoke(t, e, Invocation{RequestID: "r3", Credentials: second}))
	assert.Equal(t, map[string]any{"AWS_ACCESS_KEY_ID": second.AccessKeyID, "AWS_SECRET_ACCESS_KEY": second.SecretAccessKey, "AWS_SESSION_TOKEN": nil}, m["handler"])

	_, err := e.Invoke(t.Context(), Invocation{Credentials: &Credentials{AccessKeyID: "AKIAONLYTHEKEYID0000"}})
	require.Error(t, err, "half a credential set is refused")

	var printed bytes.Buffer
	for _, c := range []*Credentials{first, second} {
		inv := Invocation{RequestID: "r", Credentials: c}
		fmt.Fprintf(&printed, "%v %+v %#v %s %q %x %v %+v %#v", *c, *c, *c, *c, *c, *c, c, inv, inv)
		logger.Info("invocation", "inv", inv, "creds", c, "value", *c)
	}
	for _, secret := range []string{"SHELL", "shell-", "FIRST", "first-", "SECOND", "second-"} {
		assert.NotContains(t, printed.String(), secret, "fmt prints credentials redacted")
		assert.NotContains(t, logs.String(), secret, "the executor's log holds no credential")
		for _, stream := range []string{"stdout", "stderr"} {
			for _, rid := range []string{"", "r1", "r2", "r3"} {
				assert.NotContains(t, sink.text(rid, stream), secret)
			}
		}
	}
	assert.Contains(t, printed.String(), "[redacted]")
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

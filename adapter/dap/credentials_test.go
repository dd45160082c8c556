package dap

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/moto"
)

// A local launch's handlers run with the credentials of the launch's "profile", which appear in no DAP message and
// no log line of the adapter.
func TestLocalLaunchGivesHandlersTheProfilesCredentials(t *testing.T) {
	const keyID, secret, token = "AKIALAUNCHPROFILE001", "launch-profile-secret", "launch-profile-token"
	dir := moto.IsolateAWSConfig(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "credentials"), []byte(
		"[dap]\naws_access_key_id = "+keyID+"\naws_secret_access_key = "+secret+"\naws_session_token = "+token+"\n"), 0o600))
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIASHELLSHELLSHELL1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "shell-secret-not-for-handlers")

	app := helloApp(t)
	require.NoError(t, os.WriteFile(filepath.Join(app, "src", "app.py"), []byte(`import os
def handler(event, context):
    print("handler ran")
    return {k: os.environ.get(k) for k in ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN')}
`), 0o644))
	c, logs := startAdapterLogging(t)

	c.ExpectInitializeResponse(t)
	bad := c.RequestError(t, "launch", map[string]any{"mode": "local", "template": filepath.Join(app, "template.yaml"), "credentials": "function"})
	assert.Contains(t, bad.ErrorText(), `"mode": "aws"`, "a local function has no execution role to take credentials from")

	endpoint := launch(t, c, app, []string{"HelloFunction"}, map[string]any{"profile": "dap", "credentials": "developer"})
	c.Request(t, "configurationDone", nil)
	r := result(t, invoke(t, endpoint, "HelloFunction", `{}`))
	require.Equal(t, 200, r.status, r.body)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &got))
	assert.Equal(t, map[string]any{"AWS_ACCESS_KEY_ID": keyID, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}, got)
	c.ExpectOutputEventContaining(t, "handler ran")

	var msgs strings.Builder
	for _, m := range c.History() {
		msgs.WriteString(m.String())
	}
	for _, s := range []string{keyID, secret, token, "shell-secret"} {
		assert.NotContains(t, msgs.String(), s, "no DAP message holds a credential")
		assert.NotContains(t, logs.String(), s, "no log line of the adapter holds a credential")
	}
}

func TestLaunchCredentialsChoice(t *testing.T) {
	dir := t.TempDir()
	tpl := filepath.Join(dir, "template.yaml")
	require.NoError(t, os.WriteFile(tpl, []byte("Resources: {}\n"), 0o644))
	for _, tc := range []struct {
		args map[string]any
		want string // "" → accepted
	}{
		{map[string]any{"mode": "aws", "stackName": "s"}, ""},
		{map[string]any{"mode": "aws", "stackName": "s", "credentials": "function"}, ""},
		{map[string]any{"mode": "aws", "stackName": "s", "credentials": "developer"}, ""},
		{map[string]any{"mode": "aws", "stackName": "s", "credentials": "root"}, `credentials "root"`},
		{map[string]any{"mode": "aws", "stackName": "s", "credentials": 1}, `"credentials" must be`},
		{map[string]any{"template": tpl, "credentials": "developer"}, ""},
		{map[string]any{"template": tpl, "credentials": "function"}, `needs "mode": "aws"`},
	} {
		tc.args["cwd"] = dir
		raw, err := json.Marshal(tc.args)
		require.NoError(t, err)
		_, err = parseLaunch(raw)
		if tc.want == "" {
			assert.NoError(t, err, "%s", raw)
		} else {
			assert.ErrorContains(t, err, tc.want, "%s", raw)
		}
	}
}

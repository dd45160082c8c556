package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/moto"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// writer adapts logbuf.Buffer to io.Writer for run's output.
type writer struct{ *logbuf.Buffer }

func (w writer) Write(p []byte) (int, error) { w.WriteString(string(p)); return len(p), nil }

// TestLocalProfileCredentials: plldb local --profile gives handlers that profile's credentials, and prints them
// nowhere, not even at debug level.
func TestLocalProfileCredentials(t *testing.T) {
	const keyID, secret, token = "AKIACLIPROFILEKEY001", "cli-profile-secret", "cli-profile-token"
	dir := moto.IsolateAWSConfig(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "credentials"), []byte(
		"[cli]\naws_access_key_id = "+keyID+"\naws_secret_access_key = "+secret+"\naws_session_token = "+token+"\n"), 0o600))
	tpl := pythonApp(t, "Creds", `import os
def handler(event, context):
    print("handler ran")
    return {k: os.environ.get(k) for k in ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN')}
`)
	err := run(t.Context(), []string{"local", "--template", tpl, "--port", "0", "--python", pyenv.Python(t), "--profile", "no-such-profile"}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "no-such-profile", "a --profile that does not exist is a mistake to name")

	stdout, stderr := &logbuf.Buffer{}, &logbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"local", "--template", tpl, "--port", "0", "--python", pyenv.Python(t), "--profile", "cli", "--log-level", "debug"}, writer{stdout}, writer{stderr})
	}()
	endpoint := regexp.MustCompile(`Lambda Invoke endpoint: (\S+)`)
	require.Eventually(t, func() bool { return endpoint.MatchString(stdout.String()) }, 60*time.Second, 10*time.Millisecond, "no endpoint: %s", stderr)
	url := endpoint.FindStringSubmatch(stdout.String())[1] + "/2015-03-31/functions/Creds/invocations"
	resp, err := http.Post(url, "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var got map[string]any
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, map[string]any{"AWS_ACCESS_KEY_ID": keyID, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}, got)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("plldb local did not stop")
	}
	assert.Contains(t, stdout.String(), "handler ran")
	assert.Contains(t, stderr.String(), "handlers get your AWS credentials")
	for _, s := range []string{keyID, secret, token} {
		assert.NotContains(t, stdout.String(), s, "plldb local's output holds no credential")
		assert.NotContains(t, stderr.String(), s, "plldb local's log holds no credential")
	}
}

func TestAttachRefusesAnUnknownCredentialsChoice(t *testing.T) {
	err := run(t.Context(), []string{"attach", "--stack-name", "s", "--credentials", "root"}, io.Discard, io.Discard)
	require.ErrorContains(t, err, `--credentials "root"`)
}

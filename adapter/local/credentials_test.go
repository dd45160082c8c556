package local_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/cloud/awsconfig"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/moto"
)

const (
	devKeyID  = "AKIADEVELOPERPROFILE"
	devSecret = "developer-profile-secret-key"
	devToken  = "developer-profile-session-token"
)

// credsTemplate writes a one-function app whose handler reports the credential variables it sees.
func credsTemplate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "src", "app.py"), []byte(`import os
NAMES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION']
def handler(event, context):
    print('handler sees', sorted(k for k in NAMES if os.environ.get(k)))
    return {k: os.environ.get(k) for k in NAMES}
`), 0o644))
	tpl := filepath.Join(dir, "template.yaml")
	require.NoError(t, os.WriteFile(tpl, []byte(`Transform: AWS::Serverless-2016-10-31
Resources:
  CredsFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
`), 0o644))
	return tpl
}

func TestLocalHandlersGetTheDevelopersProfileCredentials(t *testing.T) {
	dir := moto.IsolateAWSConfig(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "credentials"), []byte(
		"[default]\naws_access_key_id = AKIADEFAULTNOTTHISONE\naws_secret_access_key = default-not-this-one\n\n"+
			"[dev]\naws_access_key_id = "+devKeyID+"\naws_secret_access_key = "+devSecret+"\naws_session_token = "+devToken+"\n"), 0o600))
	// The shell's own keys reach no handler: the profile named (--profile, "profile") is what counts.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIASHELLSHELLSHELL1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "shell-secret-not-for-handlers")
	provider, err := awsconfig.DeveloperCredentials(context.Background(), "dev")
	require.NoError(t, err)

	logs := &logbuf.Buffer{}
	var mu sync.Mutex
	var printed strings.Builder
	p := start(t, local.Options{
		Template: credsTemplate(t), Region: "eu-west-1", Credentials: provider,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Hooks: devside.Hooks{OnLog: func(l executor.LogLine) {
			mu.Lock()
			defer mu.Unlock()
			printed.WriteString(l.Text)
		}},
	})
	for range 2 { // a warm sandbox gets them again
		resp, err := p.Invoke(context.Background(), "CredsFunction", local.InvokeRequest{Payload: []byte(`{}`)})
		require.NoError(t, err)
		require.Empty(t, resp.FunctionError, "%s", resp.Payload)
		var got map[string]any
		require.NoError(t, json.Unmarshal(resp.Payload, &got))
		assert.Equal(t, map[string]any{"AWS_ACCESS_KEY_ID": devKeyID, "AWS_SECRET_ACCESS_KEY": devSecret, "AWS_SESSION_TOKEN": devToken, "AWS_REGION": "eu-west-1"}, got)
		for _, secret := range []string{devKeyID, devSecret, devToken} {
			assert.NotContains(t, string(resp.Log), secret, "the function's log (the Invoke API's LogResult) holds no credential")
		}
	}
	assert.Contains(t, logs.String(), "handlers get your AWS credentials")
	for _, secret := range []string{devKeyID, devSecret, devToken, "shell-secret", "default-not-this-one"} {
		assert.NotContains(t, logs.String(), secret, "no log line of the pipeline holds a credential")
		mu.Lock()
		assert.NotContains(t, printed.String(), secret)
		mu.Unlock()
	}
}

func TestLocalHandlersWithoutCredentials(t *testing.T) {
	moto.IsolateAWSConfig(t)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true") // the chain ends at nothing, fast
	provider, err := awsconfig.DeveloperCredentials(context.Background(), "")
	require.NoError(t, err)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "shell-half-a-credential")

	logs := &logbuf.Buffer{}
	p := start(t, local.Options{
		Template: credsTemplate(t), Credentials: provider,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	resp, err := p.Invoke(context.Background(), "CredsFunction", local.InvokeRequest{Payload: []byte(`{}`)})
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(resp.Payload, &got))
	assert.Equal(t, map[string]any{"AWS_ACCESS_KEY_ID": nil, "AWS_SECRET_ACCESS_KEY": nil, "AWS_SESSION_TOKEN": nil, "AWS_REGION": "us-east-1"}, got)
	assert.Equal(t, 1, strings.Count(logs.String(), "handlers will have none"), "said once, and the pipeline started anyway:\n%s", logs)
	assert.NotContains(t, logs.String(), "shell-half-a-credential")

	_, err = awsconfig.DeveloperCredentials(context.Background(), "no-such-profile")
	require.Error(t, err, "a profile named explicitly must exist")
	assert.Contains(t, err.Error(), "no-such-profile")
}

package main

import (
	"archive/zip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/moto"
)

func fakeZip(t *testing.T, path string, entries ...string) string {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	zw := zip.NewWriter(f)
	for _, e := range entries {
		w, err := zw.Create(e)
		require.NoError(t, err)
		_, err = w.Write([]byte("stand-in for " + e))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
	return path
}

// awsEnv is the environment of a plldb talking to moto, with the endpoint left to --endpoint-url.
func awsEnv(t *testing.T, s *moto.Server) []string {
	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	for _, kv := range s.Env() {
		if !strings.HasPrefix(kv, "AWS_ENDPOINT_URL") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"))
}

func plldb(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, plldbBin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestInstallStatusUninstallAgainstMoto(t *testing.T) {
	s := moto.Start(t)
	env := awsEnv(t, s)
	dir := t.TempDir()
	relay := fakeZip(t, filepath.Join(dir, "relay.zip"), "bootstrap")
	x86 := fakeZip(t, filepath.Join(dir, "x86.zip"), "plldb/wrapper", "plldb/proxy")
	arm := fakeZip(t, filepath.Join(dir, "arm.zip"), "plldb/wrapper", "plldb/proxy")
	ep := "--endpoint-url=" + s.Endpoint

	// moto's CloudFormation creates no WebSocket API: the stack settles, but install must not call that a
	// success, and must say why.
	unusable := []string{`plldb install "cli-a" is not usable`, "WebSocketURL", "unresolved", "did not create the relay's WebSocket API", "moto"}
	out, err := plldb(t, env, "install", "--name", "cli-a", ep, "--relay-zip", relay, "--layer-x86_64", x86, "--layer-arm64", arm)
	require.Error(t, err, out)
	assert.Contains(t, out, "creating stack cli-a")
	assert.Contains(t, out, "resources")
	assert.Contains(t, out, "cli-a-sessions")
	assert.NotContains(t, out, `installed "cli-a"`)
	for _, w := range unusable {
		assert.Contains(t, out, w)
	}

	out, err = plldb(t, env, "install", "--name", "cli-a", ep, "--relay-zip", relay, "--layer-x86_64", x86, "--layer-arm64", arm)
	require.Error(t, err, out)
	assert.Contains(t, out, "unchanged")

	// attach then fails with the same message, not with a URL parse error.
	out, err = plldb(t, env, "attach", "--name", "cli-a", ep, "--stack-name", "some-app")
	require.Error(t, err, out)
	for _, w := range unusable {
		assert.Contains(t, out, w)
	}
	assert.NotContains(t, out, "parse")

	out, err = plldb(t, env, "status", ep)
	require.NoError(t, err, out)
	assert.Contains(t, out, "cli-a: stack cli-a")
	assert.Contains(t, out, "is not usable")
	assert.Contains(t, out, "no live sessions")

	out, err = plldb(t, env, "uninstall", "--name", "cli-a", ep)
	require.NoError(t, err, out)
	assert.Contains(t, out, "uninstalled \"cli-a\"")
	out, err = plldb(t, env, "status", ep)
	require.NoError(t, err, out)
	assert.NotContains(t, out, "cli-a:")
}

func TestStackCommandsRefuseBadFlags(t *testing.T) {
	env := append(os.Environ(), "AWS_REGION=us-east-1")
	out, err := plldb(t, env, "install", "--name", "Bad_Name")
	require.Error(t, err)
	assert.Contains(t, out, `invalid install name "Bad_Name"`)
	out, err = plldb(t, env, "uninstall", "--region", "moon-1")
	require.Error(t, err)
	assert.Contains(t, out, `invalid AWS region "moon-1"`)
	out, err = plldb(t, env, "status", "extra")
	require.Error(t, err)
	assert.Contains(t, out, `unexpected argument "extra"`)
	out, err = plldb(t, env, "install", "--relay-zip", "/nonexistent/relay.zip", "--layer-x86_64", "/nonexistent/x.zip", "--layer-arm64", "/nonexistent/a.zip", "--endpoint-url", "http://127.0.0.1:1")
	require.Error(t, err)
	assert.Contains(t, out, "read relay code zip")
}

package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/bridge/knock"
)

func TestLocalMirrorNeedsSelective(t *testing.T) {
	var stderr strings.Builder
	err := run(t.Context(), []string{"local", "--mirror"}, io.Discard, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--mirror needs --selective")
}

// plldb local --selective --mirror: a knocked invocation is answered by the code without debugpy, a copy runs
// under it, and plldb prints both results on one line; an unknocked invocation prints none.
func TestLocalMirrorPrintsBothResults(t *testing.T) {
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "template.yaml"), []byte(`AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "src", "app.py"), []byte(`import sys

def handler(event, context):
    return {"debugpy": "debugpy" in sys.modules}
`), 0o644))
	_, endpoint, out := startLocal(t, filepath.Join(dir, "template.yaml"), "--selective", "--mirror")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Ctrl-C stops.") }, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, out.String(), "Selective mirror mode")

	invokeOnce := func(args ...string) map[string]any {
		t.Helper()
		var stdout, stderr strings.Builder
		err := run(t.Context(), append([]string{"invoke", "Echo", "--endpoint-url", endpoint, "--log", "none"}, args...), &stdout, &stderr)
		require.NoError(t, err, stderr.String())
		var res map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout.String()), &res), stdout.String())
		return res
	}
	assert.Equal(t, false, invokeOnce()["debugpy"])
	assert.Equal(t, false, invokeOnce("--knock")["debugpy"], "knocked: the caller gets the answer of the code without debugpy")
	line := regexp.MustCompile(`plldb: mirror Echo \S+ — deployed: \{"debugpy": false\} \(\d+ ms\) · local: \{"debugpy": true\} \(\d[^)]*\)\n`)
	require.Eventually(t, func() bool { return line.MatchString(out.String()) }, 30*time.Second, 10*time.Millisecond,
		"both results side by side: %s", out.String())
	assert.Equal(t, 1, strings.Count(out.String(), "plldb: mirror "), "only the knocked invocation is mirrored")
	assert.NotContains(t, out.String(), knock.Header)
}

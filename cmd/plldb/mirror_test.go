package main

import (
	"io"
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
	tpl := pythonApp(t, "Echo", `import sys

def handler(event, context):
    return {"debugpy": "debugpy" in sys.modules}
`)
	_, endpoint, out := startLocal(t, tpl, "--selective", "--mirror")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Ctrl-C stops.") }, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, out.String(), "Selective mirror mode")

	assert.Equal(t, false, invokeJSON(t, endpoint, "Echo")["debugpy"])
	assert.Equal(t, false, invokeJSON(t, endpoint, "Echo", "--knock")["debugpy"], "knocked: the caller gets the answer of the code without debugpy")
	line := regexp.MustCompile(`plldb: mirror Echo \S+ — deployed: \{"debugpy": false\} \(\d+ ms\) · local: \{"debugpy": true\} \(\d[^)]*\)\n`)
	require.Eventually(t, func() bool { return line.MatchString(out.String()) }, 30*time.Second, 10*time.Millisecond,
		"both results side by side: %s", out.String())
	assert.Equal(t, 1, strings.Count(out.String(), "plldb: mirror "), "only the knocked invocation is mirrored")
	assert.NotContains(t, out.String(), knock.Header)
}

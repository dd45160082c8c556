package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/knockkey"
)

// TestAttachSelectiveRunsOnlyKnockedInvocationsHere drives the commands a developer types: plldb attach
// --selective, then plldb knock --stack-name for the header, then Ctrl-C.
func TestAttachSelectiveRunsOnlyKnockedInvocationsHere(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "knock")
	t.Setenv(knockkey.DirEnv, dir) // for this process's check and, through os.Environ, the commands'
	a := newAWSApp(t)
	cmd, _, out := a.attach(t, "--selective")
	assert.Contains(t, out.String(), "attached selectively")
	assert.Contains(t, out.String(), "plldb knock --stack-name "+a.stack)

	invoke := func(knock string) string {
		t.Helper()
		headers := map[string]string{"Accept": "application/json"}
		if knock != "" {
			headers["X-Plldb-Knock"] = knock
		}
		ev, err := json.Marshal(map[string]any{"httpMethod": "GET", "path": "/orders", "headers": headers, "requestContext": map[string]any{}})
		require.NoError(t, err)
		resp, err := a.h.Invoke(context.Background(), a.fns["OrdersFunction"].Name, ev)
		require.NoError(t, err)
		require.False(t, resp.Error, "%s", resp.Payload)
		var res map[string]any
		require.NoError(t, json.Unmarshal(resp.Payload, &res))
		return res["where"].(string)
	}
	assert.Equal(t, "deployed", invoke(""), "no knock: the deployed code answers")

	kc := exec.Command(plldbBin, "knock", "--stack-name", a.stack)
	kc.Env = os.Environ()
	header, err := kc.Output()
	require.NoError(t, err)
	tok, ok := strings.CutPrefix(strings.TrimSpace(string(header)), "X-Plldb-Knock: ")
	require.True(t, ok, "plldb knock prints the header")
	assert.Equal(t, "local", invoke(tok), "a knocked invocation runs here")
	assert.NotContains(t, out.String(), tok, "the knock is never printed by attach")

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "plldb attach exits cleanly on Ctrl-C\n%s", out.String())
	a.assertRestored(t)
	_, err = knockkey.Load(a.stack)
	assert.ErrorIs(t, err, knockkey.ErrNoSession, "detaching removes the session file")
}

// TestAttachListenPassesSelectiveToLaunches: `plldb attach --listen --selective` makes every DAP launch
// selective unless the launch says otherwise, and a plain --listen leaves the attribute out.
func TestAttachListenPassesSelectiveToLaunches(t *testing.T) {
	d := awsLaunchDefaults{stackName: "orders", selective: true}
	assert.Equal(t, true, d.launch()["selective"])
	d.selective = false
	assert.NotContains(t, d.launch(), "selective")
}

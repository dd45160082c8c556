package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/testfixtures/pyenv"
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
	assert.Contains(t, out.String(), "Press Ctrl-C to detach: this session's entries come out", "a selective detach does not promise to put every function back")

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

	// --function takes the stack's functions by logical id or deployed name, and refuses any other.
	kc = exec.Command(plldbBin, "knock", "--stack-name", a.stack, "--function", a.fns["OrdersFunction"].Name)
	header, err = kc.Output()
	require.NoError(t, err)
	tok, ok = strings.CutPrefix(strings.TrimSpace(string(header)), "X-Plldb-Knock: ")
	require.True(t, ok)
	assert.Equal(t, "local", invoke(tok), "a knock bound to the function by its deployed name runs here")
	// The --aws-cli line of a knock bound by logical id invokes the deployed name: Lambda knows no logical id.
	kc = exec.Command(plldbBin, "knock", "--stack-name", a.stack, "--function", "OrdersFunction", "--aws-cli")
	cliLine, err := kc.Output()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(cliLine), "aws lambda invoke --function-name '"+a.fns["OrdersFunction"].Name+"' --client-context "),
		"the line invokes %s", a.fns["OrdersFunction"].Name) // the line holds a knock: not printed
	kc = exec.Command(plldbBin, "knock", "--stack-name", a.stack, "--function", "OrderFunction")
	refused, err := kc.CombinedOutput()
	require.Error(t, err)
	assert.Regexp(t, `^plldb knock: --function "OrderFunction" is not a function of this session \(it debugs \w+Function, \w+Function\)\n$`, string(refused))

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "plldb attach exits cleanly on Ctrl-C\n%s", out.String())
	a.assertRestored(t)
	_, err = knockkey.Load(a.stack)
	assert.ErrorIs(t, err, knockkey.ErrNoSession, "detaching removes the session file")
}

// TestAttachListenPassesSelectiveToLaunches: `plldb attach --listen --selective [--mirror]` makes every DAP
// launch selective (and mirror) unless the launch says otherwise, and a plain --listen leaves the attributes out.
func TestAttachListenPassesSelectiveToLaunches(t *testing.T) {
	d := awsLaunchDefaults{stackName: "orders", selective: true, mirror: true}
	assert.Equal(t, true, d.launch()["selective"])
	assert.Equal(t, true, d.launch()["mirror"])
	d.selective, d.mirror = false, false
	assert.NotContains(t, d.launch(), "selective")
	assert.NotContains(t, d.launch(), "mirror")
}

// TestTwoDevelopersAttachOneStackSelectively: two `plldb attach --selective` (the second with --mirror) share
// the stack; `plldb status` names both on each function; a plain attach is refused naming them; the first
// Ctrl-C leaves the functions instrumented for the second, whose Ctrl-C puts them back.
func TestTwoDevelopersAttachOneStackSelectively(t *testing.T) {
	a := newAWSApp(t)
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "alice")) // each developer's own machine
	first, s1, out1 := a.attach(t, "--selective")
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "bob"))
	second, s2, out2 := a.attach(t, "--selective", "--mirror")
	assert.Contains(t, out2.String(), "Mirror mode")

	status := exec.Command(plldbBin, "status")
	status.Env = a.env()
	st, err := status.CombinedOutput()
	require.NoError(t, err, "%s", st)
	ids := []string{s1, s2}
	slices.Sort(ids)
	assert.Regexp(t, "instrumented: "+regexp.QuoteMeta(a.fns["OrdersFunction"].Name)+
		` \(shared by selective sessions `+ids[0]+` \([^)]+\), `+ids[1]+` \([^)]+\)\)`, string(st))

	plain := exec.Command(plldbBin, "attach", "--stack-name", a.stack, "--name", a.h.Install.Name,
		"--template", a.app.Template, "--python", pyenv.Python(t))
	plain.Env = a.env()
	msg, err := plain.CombinedOutput()
	require.Error(t, err, "a plain attach is refused while selective sessions hold the stack")
	assert.Contains(t, string(msg), "held by selective sessions "+ids[0]+" (")
	assert.Contains(t, string(msg), "detach them or attach with --selective")

	mirror := exec.Command(plldbBin, "attach", "--stack-name", a.stack, "--mirror")
	mirror.Env = a.env()
	msg, err = mirror.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(msg), "--mirror goes with --selective")

	require.NoError(t, first.Process.Signal(syscall.SIGINT))
	require.NoError(t, first.Wait(), "%s", out1.String())
	assert.Contains(t, out1.String(), "(left)")
	a.assertInstrumented(t)
	for _, f := range a.fns {
		env := a.h.Settings(t, f.Name).Environment
		assert.NotContains(t, env["PLLDB_SESSIONS"], s1+"=")
		assert.Contains(t, env["PLLDB_SESSIONS"], s2+"=")
	}
	assert.Equal(t, "deployed", a.where(t, "OrdersFunction"))

	require.NoError(t, second.Process.Signal(syscall.SIGINT))
	require.NoError(t, second.Wait(), "%s", out2.String())
	a.assertRestored(t)
}

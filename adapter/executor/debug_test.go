package executor

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/plldb/plldb/testfixtures/pyenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDebugpyListens(t *testing.T) {
	var onStartPort int
	e, _ := start(t, Spec{Debug: true, OnStart: func(_ context.Context, sb SandboxInfo) { onStartPort = sb.DebugPort }}, map[string]string{"app.py": "import threading\ndef handler(event, context):\n    return threading.current_thread().name\n"})
	port := e.DebugPort()
	require.Positive(t, port)
	assert.Equal(t, port, onStartPort)
	assertLoopbackOnly(t, port)
	c := dialDAP(t, port)
	require.NotEmpty(t, e.DebugToken())
	c.authorize(e.DebugToken())
	c.send("initialize", map[string]any{"clientID": "plldb-test", "adapterID": "python", "linesStartAt1": true, "columnsStartAt1": true, "pathFormat": "path"})
	resp := c.expect("initialize response", isResponse("initialize"))
	assert.Equal(t, true, resp["success"], "response %v", resp)
	body, _ := resp["body"].(map[string]any)
	assert.Equal(t, true, body["supportsConfigurationDoneRequest"])
	assert.Equal(t, `"plldb-invoke rid-1"`, string(invoke(t, e, Invocation{RequestID: "rid-1"}).Payload), "invocation threads carry the request id in their name")
}

func TestMissingDebugpy(t *testing.T) {
	base, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on PATH to build a bare virtualenv")
	}
	venv := filepath.Join(t.TempDir(), "bare")
	out, err := exec.Command(base, "-m", "venv", "--without-pip", venv).CombinedOutput()
	require.NoError(t, err, "%s", out)
	py := filepath.Join(venv, "bin", "python")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"app.py": "def handler(e, c):\n    return 1\n"})
	_, err = Start(context.Background(), Spec{LogicalID: "Fn", Handler: "app.handler", CodeDir: dir, Python: py, Debug: true}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), py)
	assert.Contains(t, err.Error(), py+" -m pip install debugpy==1.8.22")

	// Without Debug the same interpreter is fine.
	e, err := Start(context.Background(), Spec{LogicalID: "Fn", Handler: "app.handler", CodeDir: dir, Python: py}, nil)
	require.NoError(t, err)
	defer e.Close()
	assert.Equal(t, "1", string(invoke(t, e, Invocation{}).Payload))
}

func TestFindPython(t *testing.T) {
	mkPython := func(dir string) string {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		p := filepath.Join(dir, "python")
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755))
		return p
	}
	tmpl, code, pathDir := t.TempDir(), t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(pathDir, "python3"), []byte("#!/bin/sh\n"), 0o755))
	t.Setenv("PATH", pathDir)

	got, err := FindPython("", tmpl, code)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(pathDir, "python3"), got, "python3 on PATH when no virtualenv")

	codeVenv := mkPython(filepath.Join(code, "venv", "bin"))
	got, err = FindPython("", tmpl, code)
	require.NoError(t, err)
	assert.Equal(t, codeVenv, got)

	tmplVenv := mkPython(filepath.Join(tmpl, "venv", "bin"))
	got, err = FindPython("", tmpl, code)
	require.NoError(t, err)
	assert.Equal(t, tmplVenv, got, "the first folder wins")

	tmplDotVenv := mkPython(filepath.Join(tmpl, ".venv", "bin"))
	got, err = FindPython("", tmpl, code)
	require.NoError(t, err)
	assert.Equal(t, tmplDotVenv, got, ".venv before venv")

	explicit := mkPython(filepath.Join(t.TempDir(), "bin"))
	got, err = FindPython(explicit, tmpl, code)
	require.NoError(t, err)
	assert.Equal(t, explicit, got, "an explicit interpreter wins")

	_, err = FindPython(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorContains(t, err, "python interpreter")

	t.Setenv("PATH", t.TempDir())
	_, err = FindPython("", t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no python interpreter found")
	assert.Contains(t, err.Error(), "python3 on PATH")
}

func TestStartResolvesPythonFromCodeDir(t *testing.T) {
	code := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(code, ".venv", "bin"), 0o755))
	require.NoError(t, os.Symlink(pyenv.Python(t), filepath.Join(code, ".venv", "bin", "python")))
	writeFiles(t, code, map[string]string{"app.py": "import sys\ndef handler(e, c):\n    return sys.executable\n"})
	e, err := Start(context.Background(), Spec{LogicalID: "Fn", Handler: "app.handler", CodeDir: code}, nil)
	require.NoError(t, err)
	defer e.Close()
	assert.Equal(t, strconv.Quote(filepath.Join(code, ".venv", "bin", "python")), string(invoke(t, e, Invocation{}).Payload))
}

// assertLoopbackOnly checks that nothing answers on port at the machine's non-loopback addresses.
func assertLoopbackOnly(t *testing.T, port int) {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
			continue
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ipn.IP.String(), strconv.Itoa(port)), 2*time.Second)
		if err == nil {
			c.Close()
		}
		assert.Error(t, err, "debugpy answers on %s", ipn.IP)
	}
}

func TestBreakpointInHandlerThread(t *testing.T) {
	for name, adapterProcess := range map[string]bool{"in-process adapter": false, "adapter process": true} {
		t.Run(name, func(t *testing.T) { testBreakpoint(t, adapterProcess) })
	}
}

func testBreakpoint(t *testing.T, adapterProcess bool) {
	e, _ := start(t, Spec{Debug: true, adapterProcess: adapterProcess}, map[string]string{"app.py": "def handler(event, context):\n    x = event['n'] + 1\n    return {'x': x}\n"})
	// A first invocation before the debugger attaches leaves a pooled thread that must be traced as well.
	assert.JSONEq(t, `{"x": 1}`, string(invoke(t, e, Invocation{Event: []byte(`{"n": 0}`)}).Payload))
	c := dialDAP(t, e.DebugPort())
	if tok := e.DebugToken(); tok != "" {
		c.authorize(tok)
	}
	c.attachWithBreakpoint(filepath.Join(e.spec.CodeDir, "app.py"), 3)

	done := make(chan Outcome, 1)
	go func() {
		out, err := e.Invoke(context.Background(), Invocation{Event: []byte(`{"n": 1}`)})
		assert.NoError(t, err)
		done <- out
	}()
	stopped := c.expect("stopped event", isEvent("stopped"))
	body := stopped["body"].(map[string]any)
	assert.Equal(t, "breakpoint", body["reason"])
	c.send("stackTrace", map[string]any{"threadId": body["threadId"]})
	st := c.expect("stackTrace response", isResponse("stackTrace"))
	frames := st["body"].(map[string]any)["stackFrames"].([]any)
	require.NotEmpty(t, frames)
	top := frames[0].(map[string]any)
	assert.Equal(t, "handler", top["name"])
	assert.Equal(t, 3.0, top["line"])
	c.send("continue", map[string]any{"threadId": body["threadId"]})
	assert.JSONEq(t, `{"x": 2}`, string((<-done).Payload))
}

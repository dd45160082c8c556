package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// startListening runs plldb with args and returns what it printed after "Lambda Invoke endpoint: " (if wanted)
// and "DAP server listening at: ".
func startListening(t *testing.T, env []string, wantEndpoint bool, args ...string) (cmd *exec.Cmd, endpoint, dapAddr string, out *logbuf.Buffer) {
	t.Helper()
	cmd = exec.Command(plldbBin, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr logbuf.Buffer
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { stderr.WriteString(string(p)); return len(p), nil })
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	out = &logbuf.Buffer{}
	eps, addrs := make(chan string, 1), make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line + "\n")
			if ep, ok := strings.CutPrefix(line, "Lambda Invoke endpoint: "); ok {
				eps <- ep
			}
			if a, ok := strings.CutPrefix(line, "DAP server listening at: "); ok {
				addrs <- a
			}
		}
	}()
	if wantEndpoint {
		select {
		case endpoint = <-eps:
		case <-time.After(time.Minute):
			t.Fatalf("plldb printed no endpoint\nstdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
		}
	}
	select {
	case dapAddr = <-addrs:
	case <-time.After(time.Minute):
		t.Fatalf("plldb announced no DAP address\nstdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
	}
	return cmd, endpoint, dapAddr, out
}

// attachIDE connects an IDE to a plldb DAP server and attaches, with breakpoints at lines of file.
func attachIDE(t *testing.T, addr string, file string, lines ...int) *daptest.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c := daptest.NewT(t, conn)
	c.Request(t, "initialize", map[string]any{"adapterID": "plldb", "linesStartAt1": true, "pathFormat": "path"})
	c.Request(t, "attach", map[string]any{"type": "plldb", "request": "attach", "name": "attach", "host": "127.0.0.1"})
	c.ExpectInitializedEvent(t)
	if file != "" {
		bps := []map[string]any{}
		for _, l := range lines {
			bps = append(bps, map[string]any{"line": l})
		}
		c.Request(t, "setBreakpoints", map[string]any{"source": map[string]any{"path": file}, "breakpoints": bps})
	}
	c.Request(t, "configurationDone", nil)
	return c
}

// invokeAsync calls fn over the Invoke API and delivers the answer's body (or the error).
func invokeAsync(endpoint, fn string) <-chan string {
	ch := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/2015-03-31/functions/"+fn+"/invocations", strings.NewReader(`{"n": 1}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- string(b)
	}()
	return ch
}

func answer(t *testing.T, ch <-chan string, within time.Duration) string {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(within):
		t.Fatal("the invocation was not answered")
		return ""
	}
}

// TestAttachToLocalListen: `plldb local --listen` owns the pipeline; IDEs attach to it, one at a time, and
// detaching leaves it serving with no debugger.
func TestAttachToLocalListen(t *testing.T) {
	app := filepath.Join(t.TempDir(), "hello")
	require.NoError(t, os.CopyFS(app, os.DirFS(apps.Dir("hello"))))
	file := filepath.Join(app, "src", "app.py")
	line, err := apps.BreakpointLine(file, "handler")
	require.NoError(t, err)
	cmd, endpoint, addr, out := startListening(t, os.Environ(), true, "local", "--template", filepath.Join(app, "template.yaml"), "--port", "0",
		"--python", pyenv.Python(t), "--functions", "HelloFunction", "--listen", "127.0.0.1:0", "--log-level", "warn")
	assert.NotContains(t, out.String(), "debugpy 127.0.0.1:", "behind the DAP server the debugpy ports are not offered")

	// No IDE yet: invocations run through.
	assert.Contains(t, answer(t, invokeAsync(endpoint, "HelloFunction"), time.Minute), "hello from dev")

	c := attachIDE(t, addr, file, line)
	c.ExpectOutputEventContaining(t, "attached to a running plldb")
	first := invokeAsync(endpoint, "HelloFunction")
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	frames := c.StackTrace(t, st.ThreadID)
	require.NotEmpty(t, frames)
	assert.Equal(t, line, frames[0].Line)

	// A second IDE is told at once that one is attached.
	conn2, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c2 := daptest.NewT(t, conn2)
	c2.Request(t, "initialize", map[string]any{"adapterID": "plldb"})
	assert.Contains(t, c2.RequestError(t, "attach", map[string]any{}).ErrorText(), "another IDE is connected")
	assert.Contains(t, c2.RequestError(t, "launch", map[string]any{}).ErrorText(), "attach")
	c2.Request(t, "disconnect", nil)
	<-c2.Done()

	// Detaching with the invocation paused: it goes on and its caller is answered.
	c.Request(t, "disconnect", map[string]any{"restart": false})
	<-c.Done()
	assert.Contains(t, answer(t, first, 30*time.Second), "hello from dev")
	// The breakpoints went with the IDE: invocations run through with no debugger.
	assert.Contains(t, answer(t, invokeAsync(endpoint, "HelloFunction"), 30*time.Second), "hello from dev")

	// Attach again: the IDE's breakpoints are set anew and the next invocation stops.
	c = attachIDE(t, addr, file, line)
	next := invokeAsync(endpoint, "HelloFunction")
	st = c.ExpectStoppedEventReason(t, "breakpoint")
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Contains(t, answer(t, next, 30*time.Second), "hello from dev")
	c.Request(t, "disconnect", nil)
	<-c.Done()

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "plldb local exits cleanly on Ctrl-C\n%s", out.String())
	case <-time.After(30 * time.Second):
		t.Fatal("plldb local did not exit")
	}
	src, err := filepath.EvalSymlinks(filepath.Join(app, "src"))
	require.NoError(t, err)
	assert.Empty(t, processesIn(src), "no executor process survives plldb local")
}

package dap

import (
	"bufio"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
	"github.com/plldb/plldb/testfixtures/logbuf"
)

// pipes joins a child's stdout (read) and stdin (write) into the IDE's end of a stdio adapter.
type pipes struct {
	io.Reader
	io.WriteCloser
}

func (p pipes) Close() error { return p.WriteCloser.Close() }

// debugSession drives one short session: stop at the hello handler's breakpoint, check the stack, continue.
func debugSession(t *testing.T, c *daptest.Client, app string) {
	t.Helper()
	file := filepath.Join(app, "src", "app.py")
	line := bpLine(t, file, "handler")
	endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)
	setBreakpoints(t, c, file, map[string]any{"line": line})
	c.Request(t, "configurationDone", nil)
	res := invoke(t, endpoint, "HelloFunction", `{"via": "binary"}`)
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	frames := c.StackTrace(t, st.ThreadID)
	assert.Equal(t, line, frames[0].Line)
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Contains(t, result(t, res).body, "binary")
	c.Request(t, "disconnect", nil)
}

func TestStdioTransport(t *testing.T) {
	app := helloApp(t)
	cmd := exec.Command(plldbBinary, "dap", "--log-level", "debug")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr logbuf.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	c := daptest.New(pipes{stdout, stdin})

	debugSession(t, c, app)
	// Every byte on stdout was DAP: the client would have hit a framing error otherwise, and the adapter exits
	// by itself after disconnect.
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("adapter did not close stdout after disconnect")
	}
	require.NoError(t, cmd.Wait(), "stderr:\n%s", stderr.String())
	for _, m := range c.Drain() {
		assert.NotEqual(t, "invalid", m.Type, "non-DAP output on stdout: %s", m.Raw)
	}
	assert.Contains(t, stderr.String(), "level=DEBUG", "logs go to stderr")
}

func TestListenTransport(t *testing.T) {
	app := helloApp(t)
	cmd := exec.Command(plldbBinary, "dap", "--listen", "127.0.0.1:0", "--log-file", filepath.Join(t.TempDir(), "dap.log"))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "DAP server listening at: ")
	require.True(t, ok, "first line %q", line)
	host, _, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)

	// Two sessions, one after the other, on the same server.
	for i := 0; i < 2; i++ {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		c := daptest.New(conn)
		debugSession(t, c, app)
		require.NoError(t, c.Close())
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "the server exits cleanly when killed")
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
}

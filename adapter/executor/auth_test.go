package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const authApp = "def handler(event, context):\n    secret = 'in-the-frame'\n    return {'n': event.get('n', 0)}\n"

// closedUnanswered sends a request (if args is not nil) and checks that debugpy closes the connection without
// answering anything.
func (c *dapClient) closedUnanswered(command string, args any) {
	c.t.Helper()
	if args != nil {
		b, err := json.Marshal(map[string]any{"seq": 1, "type": "request", "command": command, "arguments": args})
		require.NoError(c.t, err)
		_, _ = fmt.Fprintf(c.conn, "Content-Length: %d\r\n\r\n%s", len(b), b) // may already be closed
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				return
			}
			c.t.Errorf("a client without the token got an answer to %s: %v", command, m)
		case <-timeout:
			c.t.Fatalf("debugpy kept a client without the token connected (%s)", command)
		}
	}
}

// A client that connects to the executor's debugpy without the token, as any other local user could, is
// disconnected before pydevd sees it: it cannot initialize, set breakpoints, list threads or evaluate, with a
// wrong token or none, and one that says nothing is dropped after the authorization timeout.
func TestDebugpyRefusesClientWithoutToken(t *testing.T) {
	e, _ := start(t, Spec{Debug: true}, map[string]string{"app.py": authApp})
	file := filepath.Join(e.spec.CodeDir, "app.py")
	for command, args := range map[string]any{
		"initialize":      map[string]any{"clientID": "intruder", "adapterID": "python", "linesStartAt1": true, "pathFormat": "path"},
		"setBreakpoints":  map[string]any{"source": map[string]any{"path": file}, "breakpoints": []any{map[string]any{"line": 3}}},
		"evaluate":        map[string]any{"expression": "__import__('os').getpid()", "context": "repl"},
		"pydevdAuthorize": map[string]any{"debugServerAccessToken": strings.Repeat("0", 64)},
	} {
		dialDAP(t, e.DebugPort()).closedUnanswered(command, args)
	}
	silent := time.Now()
	dialDAP(t, e.DebugPort()).closedUnanswered("nothing", nil)
	assert.Less(t, time.Since(silent), 20*time.Second)
	// No breakpoint was set: the invocation runs through.
	assert.JSONEq(t, `{"n": 1}`, string(invoke(t, e, Invocation{Event: []byte(`{"n": 1}`)}).Payload))
}

// A foreign client that connects while plldb's client has a thread stopped cannot disturb it (pydevd would have
// replaced plldb's connection by the newcomer's, clearing its breakpoints), and once plldb's connection has gone
// the port gives the next client nothing; plldb reconnecting with the token (as after a restart) gets in.
func TestDebugpyForeignClientCannotDisturbPlldbsConnection(t *testing.T) {
	e, _ := start(t, Spec{Debug: true}, map[string]string{"app.py": authApp})
	file := filepath.Join(e.spec.CodeDir, "app.py")
	mine := dialDAP(t, e.DebugPort())
	mine.authorize(e.DebugToken())
	mine.attachWithBreakpoint(file, 3)
	done := make(chan Outcome, 1)
	go func() {
		out, err := e.Invoke(context.Background(), Invocation{Event: []byte(`{"n": 2}`)})
		assert.NoError(t, err)
		done <- out
	}()
	stopped := mine.expect("stopped event", isEvent("stopped"))
	threadID := stopped["body"].(map[string]any)["threadId"]

	foreign := dialDAP(t, e.DebugPort())
	foreign.closedUnanswered("threads", map[string]any{})

	mine.send("stackTrace", map[string]any{"threadId": threadID})
	frames := mine.expect("stackTrace response", isResponse("stackTrace"))["body"].(map[string]any)["stackFrames"].([]any)
	frameID := frames[0].(map[string]any)["id"]
	seq := mine.send("evaluate", map[string]any{"expression": "secret", "frameId": frameID, "context": "repl"})
	ev := mine.expect("evaluate response", isResponseTo(seq))
	require.Equal(t, true, ev["success"], "plldb's connection is still there: %v", ev)
	assert.Equal(t, "'in-the-frame'", ev["body"].(map[string]any)["result"])
	mine.send("continue", map[string]any{"threadId": threadID})
	assert.JSONEq(t, `{"n": 2}`, string((<-done).Payload))

	// Once plldb's connection has gone, the port gives the next client nothing.
	require.NoError(t, mine.conn.Close())
	<-mine.done
	dialDAP(t, e.DebugPort()).closedUnanswered("initialize", map[string]any{"clientID": "intruder", "adapterID": "python"})

	// plldb's adapter reconnects with the token.
	again := dialDAP(t, e.DebugPort())
	again.authorize(e.DebugToken())
	again.attachWithBreakpoint(file, 3)
	go func() {
		out, err := e.Invoke(context.Background(), Invocation{Event: []byte(`{"n": 3}`)})
		assert.NoError(t, err)
		done <- out
	}()
	stopped = again.expect("stopped event", isEvent("stopped"))
	again.send("continue", map[string]any{"threadId": stopped["body"].(map[string]any)["threadId"]})
	assert.JSONEq(t, `{"n": 3}`, string((<-done).Payload))
}

// The token reaches the executor over its private pipe: neither its command line nor its environment (both
// readable by other local users or inherited by child processes) carries it, and each executor has its own.
func TestDebugpyTokenStaysPrivate(t *testing.T) {
	e, _ := start(t, Spec{Debug: true}, map[string]string{"app.py": authApp})
	tok := e.DebugToken()
	require.Len(t, tok, 64)
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(e.PID()), f))
		if err != nil {
			t.Skipf("no /proc: %v", err)
		}
		assert.NotContains(t, string(b), tok, "/proc/pid/%s", f)
	}
	other, _ := start(t, Spec{Debug: true}, map[string]string{"app.py": authApp})
	assert.NotEqual(t, tok, other.DebugToken())

	open, _ := start(t, Spec{Debug: true, OpenDebugpy: true}, map[string]string{"app.py": authApp})
	assert.Empty(t, open.DebugToken())
	c := dialDAP(t, open.DebugPort())
	c.send("initialize", map[string]any{"clientID": "editor", "adapterID": "python", "linesStartAt1": true, "pathFormat": "path"})
	assert.Equal(t, true, c.expect("initialize response", isResponse("initialize"))["success"], "OpenDebugpy: any client")
}

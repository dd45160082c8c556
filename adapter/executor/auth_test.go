package executor

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const authApp = "def handler(event, context):\n    secret = 'in-the-frame'\n    return {'n': event.get('n', 0)}\n"

// refused sends a request and checks that debugpy answers it with its "not authenticated" error.
func (c *dapClient) refused(command string, args any) {
	c.t.Helper()
	seq := c.send(command, args)
	resp := c.expect(command+" response", isResponseTo(seq))
	assert.Equal(c.t, false, resp["success"], "%s must be refused: %v", command, resp)
	assert.Equal(c.t, "Client not authenticated.", resp["message"], "%s: %v", command, resp)
}

// A client that connects to the executor's debugpy without the token, as any other local user could, is refused
// everything: it cannot initialize, set breakpoints, list threads or evaluate, not even with a guessed token.
func TestDebugpyRefusesClientWithoutToken(t *testing.T) {
	e, _ := start(t, Spec{Debug: true}, map[string]string{"app.py": authApp})
	file := filepath.Join(e.spec.CodeDir, "app.py")
	foreign := dialDAP(t, e.DebugPort())
	foreign.refused("initialize", map[string]any{"clientID": "intruder", "adapterID": "python", "linesStartAt1": true, "pathFormat": "path"})
	foreign.refused("attach", map[string]any{"justMyCode": false})
	foreign.refused("setBreakpoints", map[string]any{"source": map[string]any{"path": file}, "breakpoints": []any{map[string]any{"line": 3}}})
	foreign.refused("evaluate", map[string]any{"expression": "__import__('os').getpid()", "context": "repl"})
	seq := foreign.send("pydevdAuthorize", map[string]any{"debugServerAccessToken": strings.Repeat("0", 64)})
	assert.Equal(t, false, foreign.expect("pydevdAuthorize response", isResponseTo(seq))["success"])
	foreign.refused("threads", nil)
	foreign.refused("evaluate", map[string]any{"expression": "1+1", "context": "repl"})
	// No breakpoint was set: the invocation runs through.
	assert.JSONEq(t, `{"n": 1}`, string(invoke(t, e, Invocation{Event: []byte(`{"n": 1}`)}).Payload))
}

// A foreign client that connects while plldb's client has a thread stopped takes pydevd's connection over (pydevd
// serves one client at a time) but can do nothing with the stopped thread; a connection that dropped leaves no
// authorization behind for the next client; plldb reconnecting with the token gets everything back.
func TestDebugpyForeignClientCannotUseStoppedThreadOrDroppedConnection(t *testing.T) {
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
	mine.send("stackTrace", map[string]any{"threadId": threadID})
	frames := mine.expect("stackTrace response", isResponse("stackTrace"))["body"].(map[string]any)["stackFrames"].([]any)
	frameID := frames[0].(map[string]any)["id"]

	foreign := dialDAP(t, e.DebugPort())
	foreign.refused("threads", nil)
	foreign.refused("stackTrace", map[string]any{"threadId": threadID})
	foreign.refused("evaluate", map[string]any{"expression": "secret", "frameId": frameID, "context": "repl"})
	foreign.refused("continue", map[string]any{"threadId": threadID})
	foreign.refused("setExpression", map[string]any{"expression": "secret", "value": "'x'", "frameId": frameID})
	require.NoError(t, foreign.conn.Close())

	// plldb's adapter reconnects (as after a restart) with the token and resumes the thread.
	again := dialDAP(t, e.DebugPort())
	again.authorize(e.DebugToken())
	again.send("initialize", map[string]any{"clientID": "plldb-test", "adapterID": "python", "linesStartAt1": true, "pathFormat": "path"})
	require.Equal(t, true, again.expect("initialize response", isResponse("initialize"))["success"])
	again.send("attach", map[string]any{"justMyCode": false})
	again.expect("initialized event", isEvent("initialized"))
	again.send("configurationDone", map[string]any{})
	again.expect("configurationDone response", isResponse("configurationDone"))
	again.send("threads", nil)
	require.Equal(t, true, again.expect("threads response", isResponse("threads"))["success"])
	again.send("continue", map[string]any{"threadId": threadID})
	assert.JSONEq(t, `{"n": 2}`, string((<-done).Payload))

	// Once plldb's connection has gone, the port gives the next client nothing.
	require.NoError(t, again.conn.Close())
	<-again.done
	late := dialDAP(t, e.DebugPort())
	late.refused("initialize", map[string]any{"clientID": "intruder", "adapterID": "python", "linesStartAt1": true, "pathFormat": "path"})
	late.refused("evaluate", map[string]any{"expression": "1+1", "context": "repl"})
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

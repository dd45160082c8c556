package dap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReattachAfterExecutorRestart: a handler that kills its process makes the executor replace its sandbox; the
// adapter attaches to the new sandbox's debugpy and replays the breakpoints, so the next invocation stops again.
func TestReattachAfterExecutorRestart(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	src, err := os.ReadFile(file)
	require.NoError(t, err)
	crashing := strings.Replace(string(src), "def handler(event, context):\n",
		"def handler(event, context):\n    if event.get(\"crash\"):\n        os._exit(3)\n", 1)
	require.NoError(t, os.WriteFile(file, []byte(crashing), 0o644))
	line := bpLine(t, file, "handler")

	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)
	setBreakpoints(t, c, file, map[string]any{"line": line})
	c.Request(t, "configurationDone", nil)

	r := result(t, invoke(t, endpoint, "HelloFunction", `{"crash": true}`))
	assert.Contains(t, r.body, "Runtime.ExitError")
	c.ExpectOutputEventContaining(t, "HelloFunction sandbox 2 started; debugger attached")

	res := invoke(t, endpoint, "HelloFunction", `{}`)
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	assert.Equal(t, line, c.StackTrace(t, st.ThreadID)[0].Line)
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Equal(t, 200, result(t, res).status)
}

func TestFunctionBreakpointAndProgress(t *testing.T) {
	app := helloApp(t)
	c := startAdapter(t)
	c.ExpectInitializeResponse(t)
	// Set before launch, replayed to the debuggee.
	early := c.Request(t, "setFunctionBreakpoints", map[string]any{"breakpoints": []map[string]any{{"name": "handler"}}}).BodyMap()
	require.Len(t, early["breakpoints"], 1)
	c.Request(t, "launch", map[string]any{"template": filepath.Join(app, "template.yaml"), "invokePort": 0,
		"python": testPython(t), "functions": []string{"HelloFunction"}})
	c.ExpectEvent(t, "progressStart")
	c.ExpectEvent(t, "progressEnd")
	endpoint := endpointFrom(t, c)
	c.ExpectInitializedEvent(t)
	c.Request(t, "configurationDone", nil)

	res := invoke(t, endpoint, "HelloFunction", `{}`)
	st := c.ExpectStoppedEventReason(t, "function breakpoint")
	assert.Equal(t, "handler", c.StackTrace(t, st.ThreadID)[0].Name)
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Equal(t, 200, result(t, res).status)
}

// TestNoDebugLaunch: "Run without debugging" serves the functions without debugpy; breakpoints are ignored.
func TestNoDebugLaunch(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction"}, map[string]any{"noDebug": true})
	setBreakpoints(t, c, file, map[string]any{"line": bpLine(t, file, "handler")})
	c.Request(t, "configurationDone", nil)
	assert.Equal(t, 200, result(t, invoke(t, endpoint, "HelloFunction", `{}`)).status)
	c.ExpectOutputEventContaining(t, "← HelloFunction")
}

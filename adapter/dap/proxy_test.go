package dap

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
)

func bodyOf(t *testing.T, r invokeResult) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &m), "%s", r.body)
	return m
}

func TestTwoFunctionsPausedAtOnce(t *testing.T) {
	app := helloApp(t)
	helloFile := filepath.Join(app, "src", "app.py")
	ordersFile := filepath.Join(app, "src", "pkg", "orders.py")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction", "PackageFunction"}, nil)
	setBreakpoints(t, c, helloFile, map[string]any{"line": bpLine(t, helloFile, "handler")})
	setBreakpoints(t, c, ordersFile, map[string]any{"line": bpLine(t, ordersFile, "handler")})
	c.Request(t, "configurationDone", nil)

	helloRes := invoke(t, endpoint, "HelloFunction", `{}`)
	st1 := c.ExpectStoppedEventReason(t, "breakpoint")
	ordersRes := invoke(t, endpoint, "PackageFunction", `{"items": [1, 2]}`)
	st2 := c.ExpectStoppedEventReason(t, "breakpoint")
	require.NotEqual(t, st1.ThreadID, st2.ThreadID)
	assert.False(t, st1.AllThreadsStopped, "one function's stop must not freeze the others in the IDE")
	assert.False(t, st2.AllThreadsStopped)

	f1 := c.StackTrace(t, st1.ThreadID)
	f2 := c.StackTrace(t, st2.ThreadID)
	assert.Equal(t, helloFile, f1[0].Source.Path)
	assert.Equal(t, ordersFile, f2[0].Source.Path)
	assert.NotEqual(t, f1[0].ID, f2[0].ID, "frame ids of different debuggees must not collide")

	byID := ideThreads(t, c)
	assert.True(t, strings.HasPrefix(byID[st1.ThreadID], "HelloFunction "), byID[st1.ThreadID])
	assert.True(t, strings.HasPrefix(byID[st2.ThreadID], "PackageFunction "), byID[st2.ThreadID])

	// Continue the second function only: it answers while the first stays paused.
	cont := c.Request(t, "continue", map[string]any{"threadId": st2.ThreadID})
	assert.Equal(t, false, cont.BodyMap()["allThreadsContinued"])
	r2 := result(t, ordersRes)
	assert.Equal(t, float64(2), bodyOf(t, r2)["count"])
	select {
	case r := <-helloRes:
		t.Fatalf("the paused function answered: %+v", r)
	default:
	}
	again := c.StackTrace(t, st1.ThreadID)
	assert.Equal(t, f1[0].Line, again[0].Line, "the first function is still paused where it was")

	c.Request(t, "continue", map[string]any{"threadId": st1.ThreadID})
	assert.Equal(t, 200, result(t, helloRes).status)
}

func TestBreakpointReplacementAndStableIDs(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	first := bpLine(t, file, "handler")
	second := first + 1
	c := startAdapter(t)
	c.ExpectInitializeResponse(t)

	// Set before launch: kept, unverified until a function runs, then verified by a breakpoint event.
	early := setBreakpointsRaw(t, c, file, first)
	require.Len(t, early, 1)
	assert.Equal(t, false, early[0]["verified"])
	earlyID := early[0]["id"]
	c.Request(t, "launch", map[string]any{"mode": "local", "template": filepath.Join(app, "template.yaml"), "invokePort": 0,
		"python": testPython(t), "functions": []string{"HelloFunction"}})
	ev := c.ExpectEvent(t, "breakpoint")
	var bev struct {
		Reason     string         `json:"reason"`
		Breakpoint map[string]any `json:"breakpoint"`
	}
	require.NoError(t, ev.Decode(&bev))
	assert.Equal(t, earlyID, bev.Breakpoint["id"])
	assert.Equal(t, true, bev.Breakpoint["verified"])
	endpoint := endpointFrom(t, c)
	c.ExpectInitializedEvent(t)

	// Add a second line: the first keeps its id.
	both := setBreakpoints(t, c, file, map[string]any{"line": first}, map[string]any{"line": second})
	require.Len(t, both, 2)
	assert.Equal(t, earlyID, both[0]["id"])
	assert.NotEqual(t, both[0]["id"], both[1]["id"])
	// Replace the set by the second line alone: the first is gone, the second keeps its id.
	only := setBreakpoints(t, c, file, map[string]any{"line": second})
	require.Len(t, only, 1)
	assert.Equal(t, both[1]["id"], only[0]["id"])
	c.Request(t, "configurationDone", nil)

	res := invoke(t, endpoint, "HelloFunction", `{}`)
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	assert.Equal(t, second, c.StackTrace(t, st.ThreadID)[0].Line)
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	result(t, res)

	// An empty set clears the source: the next invocation runs through.
	assert.Empty(t, setBreakpoints(t, c, file))
	assert.Equal(t, 200, result(t, invoke(t, endpoint, "HelloFunction", `{}`)).status)
}

func setBreakpointsRaw(t *testing.T, c *daptest.Client, path string, lines ...int) []map[string]any {
	t.Helper()
	var bps []map[string]any
	for _, l := range lines {
		bps = append(bps, map[string]any{"line": l})
	}
	return setBreakpoints(t, c, path, bps...)
}

func endpointFrom(t *testing.T, c *daptest.Client) string {
	t.Helper()
	out := c.ExpectOutputEventContaining(t, "Invoke API at ")
	_, endpoint, _ := strings.Cut(strings.TrimSpace(out), "Invoke API at ")
	return endpoint
}

func TestSetVariableAndSteps(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "pkg", "orders.py")
	layerFile := filepath.Join(app, "layer", "python", "shared_util.py")
	line := bpLine(t, file, "handler")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"PackageFunction"}, nil)
	setBreakpoints(t, c, file, map[string]any{"line": line})
	c.Request(t, "configurationDone", nil)

	res := invoke(t, endpoint, "PackageFunction", `{"items": [1]}`)
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	frames := c.StackTrace(t, st.ThreadID)

	// setVariable: the handler then sees three items and returns a count of 3.
	var scopes struct {
		Scopes []struct {
			VariablesReference int `json:"variablesReference"`
		} `json:"scopes"`
	}
	require.NoError(t, c.Request(t, "scopes", map[string]any{"frameId": frames[0].ID}).Decode(&scopes))
	set := c.Request(t, "setVariable", map[string]any{"variablesReference": scopes.Scopes[0].VariablesReference, "name": "event", "value": "{'items': [1, 2, 3]}"})
	assert.Contains(t, set.BodyMap()["value"], "[1, 2, 3]")

	// Step over the first statement.
	c.Request(t, "next", map[string]any{"threadId": st.ThreadID})
	st = c.ExpectStoppedEventReason(t, "step")
	assert.Greater(t, c.StackTrace(t, st.ThreadID)[0].Line, line, "next moved past the breakpoint line")
	assert.Equal(t, "[1, 2, 3]", c.Evaluate(t, c.StackTrace(t, st.ThreadID)[0].ID, "items"))

	// Step in until the layer's helper is entered (the return statement spans lines; library calls are skipped).
	var top string
	for i := 0; i < 10 && top != layerFile; i++ {
		c.Request(t, "stepIn", map[string]any{"threadId": st.ThreadID})
		st = c.ExpectStoppedEventReason(t, "step")
		top = c.StackTrace(t, st.ThreadID)[0].Source.Path
	}
	require.Equal(t, layerFile, top, "stepIn never entered count_items")
	assert.Equal(t, "count_items", c.StackTrace(t, st.ThreadID)[0].Name)

	c.Request(t, "stepOut", map[string]any{"threadId": st.ThreadID})
	st = c.ExpectStoppedEventReason(t, "step")
	assert.Equal(t, file, c.StackTrace(t, st.ThreadID)[0].Source.Path)

	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	r := result(t, res)
	assert.Equal(t, float64(3), bodyOf(t, r)["count"], "setVariable must change what the handler returns")
}

func TestConditionalBreakpointAndLogPoint(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	line := bpLine(t, file, "handler")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)
	setBreakpoints(t, c, file,
		map[string]any{"line": line, "condition": "event.get('n') == 2"},
		map[string]any{"line": line + 1, "logMessage": "log point: n is {event['n']}"})
	c.Request(t, "configurationDone", nil)

	// n=1: the condition is false, so the invocation answers without anyone continuing it.
	assert.Equal(t, 200, result(t, invoke(t, endpoint, "HelloFunction", `{"n": 1}`)).status)
	assert.Contains(t, c.ExpectOutputEventContaining(t, "log point: n is"), "n is 1")

	res := invoke(t, endpoint, "HelloFunction", `{"n": 2}`)
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	assert.Equal(t, "2", c.Evaluate(t, c.StackTrace(t, st.ThreadID)[0].ID, "event['n']"))
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Contains(t, c.ExpectOutputEventContaining(t, "log point: n is"), "n is 2")
	assert.Equal(t, 200, result(t, res).status)
}

func TestExceptionBreakpointRaised(t *testing.T) {
	app := helloApp(t)
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"FailingFunction"}, nil)
	c.Request(t, "setExceptionBreakpoints", map[string]any{"filters": []string{"raised"}})
	c.Request(t, "configurationDone", nil)

	res := invoke(t, endpoint, "FailingFunction", `{}`)
	st := c.ExpectStoppedEventReason(t, "exception")
	info := c.Request(t, "exceptionInfo", map[string]any{"threadId": st.ThreadID}).BodyMap()
	assert.Contains(t, info["exceptionId"], "ValueError")
	assert.Contains(t, info["description"], "boom")
	assert.Equal(t, filepath.Join(app, "src", "app.py"), c.StackTrace(t, st.ThreadID)[0].Source.Path)

	c.ExpectOutputEventContaining(t, "→ FailingFunction")
	// The exception may be reported again as it leaves the handler; keep going until the caller has its answer.
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	for {
		select {
		case r := <-res:
			require.NoError(t, r.err)
			assert.Equal(t, "ValueError", bodyOf(t, r)["errorType"])
			c.ExpectOutputEventContaining(t, "[ERROR] ValueError: boom")
			return
		default:
		}
		m, err := c.Next("stopped event or answer", func(m daptest.Message) bool {
			if m.Type == "event" && m.Event == "stopped" {
				var st daptest.StoppedEvent
				return m.Decode(&st) == nil && !st.PreserveFocusHint
			}
			return m.Type == "event" && m.Event == "output" && strings.Contains(string(m.Body), "← FailingFunction")
		})
		require.NoError(t, err)
		if m.Event == "stopped" {
			var again daptest.StoppedEvent
			require.NoError(t, m.Decode(&again))
			c.Request(t, "continue", map[string]any{"threadId": again.ThreadID})
			continue
		}
		// The invocation finished: its answer is on its way, and its log lines reached the IDE.
		assert.Contains(t, string(m.Body), "error ValueError: boom")
		assert.Equal(t, "ValueError", bodyOf(t, result(t, res))["errorType"])
		c.ExpectOutputEventContaining(t, "[ERROR] ValueError: boom")
		return
	}
}

func TestPathMappings(t *testing.T) {
	app := helloApp(t)     // where the executor runs the code
	ideCopy := helloApp(t) // where the IDE has it open
	ideFile := filepath.Join(ideCopy, "src", "app.py")
	line := bpLine(t, ideFile, "handler")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction"}, map[string]any{
		"env":          map[string]string{"APP_STAGE": "from-launch"},
		"pathMappings": []map[string]any{{"localRoot": filepath.Join(ideCopy, "src"), "remoteRoot": filepath.Join(app, "src")}},
	})
	bps := setBreakpoints(t, c, ideFile, map[string]any{"line": line})
	assert.Equal(t, true, bps[0]["verified"], "%v", bps[0])
	c.Request(t, "configurationDone", nil)

	res := invoke(t, endpoint, "HelloFunction", `{}`)
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	frames := c.StackTrace(t, st.ThreadID)
	assert.Equal(t, ideFile, frames[0].Source.Path, "frames are reported in the IDE's paths")
	assert.Equal(t, line, frames[0].Line)
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Contains(t, result(t, res).body, "hello from from-launch", "launch env reaches the function")
}

func TestEditedHandlerStopsOnNewLines(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	line := bpLine(t, file, "handler")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)
	setBreakpoints(t, c, file, map[string]any{"line": line})
	c.Request(t, "configurationDone", nil)

	res := invoke(t, endpoint, "HelloFunction", `{}`)
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	result(t, res)

	// The developer adds lines above the handler and moves the breakpoint with the code.
	src, err := os.ReadFile(file)
	require.NoError(t, err)
	edited := strings.Replace(string(src), "def handler(event, context):\n", "EDITED = True\n\n\ndef handler(event, context):\n    edited = EDITED\n", 1)
	require.NoError(t, os.WriteFile(file, []byte(edited), 0o644))
	newLine := bpLine(t, file, "handler")
	require.Equal(t, line+4, newLine)
	setBreakpoints(t, c, file, map[string]any{"line": newLine})

	res = invoke(t, endpoint, "HelloFunction", `{}`)
	st = c.ExpectStoppedEventReason(t, "breakpoint")
	frames := c.StackTrace(t, st.ThreadID)
	assert.Equal(t, newLine, frames[0].Line)
	assert.Equal(t, "True", c.Evaluate(t, frames[0].ID, "edited"))
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Equal(t, 200, result(t, res).status)
}

func TestBadLaunchAttributes(t *testing.T) {
	app := helloApp(t)
	tpl := filepath.Join(app, "template.yaml")
	c := startAdapter(t)
	c.ExpectInitializeResponse(t)
	cases := []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"mode": "local", "template": filepath.Join(app, "missing.yaml")}, `"template"`},
		{map[string]any{"mode": "bogus", "template": tpl}, `"mode" "bogus"`},
		{map[string]any{"mode": "aws"}, `"stackName"`},
		{map[string]any{"mode": "aws", "stackName": "s", "functions": []string{""}}, `"functions"[0] is empty`},
		{map[string]any{"mode": "aws", "stackName": "s", "endpointUrl": 7}, `"endpointUrl" must be a string`},
		{map[string]any{"template": tpl, "invokePort": "x"}, `"invokePort" must be an integer`},
		{map[string]any{"template": tpl, "invokePort": 70000}, `"invokePort" 70000`},
		{map[string]any{"template": tpl, "functions": "HelloFunction"}, `"functions" must be a list`},
		{map[string]any{"template": tpl, "pathMappings": []any{map[string]any{"localRoot": "/a"}}}, `"pathMappings"[0]`},
		{map[string]any{"template": tpl, "env": map[string]any{"A": 1}}, `"env" must be an object of string values`},
		{map[string]any{"template": tpl, "cwd": filepath.Join(app, "nope")}, `"cwd"`},
		{map[string]any{"template": tpl, "python": filepath.Join(app, "nopython")}, `"python"`},
		{map[string]any{"template": tpl, "invokePort": 0, "python": testPython(t), "functions": []string{"NoSuchFunction"}}, `"functions": `},
		{map[string]any{"template": tpl, "invokePort": 0, "python": testPython(t), "functions": []string{"NoSuchFunction"}}, `no function "NoSuchFunction" in the template; its functions: FailingFunction, HelloFunction, NodeFunction, PackageFunction`},
		{map[string]any{"template": tpl, "invokePort": 0, "python": testPython(t), "functions": []string{"NodeFunction"}}, `"functions": `},
	}
	for _, tc := range cases {
		m := c.RequestError(t, "launch", tc.args)
		assert.Contains(t, m.ErrorText(), tc.want, "launch %v", tc.args)
	}
	// The session survives bad launches: a good one still works.
	c.Request(t, "launch", map[string]any{"template": tpl, "invokePort": 0, "python": testPython(t), "functions": []string{"HelloFunction"}})
	c.ExpectInitializedEvent(t)
}

func TestUnknownRequest(t *testing.T) {
	c := startAdapter(t)
	c.ExpectInitializeResponse(t)
	m := c.RequestError(t, "fooBar", map[string]any{"x": 1})
	assert.Contains(t, m.ErrorText(), `"fooBar"`)
	m = c.RequestError(t, "stackTrace", map[string]any{"threadId": 12345})
	assert.Contains(t, m.ErrorText(), "unknown threadId 12345")
	// plldb dap runs no functions of its own: attach says what to run instead.
	m = c.RequestError(t, "attach", map[string]any{})
	assert.Contains(t, m.ErrorText(), `"request": "launch"`)
	assert.Contains(t, m.ErrorText(), "plldb local --debug --listen")
	// Still serving.
	c.ExpectInitializeResponse(t)
}

func TestIDEGoneWhilePaused(t *testing.T) {
	for _, how := range []string{"eof", "disconnect"} {
		t.Run(how, func(t *testing.T) {
			app := helloApp(t)
			file := filepath.Join(app, "src", "app.py")
			c := startAdapter(t)
			endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)
			setBreakpoints(t, c, file, map[string]any{"line": bpLine(t, file, "handler")})
			c.Request(t, "configurationDone", nil)
			res := invoke(t, endpoint, "HelloFunction", `{}`)
			c.ExpectStoppedEventReason(t, "breakpoint")

			if how == "eof" {
				require.NoError(t, c.Close()) // no disconnect: the IDE just goes away
			} else {
				c.Request(t, "disconnect", map[string]any{"terminateDebuggee": true})
			}
			r := result(t, res)
			assert.Equal(t, 200, r.status, "the paused invocation is released and answers: %s", r.body)
			assert.Contains(t, r.body, "hello from")
		})
	}
}

func TestTerminateWhilePaused(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)
	setBreakpoints(t, c, file, map[string]any{"line": bpLine(t, file, "handler")})
	c.Request(t, "configurationDone", nil)
	res := invoke(t, endpoint, "HelloFunction", `{}`)
	c.ExpectStoppedEventReason(t, "breakpoint")

	c.Request(t, "terminate", nil)
	c.ExpectEvent(t, "terminated")
	assert.NotZero(t, result(t, res).status, "the caller gets an answer before the adapter exits")
	c.Request(t, "disconnect", nil)
}

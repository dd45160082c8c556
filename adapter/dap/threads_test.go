package dap

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	godap "github.com/google/go-dap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
)

// ideThreads lists the IDE's threads: id → name.
func ideThreads(t *testing.T, c *daptest.Client) map[int]string {
	t.Helper()
	var b struct {
		Threads []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"threads"`
	}
	require.NoError(t, c.Request(t, "threads", nil).Decode(&b))
	out := map[int]string{}
	for _, th := range b.Threads {
		_, dup := out[th.ID]
		require.False(t, dup, "thread %d listed twice", th.ID)
		out[th.ID] = th.Name
	}
	return out
}

// assertOnlyHandlerThreads checks that every thread the IDE sees is named after one of fns, and none is one of
// the executor's own threads.
func assertOnlyHandlerThreads(t *testing.T, threads map[int]string, fns ...string) {
	t.Helper()
	for id, name := range threads {
		fn, rest, _ := strings.Cut(name, " ")
		assert.Contains(t, fns, fn, "thread %d %q", id, name)
		for _, internal := range []string{"MainThread", "plldb-", "pydevd", "debugpy"} {
			assert.NotContains(t, rest, internal, "thread %d %q is not a handler thread", id, name)
		}
	}
}

// notAnswered fails if the invocation has been answered.
func notAnswered(t *testing.T, res <-chan invokeResult, why string) {
	t.Helper()
	select {
	case r := <-res:
		t.Fatalf("%s, but the caller got an answer: %+v", why, r)
	default:
	}
}

// stoppedOnce waits for the next stopped event and checks what every stop must be: one thread, not all.
func stoppedOnce(t *testing.T, c *daptest.Client, reason string) daptest.StoppedEvent {
	t.Helper()
	st := c.ExpectStoppedEventReason(t, reason)
	assert.False(t, st.AllThreadsStopped, "a stop never freezes the other invocations in the IDE")
	return st
}

// nvimDap plays nvim-dap's default handling of stopped events (lua/dap/session.lua, event_stopped, with
// auto_continue_if_many_stopped = true): it lists the threads on every stop; a stop of another thread while one
// is already stopped is continued at once; and, as the issue describes it, every other thread it believes stopped
// is continued too. An adapter that reports executor threads as stopped loses the breakpoint to this client.
type nvimDap struct {
	t             *testing.T
	c             *daptest.Client
	stoppedThread int          // session.stopped_thread_id
	stopped       map[int]bool // threads it believes stopped
	autoContinued []int
}

func newNvimDap(t *testing.T, c *daptest.Client) *nvimDap {
	return &nvimDap{t: t, c: c, stopped: map[int]bool{}}
}

func (n *nvimDap) onStopped(st daptest.StoppedEvent) {
	threads := ideThreads(n.t, n.c)
	if st.AllThreadsStopped {
		for id := range threads {
			n.stopped[id] = true
		}
	}
	n.stopped[st.ThreadID] = true
	shouldJump := st.Reason != "pause" || st.AllThreadsStopped
	if n.stoppedThread != 0 && n.stoppedThread != st.ThreadID && shouldJump {
		n.autoContinue(st.ThreadID)
		return
	}
	if shouldJump {
		n.stoppedThread = st.ThreadID
	}
	for id := range n.stopped {
		if id != st.ThreadID {
			n.autoContinue(id)
		}
	}
}

func (n *nvimDap) autoContinue(id int) {
	n.autoContinued = append(n.autoContinued, id)
	n.stopped[id] = false
	n.c.MustSend(n.t, "continue", map[string]any{"threadId": id})
}

// watch plays the client for d: every stopped event is handled as nvim-dap does; it returns the continued events
// seen.
func (n *nvimDap) watch(d time.Duration) []daptest.Message {
	var continued []daptest.Message
	deadline := time.Now().Add(d)
	saved := n.c.Timeout
	defer func() { n.c.Timeout = saved }()
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return continued
		}
		n.c.Timeout = left
		m, err := n.c.Next("stopped or continued event", func(m daptest.Message) bool {
			return m.Type == "event" && (m.Event == "stopped" || m.Event == "continued")
		})
		if err != nil {
			return continued
		}
		n.c.Timeout = saved
		if m.Event == "continued" {
			continued = append(continued, m)
			continue
		}
		var st daptest.StoppedEvent
		require.NoError(n.t, m.Decode(&st))
		n.onStopped(st)
	}
}

// TestNvimDapDefaultKeepsBreakpoint is the bug Neovim found: with nvim-dap's defaults the breakpoint must stay
// paused, the editor's view must match, and only the developer's continue lets the caller have its answer.
func TestNvimDapDefaultKeepsBreakpoint(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	line := bpLine(t, file, "handler")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction", "PackageFunction"}, nil)
	setBreakpoints(t, c, file, map[string]any{"line": line})
	c.Request(t, "configurationDone", nil)
	nv := newNvimDap(t, c)

	res := invoke(t, endpoint, "HelloFunction", `{"name": "nvim"}`)
	st := stoppedOnce(t, c, "breakpoint")
	nv.onStopped(st)
	continued := nv.watch(3 * time.Second)

	for _, m := range continued {
		var b struct {
			ThreadID int `json:"threadId"`
		}
		require.NoError(t, m.Decode(&b))
		assert.NotEqual(t, st.ThreadID, b.ThreadID, "the stopped thread was reported continued: %s", m.Raw)
	}
	assert.Empty(t, nv.autoContinued, "no other thread was ever reported stopped, so nvim-dap continued nothing")
	notAnswered(t, res, "the breakpoint must still be paused 3 s later")
	threads := ideThreads(t, c)
	assertOnlyHandlerThreads(t, threads, "HelloFunction")
	assert.Len(t, threads, 1, "one invocation in flight, one thread: %v", threads)

	frames := c.StackTrace(t, st.ThreadID)
	require.NotEmpty(t, frames)
	assert.Equal(t, line, frames[0].Line)
	assert.Equal(t, "handler", frames[0].Name)
	locals := c.Locals(t, frames[0].ID)
	assert.Contains(t, locals["event"].Value, "nvim")
	assert.Equal(t, "'nvim'", c.Evaluate(t, frames[0].ID, "event['name']"))

	cont := c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Equal(t, true, cont.BodyMap()["allThreadsContinued"], "no thread is left paused")
	r := result(t, res)
	assert.Equal(t, 200, r.status)
	assert.Contains(t, r.body, "nvim")
}

// TestSecondInvocationWhilePaused: invocations of two functions run in two executors and pause and resume on
// their own. Two invocations of the same function share its executor (one process per function today); each
// still has its own thread, its own stop and its own continue, because debugpy suspends and resumes one thread
// at a time.
func TestSecondInvocationWhilePaused(t *testing.T) {
	app := helloApp(t)
	helloFile := filepath.Join(app, "src", "app.py")
	ordersFile := filepath.Join(app, "src", "pkg", "orders.py")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction", "PackageFunction"}, nil)
	setBreakpoints(t, c, helloFile, map[string]any{"line": bpLine(t, helloFile, "handler")})
	setBreakpoints(t, c, ordersFile, map[string]any{"line": bpLine(t, ordersFile, "handler")})
	c.Request(t, "configurationDone", nil)

	t.Run("different functions", func(t *testing.T) {
		helloRes := invoke(t, endpoint, "HelloFunction", `{}`)
		st1 := stoppedOnce(t, c, "breakpoint")
		ordersRes := invoke(t, endpoint, "PackageFunction", `{"items": [1, 2]}`)
		st2 := stoppedOnce(t, c, "breakpoint")
		require.NotEqual(t, st1.ThreadID, st2.ThreadID)
		threads := ideThreads(t, c)
		assertOnlyHandlerThreads(t, threads, "HelloFunction", "PackageFunction")
		assert.Len(t, threads, 2, "%v", threads)
		assert.True(t, strings.HasPrefix(threads[st1.ThreadID], "HelloFunction "), threads[st1.ThreadID])
		assert.True(t, strings.HasPrefix(threads[st2.ThreadID], "PackageFunction "), threads[st2.ThreadID])

		cont := c.Request(t, "continue", map[string]any{"threadId": st1.ThreadID})
		assert.Equal(t, false, cont.BodyMap()["allThreadsContinued"], "the other function is still paused")
		assert.Equal(t, 200, result(t, helloRes).status)
		notAnswered(t, ordersRes, "continuing HelloFunction must not resume PackageFunction")
		assert.Equal(t, ordersFile, c.StackTrace(t, st2.ThreadID)[0].Source.Path, "still paused where it was")
		c.Request(t, "continue", map[string]any{"threadId": st2.ThreadID})
		assert.Equal(t, float64(2), bodyOf(t, result(t, ordersRes))["count"])
	})

	t.Run("same function", func(t *testing.T) {
		first := invoke(t, endpoint, "HelloFunction", `{"n": 1}`)
		st1 := stoppedOnce(t, c, "breakpoint")
		second := invoke(t, endpoint, "HelloFunction", `{"n": 2}`)
		st2 := stoppedOnce(t, c, "breakpoint")
		require.NotEqual(t, st1.ThreadID, st2.ThreadID, "each invocation is its own thread, in a sandbox of its own")
		threads := ideThreads(t, c)
		assertOnlyHandlerThreads(t, threads, "HelloFunction")
		assert.Len(t, threads, 2, "%v", threads)
		assert.NotEqual(t, threads[st1.ThreadID], threads[st2.ThreadID], "names tell the invocations apart")
		assert.NotEqual(t, strings.Contains(threads[st1.ThreadID], "(sandbox "), strings.Contains(threads[st2.ThreadID], "(sandbox "),
			"one runs in the first sandbox, the other in a second, and the names say so: %v", threads)
		f1 := c.StackTrace(t, st1.ThreadID)
		f2 := c.StackTrace(t, st2.ThreadID)
		assert.Equal(t, "1", c.Evaluate(t, f1[0].ID, "event['n']"))
		assert.Equal(t, "2", c.Evaluate(t, f2[0].ID, "event['n']"))

		// Step the first: only it moves; the second stays paused where it was.
		c.Request(t, "next", map[string]any{"threadId": st1.ThreadID})
		step := stoppedOnce(t, c, "step")
		assert.Equal(t, st1.ThreadID, step.ThreadID)
		assert.Greater(t, c.StackTrace(t, st1.ThreadID)[0].Line, f1[0].Line)
		assert.Equal(t, f2[0].Line, c.StackTrace(t, st2.ThreadID)[0].Line, "a step of one invocation does not move the other")
		m := c.RequestError(t, "evaluate", map[string]any{"frameId": f1[0].ID, "expression": "event", "context": "repl"})
		assert.Contains(t, m.ErrorText(), "unknown frameId", "the stepped thread's old frames are reset")

		// Continue the second: it answers; the first, in a sandbox of its own, stays paused and says so.
		cont := c.Request(t, "continue", map[string]any{"threadId": st2.ThreadID})
		assert.Equal(t, false, cont.BodyMap()["allThreadsContinued"])
		assert.Contains(t, result(t, second).body, `\"n\": 2`)
		notAnswered(t, first, "continuing one invocation must not resume the other of the same function")
		assert.Equal(t, "1", c.Evaluate(t, c.StackTrace(t, st1.ThreadID)[0].ID, "event['n']"), "still paused")
		for _, m := range c.Drain() {
			if m.Event == "continued" {
				assert.NotContains(t, string(m.Body), `"threadId":`+itoa(st1.ThreadID)+`,`, "the paused thread was said to continue: %s", m.Raw)
			}
		}
		c.Request(t, "continue", map[string]any{"threadId": st1.ThreadID})
		assert.Contains(t, result(t, first).body, `\"n\": 1`)
	})
}

// TestLSP4IJSequence follows JetBrains' LSP4IJ client (dap/client/DAPClient.java): launch goes out right after
// initialize, configuration starts on initialized (setBreakpoints, setExceptionBreakpoints with the default
// filters, configurationDone, each after the previous answer), every stop is followed by threads and then
// stackTrace for the event's thread (a stop whose thread is missing from threads is ignored), and continue names
// only the thread.
func TestLSP4IJSequence(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	line := bpLine(t, file, "handler")
	c := startAdapter(t)
	initSeq := c.MustSend(t, "initialize", map[string]any{
		"clientID": "lsp4ij", "clientName": "IntelliJ IDEA", "adapterID": "plldb", "linesStartAt1": true,
		"columnsStartAt1": true, "pathFormat": "path", "supportsVariableType": true,
	})
	launchSeq := c.MustSend(t, "launch", map[string]any{
		"type": "plldb", "request": "launch", "name": "Lambda", "mode": "local",
		"template": filepath.Join(app, "template.yaml"), "invokePort": 0, "python": testPython(t),
		"functions": []string{"HelloFunction"},
	})
	initResp := c.Expect(t, "initialize response", daptest.IsResponse(initSeq))
	require.True(t, initResp.Success)
	var caps struct {
		Filters []struct {
			Filter  string `json:"filter"`
			Default bool   `json:"default"`
		} `json:"exceptionBreakpointFilters"`
	}
	require.NoError(t, initResp.Decode(&caps))
	c.ExpectInitializedEvent(t)
	endpoint := endpointFrom(t, c)

	bps := setBreakpoints(t, c, file, map[string]any{"line": line})
	assert.Equal(t, true, bps[0]["verified"])
	var filters []string
	for _, f := range caps.Filters {
		if f.Default {
			filters = append(filters, f.Filter)
		}
	}
	c.Request(t, "setExceptionBreakpoints", map[string]any{"filters": filters})
	c.Request(t, "configurationDone", nil)
	require.True(t, c.Expect(t, "launch response", daptest.IsResponse(launchSeq)).Success)

	res := invoke(t, endpoint, "HelloFunction", `{"name": "jetbrains"}`)
	st := stoppedOnce(t, c, "breakpoint")
	threads := ideThreads(t, c)
	require.Contains(t, threads, st.ThreadID, "LSP4IJ ignores a stop whose thread is not in threads")
	assertOnlyHandlerThreads(t, threads, "HelloFunction")
	frames := c.StackTrace(t, st.ThreadID)
	require.NotEmpty(t, frames)
	assert.Equal(t, file, frames[0].Source.Path)
	assert.Equal(t, line, frames[0].Line)
	assert.Contains(t, c.Locals(t, frames[0].ID)["event"].Value, "jetbrains")

	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	r := result(t, res)
	assert.Equal(t, 200, r.status)
	assert.Contains(t, r.body, "jetbrains")

	// lsp4j decodes every message into the protocol's types: so does go-dap's codec, for every message the
	// adapter sent (debugpy's own events, unknown to go-dap, aside).
	for _, m := range c.History() {
		_, err := godap.DecodeProtocolMessage(m.Raw)
		var unknown *godap.DecodeProtocolMessageFieldError
		if errors.As(err, &unknown) && m.Type == "event" {
			continue
		}
		assert.NoError(t, err, "%s", m.Raw)
	}
}

// TestInvocationDuringConfiguration: an invocation that arrives between initialized and configurationDone,
// while the IDE is still (slowly) sending breakpoints, is held and then stops at the breakpoint.
func TestInvocationDuringConfiguration(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	line := bpLine(t, file, "handler")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)

	res := invoke(t, endpoint, "HelloFunction", `{"early": true}`)
	c.ExpectOutputEventContaining(t, "waits until the IDE has sent its breakpoints")
	time.Sleep(500 * time.Millisecond) // the IDE is slow
	notAnswered(t, res, "an invocation must wait for the IDE's configuration")
	setBreakpoints(t, c, file, map[string]any{"line": line})
	time.Sleep(500 * time.Millisecond)
	c.Request(t, "setExceptionBreakpoints", map[string]any{"filters": []string{"uncaught"}})
	notAnswered(t, res, "an invocation must wait for the IDE's configuration")
	c.Request(t, "configurationDone", nil)

	st := stoppedOnce(t, c, "breakpoint")
	assert.Equal(t, line, c.StackTrace(t, st.ThreadID)[0].Line)
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Equal(t, 200, result(t, res).status)
}

// TestConfigurationHoldEnds: invocations are not held by a launch without a debugger, nor forever by an IDE that
// never sends configurationDone, nor past the end of the session.
func TestConfigurationHoldEnds(t *testing.T) {
	t.Run("noDebug", func(t *testing.T) {
		app := helloApp(t)
		c := startAdapter(t)
		endpoint := launch(t, c, app, []string{"HelloFunction"}, map[string]any{"noDebug": true})
		assert.Equal(t, 200, result(t, invoke(t, endpoint, "HelloFunction", `{}`)).status, "no configurationDone needed")
	})
	t.Run("no configurationDone", func(t *testing.T) {
		app := helloApp(t)
		c := startAdapterWith(t, Options{configHold: 1500 * time.Millisecond})
		endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)
		start := time.Now()
		assert.Equal(t, 200, result(t, invoke(t, endpoint, "HelloFunction", `{}`)).status)
		assert.GreaterOrEqual(t, time.Since(start), 1500*time.Millisecond, "held until the bound")
		c.ExpectOutputEventContaining(t, "no configurationDone")
	})
	t.Run("disconnect", func(t *testing.T) {
		app := helloApp(t)
		c := startAdapter(t)
		endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)
		res := invoke(t, endpoint, "HelloFunction", `{}`)
		time.Sleep(300 * time.Millisecond)
		c.Request(t, "disconnect", nil)
		assert.NotZero(t, result(t, res).status, "a held invocation is answered when the session ends")
	})
}

// TestPanicInRequestHandler: a request whose handling panics is answered with an error, and the session goes on.
func TestPanicInRequestHandler(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	panicked := false
	c := startAdapterWith(t, Options{requestHook: func(command string) {
		if command == "threads" && !panicked {
			panicked = true // only the request reader calls the hook
			panic("injected by the test")
		}
	}})
	endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)
	setBreakpoints(t, c, file, map[string]any{"line": bpLine(t, file, "handler")})
	c.Request(t, "configurationDone", nil)

	m := c.RequestError(t, "threads", nil)
	assert.Contains(t, m.ErrorText(), "injected by the test")
	res := invoke(t, endpoint, "HelloFunction", `{}`)
	st := stoppedOnce(t, c, "breakpoint")
	assert.Contains(t, ideThreads(t, c), st.ThreadID, "the session goes on")
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Equal(t, 200, result(t, res).status)
}

// sleepyApp is the hello app whose handler first sleeps event["sleep"] seconds in short steps (so that a pause
// takes effect at once, and setting event["sleep"] to 0 ends the wait).
func sleepyApp(t *testing.T) (app, file string) {
	t.Helper()
	app = helloApp(t)
	file = filepath.Join(app, "src", "app.py")
	src, err := os.ReadFile(file)
	require.NoError(t, err)
	edited := strings.Replace(string(src), "import os\n", "import os\nimport time\n", 1)
	edited = strings.Replace(edited, "def handler(event, context):\n",
		"def handler(event, context):\n    until = time.time() + event.get(\"sleep\", 0)\n"+
			"    while event.get(\"sleep\") and time.time() < until:\n        time.sleep(0.05)\n", 1)
	require.NoError(t, os.WriteFile(file, []byte(edited), 0o644))
	return app, file
}

// TestRequestsInUnusualOrder: requests a client may send at the wrong time get an error response or the right
// event, the session survives, and every caller gets one answer.
func TestRequestsInUnusualOrder(t *testing.T) {
	app, file := sleepyApp(t)
	line := bpLine(t, file, "handler")
	c := startAdapter(t)
	assert.Empty(t, ideThreads(t, c), "threads before launch")
	endpoint := launch(t, c, app, []string{"HelloFunction", "PackageFunction"}, nil)
	c.Request(t, "configurationDone", nil)
	assert.Empty(t, ideThreads(t, c), "nothing runs: no thread, and never the executor's own")

	m := c.RequestError(t, "continue", map[string]any{"threadId": 4242})
	assert.Contains(t, m.ErrorText(), "unknown threadId 4242")
	m = c.RequestError(t, "continue", map[string]any{})
	assert.Contains(t, m.ErrorText(), "threadId")
	m = c.RequestError(t, "next", map[string]any{"threadId": 4242})
	assert.Contains(t, m.ErrorText(), "unknown threadId 4242")

	// A running invocation: listed, but its stack cannot be read nor can it step; pause stops it.
	res := invoke(t, endpoint, "HelloFunction", `{"sleep": 30}`)
	c.ExpectOutputEventContaining(t, "→ HelloFunction")
	var running int
	for deadline := time.Now().Add(20 * time.Second); running == 0; time.Sleep(50 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the running invocation's thread is never listed")
		for id, name := range ideThreads(t, c) {
			assert.True(t, strings.HasPrefix(name, "HelloFunction "), name)
			running = id
		}
	}
	m = c.RequestError(t, "stackTrace", map[string]any{"threadId": running})
	assert.Contains(t, m.ErrorText(), "is running")
	m = c.RequestError(t, "next", map[string]any{"threadId": running})
	assert.Contains(t, m.ErrorText(), "is running")
	c.Request(t, "pause", map[string]any{"threadId": running})
	st := stoppedOnce(t, c, "pause")
	assert.Equal(t, running, st.ThreadID)
	frames := c.StackTrace(t, running)
	assert.Equal(t, "handler", frames[0].Name)

	// setBreakpoints during the stop takes effect for the paused invocation.
	bps := setBreakpoints(t, c, file, map[string]any{"line": line})
	assert.Equal(t, true, bps[0]["verified"])
	c.Request(t, "setExpression", map[string]any{"frameId": frames[0].ID, "expression": "event['sleep']", "value": "0"})
	c.Request(t, "continue", map[string]any{"threadId": running})
	st = stoppedOnce(t, c, "breakpoint")
	assert.Equal(t, running, st.ThreadID, "the same invocation, the same thread")
	assert.Equal(t, line, c.StackTrace(t, st.ThreadID)[0].Line)
	m = c.RequestError(t, "stackTrace", map[string]any{"threadId": running + 1000})
	assert.Contains(t, m.ErrorText(), "unknown threadId")
	m = c.RequestError(t, "scopes", map[string]any{"frameId": frames[0].ID})
	assert.Contains(t, m.ErrorText(), "unknown frameId", "frame ids from before the thread resumed are reset")

	// disconnect while one invocation is paused and another is running: both callers get their answer.
	other := invoke(t, endpoint, "PackageFunction", `{"items": [1]}`)
	c.ExpectOutputEventContaining(t, "→ PackageFunction")
	c.Request(t, "disconnect", nil)
	assert.Equal(t, 200, result(t, res).status)
	assert.Equal(t, 200, result(t, other).status)
}

// TestPanicInDebuggeeMessage: a panic while handling one of debugpy's messages is contained; the debuggee's
// reader goes on with the next message.
func TestPanicInDebuggeeMessage(t *testing.T) {
	adapterEnd, debugpyEnd := net.Pipe()
	seen := make(chan string, 2)
	d := &debuggee{
		fn: "F", log: testLogger(t), conn: adapterEnd, pending: map[int]func(obj, bool){},
		initialized: make(chan struct{}), done: make(chan struct{}),
		onEvent: func(_ *debuggee, m obj) {
			seen <- m.str("event")
			if m.str("event") == "boom" {
				panic("injected by the test")
			}
		},
	}
	go d.read()
	require.NoError(t, writeFrame(debugpyEnd, []byte(`{"seq": 1, "type": "event", "event": "boom"}`)))
	require.NoError(t, writeFrame(debugpyEnd, []byte(`{"seq": 2, "type": "event", "event": "after"}`)))
	assert.Equal(t, "boom", <-seen)
	assert.Equal(t, "after", <-seen, "the reader survived the panic")
	require.NoError(t, debugpyEnd.Close())
	<-d.done
}

// TestThreadStartedByHandler: a thread the handler starts runs handler code too; a breakpoint in it stops that
// thread, which the IDE sees named after the function and the thread.
func TestThreadStartedByHandler(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	src, err := os.ReadFile(file)
	require.NoError(t, err)
	edited := strings.Replace(string(src), "import os\n", "import os\nimport threading\n", 1) + `

def work(out):
    out.append("worked")  # BREAKPOINT


def spawning(event, context):
    out = []
    t = threading.Thread(target=work, args=(out,), name="worker")
    t.start()
    t.join()
    return out
`
	require.NoError(t, os.WriteFile(file, []byte(edited), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(app, "template.yaml"), []byte(`AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  SpawnFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.spawning
      Runtime: python3.12
`), 0o644))
	line := bpLine(t, file, "work")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"SpawnFunction"}, nil)
	setBreakpoints(t, c, file, map[string]any{"line": line})
	c.Request(t, "configurationDone", nil)

	res := invoke(t, endpoint, "SpawnFunction", `{}`)
	st := stoppedOnce(t, c, "breakpoint")
	threads := ideThreads(t, c)
	assert.Equal(t, "SpawnFunction worker", threads[st.ThreadID])
	assertOnlyHandlerThreads(t, threads, "SpawnFunction")
	assert.Len(t, threads, 2, "the invocation's thread, waiting in join, and the worker: %v", threads)
	assert.Equal(t, "work", c.StackTrace(t, st.ThreadID)[0].Name)
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Equal(t, `["worked"]`, result(t, res).body)
}

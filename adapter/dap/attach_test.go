package dap

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/testfixtures/apps"
)

func TestParseAttach(t *testing.T) {
	c, err := parseAttach(nil)
	require.NoError(t, err)
	assert.True(t, c.JustMyCode)
	assert.True(t, c.RedirectOutput)

	c, err = parseAttach(json.RawMessage(`{"type": "plldb", "request": "attach", "host": "127.0.0.1", "port": 4711, "justMyCode": false,
		"pathMappings": [{"localRoot": "/a", "remoteRoot": "/b"}], "template": "ignored.yaml"}`))
	require.NoError(t, err)
	assert.False(t, c.JustMyCode)
	assert.Equal(t, []PathMapping{{LocalRoot: "/a", RemoteRoot: "/b"}}, c.PathMappings)

	for raw, want := range map[string]string{
		`[]`:                   "must be a JSON object",
		`{"justMyCode": "no"}`: `"justMyCode" must be true or false`,
		`{"pathMappings": [{"localRoot": "/a"}]}`: `"pathMappings"[0] needs both`,
		`{"token": 12345}`:                        `"token" must be a string`,
	} {
		_, err := parseAttach(json.RawMessage(raw))
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), want, raw)
		assert.NotContains(t, err.Error(), "12345", "a token is never echoed")
	}
}

// TestHostServesSuccessiveIDEs: a Host owns a local pipeline; IDEs attach over a listener one at a time, a
// second concurrent one is refused, detaching leaves the pipeline serving with no debugger (a paused invocation
// goes on), and the next attach stops at the breakpoints it sets. In process, so -race covers the Host.
func TestHostServesSuccessiveIDEs(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	line := bpLine(t, file, "handler")
	var mu sync.Mutex
	var finished int
	host := NewHost(HostOptions{Logger: testLogger(t), Observer: countFinished{&mu, &finished}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := local.Start(ctx, local.Options{
		Template: filepath.Join(app, "template.yaml"), Functions: []string{"HelloFunction"}, Python: testPython(t),
		Port: 0, Debug: true, Hooks: host.Hooks(), Logger: testLogger(t),
	})
	require.NoError(t, err)
	host.SetPipeline(p)
	l, err := Listen("127.0.0.1:0", Options{Logger: testLogger(t), Host: host})
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx) }()
	endpoint := p.Endpoint()

	attachIDE := func(beforeConfig func(*daptest.Client)) *daptest.Client {
		conn, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		c := daptest.NewT(t, conn)
		c.ExpectInitializeResponse(t)
		c.Request(t, "attach", map[string]any{"type": "plldb", "request": "attach", "name": "a", "port": 1})
		c.ExpectOutputEventContaining(t, "Invoke API at "+endpoint)
		c.ExpectInitializedEvent(t)
		if beforeConfig != nil {
			beforeConfig(c)
		}
		setBreakpoints(t, c, file, map[string]any{"line": line})
		c.Request(t, "configurationDone", nil)
		return c
	}

	c := attachIDE(nil)
	first := invoke(t, endpoint, "HelloFunction", `{"n": 1}`)
	c.ExpectStoppedEventReason(t, "breakpoint")

	other, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	c2 := daptest.NewT(t, other)
	c2.ExpectInitializeResponse(t)
	assert.Contains(t, c2.RequestError(t, "attach", map[string]any{}).ErrorText(), "another IDE is connected")
	launchErr := c2.RequestError(t, "launch", map[string]any{"type": "plldb", "request": "launch", "name": "l"}).ErrorText()
	assert.Contains(t, launchErr, `this plldb already runs the functions (debugging HelloFunction; Invoke API at `+endpoint+`): send "request": "attach" instead of launch`)
	require.NoError(t, c2.Close())

	c.Request(t, "disconnect", map[string]any{"terminateDebuggee": true}) // the backend is the host's: ignored
	<-c.Done()
	assert.Equal(t, 200, result(t, first).status, "the paused invocation went on")
	assert.Equal(t, 200, result(t, invoke(t, endpoint, "HelloFunction", `{"n": 2}`)).status, "no debugger: nothing pauses")

	// An invocation that arrives while the IDE is still configuring waits for its configurationDone, and so
	// stops at the breakpoint the IDE sends meanwhile.
	var next <-chan invokeResult
	c = attachIDE(func(c *daptest.Client) {
		next = invoke(t, endpoint, "HelloFunction", `{"n": 3}`)
		c.ExpectOutputEventContaining(t, "waits until the IDE has sent its breakpoints")
	})
	st2 := c.ExpectStoppedEventReason(t, "breakpoint")
	frames := c.StackTrace(t, st2.ThreadID)
	assert.Equal(t, "3", c.Evaluate(t, frames[0].ID, `event["n"]`))
	c.Request(t, "continue", map[string]any{"threadId": st2.ThreadID})
	assert.Equal(t, 200, result(t, next).status)
	require.NoError(t, c.Close()) // the IDE goes away without a disconnect: detached all the same

	assert.Eventually(t, func() bool { return host.bound() == nil }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, 200, result(t, invoke(t, endpoint, "HelloFunction", `{"n": 4}`)).status)
	cancel()
	require.NoError(t, <-served)
	closeCtx, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	require.NoError(t, host.Close(closeCtx))
	mu.Lock()
	assert.Equal(t, 4, finished, "the command's own observer heard every invocation")
	mu.Unlock()
}

type countFinished struct {
	mu *sync.Mutex
	n  *int
}

func (c countFinished) Started(*wire.Invoke) {}

func (c countFinished) Finished(*wire.Invoke, executor.Outcome, error) {
	c.mu.Lock()
	*c.n++
	c.mu.Unlock()
}

// TestAttachShowsInvocationsAlreadyPaused: an invocation is paused in debugpy when the IDE attaches (here a
// client left without the disconnect that resumes it, as a detach whose disconnect never reached debugpy
// would); the attaching IDE gets a stopped event for it after configurationDone, and can continue it.
func TestAttachShowsInvocationsAlreadyPaused(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	line := bpLine(t, file, "handler")
	host := NewHost(HostOptions{Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := local.Start(ctx, local.Options{
		Template: filepath.Join(app, "template.yaml"), Functions: []string{"HelloFunction"}, Python: testPython(t),
		Port: 0, Debug: true, Hooks: host.Hooks(), Logger: testLogger(t),
	})
	require.NoError(t, err)
	host.SetPipeline(p)
	defer func() {
		closeCtx, done := context.WithTimeout(context.Background(), 30*time.Second)
		defer done()
		require.NoError(t, host.Close(closeCtx))
	}()

	// Pause an invocation with a plain debugpy client that then goes away without a disconnect.
	ex, _ := p.Executor("HelloFunction")
	raw, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ex.DebugPort())))
	require.NoError(t, err)
	rc := daptest.New(raw)
	require.True(t, rc.Request(t, "pydevdAuthorize", map[string]any{"debugServerAccessToken": ex.DebugToken()}).Success)
	rc.ExpectInitializeResponse(t)
	rc.MustSend(t, "attach", map[string]any{"stopAllThreadsOnSuspend": false, "steppingResumesAllThreads": false})
	rc.ExpectInitializedEvent(t)
	setBreakpoints(t, rc, file, map[string]any{"line": line})
	rc.Request(t, "configurationDone", nil)
	paused := invoke(t, p.Endpoint(), "HelloFunction", `{"n": 5}`)
	rc.ExpectStoppedEvent(t)
	require.NoError(t, raw.Close())

	l, err := Listen("127.0.0.1:0", Options{Logger: testLogger(t), Host: host})
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx) }()
	conn, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	c := daptest.NewT(t, conn)
	c.ExpectInitializeResponse(t)
	c.Request(t, "attach", map[string]any{})
	c.ExpectInitializedEvent(t)
	c.Request(t, "configurationDone", nil)
	st := c.ExpectStoppedEventReason(t, "pause")
	assert.False(t, st.AllThreadsStopped)
	threads := c.Request(t, "threads", nil).BodyMap()["threads"].([]any)
	require.Len(t, threads, 1, "the executor's own threads stay hidden")
	assert.Regexp(t, `^HelloFunction [0-9a-f]{8}$`, threads[0].(map[string]any)["name"])
	frames := c.StackTrace(t, st.ThreadID)
	assert.Equal(t, line, frames[0].Line)
	assert.Equal(t, "5", c.Evaluate(t, frames[0].ID, `event["n"]`))
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	assert.Equal(t, 200, result(t, paused).status)
	c.Request(t, "disconnect", nil)
	<-c.Done()
	cancel()
	require.NoError(t, <-served)
}

// TestAttachDoesNotShowRunningInvocationsAsPaused: an invocation that runs while the IDE attaches is not
// reported stopped (debugpy gives a running thread's stack too, but no variables).
func TestAttachDoesNotShowRunningInvocationsAsPaused(t *testing.T) {
	tpl, err := apps.WriteSlow(t.TempDir(), 3)
	require.NoError(t, err)
	host := NewHost(HostOptions{Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := local.Start(ctx, local.Options{Template: tpl, Python: testPython(t), Port: 0, Debug: true, Hooks: host.Hooks(), Logger: testLogger(t)})
	require.NoError(t, err)
	host.SetPipeline(p)
	defer func() { _ = host.Close(context.Background()) }()
	l, err := Listen("127.0.0.1:0", Options{Logger: testLogger(t), Host: host})
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx) }()

	running := invoke(t, p.Endpoint(), "Slow", `{}`)
	time.Sleep(500 * time.Millisecond) // it runs, with no IDE: nothing holds it
	conn, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	c := daptest.NewT(t, conn)
	c.ExpectInitializeResponse(t)
	c.Request(t, "attach", map[string]any{})
	c.ExpectInitializedEvent(t)
	c.Request(t, "configurationDone", nil)
	r := result(t, running)
	assert.Equal(t, `"finished"`, r.body)
	for _, m := range c.Drain() {
		assert.NotEqual(t, "stopped", m.Event, "a running invocation was reported paused: %s", m)
	}
	c.Request(t, "disconnect", nil)
	<-c.Done()
	cancel()
	require.NoError(t, <-served)
}

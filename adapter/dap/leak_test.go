package dap

import (
	"context"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
)

// adapterGoroutines lists the stacks of goroutines running the session's or a debuggee's code.
func adapterGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "adapter/dap.(*session)") || strings.Contains(g, "adapter/dap.(*debuggee)") || strings.Contains(g, "adapter/dap.(*Listener)") {
			out = append(out, g)
		}
	}
	return out
}

// TestNoGoroutineLeft: once a session with a stop, a continue and a disconnect is over and the server stopped,
// none of the adapter's goroutines remain.
func TestNoGoroutineLeft(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	l, err := Listen("127.0.0.1:0", Options{Logger: testLogger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx) }()
	conn, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	c := daptest.New(conn)

	endpoint := launch(t, c, app, []string{"HelloFunction", "PackageFunction"}, nil)
	setBreakpoints(t, c, file, map[string]any{"line": bpLine(t, file, "handler")})
	c.Request(t, "configurationDone", nil)
	res := invoke(t, endpoint, "HelloFunction", `{}`)
	st := c.ExpectStoppedEvent(t)
	c.Request(t, "threads", nil)
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	result(t, res)
	require.NotEmpty(t, adapterGoroutines(), "the check sees a live session's goroutines")
	c.Request(t, "disconnect", nil)
	<-c.Done()
	cancel()
	require.NoError(t, <-served)

	assert.Eventually(t, func() bool { return len(adapterGoroutines()) == 0 }, 10*time.Second, 20*time.Millisecond,
		"adapter goroutines left: %v", adapterGoroutines())
}

package dap

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/plldb/plldb/adapter/daptest"
)

// TestNoGoroutineLeft: once a session with a stop, a continue and a disconnect is over and the server stopped,
// none of the goroutines started since the test began remain.
func TestNoGoroutineLeft(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	ignore := goleak.IgnoreCurrent()
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
	require.Error(t, goleak.Find(ignore), "the check sees a live session's goroutines")
	c.Request(t, "disconnect", nil)
	<-c.Done()
	cancel()
	require.NoError(t, <-served)

	goleak.VerifyNone(t, ignore)
}

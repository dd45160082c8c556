package proxy

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/runtimeapi"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// TestFirstInvocationWaitsForTheRelay: the child initialises before the relay link is up (a slow authorizer,
// a cold relay); the first invocation is held in the init phase and goes to the developer once the link is up,
// instead of falling back to the deployed code.
func TestFirstInvocationWaitsForTheRelay(t *testing.T) {
	api := runtimeapi.NewServer(runtimeapi.ServerOptions{})
	require.NoError(t, api.Start(context.Background()))
	t.Cleanup(func() { _ = api.Close() })
	link := newConnectedLink()
	release := make(chan struct{})
	env := baseEnv(t, "echo.handler")
	logs := &logbuf.Buffer{}
	cfg := Config{
		RuntimeAPI: api.Addr(),
		Command:    []string{filepath.Join(filepath.Dir(pyenv.Python(t)), "python3"), filepath.Join(fixtures(), "bootstrap.py")},
		Env:        env,
		Session: &SessionConfig{
			Function:    wire.FunctionIdentity{Name: "fn-under-test", Runtime: "AWS_Lambda_python3.12", Handler: "echo.handler"},
			Env:         envMap(env),
			AckTimeout:  10 * time.Second,
			ConnectWait: time.Minute,
			Dial: func(ctx context.Context) (Link, error) {
				select {
				case <-release:
					return link, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			},
		},
		Stdout:      &logbuf.Buffer{},
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ChildStdout: &logbuf.Buffer{},
		ChildStderr: &logbuf.Buffer{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = Run(ctx, cfg)
	}()
	t.Cleanup(func() { cancel(); <-done })

	answered := make(chan runtimeapi.Response, 1)
	go func() {
		resp, err := api.Invoke(ctx, runtimeapi.Invocation{RequestID: "req-cold-1", Deadline: time.Now().Add(time.Minute), Event: []byte(`{"x":1}`)})
		if err == nil {
			answered <- resp
		}
	}()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "holding the first invocation") },
		20*time.Second, 5*time.Millisecond, "the runtime initialised and the proxy holds the invocation")
	select {
	case r := <-answered:
		t.Fatalf("answered before the relay was up (fallback): %s", r.Payload)
	default:
	}
	close(release)
	inv := decodeInvoke(t, link.expectSent(t))
	assert.Equal(t, "req-cold-1", inv.RequestID, "the held invocation goes to the developer")
}

package dap

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/awsharness"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/moto"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// testLogger logs to the test's output at debug level when PLLDB_TEST_LOG is set, else discards.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("PLLDB_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startAdapter serves the adapter on a loopback listener and connects a test client to it.
func startAdapter(t testing.TB) *daptest.Client {
	t.Helper()
	return startAdapterWith(t, Options{})
}

// startAdapterWith is startAdapter with options (the test logger is added unless opts has a logger).
func startAdapterWith(t testing.TB, opts Options) *daptest.Client {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	l, err := Listen("127.0.0.1:0", opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx) }()
	conn, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	c := daptest.New(conn)
	t.Cleanup(func() {
		_ = c.Close()
		cancel()
		require.NoError(t, <-served)
	})
	return c
}

// startAdapterLogging is startAdapter with every log line of the adapter and its backend, at debug level,
// collected in the returned buffer.
func startAdapterLogging(t testing.TB) (*daptest.Client, *logbuf.Buffer) {
	t.Helper()
	logs := &logbuf.Buffer{}
	return startAdapterWith(t, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}), logs
}

// newAWSHarness starts the offline AWS harness (moto, the embedded relay, emulated sandboxes) and points the
// test's AWS SDK environment at its moto.
func newAWSHarness(t testing.TB) *awsharness.Harness {
	t.Helper()
	h := awsharness.New(t, awsharness.Options{Logger: testLogger(t)})
	for _, kv := range h.Moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return h
}

// helloApp copies the hello sample app into a temporary folder (tests edit handlers and the interpreter writes
// __pycache__) and returns its folder.
func helloApp(t testing.TB) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "hello")
	require.NoError(t, os.CopyFS(dst, os.DirFS(apps.Dir("hello"))))
	return dst
}

func testPython(t testing.TB) string { return pyenv.Python(t) }

// launch initializes and launches a local session of app serving fns, and returns the Invoke API endpoint.
func launch(t testing.TB, c *daptest.Client, app string, fns []string, extra map[string]any) string {
	t.Helper()
	c.ExpectInitializeResponse(t)
	args := map[string]any{
		"mode": "local", "template": filepath.Join(app, "template.yaml"), "invokePort": 0,
		"python": pyenv.Python(t), "functions": fns, "name": "test", "type": "plldb", "request": "launch",
	}
	for k, v := range extra {
		args[k] = v
	}
	c.Request(t, "launch", args)
	out := c.ExpectOutputEventContaining(t, "Invoke API at ")
	c.ExpectInitializedEvent(t)
	_, endpoint, _ := strings.Cut(strings.TrimSpace(out), "Invoke API at ")
	require.True(t, strings.HasPrefix(endpoint, "http://127.0.0.1:"), "endpoint %q", endpoint)
	return endpoint
}

type invokeResult struct {
	status int
	body   string
	err    error
}

// invoke calls a function over the Invoke API in the background.
func invoke(t testing.TB, endpoint, fn, payload string) <-chan invokeResult {
	t.Helper()
	ch := make(chan invokeResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/2015-03-31/functions/"+fn+"/invocations", strings.NewReader(payload))
		if err != nil {
			ch <- invokeResult{err: err}
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- invokeResult{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- invokeResult{status: resp.StatusCode, body: string(b), err: err}
	}()
	return ch
}

// result waits for an invocation's answer.
func result(t testing.TB, ch <-chan invokeResult) invokeResult {
	t.Helper()
	select {
	case r := <-ch:
		require.NoError(t, r.err)
		return r
	case <-time.After(2 * time.Minute):
		t.Fatal("no answer to the invocation")
		return invokeResult{}
	}
}

func setBreakpoints(t testing.TB, c *daptest.Client, path string, bps ...map[string]any) []map[string]any {
	t.Helper()
	if bps == nil {
		bps = []map[string]any{}
	}
	var b struct {
		Breakpoints []map[string]any `json:"breakpoints"`
	}
	require.NoError(t, c.Request(t, "setBreakpoints", map[string]any{"source": map[string]any{"path": path}, "breakpoints": bps}).Decode(&b))
	return b.Breakpoints
}

func bpLine(t testing.TB, file, fn string) int {
	t.Helper()
	line, err := apps.BreakpointLine(file, fn)
	require.NoError(t, err)
	return line
}

// ordersStack deploys a stack named prefix plus the install's name, holding the harness app's OrdersFunction
// (the deployed code answers {"where": "deployed"}) with env, and returns the stack's name, the function's
// deployed name and its settings before any attach.
func ordersStack(t testing.TB, h *awsharness.Harness, app awsharness.App, prefix string, env map[string]string) (stack, orders string, before awsharness.Settings) {
	t.Helper()
	stack = prefix + strings.ToLower(h.Install.Name)
	fns := h.DeployStack(t, stack, []awsharness.Function{{LogicalID: "OrdersFunction", CodeDir: app.Deployed, Env: env, Timeout: 5}})
	orders = fns["OrdersFunction"].Name
	return stack, orders, h.Settings(t, orders)
}

// launchAWSOrders sends an aws-mode launch of the stack's OrdersFunction from app's template, with attrs added,
// and returns the "attached to stack" banner once the adapter says it.
func launchAWSOrders(t testing.TB, c *daptest.Client, h *awsharness.Harness, app awsharness.App, stack string, attrs map[string]any) string {
	t.Helper()
	args := map[string]any{
		"mode": "aws", "stackName": stack, "installName": h.Install.Name, "endpointUrl": h.Moto.Endpoint, "region": moto.Region,
		"template": app.Template, "python": testPython(t), "functions": []string{"OrdersFunction"},
	}
	maps.Copy(args, attrs)
	c.Request(t, "launch", args)
	return c.ExpectOutputEventContaining(t, "attached to stack "+stack)
}

// ordersEvent is an API Gateway (REST) GET /orders event, with the knock in its headers unless knock is "".
func ordersEvent(t testing.TB, knock string, order int) []byte {
	t.Helper()
	headers := map[string]string{"Accept": "application/json"}
	if knock != "" {
		headers["X-Plldb-Knock"] = knock
	}
	b, err := json.Marshal(map[string]any{"httpMethod": "GET", "path": "/orders", "headers": headers, "requestContext": map[string]any{}, "order": order})
	require.NoError(t, err)
	return b
}

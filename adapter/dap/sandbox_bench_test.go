package dap

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// BenchmarkSecondSandboxToBreakpoints measures what a concurrent invocation pays when every warm sandbox of its
// function is busy (target p50 ≤ 400 ms): from the invocation to its new sandbox started under debugpy, attached
// by the adapter, and configured with the session's breakpoints (three sources, two breakpoints each, a function
// breakpoint and the exception filters), just before it takes the invocation.
func BenchmarkSecondSandboxToBreakpoints(b *testing.B) {
	app := helloApp(b)
	src := filepath.Join(app, "src")
	gate := filepath.Join(b.TempDir(), "gate")
	require.NoError(b, os.WriteFile(filepath.Join(src, "bench.py"), []byte(`import os, time
def handler(event, context):
    while event.get('gate') and not os.path.exists(event['gate']):
        time.sleep(0.002)
    return 1

def unused():
    x = 1
    return x
`), 0o644))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := newSession(nopConn{}, Options{Logger: log})
	s.cfg = &LaunchConfig{JustMyCode: true}
	// Breakpoints in code the benchmark's invocations never run: where they are is what is replayed, not hit.
	for f, lines := range map[string][]int{"app.py": {8, 9}, "bench.py": {8, 9}, filepath.Join("pkg", "orders.py"): {3, 4}} {
		path := filepath.Join(src, f)
		args, err := parseObj(mustJSON(map[string]any{"source": map[string]any{"path": path}, "breakpoints": []map[string]any{{"line": lines[0]}, {"line": lines[1]}}}))
		require.NoError(b, err)
		s.bps[path] = args
		s.bpOrder = append(s.bpOrder, path)
	}
	s.fnBps = mustJSON(map[string]any{"breakpoints": []map[string]any{{"name": "nosuchfunction"}}})
	s.excBps = mustJSON(map[string]any{"filters": []string{"raised", "uncaught"}})

	var mu sync.Mutex
	var attached time.Time
	var ex *executor.Executor
	var err error
	ex, err = executor.Start(context.Background(), executor.Spec{
		LogicalID: "HelloFunction", Handler: "bench.handler", CodeDir: src, Python: pyenv.Python(b), Debug: true,
		IdleTimeout: 50 * time.Millisecond,
		OnStart: func(ctx context.Context, sb executor.SandboxInfo) {
			if ex == nil {
				return // the first sandbox, at start
			}
			require.NoError(b, s.attach(backendFunction{LogicalID: sb.Function, Sandbox: sb.ID, DebugPort: sb.DebugPort, DebugToken: ex.DebugToken()}))
			mu.Lock()
			attached = time.Now()
			mu.Unlock()
		},
	}, func(executor.LogLine) {})
	require.NoError(b, err)
	b.Cleanup(func() {
		s.shutdown(false)
		require.NoError(b, ex.Close())
	})
	invoke := func(event string) {
		out, err := ex.Invoke(context.Background(), executor.Invocation{Event: []byte(event)})
		require.NoError(b, err)
		require.Nil(b, out.Err)
	}
	var lat []time.Duration
	for b.Loop() {
		b.StopTimer()
		require.NoError(b, os.RemoveAll(gate))
		busy := make(chan struct{})
		go func() { defer close(busy); invoke(fmt.Sprintf(`{"gate": %q}`, gate)) }()
		require.Eventually(b, func() bool { return len(ex.Sandboxes()) == 1 }, 10*time.Second, time.Millisecond)
		time.Sleep(20 * time.Millisecond) // the busy invocation holds the only sandbox
		b.StartTimer()
		start := time.Now()
		invoke(`{}`)
		mu.Lock()
		lat = append(lat, attached.Sub(start))
		mu.Unlock()
		b.StopTimer()
		require.NoError(b, os.WriteFile(gate, nil, 0o600))
		<-busy
		// The idle sandboxes are reaped down to one before the next round.
		require.Eventually(b, func() bool { return len(ex.Sandboxes()) == 1 }, 10*time.Second, time.Millisecond)
		b.StartTimer()
	}
	b.ReportMetric(percentile(lat, 0.5), "p50-ms")
	b.ReportMetric(percentile(lat, 0.95), "p95-ms")
}

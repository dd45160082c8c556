package executor

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/testfixtures/pyenv"
	"github.com/stretchr/testify/require"
)

const trivial = "def handler(event, context):\n    return {'ok': True}\n"

// BenchmarkInvokeTrivial measures one invocation of a trivial handler through Go → Python → Go.
func BenchmarkInvokeTrivial(b *testing.B) {
	e, _ := start(b, Spec{}, map[string]string{"app.py": trivial})
	event := []byte(`{"key": "value"}`)
	invoke(b, e, Invocation{Event: event}) // import the handler
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.Invoke(context.Background(), Invocation{Event: event}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel8", func(b *testing.B) {
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		t0 := time.Now()
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(b.N) {
					if _, err := e.Invoke(context.Background(), Invocation{Event: event}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "invocations/s")
	})
}

// BenchmarkColdStart measures process start → ready (debugpy listening when debugging).
func BenchmarkColdStart(b *testing.B) {
	dir := b.TempDir()
	writeFiles(b, dir, map[string]string{"app.py": trivial})
	py := pyenv.Python(b)
	for _, c := range []struct {
		name string
		spec Spec
	}{
		{"plain", Spec{}},
		{"debug-in-process-adapter", Spec{Debug: true}},
		{"debug-adapter-process", Spec{Debug: true, adapterProcess: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			spec := c.spec
			spec.LogicalID, spec.Handler, spec.CodeDir, spec.Python = "Fn", "app.handler", dir, py
			for b.Loop() {
				e, err := Start(context.Background(), spec, nil)
				require.NoError(b, err)
				b.StopTimer()
				require.NoError(b, e.Close())
				b.StartTimer()
			}
		})
	}
}

// BenchmarkReloadScan reports what the per-invocation check for edited sources costs with 100 user modules
// loaded (scan-ns/op, measured inside Python), next to the whole invocation.
func BenchmarkReloadScan(b *testing.B) {
	files := map[string]string{}
	var imports []string
	for i := range 100 {
		name := fmt.Sprintf("mod%03d", i)
		files["lib/"+name+".py"] = fmt.Sprintf("VALUE = %d\n", i)
		imports = append(imports, "lib."+name)
	}
	files["lib/__init__.py"] = ""
	files["app.py"] = "import " + strings.Join(imports, ", ") + "\n" + trivial
	e, _ := start(b, Spec{}, files)
	invoke(b, e, Invocation{})
	e.scanNs.Store(0)
	e.scans.Store(0)
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Invoke(context.Background(), Invocation{}); err != nil {
			b.Fatal(err)
		}
	}
	if n := e.scans.Load(); n > 0 {
		b.ReportMetric(float64(e.scanNs.Load())/float64(n), "scan-ns/op")
	}
}

// BenchmarkLargeRoundTrip sends a 6 MB event and gets a 6 MB response back (Lambda's synchronous limits). The
// event is checked with wire.Valid, as the developer side has it checked (json.Valid adds ~25 ms here).
func BenchmarkLargeRoundTrip(b *testing.B) {
	e, _ := start(b, Spec{ValidJSON: wire.Valid}, map[string]string{"app.py": "def handler(event, context):\n    return event\n"})
	ev := []byte(`{"data": "` + strings.Repeat("0123456789abcdef", 6<<20/16-16) + `"}`)
	b.SetBytes(int64(2 * len(ev)))
	for b.Loop() {
		out, err := e.Invoke(context.Background(), Invocation{Event: ev})
		if err != nil || out.Err != nil || len(out.Payload) < len(ev)-8 {
			b.Fatalf("round trip failed: %v %v (%d bytes)", err, out.Err, len(out.Payload))
		}
	}
}

// BenchmarkIdleSandboxRSS reports the resident memory of a warm, idle sandbox (targets: ≤ 20 MB without debugpy,
// ≤ 45 MB with it): a sandbox is started, runs one invocation of a trivial handler (so the handler is imported,
// as in every warm sandbox), and its VmRSS is read once it is idle. It is what each concurrent invocation costs
// while the pool keeps it warm.
func BenchmarkIdleSandboxRSS(b *testing.B) {
	dir := b.TempDir()
	writeFiles(b, dir, map[string]string{"app.py": trivial})
	py := pyenv.Python(b)
	for _, c := range []struct {
		name  string
		debug bool
	}{{"plain", false}, {"debugpy", true}} {
		b.Run(c.name, func(b *testing.B) {
			var total float64
			n := 0
			for b.Loop() {
				e, err := Start(context.Background(), Spec{LogicalID: "Fn", Handler: "app.handler", CodeDir: dir, Python: py, Debug: c.debug}, func(LogLine) {})
				require.NoError(b, err)
				out, err := e.Invoke(context.Background(), Invocation{})
				require.NoError(b, err)
				require.Nil(b, out.Err)
				time.Sleep(100 * time.Millisecond)
				kb, err := vmRSS(e.PID())
				require.NoError(b, err)
				total += float64(kb) / 1024
				n++
				b.StopTimer()
				require.NoError(b, e.Close())
				b.StartTimer()
			}
			b.ReportMetric(total/float64(n), "rss-MB")
		})
	}
}

// vmRSS reads a process's resident set size in kB from /proc.
func vmRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			_, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for process %d", pid)
}

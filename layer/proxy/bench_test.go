package proxy

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plldb/plldb/layer/runtimeapi"
)

// BenchmarkPassThrough measures one invocation through the layer (stand-in Runtime API → wrapper → proxy →
// Python runtime and back) against the same runtime talking to the stand-in directly. The difference of the
// two ns/op is the proxy's per-invocation overhead; the proxy case also reports the proxy's peak RSS.
func BenchmarkPassThrough(b *testing.B) {
	event := []byte(`{"path":"/orders/42","httpMethod":"GET","headers":{"accept":"application/json"}}`)
	for _, mode := range []struct {
		name   string
		direct bool
	}{{"direct", true}, {"proxy", false}} {
		b.Run(mode.name, func(b *testing.B) {
			sb := startSandbox(b, sandboxOpts{handler: "noop.handler", direct: mode.direct})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			// Warm up: the runtime's init and the first connections are not what is measured.
			for range 20 {
				if _, err := sb.api.Invoke(ctx, runtimeapi.Invocation{Event: event}); err != nil {
					b.Fatalf("warm-up: %v\n%s", err, sb.stderr)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r, err := sb.api.Invoke(ctx, runtimeapi.Invocation{Event: event})
				if err != nil || r.Error {
					b.Fatalf("invoke: %v %s", err, r.Payload)
				}
			}
			b.StopTimer()
			if !mode.direct {
				// After exec the shell's pid is the proxy's.
				hwm, rss, err := procMemory(sb.cmd.Process.Pid)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(hwm), "proxy-VmHWM-kB")
				b.ReportMetric(float64(rss), "proxy-VmRSS-kB")
			}
		})
	}
}

// procMemory reads VmHWM (peak resident set) and VmRSS, in kB, from /proc/<pid>/status.
func procMemory(pid int) (hwm, rss int, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read proxy memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s %q: %w", k, v, err)
		}
		if k == "VmHWM" {
			hwm = n
		} else {
			rss = n
		}
	}
	return hwm, rss, sc.Err()
}

func TestProcMemoryReadsOwnProcess(t *testing.T) {
	hwm, rss, err := procMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if hwm <= 0 || rss <= 0 || rss > hwm {
		t.Fatalf("implausible VmHWM %d kB / VmRSS %d kB", hwm, rss)
	}
}

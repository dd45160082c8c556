package proxy

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/layer/runtimeapi"
)

// BenchmarkPassThrough measures one invocation through the layer (stand-in Runtime API → wrapper → proxy →
// Python runtime and back) against the same runtime talking to the stand-in directly, and through the layer
// attached selectively (the invocation carries no knock). The difference of the
// two ns/op is the proxy's per-invocation overhead; the proxy case also reports the proxy's peak RSS.
func BenchmarkPassThrough(b *testing.B) {
	benchPassThrough(b, false)
}

// selectiveBenchEnv attaches the function selectively (no invocation of the benchmarks is knocked, so the relay
// endpoint, where nobody listens, is never called).
func selectiveBenchEnv() []string {
	return []string{"PLLDB_ENDPOINT=ws://127.0.0.1:9/nobody-listens", "PLLDB_SESSION=s-bench",
		"PLLDB_FUNCTION_KEY=cGxsZGItcmllLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmM=", "PLLDB_SELECTIVE=true", "PLLDB_KNOCK_STACK=shop",
		"PLLDB_KNOCK_KEYS=" + selenv.FormatKnockKeys(map[string]ed25519.PublicKey{"s-bench": testPub(1), "s-other": testPub(2)})}
}

// BenchmarkPassThroughGoRuntime is BenchmarkPassThrough with a minimal Go runtime as the child, so the
// difference between direct and proxy is less drowned in the Python runtime's own time.
func BenchmarkPassThroughGoRuntime(b *testing.B) {
	benchPassThrough(b, true)
}

func benchPassThrough(b *testing.B, goRuntime bool) {
	event := []byte(`{"path":"/orders/42","httpMethod":"GET","headers":{"accept":"application/json"}}`)
	for _, mode := range []struct {
		name   string
		direct bool
		env    []string
	}{{"direct", true, nil}, {"proxy", false, nil}, {"selective", false, selectiveBenchEnv()}} {
		b.Run(mode.name, func(b *testing.B) {
			sb := startSandbox(b, sandboxOpts{handler: "noop.handler", direct: mode.direct, goRuntime: goRuntime, env: mode.env})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			// Warm up: the runtime's init and the first connections are not what is measured.
			for range 20 {
				if _, err := sb.api.Invoke(ctx, runtimeapi.Invocation{Event: event}); err != nil {
					b.Fatalf("warm-up: %v\n%s", err, sb.stderr)
				}
			}
			pid := sb.cmd.Process.Pid // after exec, the shell's pid is the proxy's (or the runtime's, direct)
			cpu0, err := procCPU(pid)
			if err != nil {
				b.Fatal(err)
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
			cpu1, err := procCPU(pid)
			if err != nil {
				b.Fatal(err)
			}
			// CPU time is far less disturbed by a busy machine than wall time.
			name := "runtime-cpu-ns/op"
			if !mode.direct {
				name = "proxy-cpu-ns/op"
			}
			b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), name)
			if mode.env != nil && !strings.Contains(sb.stderr.String(), "selective mode: only invocations with a valid knock") {
				b.Fatalf("not in selective mode:\n%s", sb.stderr)
			}
			if !mode.direct {
				hwm, rss, err := procMemory(pid)
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

// procCPU is the user+system CPU time a process used so far, from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read process cpu: %w", err)
	}
	// The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / clkTck, nil
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

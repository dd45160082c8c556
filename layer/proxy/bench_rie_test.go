package proxy

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/plldb/plldb/testfixtures/rie"
)

// otherLayerEnv names an unpacked layer (a folder with plldb/wrapper) of another build, e.g. the previous
// commit's, measured in the same interleaved run as a third column ("other-…" metrics).
const otherLayerEnv = "PLLDB_BENCH_OTHER_LAYER"

// BenchmarkPassThroughRIE measures the layer's pass-through overhead where it matters: AWS's runtime
// (awslambdaric) under AWS's Runtime Interface Emulator, alone and with the layer in front of it, invoked
// alternately (A/B interleaved, the order rotated every iteration) so that both see the same machine load. One
// op is one invocation of each. It reports each side's p50/p99 and the differences, the proxy's CPU time per
// invocation (from /proc, steadier than wall time on a busy machine), its memory, and the CPU ticks it used
// while idle for idleFor.
func BenchmarkPassThroughRIE(b *testing.B) {
	fn := rie.Function{Dir: rieHandlers(), Handler: "noop.handler"}
	cols := []*rieColumn{
		{name: "direct", inst: rie.Direct().Start(b, fn)},
		{name: "layer", inst: layerWay().Start(b, fn)},
	}
	if other := os.Getenv(otherLayerEnv); other != "" {
		w := rie.Wrapped("other", filepath.Join(other, "plldb", "wrapper"), "PLLDB_LOGICAL_ID=CasesFunction", "PLLDB_LOG_LEVEL=info")
		cols = append(cols, &rieColumn{name: "other", inst: w.Start(b, fn)})
	}
	event := rie.Event{Body: []byte(`{"path":"/orders/42","httpMethod":"GET","headers":{"accept":"application/json"}}`)}
	benchRIEColumns(b, event, cols)
}

// rieColumn is one way of running the function in an interleaved RIE benchmark; the first column is the
// baseline the others are compared with.
type rieColumn struct {
	name string
	inst rie.Instance
	lat  []time.Duration
	pid  int
}

// benchRIEColumns invokes each column in turn with event (A/B interleaved, the order rotated every iteration)
// and reports what BenchmarkPassThroughRIE's comment says.
func benchRIEColumns(b *testing.B, event rie.Event, cols []*rieColumn) {
	type column = rieColumn
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	invoke := func(c *column) time.Duration {
		start := time.Now()
		r, err := c.inst.Invoke(ctx, event)
		d := time.Since(start)
		if err != nil || r.Status != http.StatusOK {
			b.Fatalf("%s: invoke: %v %d %s\nlogs:\n%s", c.name, err, r.Status, r.Body, c.inst.Logs())
		}
		return d
	}
	// Warm up: init, first connections, Python's first calls.
	for range 50 {
		for _, c := range cols {
			invoke(c)
		}
	}
	cpu0 := map[string]time.Duration{}
	for _, c := range cols[1:] {
		pid, err := c.inst.(interface{ Emulator() *rie.Emulator }).Emulator().FindProcess("proxy")
		if err != nil {
			b.Fatal(err)
		}
		c.pid = pid
		if cpu0[c.name], err = procCPU(pid); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	b.ResetTimer()
	for b.Loop() {
		for k := range cols {
			c := cols[(i+k)%len(cols)]
			c.lat = append(c.lat, invoke(c))
		}
		i++
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	base := cols[0]
	b.ReportMetric(ms(percentile(base.lat, 50)), "direct-p50-ms")
	b.ReportMetric(ms(percentile(base.lat, 99)), "direct-p99-ms")
	for _, c := range cols[1:] {
		p50, p99 := percentile(c.lat, 50), percentile(c.lat, 99)
		b.ReportMetric(ms(p50), c.name+"-p50-ms")
		b.ReportMetric(ms(p99), c.name+"-p99-ms")
		b.ReportMetric(ms(p50-percentile(base.lat, 50)), c.name+"-added-p50-ms")
		b.ReportMetric(ms(p99-percentile(base.lat, 99)), c.name+"-added-p99-ms")
		// The same, pair by pair: each invocation against the direct one next to it in time, so that a stall
		// of the whole machine mostly cancels out.
		diffs := make([]time.Duration, len(c.lat))
		for k := range diffs {
			diffs[k] = c.lat[k] - base.lat[k]
		}
		b.ReportMetric(ms(percentile(diffs, 50)), c.name+"-paired-p50-ms")
		b.ReportMetric(ms(percentile(diffs, 99)), c.name+"-paired-p99-ms")
		cpu1, err := procCPU(c.pid)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(cpu1-cpu0[c.name])/float64(time.Microsecond)/float64(len(c.lat)), c.name+"-proxy-cpu-us/op")
		hwm, rss, err := procMemory(c.pid)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(hwm)/1024, c.name+"-proxy-VmHWM-MB")
		b.ReportMetric(float64(rss)/1024, c.name+"-proxy-VmRSS-MB")
	}
	// Idle: no invocation for idleFor; a proxy blocked in GET /next should use no CPU at all.
	idle0 := map[string]time.Duration{}
	for _, c := range cols[1:] {
		idle0[c.name], _ = procCPU(c.pid)
	}
	time.Sleep(idleFor)
	for _, c := range cols[1:] {
		t1, err := procCPU(c.pid)
		if err != nil {
			b.Fatal(fmt.Errorf("%s: %w", c.name, err))
		}
		b.ReportMetric(float64((t1-idle0[c.name])/(10*time.Millisecond)), c.name+"-proxy-idle-ticks")
	}
}

// idleFor is how long BenchmarkPassThroughRIE watches the idle proxy's CPU time.
const idleFor = 3 * time.Second

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

package local_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/local"
)

// benchApp is a trivial handler and an echo handler, so that what is measured is plldb, not Python.
func benchApp(b testing.TB) string {
	return writeApp(b, map[string]string{"app.py": "def noop(event, context):\n    return 1\n\ndef echo(event, context):\n    return event\n"},
		"Noop: app.noop @30\nEcho: app.echo @60", "")
}

func startBench(b *testing.B) *local.Pipeline {
	p := start(b, local.Options{Template: benchApp(b), Logger: slog.New(slog.DiscardHandler)})
	return p
}

// latencies collects per-operation durations and reports their percentiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) pct(p float64) time.Duration {
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	if len(l.d) == 0 {
		return 0
	}
	return l.d[int(float64(len(l.d)-1)*p)]
}

func (l *latencies) report(b *testing.B) {
	b.ReportMetric(float64(l.pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(l.pct(0.99).Microseconds())/1000, "p99-ms")
}

func httpInvoke(b *testing.B, client *http.Client, url string, payload []byte) []byte {
	resp, err := client.Post(url, "application/json", bytes.NewReader(payload))
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
		b.Fatalf("invoke: %v HTTP %d %.200s", err, resp.StatusCode, body)
	}
	return body
}

// BenchmarkInvokeOverhead compares one invocation of a trivial handler through the whole local pipeline
// (Invoke API → emulated sandbox → layer proxy → gateway/relay → developer side → executor, and back) with the
// same handler called directly in its executor. The difference of the two p50s is plldb's overhead.
func BenchmarkInvokeOverhead(b *testing.B) {
	p := startBench(b)
	ex, ok := p.Executor("Noop")
	require.True(b, ok)

	b.Run("direct-executor", func(b *testing.B) {
		var lat latencies
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			out, err := ex.Invoke(context.Background(), executor.Invocation{RequestID: "bench", Event: []byte(`{}`), Deadline: time.Now().Add(time.Minute)})
			if err != nil || out.Err != nil {
				b.Fatalf("%v %v", err, out.Err)
			}
			lat.add(time.Since(start))
		}
		lat.report(b)
	})
	b.Run("pipeline-http", func(b *testing.B) {
		url := p.Endpoint() + "/2015-03-31/functions/Noop/invocations"
		client := &http.Client{}
		httpInvoke(b, client, url, []byte(`{}`)) // warm the sandbox
		var lat latencies
		for b.Loop() {
			start := time.Now()
			httpInvoke(b, client, url, []byte(`{}`))
			lat.add(time.Since(start))
		}
		lat.report(b)
	})
}

// BenchmarkThroughput8 drives the trivial handler with 8 concurrent callers over the Invoke API.
func BenchmarkThroughput8(b *testing.B) {
	p := startBench(b)
	url := p.Endpoint() + "/2015-03-31/functions/Noop/invocations"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	const callers = 8
	work := make(chan struct{})
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				httpInvoke(b, client, url, []byte(`{}`))
			}
		}()
	}
	for range callers { // warm a sandbox per caller
		work <- struct{}{}
	}
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "invocations/s")
}

// BenchmarkSixMegabytesRoundTrip sends a 6 MB request to an echo handler, which answers the same 6 MB. Two
// payloads: JSON records (what an S3 batch or an API payload looks like; Python's own json.loads and json.dumps of
// them take ~200 ms here, as they would in Lambda) and one large string (a file's contents in base64, random and
// so incompressible: the relay's worst case, while the handler's own work is small).
func BenchmarkSixMegabytesRoundTrip(b *testing.B) {
	p := startBench(b)
	url := p.Endpoint() + "/2015-03-31/functions/Echo/invocations"
	// Written with the separators Python's json.dumps uses, so that the echoed answer is the same size (just
	// under 6 MB both ways).
	var sb strings.Builder
	sb.WriteString(`{"records": [`)
	for i := 0; sb.Len() < local.MaxPayload-200; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, `{"id": %d, "name": "customer-%s", "amount": %d, "tags": ["a", "b"]}`, i, strings.Repeat("x", i%17), i*37%1000)
	}
	sb.WriteString(`]}`)
	raw := make([]byte, (local.MaxPayload-64)*3/4)
	_, _ = rand.Read(raw)
	blob := `{"blob": "` + base64.StdEncoding.EncodeToString(raw) + `"}`

	for _, c := range []struct{ name, payload string }{{"records", sb.String()}, {"blob", blob}} {
		b.Run(c.name, func(b *testing.B) {
			payload := []byte(c.payload)
			require.LessOrEqual(b, len(payload), local.MaxPayload)
			client := &http.Client{}
			httpInvoke(b, client, url, payload)
			b.SetBytes(int64(2 * len(payload)))
			var lat latencies
			for b.Loop() {
				start := time.Now()
				out := httpInvoke(b, client, url, payload)
				lat.add(time.Since(start))
				if len(out) < len(payload)-1024 {
					b.Fatalf("echo came back short: %d bytes", len(out))
				}
			}
			lat.report(b)
		})
	}
}

// BenchmarkEventBurst100 sends 100 Event invocations at once to a function with the default concurrency limit
// (10), so that 90 of them wait in the queue, and waits until the handlers have run. "ran" counts the distinct
// events whose handler ran, "lost" those that never did within a minute: 100 and 0 on every iteration, or the
// queue lost events. "burst-ms" is the time from the first request to the last handler run.
func BenchmarkEventBurst100(b *testing.B) {
	tpl, dir := gateApp(b, "Gate")
	p := start(b, local.Options{Template: tpl, Logger: slog.New(slog.DiscardHandler)})
	url := p.Endpoint() + "/2015-03-31/functions/Gate/invocations"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	const burst = 100
	var ran, lost, iterations int
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		var wg sync.WaitGroup
		for j := range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(fmt.Sprintf(`{"n": "%d-%d"}`, i, j)))
				req.Header.Set("X-Amz-Invocation-Type", "Event")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("event %d-%d: HTTP %d", i, j, resp.StatusCode)
				}
			}()
		}
		wg.Wait()
		prefix := fmt.Sprintf(" %d-", i)
		count := func() int {
			seen := map[string]bool{}
			for _, line := range runs(b, dir) {
				if _, n, _ := strings.Cut(line, " "); strings.HasPrefix(" "+n, prefix) {
					seen[n] = true
				}
			}
			return len(seen)
		}
		deadline := time.Now().Add(time.Minute)
		n := count()
		for n < burst && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
			n = count()
		}
		total += time.Since(start)
		ran += n
		lost += burst - n
		iterations++
	}
	b.ReportMetric(float64(ran)/float64(iterations), "ran")
	b.ReportMetric(float64(lost)/float64(iterations), "lost")
	b.ReportMetric(float64(total.Milliseconds())/float64(iterations), "burst-ms")
}

package local_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/bridge/gateway"
	"github.com/plldb/plldb/bridge/wire"
)

// The soak (issue 13): DESIGN's first invariant under fire. SoakInvocations invocations go through plldb local's
// real Invoke API over HTTP from soakCallers concurrent callers, while a chaos loop at random intervals
//
//   - SIGKILLs a function's Python executor (the developer's sandbox process),
//   - kills an emulated Lambda sandbox's layer proxy, idle or in the middle of an invocation,
//   - cuts the developer's WebSocket connection under it (its TCP connection goes away; wsclient must reconnect),
//   - and has the gateway close a developer or a function connection, as API Gateway does at its 2-hour cap
//     (DeleteConnection).
//
// Every caller must get exactly one answer within soakLostAfter (a caller without one is lost), and no
// invocation may run or be answered twice: the handler appends its request id to a file at every execution (two
// lines of one id are a duplicate; so is a 5xx answer for an invocation whose handler ran, since the AWS SDKs
// retry those), and a sandbox's Runtime API refusing an answer as "already answered" is a duplicate answer. A
// Plldb.NoDeveloper answer for an invocation the developer ran is reported on its own: outside strict mode the
// proxy would then hand it to the function's own runtime, a second run. The
// relay also counts, per request id, the invoke messages sandboxes send and the answers the developer sends
// (more than one: an answer sent again after the relay could not deliver it, which the sandbox takes once).
// Lost, duplicated or misrouted (an answer that is not the caller's) invocations fail the benchmark with the
// details of each.
//
// Legitimate answers besides the handler's result, by cause: a killed executor → Runtime.ExitError for the
// invocations it was running; a killed sandbox proxy → the sandbox's runtime went away (Runtime.ExitError), for
// its one invocation; a developer link lost → the answer after the reconnect, or Plldb.NoDeveloper for an
// invocation nobody could acknowledge, or Plldb.DeveloperDisconnected when the developer is not back within the
// grace period; a function connection closed → the answer after the sandbox reconnects. Local mode is strict:
// no original runtime runs, so there is no fallback answer.
//
//	go test -run '^$' -bench Soak -benchtime 1x ./adapter/local
//
// PLLDB_SOAK_N overrides the number of invocations.
func BenchmarkSoak(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("PLLDB_SOAK_N")); err == nil && v > 0 {
		n = v
	}
	for b.Loop() {
		r := runSoak(b, soakConfig{invocations: n, callers: soakCallers, chaos: true})
		r.report(b)
	}
}

const (
	soakCallers = 8
	// soakTimeout is the soak functions' Timeout; a caller with no answer within soakLostAfter is lost (the
	// sandbox's own budget is the timeout + 2 s, the proxy's disconnect grace 10 s).
	soakTimeout   = 10 * time.Second
	soakLostAfter = soakTimeout + 20*time.Second
	// soakMaxDuration bounds the whole run; callers stop starting invocations after it.
	soakMaxDuration = 4 * time.Minute
	// soakMaxKills bounds the chaos.
	soakMaxKills = 400
)

var soakFunctions = []string{"SoakA", "SoakB"}

type soakConfig struct {
	invocations int
	callers     int
	chaos       bool
}

// soakApp writes a handler that records every execution (request id and the caller's sequence number) with one
// O_APPEND write, atomic for a line this short, so concurrent threads and restarted executors never interleave.
func soakApp(t testing.TB) (template, execLog string) {
	execLog = filepath.Join(t.TempDir(), "executions.log")
	template = writeApp(t, map[string]string{"app.py": `
import os, time
_log = os.open(os.environ["SOAK_EXEC_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
def handler(event, context):
    os.write(_log, ("%s %d\n" % (context.aws_request_id, event["n"])).encode())
    if event.get("ms"):
        time.sleep(event["ms"] / 1000)
    return {"id": context.aws_request_id, "n": event["n"]}
`}, fmt.Sprintf("SoakA: app.handler @%d\nSoakB: app.handler @%d", int(soakTimeout.Seconds()), int(soakTimeout.Seconds())),
		"      SOAK_EXEC_LOG: "+execLog)
	return template, execLog
}

// outcome is what one caller got.
type outcome struct {
	n       int
	fn      string
	kind    string // "result", "error <errorType>", "http <status> <type>", "transport …", "lost"
	id      string // X-Amzn-Requestid
	latency time.Duration
	detail  string
	wrong   string // non-empty: the answer is not this caller's
}

type soakResult struct {
	cfg        soakConfig
	elapsed    time.Duration
	outcomes   []outcome
	kills      map[string]int
	executions map[string]int   // request id → times the handler ran
	execN      map[string][]int // request id → the sequence numbers it ran with
	answers    map[string]int   // request id → result/error messages the developer sent (redeliveries included)
	// answeredTwice: request id → answers a sandbox's Runtime API refused because the invocation was answered
	answeredTwice map[string]int
	invokes       map[string]int    // request id → invoke messages sandboxes sent
	warnings      map[string]int    // pipeline warning/error messages → count
	byID          map[string]string // request id → warning lines mentioning it (for details)
}

func runSoak(t testing.TB, cfg soakConfig) *soakResult {
	tpl, execLog := soakApp(t)
	logs := newLogRecorder()
	cut := newCutter(t)
	counter := newRelayCounter()
	opts := local.Options{Template: tpl, Logger: slog.New(logs)}
	local.SetDeveloperURL(&opts, cut.rewrite)
	local.WrapRoutes(&opts, counter.wrap)
	p := start(t, opts)

	client := &http.Client{Timeout: soakLostAfter, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * cfg.callers}}
	// Warm one sandbox per caller and function before the clock starts.
	var warm sync.WaitGroup
	for i := range cfg.callers {
		for _, fn := range soakFunctions {
			warm.Add(1)
			go func() {
				defer warm.Done()
				if o := soakInvoke(client, p.Endpoint(), fn, -1-i, 0); o.kind != "result" {
					t.Errorf("warm-up %s: %s %s", fn, o.kind, o.detail)
				}
			}()
		}
	}
	warm.Wait()
	counter.reset()
	if err := os.Truncate(execLog, 0); err != nil {
		t.Fatal(err)
	}

	res := &soakResult{cfg: cfg, kills: map[string]int{}, outcomes: make([]outcome, cfg.invocations)}
	ctx, cancel := context.WithTimeout(context.Background(), soakMaxDuration)
	defer cancel()
	begin := time.Now()
	var next atomic.Int64
	var callers sync.WaitGroup
	for range cfg.callers {
		callers.Add(1)
		go func() {
			defer callers.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.invocations {
					return
				}
				if ctx.Err() != nil {
					res.outcomes[i] = outcome{n: i, kind: "not started (time bound)"}
					continue
				}
				ms := 0
				if i%10 == 0 {
					ms = 20 // some invocations stay in flight long enough for the chaos to hit them
				}
				res.outcomes[i] = soakInvoke(client, p.Endpoint(), soakFunctions[i%len(soakFunctions)], i, ms)
			}
		}()
	}
	chaosDone := make(chan struct{})
	stopChaos := make(chan struct{})
	go func() {
		defer close(chaosDone)
		if cfg.chaos {
			chaos(t, p, cut, res.kills, stopChaos)
		}
	}()
	callers.Wait()
	res.elapsed = time.Since(begin)
	close(stopChaos)
	<-chaosDone

	// Let answers still on their way (a result after a reconnect) reach the counters before reading them.
	time.Sleep(500 * time.Millisecond)
	res.executions, res.execN = readExecutions(t, execLog)
	res.answers, res.invokes = counter.snapshot()
	res.warnings, res.byID, res.answeredTwice = logs.snapshot()
	return res
}

// soakInvoke makes one Invoke API call and classifies its answer.
func soakInvoke(client *http.Client, endpoint, fn string, n, ms int) outcome {
	o := outcome{n: n, fn: fn}
	body, _ := json.Marshal(map[string]int{"n": n, "ms": ms})
	start := time.Now()
	resp, err := client.Post(endpoint+"/2015-03-31/functions/"+fn+"/invocations", "application/json", bytes.NewReader(body))
	if err != nil {
		o.latency = time.Since(start)
		if ue, ok := err.(interface{ Timeout() bool }); ok && ue.Timeout() {
			o.kind, o.detail = "lost", fmt.Sprintf("no answer within %s: %v", soakLostAfter, err)
			return o
		}
		o.kind, o.detail = "transport error", err.Error()
		return o
	}
	payload, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	o.latency = time.Since(start)
	o.id = resp.Header.Get("X-Amzn-Requestid")
	if err != nil {
		o.kind, o.detail = "transport error", "reading the answer: "+err.Error()
		return o
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		o.kind = fmt.Sprintf("http %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
		o.detail = string(payload)
	case resp.Header.Get("X-Amz-Function-Error") != "":
		var e struct{ ErrorType, ErrorMessage string }
		_ = json.Unmarshal(payload, &e)
		o.kind, o.detail = "error "+e.ErrorType, e.ErrorMessage
		if e.ErrorType == "Plldb.NoDeveloper" {
			// Which of the reasons: "… (the relay could not deliver it: no developer connected); …".
			if _, why, ok := strings.Cut(e.ErrorMessage, "("); ok {
				why, _, _ = strings.Cut(why, ")")
				if i := strings.Index(why, ": "); i > 0 && strings.HasPrefix(why, "sending") {
					why = why[:i]
				}
				o.kind += ": " + why
			}
		}
	default:
		var r struct {
			ID string `json:"id"`
			N  int    `json:"n"`
		}
		if err := json.Unmarshal(payload, &r); err != nil || r.ID != o.id || r.N != n {
			o.wrong = fmt.Sprintf("answer %s is not this caller's (request id %s, n %d)", payload, o.id, n)
		}
		o.kind = "result"
	}
	return o
}

// chaos breaks parts of the pipeline at random intervals until stop, at most soakMaxKills times in all. Each
// kind of kill has its own schedule: sandboxes and function connections die every few hundred milliseconds; the
// developer link, whose loss turns every invocation into Plldb.NoDeveloper until it is back (and whose
// reconnect backs off further after each loss of a young connection), every couple of seconds.
func chaos(t testing.TB, p *local.Pipeline, cut *cutter, kills map[string]int, stop <-chan struct{}) {
	gw := local.Gateway(p)
	type action struct {
		name     string
		min, max time.Duration // the wait before each kill is uniform in [min, max)
		do       func() bool
	}
	actions := []action{
		{"executor SIGKILL", 50 * time.Millisecond, 400 * time.Millisecond, func() bool {
			ex, _ := p.Executor(soakFunctions[rand.IntN(len(soakFunctions))])
			pid := ex.PID()
			return pid > 0 && syscall.Kill(pid, syscall.SIGKILL) == nil
		}},
		{"sandbox proxy killed", 50 * time.Millisecond, 400 * time.Millisecond, func() bool {
			killed, _ := local.KillSandbox(p, soakFunctions[rand.IntN(len(soakFunctions))])
			return killed
		}},
		{"gateway closed function connection", 50 * time.Millisecond, 400 * time.Millisecond, func() bool {
			ids := local.SessionConnections(p, wire.RoleFunction)
			return len(ids) > 0 && gw.DeleteConnection(context.Background(), ids[rand.IntN(len(ids))]) == nil
		}},
		{"developer link", 1500 * time.Millisecond, 3500 * time.Millisecond, nil},
	}
	devKills := []struct {
		name string
		do   func() bool
	}{
		{"developer link cut", func() bool { return cut.cut() > 0 }},
		{"gateway closed developer connection", func() bool {
			ok := false
			for _, id := range local.SessionConnections(p, wire.RoleDeveloper) {
				ok = gw.DeleteConnection(context.Background(), id) == nil || ok
			}
			return ok
		}},
	}
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for _, a := range actions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(a.min + rand.N(a.max-a.min)):
				}
				name, do := a.name, a.do
				if do == nil {
					name, do = devKills[i%len(devKills)].name, devKills[i%len(devKills)].do
				}
				mu.Lock()
				if total >= soakMaxKills {
					mu.Unlock()
					return
				}
				if do() {
					kills[name]++
					total++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func readExecutions(t testing.TB, path string) (map[string]int, map[string][]int) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	count, ns := map[string]int{}, map[string][]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, n, _ := strings.Cut(sc.Text(), " ")
		v, _ := strconv.Atoi(n)
		count[id]++
		ns[id] = append(ns[id], v)
	}
	return count, ns
}

func (r *soakResult) report(b *testing.B) {
	kinds := map[string]int{}
	kindMax := map[string]time.Duration{}
	var lat []time.Duration
	var lost, wrong []outcome
	answered := 0
	for _, o := range r.outcomes {
		kinds[o.kind]++
		kindMax[o.kind] = max(kindMax[o.kind], o.latency)
		switch {
		case o.kind == "lost" || o.kind == "" || strings.HasPrefix(o.kind, "transport"):
			lost = append(lost, o)
		case o.kind == "not started (time bound)":
		default:
			answered++
			lat = append(lat, o.latency)
		}
		if o.wrong != "" {
			wrong = append(wrong, o)
		}
	}
	type dup struct{ id, what string }
	var dups []dup
	for id, c := range r.executions {
		if c > 1 {
			dups = append(dups, dup{id, fmt.Sprintf("the handler ran %d times (sequence numbers %v)", c, r.execN[id])})
		}
	}
	for id, c := range r.answeredTwice {
		dups = append(dups, dup{id, fmt.Sprintf("the sandbox's Runtime API refused %d more answers: already answered", c)})
	}
	// The developer side sends an answer again when the relay could not deliver it (its sandbox was between
	// connections); the sandbox takes one answer per invocation, so these are redeliveries, not duplicates.
	resent := 0
	for _, c := range r.answers {
		if c > 1 {
			resent++
		}
	}
	// Plldb.NoDeveloper is where, outside strict mode (in AWS), the proxy hands the invocation to the function's own
	// runtime: if the developer had run it, that would be a second run. Local mode has no fallback runtime, so
	// nothing ran twice here; these are reported (metric fallback-would-duplicate, with details) but do not fail
	// the soak: what is left of them is the race between the developer's ack and the sandbox's ack timeout, which
	// only a confirmation of the ack before the handler runs can close (see BENCHMARKS.md).
	var hazards []dup
	for _, o := range r.outcomes {
		if strings.HasPrefix(o.kind, "error Plldb.NoDeveloper") && r.executions[o.id] > 0 {
			hazards = append(hazards, dup{o.id, fmt.Sprintf("the developer ran it, yet the sandbox answered %q after %s (outside strict mode the fallback runtime would run it again)", o.kind, o.latency.Round(time.Millisecond))})
		}
	}
	// A 5xx answer is one the AWS SDKs retry: if the handler had run for it, an SDK caller would run it twice.
	for _, o := range r.outcomes {
		if !strings.HasPrefix(o.kind, "http 5") {
			continue
		}
		if id := uuidRE.FindString(o.detail); id != "" && r.executions[id] > 0 {
			dups = append(dups, dup{id, fmt.Sprintf("answered %s (which the AWS SDKs retry) after the handler ran: %s", o.kind, o.detail)})
		}
	}
	redelivered := 0
	for _, c := range r.invokes {
		if c > 1 {
			redelivered++
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(float64(len(lat)-1)*p)]
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	totalKills := 0
	for _, k := range r.kills {
		totalKills += k
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "soak: %d invocations, %d callers, %s (%.0f/s), %d kills\n", len(r.outcomes), r.cfg.callers,
		r.elapsed.Round(time.Millisecond), float64(answered)/r.elapsed.Seconds(), totalKills)
	fmt.Fprintf(&sb, "  answered %d, lost %d, duplicated %d, misrouted %d; invokes sent twice %d, answers sent again %d\n",
		answered, len(lost), len(dups), len(wrong), redelivered, resent)
	fmt.Fprintf(&sb, "  ran by the developer yet answered Plldb.NoDeveloper (a second run outside strict mode): %d\n", len(hazards))
	for i, h := range hazards {
		if i == 10 {
			break
		}
		fmt.Fprintf(&sb, "    %s: %s; %.600s\n", h.id, h.what, r.byID[h.id])
	}
	fmt.Fprintf(&sb, "  latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.0f ms\n",
		ms(pct(.5)), ms(pct(.9)), ms(pct(.99)), ms(pct(.999)), ms(pct(1)))
	sb.WriteString("  answers:\n")
	for _, k := range sortedKeys(kinds) {
		fmt.Fprintf(&sb, "    %6d  %-40s (slowest %s)\n", kinds[k], k, kindMax[k].Round(time.Millisecond))
	}
	sb.WriteString("  chaos:\n")
	for _, k := range sortedKeys(r.kills) {
		fmt.Fprintf(&sb, "    %6d  %s\n", r.kills[k], k)
	}
	sb.WriteString("  pipeline warnings:\n")
	for _, k := range sortedKeys(r.warnings) {
		fmt.Fprintf(&sb, "    %6d  %s\n", r.warnings[k], k)
	}
	// A few examples of every answer other than a result, with what the pipeline logged about them.
	shown := map[string]int{}
	for _, o := range r.outcomes {
		if o.kind == "result" || strings.HasPrefix(o.kind, "error Plldb.NoDeveloper") || shown[o.kind] == 3 {
			continue
		}
		shown[o.kind]++
		fmt.Fprintf(&sb, "  e.g. %s n=%d %s %s after %s: %.300s\n     %.1500s\n", o.kind, o.n, o.fn, o.id,
			o.latency.Round(time.Millisecond), o.detail, r.byID[o.id])
	}
	b.Log("\n" + sb.String())
	fmt.Print(sb.String())

	b.ReportMetric(float64(answered), "answered")
	b.ReportMetric(float64(len(lost)), "lost")
	b.ReportMetric(float64(len(dups)), "duplicated")
	b.ReportMetric(float64(len(wrong)), "misrouted")
	b.ReportMetric(float64(len(hazards)), "fallback-would-duplicate")
	b.ReportMetric(float64(totalKills), "kills")
	b.ReportMetric(float64(kinds["result"]), "results")
	b.ReportMetric(float64(answered-kinds["result"]), "errors")
	b.ReportMetric(ms(pct(.5)), "p50-ms")
	b.ReportMetric(ms(pct(.99)), "p99-ms")
	b.ReportMetric(ms(pct(1)), "max-ms")
	b.ReportMetric(float64(answered)/r.elapsed.Seconds(), "invocations/s")

	if len(lost)+len(dups)+len(wrong) == 0 {
		return
	}
	var fail strings.Builder
	fmt.Fprintf(&fail, "soak: %d lost, %d duplicated, %d misrouted\n", len(lost), len(dups), len(wrong))
	for i, o := range lost {
		if i == 20 {
			fmt.Fprintf(&fail, "  … %d more lost\n", len(lost)-i)
			break
		}
		fmt.Fprintf(&fail, "  lost: n=%d %s after %s: %s %s\n", o.n, o.fn, o.latency.Round(time.Millisecond), o.kind, o.detail)
		for id, ns := range r.execN {
			for _, v := range ns {
				if v == o.n {
					fmt.Fprintf(&fail, "    ran as %s; invokes %d, answers %d; %s\n", id, r.invokes[id], r.answers[id], r.byID[id])
				}
			}
		}
	}
	for i, d := range dups {
		if i == 20 {
			fmt.Fprintf(&fail, "  … %d more duplicated\n", len(dups)-i)
			break
		}
		fmt.Fprintf(&fail, "  duplicated: %s: %s; invokes %d; %s\n", d.id, d.what, r.invokes[d.id], r.byID[d.id])
	}
	for _, o := range wrong {
		fmt.Fprintf(&fail, "  misrouted: n=%d: %s\n", o.n, o.wrong)
	}
	b.Fatal(fail.String())
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// cutter is a loopback TCP forwarder in front of the gateway for the developer link: cut closes every
// connection through it, as a network failure would (no close frame; the client only sees its socket fail).
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	// void: what the client sends is read and thrown away, as a network that died silently loses it.
	void atomic.Bool
}

func newCutter(t testing.TB) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); c.cut() })
	go c.serve()
	return c
}

// rewrite points the developer link at the forwarder and the forwarder at the gateway.
func (c *cutter) rewrite(gatewayURL string) string {
	rest := strings.TrimPrefix(gatewayURL, "ws://")
	host, path, _ := strings.Cut(rest, "/")
	c.mu.Lock()
	c.target = host
	c.mu.Unlock()
	return "ws://" + c.ln.Addr().String() + "/" + path
}

func (c *cutter) serve() {
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		target := c.target
		c.mu.Unlock()
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			continue
		}
		c.mu.Lock()
		c.conns[in], c.conns[out] = struct{}{}, struct{}{}
		c.mu.Unlock()
		pipe := func(dst net.Conn, src io.Reader) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			c.mu.Lock()
			delete(c.conns, dst)
			c.mu.Unlock()
		}
		go pipe(out, &voidable{in, &c.void})
		go pipe(in, out)
	}
}

// voidable reads a connection, and while void is set returns nothing of what it read.
type voidable struct {
	net.Conn
	void *atomic.Bool
}

func (v *voidable) Read(b []byte) (int, error) {
	for {
		n, err := v.Conn.Read(b)
		if err != nil || !v.void.Load() {
			return n, err
		}
	}
}

func (c *cutter) cut() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.conns)
	for cn := range c.conns {
		cn.Close()
	}
	return n
}

// relayCounter wraps the relay handlers and counts, per request id, the invoke messages sandboxes send and the
// answers (result or error) the developer sends.
type relayCounter struct {
	mu      sync.Mutex
	answers map[string]int
	invokes map[string]int
}

func newRelayCounter() *relayCounter {
	return &relayCounter{answers: map[string]int{}, invokes: map[string]int{}}
}

func (rc *relayCounter) wrap(r gateway.Routes) gateway.Routes { return countingRoutes{r, rc} }

func (rc *relayCounter) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answers, rc.invokes = map[string]int{}, map[string]int{}
}

func (rc *relayCounter) snapshot() (answers, invokes map[string]int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.answers, rc.invokes
}

type countingRoutes struct {
	gateway.Routes
	rc *relayCounter
}

func (c countingRoutes) Default(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	if h, err := wire.PeekHeader([]byte(req.Body)); err == nil {
		c.rc.mu.Lock()
		switch h.T {
		case wire.TypeInvoke:
			c.rc.invokes[h.ID]++
		case wire.TypeResult, wire.TypeError:
			c.rc.answers[h.ID]++
		}
		c.rc.mu.Unlock()
	}
	return c.Routes.Default(ctx, req)
}

// logRecorder is the pipeline's logger during the soak: it counts warnings and errors by message (the
// summary), and keeps the ones that name a request id (the details of a lost or duplicated invocation).
type logRecorder struct {
	mu     sync.Mutex
	counts map[string]int
	byID   map[string]string
	twice  map[string]int // request id → "already answered" refusals
	attrs  []slog.Attr
}

func newLogRecorder() *logRecorder {
	return &logRecorder{counts: map[string]int{}, byID: map[string]string{}, twice: map[string]int{}}
}

func (l *logRecorder) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var id, comp string
	twice := false
	var line strings.Builder
	line.WriteString(r.Level.String() + " " + r.Message)
	visit := func(a slog.Attr) bool {
		switch a.Key {
		case "request_id", "request", "requestId":
			id = a.Value.String()
		case "component":
			comp = a.Value.String()
		case "err":
			twice = twice || strings.Contains(a.Value.String(), "already answered")
		}
		fmt.Fprintf(&line, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range l.attrs {
		visit(a)
	}
	r.Attrs(visit)
	l.mu.Lock()
	l.counts[comp+": "+r.Message]++
	if twice && id != "" {
		l.twice[id]++
	}
	if id != "" && len(l.byID[id]) < 2000 {
		l.byID[id] += "[" + line.String() + "] "
	}
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logView{l, append(append([]slog.Attr(nil), l.attrs...), as...)}
}

func (l *logRecorder) WithGroup(string) slog.Handler { return l }

func (l *logRecorder) snapshot() (counts map[string]int, byID map[string]string, twice map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts, l.byID, l.twice
}

// logView is a logRecorder with attributes added by With.
type logView struct {
	l     *logRecorder
	attrs []slog.Attr
}

func (v *logView) Enabled(ctx context.Context, lv slog.Level) bool { return v.l.Enabled(ctx, lv) }
func (v *logView) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(v.attrs...)
	return v.l.Handle(ctx, r)
}
func (v *logView) WithAttrs(as []slog.Attr) slog.Handler {
	return &logView{v.l, append(append([]slog.Attr(nil), v.attrs...), as...)}
}
func (v *logView) WithGroup(string) slog.Handler { return v }

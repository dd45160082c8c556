package proxy

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
	"github.com/plldb/plldb/layer/runtimeapi"
)

// BenchmarkFiveDevelopersTwentyFunctions is issue 14's "5 developers attached selectively to one 20-function
// stack, 1,000 mixed invocations": five sessions on the embedded relay, each with a developer connected; twenty
// functions, each a real wrapper and proxy with its own stand-in Runtime API and the Python runtime running the
// deployed code (echo.handler), attached with PLLDB_SESSIONS and PLLDB_KNOCK_KEYS listing all five. One op is one
// invocation of a function chosen in turn, knocked for one of the developers or not (one in six each), sent by
// one of 20 concurrent callers; `-benchtime 1000x` is the 1,000. Every invocation must be answered exactly
// once, by the right party: developer i's handler answers {"from":"dev<i>"} and records the request id; the
// deployed code's answer echoes the request id. The counts are reported, and any wrong answer fails the benchmark.
func BenchmarkFiveDevelopersTwentyFunctions(b *testing.B) {
	const developers, functions, callers = 5, 20, 20
	rig := startRelayLogged(b, slog.New(slog.DiscardHandler))

	type dev struct {
		name string
		developer
		sess relay.Session
		c    *wsclient.Client
		tok  string
	}
	var mu sync.Mutex
	answeredBy := map[string][]string{} // request id → the developers who answered it
	wrongSession := 0
	devs := make([]*dev, developers)
	keys := map[string]ed25519.PublicKey{}
	for i := range devs {
		s := relay.NewSession(fmt.Sprintf("s-dev%d", i), "dev@host", time.Time{})
		rig.store.PutSession(s)
		d := &dev{name: fmt.Sprintf("dev%d", i), developer: newDeveloper(b, s.ID), sess: s, c: rig.dialDeveloper(b, s)}
		d.tok = d.knock(b, knock.Claims{Expires: time.Now().Add(time.Hour)})
		keys[s.ID] = d.pub()
		devs[i] = d
	}
	stop := make(chan struct{})
	var answering sync.WaitGroup
	for _, d := range devs {
		answering.Add(1)
		go func() {
			defer answering.Done()
			for {
				var e *wire.Envelope
				select {
				case <-stop:
					return
				case e = <-d.c.Recv():
				}
				if e == nil || e.T != wire.TypeInvoke {
					continue
				}
				var inv wire.Invoke
				if e.DecodeBody(&inv) != nil {
					continue
				}
				mu.Lock()
				if inv.Knock == nil || inv.Knock.Session != d.session {
					wrongSession++
				}
				answeredBy[e.ID] = append(answeredBy[e.ID], d.name)
				mu.Unlock()
				for _, m := range []struct {
					t    wire.Type
					body any
				}{{wire.TypeAck, wire.Ack{RequestID: e.ID}}, {wire.TypeResult, wire.Result{RequestID: e.ID, Payload: []byte(`{"from":"` + d.name + `"}`)}}} {
					out, err := wire.NewEnvelope(m.t, e.ID, m.body)
					if err != nil {
						return
					}
					out.To = e.From
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err = d.c.Send(ctx, out)
					cancel()
					if err != nil {
						return
					}
				}
			}
		}()
	}
	defer func() { close(stop); answering.Wait() }()

	sbs := make([]*sandbox, functions)
	var starting sync.WaitGroup
	for f := range sbs {
		name := fmt.Sprintf("orders-fn-%02d", f)
		var links []selenv.Link
		for _, d := range devs {
			links = append(links, selenv.Link{Session: d.session, FunctionKey: ticket.FunctionKey(d.sess.Keys[wire.RoleFunction], name)})
		}
		env := []string{
			"AWS_LAMBDA_FUNCTION_NAME=" + name,
			"PLLDB_ENDPOINT=" + rig.gw.URL(), "PLLDB_AUDIENCE=" + rig.audience, "PLLDB_LOGICAL_ID=" + fmt.Sprintf("Fn%02d", f),
			"PLLDB_SELECTIVE=true", "PLLDB_KNOCK_STACK=orders", "PLLDB_KNOCK_KEYS=" + selenv.FormatKnockKeys(keys),
			"PLLDB_SESSIONS=" + selenv.FormatSessions(links),
			// Routing is what is checked here, not the ack's latency on a loaded machine.
			"PLLDB_ACK_TIMEOUT=1m", "PLLDB_LOG_LEVEL=info",
		}
		sbs[f] = startSandbox(b, sandboxOpts{handler: "echo.handler", env: env})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	// who is the party that must answer invocation n: developer n%6 for n%6 < 5, the deployed code otherwise.
	who := func(n int) int { return n % (developers + 1) }
	// invokeOn invokes function f, knocked for developer k (k == developers: not knocked).
	invokeOn := func(f, k int, id string) (runtimeapi.Response, error) {
		event := httpV2("/orders/42", "POST", map[string]any{"accept": "*/*"})
		if k < developers {
			event = httpV2("/orders/42", "POST", map[string]any{"accept": "*/*", "x-plldb-knock": devs[k].tok})
		}
		return sbs[f].api.Invoke(ctx, runtimeapi.Invocation{RequestID: id, Deadline: time.Now().Add(5 * time.Minute), Event: event})
	}
	invoke := func(n int) (runtimeapi.Response, string, error) {
		id := fmt.Sprintf("req-%06d", n)
		r, err := invokeOn(n%functions, who(n), id)
		return r, id, err
	}
	// Warm-up, outside the timer: every function's first invocation (its runtime's init) and every developer's
	// first knock on every function, which dials that developer's link in that sandbox.
	for f := range functions {
		starting.Add(1)
		go func() {
			defer starting.Done()
			for k := developers; k >= 0; k-- {
				_, _ = invokeOn(f, k, fmt.Sprintf("warm-%02d-%d", f, k))
			}
		}()
	}
	starting.Wait()
	for f, sb := range sbs {
		deadline := time.Now().Add(2 * time.Minute)
		for strings.Count(sb.stderr.String(), "connected to the plldb relay") < developers {
			if time.Now().After(deadline) {
				b.Fatalf("function %d: not every developer's link came up:\n%s", f, sb.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	mu.Lock()
	clear(answeredBy)
	wrongSession = 0
	mu.Unlock()

	type outcome struct {
		n   int
		id  string
		r   runtimeapi.Response
		err error
	}
	jobs := make(chan int)
	results := make(chan outcome, 1024)
	var workers sync.WaitGroup
	for range callers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for n := range jobs {
				r, id, err := invoke(n)
				results <- outcome{n, id, r, err}
			}
		}()
	}
	var all []outcome
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for o := range results {
			all = append(all, o)
		}
	}()
	n := 0
	b.ResetTimer()
	for b.Loop() {
		jobs <- n
		n++
	}
	close(jobs)
	workers.Wait()
	b.StopTimer()
	close(results)
	<-collected

	// A developer records an invocation before it answers it, so every record is in once every caller has its
	// answer.
	mu.Lock()
	defer mu.Unlock()
	counts := make([]int, developers+1)
	wrong := 0
	for _, o := range all {
		k := who(o.n)
		by := answeredBy[o.id]
		switch {
		case o.err != nil:
			b.Errorf("%s: %v", o.id, o.err)
			wrong++
		case o.r.Error:
			b.Errorf("%s: error answer %s", o.id, o.r.Payload)
			wrong++
		case k < developers:
			if string(o.r.Payload) != `{"from":"`+devs[k].name+`"}` || len(by) != 1 || by[0] != devs[k].name {
				b.Errorf("%s: knocked for %s, answered %s, developers who ran it: %v", o.id, devs[k].name, o.r.Payload, by)
				wrong++
				continue
			}
			counts[k]++
		default:
			var e struct {
				RequestID string `json:"request_id"`
				Raw       string `json:"raw"`
			}
			if json.Unmarshal(o.r.Payload, &e) != nil || e.RequestID != o.id || e.Raw == "" || len(by) != 0 {
				b.Errorf("%s: unknocked, answered %.80s, developers who ran it: %v", o.id, o.r.Payload, by)
				wrong++
				continue
			}
			counts[developers]++
		}
	}
	if len(answeredBy) != n-counts[developers]-wrong {
		// A developer ran something no caller was answered for by it.
		b.Errorf("developers ran %d invocations, %d were theirs", len(answeredBy), n-counts[developers]-wrong)
	}
	if wrongSession != 0 {
		b.Errorf("%d invocations reached a developer with another session's knock", wrongSession)
	}
	b.ReportMetric(float64(len(all)), "invocations")
	b.ReportMetric(float64(counts[developers]), "deployed-answers")
	for k, d := range devs {
		b.ReportMetric(float64(counts[k]), d.name+"-answers")
	}
	b.ReportMetric(float64(wrong), "wrong-answers")
}

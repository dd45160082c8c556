package proxy

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/carrier"
	"github.com/plldb/plldb/layer/runtimeapi"
	"github.com/plldb/plldb/testfixtures/logbuf"
)

// countingFront is a TCP forwarder in front of the relay's gateway that counts the connections made to it:
// every network call a sandbox makes to the relay is one of them.
type countingFront struct {
	ln    net.Listener
	conns atomic.Int32
	wg    sync.WaitGroup
}

func startCountingFront(t *testing.T, target string) *countingFront {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &countingFront{ln: ln}
	var mu sync.Mutex
	var open []net.Conn
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, up)
			mu.Unlock()
			f.wg.Add(2)
			go func() { defer f.wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { defer f.wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		f.wg.Wait()
	})
	return f
}

// developer is one developer's knock key pair.
type developer struct {
	session string
	priv    ed25519.PrivateKey
}

func newDeveloper(t testing.TB, session string) developer {
	_, priv, err := knock.NewKey()
	require.NoError(t, err)
	return developer{session: session, priv: priv}
}

func (d developer) pub() ed25519.PublicKey { return d.priv.Public().(ed25519.PublicKey) }

func (d developer) knock(t testing.TB, c knock.Claims) string {
	t.Helper()
	if c.Issuer == "" {
		c.Issuer = d.session
	}
	if c.Audience == "" {
		c.Audience = "orders"
	}
	tok, err := knock.Mint(d.priv, c)
	require.NoError(t, err)
	return tok
}

// selectiveRig is a selectively attached function in the emulated sandbox (real wrapper, real proxy, Python
// runtime) with the relay (embedded gateway, relay handlers) behind a connection-counting front. alice is the
// session the sandbox is linked to; bob is another developer attached selectively to the same stack.
type selectiveRig struct {
	relay      *relayRig
	front      *countingFront
	sb         *sandbox
	relayLogs  *logbuf.Buffer
	alice, bob developer
}

func startSelective(t *testing.T, extraEnv ...string) *selectiveRig {
	t.Helper()
	logs := &logbuf.Buffer{}
	rig := startRelayLogged(t, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	gwURL, err := url.Parse(rig.gw.URL())
	require.NoError(t, err)
	front := startCountingFront(t, gwURL.Host)
	r := &selectiveRig{relay: rig, front: front, relayLogs: logs,
		alice: newDeveloper(t, rig.session.ID), bob: newDeveloper(t, "s-bob")}
	env := rig.env(
		"PLLDB_SELECTIVE=true",
		"PLLDB_KNOCK_STACK=orders",
		"PLLDB_KNOCK_KEYS="+selenv.FormatKnockKeys(map[string]ed25519.PublicKey{r.alice.session: r.alice.pub(), r.bob.session: r.bob.pub()}),
		"PLLDB_LOG_LEVEL=debug",
	)
	for i, kv := range env {
		if strings.HasPrefix(kv, "PLLDB_ENDPOINT=") {
			u := *gwURL
			u.Host = front.ln.Addr().String()
			env[i] = "PLLDB_ENDPOINT=" + u.String()
		}
	}
	r.sb = startSandbox(t, sandboxOpts{handler: "echo.handler", env: append(env, extraEnv...)})
	return r
}

// deployed invokes and expects the deployed code's answer; it returns the event and client context the handler
// got.
func (r *selectiveRig) deployed(t *testing.T, inv runtimeapi.Invocation) (event []byte, clientContext string) {
	t.Helper()
	if inv.Deadline.IsZero() {
		inv.Deadline = time.Now().Add(time.Minute)
	}
	e := decodeEcho(t, r.sb.invoke(t, inv))
	raw, err := base64.StdEncoding.DecodeString(e.Raw)
	require.NoError(t, err)
	return raw, e.Headers["Lambda-Runtime-Client-Context"]
}

// noKnockLeft asserts that nothing of a knock is in s.
func noKnockLeft(t *testing.T, s string, tokens ...string) {
	t.Helper()
	low := strings.ToLower(s)
	assert.NotContains(t, low, "plldb-knock")
	assert.NotContains(t, low, "plldbknock")
	for _, tok := range tokens {
		if tok != "" {
			assert.NotContains(t, s, tok)
			if i := strings.LastIndexByte(tok, '.'); i > 0 && i < len(tok)-1 {
				assert.NotContains(t, s, tok[i+1:], "the knock's signature")
			}
		}
	}
}

func httpV2(path, method string, headers map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"version": "2.0", "rawPath": path, "headers": headers,
		"requestContext": map[string]any{"http": map[string]any{"method": method, "path": path}}, "body": "{\"sku\":\"book\"}"})
	return b
}

func httpV1(path, method string, headers map[string]any, multi map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"resource": "/orders/{id}", "path": path, "httpMethod": method,
		"headers": headers, "multiValueHeaders": multi, "body": nil})
	return b
}

func sqsEvent(knocks ...string) []byte {
	var recs []any
	for i, k := range knocks {
		attrs := map[string]any{}
		if k != "" {
			attrs["plldbKnock"] = map[string]any{"stringValue": k, "dataType": "String"}
		}
		recs = append(recs, map[string]any{"messageId": fmt.Sprint(i), "body": "{\"orderId\":42}", "eventSource": "aws:sqs", "messageAttributes": attrs})
	}
	b, _ := json.Marshal(map[string]any{"Records": recs})
	return b
}

func eventBridge(knock any) []byte {
	b, _ := json.Marshal(map[string]any{"version": "0", "source": "app.orders", "detail-type": "OrderPlaced",
		"detail": map[string]any{"orderId": 42, "plldbKnock": knock}})
	return b
}

func clientContext(knock any) string {
	b, _ := json.Marshal(map[string]any{"custom": map[string]any{"plldbKnock": knock, "app": "cli"}})
	return string(b)
}

func TestSelectiveUnknockedRunsDeployedCodeWithoutNetwork(t *testing.T) {
	r := startSelective(t)
	events := [][]byte{
		httpV2("/orders/42", "POST", map[string]any{"content-type": "application/json"}),
		httpV1("/orders/42", "GET", map[string]any{"Accept": "*/*"}, map[string]any{"Accept": []string{"*/*"}}),
		sqsEvent("", ""),
		[]byte("{\"b\" :  2, \"a\": \"\u00fc\\u00e9\",\n\"env\": [] }\n"),
		[]byte(`{"note": "talks about knocks and plldb but carries none"}`),
		[]byte(`"not an object"`),
	}
	for i, ev := range events {
		cc := ""
		if i == 0 {
			cc = `{"custom":{"app":"cli"}}`
		}
		got, gotCC := r.deployed(t, runtimeapi.Invocation{Event: ev, ClientContext: cc})
		assert.Equal(t, ev, got, "the deployed code gets the event byte for byte")
		assert.Equal(t, cc, gotCC)
	}
	assert.Zero(t, r.front.conns.Load(), "unknocked invocations make no network call: nothing dialled the relay")
	assert.NotContains(t, r.relayLogs.String(), "role=function", "no function connected to the relay")
	assert.Contains(t, r.sb.stderr.String(), "selective mode: only invocations with a valid knock go to a developer")
}

// expectDeveloper waits for the developer to get one invocation, answers it, and returns it.
func (r *selectiveRig) expectDeveloper(t *testing.T, answer <-chan runtimeapi.Response, requestID string) wire.Invoke {
	t.Helper()
	env := r.relay.expect(t, wire.TypeInvoke)
	var body wire.Invoke
	require.NoError(t, env.DecodeBody(&body))
	require.Equal(t, requestID, body.RequestID)
	r.relay.reply(t, env.From, wire.TypeAck, requestID, wire.Ack{RequestID: requestID})
	r.relay.reply(t, env.From, wire.TypeResult, requestID, wire.Result{RequestID: requestID, Payload: []byte(`{"from":"developer"}`)})
	select {
	case res := <-answer:
		require.False(t, res.Error, "%s", res.Payload)
		assert.JSONEq(t, `{"from":"developer"}`, string(res.Payload), "the developer answered")
	case <-time.After(30 * time.Second):
		t.Fatal("no answer")
	}
	return body
}

func TestSelectiveKnockedReachesTheDeveloperWithoutTheKnock(t *testing.T) {
	r := startSelective(t)
	// Unknocked first: no dial.
	r.deployed(t, runtimeapi.Invocation{Event: httpV2("/orders/1", "GET", map[string]any{})})
	require.Zero(t, r.front.conns.Load())

	tok := r.alice.knock(t, knock.Claims{Route: "POST /orders/*"})
	fnTok := r.alice.knock(t, knock.Claims{Audience: "orders/EchoFunction"})
	reqTok := r.alice.knock(t, knock.Claims{Request: &knock.RequestBinding{Method: "POST", Path: "/orders/42", Time: time.Now()}})
	var all []string
	for i, c := range []struct {
		name  string
		event []byte
		cc    string
		tok   string
	}{
		{"http v2 header, mixed case", httpV2("/orders/42", "POST", map[string]any{"content-type": "application/json", "X-PlLdB-KnOcK": tok}), "", tok},
		{"http v1 both maps, duplicated", httpV1("/orders/42", "POST", map[string]any{"x-plldb-knock": tok}, map[string]any{"X-Plldb-Knock": []string{tok, tok}}), "", tok},
		{"client context, function audience", []byte(`{"sku":"book"}`), clientContext(fnTok), fnTok},
		{"sqs, every record", sqsEvent(fnTok, fnTok), "", fnTok},
		{"eventbridge detail", eventBridge(fnTok), "", fnTok},
		{"request-bound", httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": reqTok}), "", reqTok},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("req-knocked-%d", i)
			answer := asyncInvoke(r.sb, runtimeapi.Invocation{RequestID: id, Deadline: time.Now().Add(time.Minute), Event: c.event, ClientContext: c.cc})
			body := r.expectDeveloper(t, answer, id)
			want, err := carrier.Extract(c.event, c.cc)
			require.NoError(t, err)
			assert.Equal(t, string(want.Event), string(body.Event), "the developer gets the event without the knock, nothing else changed")
			assert.Equal(t, want.ClientContext, body.ClientContext)
			noKnockLeft(t, string(body.Event)+body.ClientContext+fmt.Sprint(body.Env), c.tok)
			require.NotNil(t, body.Knock, "the invoke names the knock")
			assert.Equal(t, r.alice.session, body.Knock.Session)
			assert.NotEmpty(t, body.Knock.ID)
			all = append(all, c.tok)
		})
	}
	assert.EqualValues(t, 1, r.front.conns.Load(), "one link, dialled at the first knock")

	// The request-bound knock was used: replayed on the same request, it runs the deployed code.
	ev := httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": reqTok})
	got, _ := r.deployed(t, runtimeapi.Invocation{Event: ev})
	noKnockLeft(t, string(got), reqTok)
	assert.Eventually(t, func() bool { return strings.Contains(r.sb.stderr.String(), "knock already used") }, 5*time.Second, 10*time.Millisecond)

	// Unknocked traffic still runs the deployed code, byte for byte.
	plain := httpV2("/orders/7", "GET", map[string]any{"accept": "*/*"})
	got, _ = r.deployed(t, runtimeapi.Invocation{Event: plain})
	assert.Equal(t, plain, got)
	for _, out := range []string{r.sb.stdout.String(), r.sb.stderr.String(), r.relayLogs.String()} {
		noKnockLeft(t, out, all...)
	}
}

func TestSelectiveRefusedKnocksRunDeployedCode(t *testing.T) {
	r := startSelective(t)
	now := time.Now()
	mallory := newDeveloper(t, "s-mallory") // not attached
	a := r.alice
	forged := func() string {
		// alice's claims, signed by someone else: the signature does not verify with alice's key.
		return developer{session: a.session, priv: mallory.priv}.knock(t, knock.Claims{})
	}
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"plldb-knock+v1"}`))
	algNone := noneHeader + "." + strings.Split(a.knock(t, knock.Claims{}), ".")[1] + "."
	valid := a.knock(t, knock.Claims{})
	valid2 := a.knock(t, knock.Claims{})
	cases := []struct {
		name   string
		event  []byte
		cc     string
		tokens []string
		reason string
	}{
		{"forged signature", httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": forged()}), "", nil, "knock signature invalid"},
		{"alg none", httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": algNone}), "", []string{algNone}, "knock header not the pinned EdDSA header"},
		{"expired", httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": a.knock(t, knock.Claims{IssuedAt: now.Add(-30 * time.Minute), Expires: now.Add(-10 * time.Minute)})}), "", nil, "knock expired"},
		{"not yet valid", httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": a.knock(t, knock.Claims{NotBefore: now.Add(10 * time.Minute), Expires: now.Add(20 * time.Minute)})}), "", nil, "knock not yet valid"},
		{"another stack", httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": a.knock(t, knock.Claims{Audience: "billing"})}), "", nil, "knock audience mismatch"},
		{"another function", []byte(`{}`), clientContext(a.knock(t, knock.Claims{Audience: "orders/OtherFunction"})), nil, "knock audience mismatch"},
		{"session not attached", httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": mallory.knock(t, knock.Claims{})}), "", nil, "knock issuer is not an attached session"},
		{"another developer's session, no link here", eventBridge(r.bob.knock(t, knock.Claims{})), "", nil, "no relay link to session s-bob"},
		{"route-bound, another route", httpV2("/users/1", "POST", map[string]any{"x-plldb-knock": a.knock(t, knock.Claims{Route: "POST /orders/*"})}), "", nil, "knock bound to another route"},
		{"route-bound, not HTTP", sqsEvent(a.knock(t, knock.Claims{Route: "POST /orders/*"})), "", nil, "knock bound to another route"},
		{"request-bound, another request", httpV2("/orders/43", "POST", map[string]any{"x-plldb-knock": a.knock(t, knock.Claims{Request: &knock.RequestBinding{Method: "POST", Path: "/orders/42", Time: now}})}), "", nil, "knock bound to another request"},
		{"oversize", httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": strings.Repeat("A", knock.MaxTokenLen+1)}), "", nil, "knock too long"},
		{"malformed", httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": "abc"}), "", nil, "knock malformed"},
		{"not a string", eventBridge(42), "", nil, "not a non-empty string"},
		{"empty", httpV1("/orders/42", "POST", map[string]any{"X-PLLDB-KNOCK": ""}, map[string]any{}), "", nil, "not a non-empty string"},
		{"two different knocks, one carrier", httpV1("/orders/42", "POST", map[string]any{"x-plldb-knock": valid}, map[string]any{"X-Plldb-Knock": []string{valid2}}), "", []string{valid, valid2}, "different knocks"},
		{"two different knocks, header and client context", httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": valid}), clientContext(valid2), []string{valid, valid2}, "different knocks"},
		{"comma-joined different knocks", httpV2("/orders/42", "POST", map[string]any{"X-Plldb-Knock": valid + "," + valid2}), "", []string{valid, valid2}, "different knocks"},
		{"sqs batch partly knocked", sqsEvent(valid, ""), "", []string{valid}, "SQS batch"},
		{"client context not JSON", []byte(`{}`), `{"custom":{"plldbKnock":` + valid, []string{valid}, "not valid JSON"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("req-refused-%d", i)
			before := len(r.sb.stderr.String())
			got, gotCC := r.deployed(t, runtimeapi.Invocation{RequestID: id, Event: c.event, ClientContext: c.cc})
			want, _ := carrier.Extract(c.event, c.cc)
			assert.Equal(t, string(want.Event), string(got), "the deployed code gets the event without the knock")
			switch {
			case !json.Valid([]byte(c.cc)):
				assert.Empty(t, gotCC, "a client context that mentions a knock but is not JSON is withheld")
			case c.cc != "":
				assert.Equal(t, want.ClientContext, gotCC)
			}
			noKnockLeft(t, string(got)+gotCC, c.tokens...)
			require.Eventually(t, func() bool { return strings.Contains(r.sb.stderr.String()[before:], "knock refused") },
				5*time.Second, 10*time.Millisecond)
			line := ""
			for _, l := range lines(r.sb.stderr.String()[before:]) {
				if strings.Contains(l, "knock refused") && strings.Contains(l, id) {
					line = l
				}
			}
			assert.Contains(t, line, c.reason, "one log line says why")
			assert.Contains(t, line, "the invocation runs the deployed code")
		})
	}
	assert.Zero(t, r.front.conns.Load(), "no refused knock made a network call: none reached a developer")
	// Nothing of any knock in the sandbox's output or the relay's logs.
	var toks []string
	for _, c := range cases {
		toks = append(toks, c.tokens...)
	}
	for _, out := range []string{r.sb.stdout.String(), r.sb.stderr.String(), r.relayLogs.String()} {
		for _, tok := range toks {
			assert.NotContains(t, out, tok)
		}
		assert.NotContains(t, out, "eyJhbGciOiJFZERTQSIsInR5cCI6InBsbGRiLWtub2NrK3YxIn0.", "no knock's header segment, so no knock, in any log")
	}
}

func TestSelectiveBrokenSettingsRunDeployedCodeAndStripKnocks(t *testing.T) {
	r := startSelective(t, "PLLDB_KNOCK_KEYS=s-alice=not-a-key")
	tok := r.alice.knock(t, knock.Claims{})
	ev := httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": tok, "accept": "*/*"})
	got, _ := r.deployed(t, runtimeapi.Invocation{Event: ev})
	noKnockLeft(t, string(got), tok)
	plain := httpV2("/orders/42", "POST", map[string]any{"accept": "*/*"})
	assert.Equal(t, plain, got)
	got, _ = r.deployed(t, runtimeapi.Invocation{Event: plain})
	assert.Equal(t, plain, got)
	assert.Zero(t, r.front.conns.Load())
	logs := r.sb.stderr.String()
	assert.Equal(t, 1, strings.Count(logs, "selective settings unusable: every invocation"), "said once:\n%s", logs)
	assert.Contains(t, logs, "PLLDB_KNOCK_KEYS entry 1 (session s-alice): the key is not 43 characters")
	assert.NotContains(t, logs, "not-a-key")
	assert.NotContains(t, logs, tok)
}

// A valid knock whose developer is gone (detached, or disconnected) runs the deployed code without the knock:
// the relay nacks the invoke at once, and the proxy falls back as session mode does.
func TestSelectiveKnockWithNoDeveloperRunsDeployedCodeWithoutTheKnock(t *testing.T) {
	r := startSelective(t, "PLLDB_ACK_TIMEOUT=10m") // only the relay's nack can get this answered in time
	require.NoError(t, r.relay.dev.Close())
	require.Eventually(t, func() bool {
		return regexp.MustCompile(`msg="relay disconnected".* role=developer`).MatchString(r.relayLogs.String())
	}, 10*time.Second, 10*time.Millisecond, "the relay saw the developer go")
	tok := r.alice.knock(t, knock.Claims{})
	ev := httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": tok, "accept": "*/*"})
	got, _ := r.deployed(t, runtimeapi.Invocation{RequestID: "req-nobody", Event: ev})
	assert.Equal(t, string(httpV2("/orders/42", "POST", map[string]any{"accept": "*/*"})), string(got))
	assert.EqualValues(t, 1, r.front.conns.Load(), "the knock was valid: the sandbox tried its developer")
	// The proxy's stderr reaches the buffer through a pipe: the line may trail the answer.
	assert.Eventually(t, func() bool { return strings.Contains(r.sb.stderr.String(), "no developer, falling back") },
		5*time.Second, 10*time.Millisecond)
	for _, out := range []string{r.sb.stdout.String(), r.sb.stderr.String(), r.relayLogs.String()} {
		noKnockLeft(t, out, tok)
	}
}

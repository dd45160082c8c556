package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/gateway"
	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
	"github.com/plldb/plldb/layer/runtimeapi"
)

// relayRig is the cloud side of a session, as plldb local and the AWS relay run it: the embedded gateway running
// the real relay handlers, a session in the store, and a developer connected with a developer ticket.
type relayRig struct {
	gw       *gateway.Gateway
	store    *relay.MemoryStore
	session  relay.Session
	audience string
	dev      *wsclient.Client
}

func startRelay(t testing.TB) *relayRig { return startRelayLogged(t, nil) }

// startRelayLogged is startRelay with the gateway's and the relay handlers' logs going to log (nil: the default).
func startRelayLogged(t testing.TB, log *slog.Logger) *relayRig {
	t.Helper()
	store := relay.NewMemoryStore()
	r := &relayRig{store: store, session: relay.NewSession("e2e-"+strings.ReplaceAll(t.Name(), "/", "."), "tester@host", time.Time{}), audience: "plldb-e2e"}
	store.PutSession(r.session)
	r.gw = gateway.New(gateway.Config{Logger: log}, nil)
	r.gw.SetRoutes(&relay.Handlers{Store: store, Conns: r.gw, Audience: r.audience, Logger: log})
	require.NoError(t, r.gw.Start(context.Background()))
	t.Cleanup(func() { _ = r.gw.Close() })
	r.connectDeveloper(t)
	return r
}

func (r *relayRig) connectDeveloper(t testing.TB) {
	r.dev = r.dialDeveloper(t, r.session)
}

// dialDeveloper connects a developer of session s, as plldb attach does.
func (r *relayRig) dialDeveloper(t testing.TB, s relay.Session) *wsclient.Client {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dev, err := wsclient.Dial(ctx, wsclient.Config{
		URL: r.gw.URL(),
		Ticket: func(context.Context) (string, error) {
			return ticket.Mint(s.Keys[wire.RoleDeveloper], ticket.Claims{
				Session: s.ID, Role: wire.RoleDeveloper, Peer: "dev-1", Audience: r.audience,
			})
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dev.Close() })
	return dev
}

// env is what attach puts on an instrumented function: its own key, for the sandbox harness's function name.
func (r *relayRig) env(extra ...string) []string {
	return append([]string{
		"PLLDB_ENDPOINT=" + r.gw.URL(),
		"PLLDB_SESSION=" + r.session.ID,
		"PLLDB_FUNCTION_KEY=" + base64.StdEncoding.EncodeToString(ticket.FunctionKey(r.session.Keys[wire.RoleFunction], "fn-under-test")),
		"PLLDB_AUDIENCE=" + r.audience,
		"PLLDB_LOGICAL_ID=EchoFunction",
	}, extra...)
}

// expect waits for the developer to receive an envelope of type typ, skipping hellos.
func (r *relayRig) expect(t *testing.T, typ wire.Type) *wire.Envelope { return expectOn(t, r.dev, typ) }

// expectOn waits for developer dev to receive an envelope of type typ, skipping hellos.
func expectOn(t *testing.T, dev *wsclient.Client, typ wire.Type) *wire.Envelope {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-dev.Recv():
			require.True(t, ok, "developer link closed")
			if e.T == wire.TypeHello {
				continue
			}
			require.Equal(t, typ, e.T, "unexpected %s envelope", e.T)
			return e
		case <-timeout:
			t.Fatalf("developer never received %s", typ)
			return nil
		}
	}
}

func (r *relayRig) reply(t *testing.T, to string, typ wire.Type, id string, body any) {
	t.Helper()
	replyOn(t, r.dev, to, typ, id, body)
}

// replyOn sends a developer → function envelope from dev.
func replyOn(t *testing.T, dev *wsclient.Client, to string, typ wire.Type, id string, body any) {
	t.Helper()
	e, err := wire.NewEnvelope(typ, id, body)
	require.NoError(t, err)
	e.To = to
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, dev.Send(ctx, e))
}

// waitHello waits until the sandbox's proxy has connected (its hello reached the developer).
func (r *relayRig) waitHello(t testing.TB) wire.Hello {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-r.dev.Recv():
			if e.T != wire.TypeHello {
				continue
			}
			var h wire.Hello
			require.NoError(t, e.DecodeBody(&h))
			return h
		case <-timeout:
			t.Fatal("the proxy never said hello through the relay")
			return wire.Hello{}
		}
	}
}

func asyncInvoke(sb *sandbox, inv runtimeapi.Invocation) <-chan runtimeapi.Response {
	ch := make(chan runtimeapi.Response, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		r, _ := sb.api.Invoke(ctx, inv)
		ch <- r
	}()
	return ch
}

func TestRelayedInvocationThroughTheRealGateway(t *testing.T) {
	rig := startRelay(t)
	sb := startSandbox(t, sandboxOpts{handler: "echo.handler", env: rig.env()})
	hello := rig.waitHello(t)
	assert.Equal(t, wire.RoleFunction, hello.Role)
	require.NotNil(t, hello.Function)
	assert.Equal(t, "EchoFunction", hello.Function.LogicalID)

	event := []byte(`{"order": 42}`)
	answer := asyncInvoke(sb, runtimeapi.Invocation{RequestID: "req-relay-1", Deadline: time.Now().Add(time.Minute), Event: event})

	inv := rig.expect(t, wire.TypeInvoke)
	var body wire.Invoke
	require.NoError(t, inv.DecodeBody(&body))
	assert.Equal(t, "req-relay-1", body.RequestID)
	assert.Equal(t, event, body.Event)
	assert.Equal(t, "fn-under-test", body.Function.Name)
	assert.NotContains(t, body.Env, "PLLDB_FUNCTION_KEY", "the function key must never leave the sandbox")
	assert.Equal(t, hello.Peer, inv.From, "the relay stamps the sender's peer")

	rig.reply(t, inv.From, wire.TypeAck, "req-relay-1", wire.Ack{RequestID: "req-relay-1"})
	rig.reply(t, inv.From, wire.TypeLog, "req-relay-1", wire.Log{RequestID: "req-relay-1", Time: time.Now(), Text: "hello from the developer's machine\n"})
	rig.reply(t, inv.From, wire.TypeResult, "req-relay-1", wire.Result{RequestID: "req-relay-1", Payload: []byte(`{"from":"developer"}`)})

	select {
	case r := <-answer:
		assert.False(t, r.Error)
		assert.JSONEq(t, `{"from":"developer"}`, string(r.Payload))
	case <-time.After(30 * time.Second):
		t.Fatal("no answer")
	}
	assert.Eventually(t, func() bool { return strings.Contains(sb.stdout.String(), "hello from the developer's machine") },
		10*time.Second, 20*time.Millisecond, "log envelopes reach the sandbox's stdout (CloudWatch)")
}

func TestRelayedSixMegabytesBothWays(t *testing.T) {
	rig := startRelay(t)
	sb := startSandbox(t, sandboxOpts{handler: "echo.handler", env: rig.env()})
	rig.waitHello(t)

	event, err := json.Marshal(map[string]string{"blob": strings.Repeat("e", 6*1024*1024-64)})
	require.NoError(t, err)
	answer := asyncInvoke(sb, runtimeapi.Invocation{RequestID: "req-big", Deadline: time.Now().Add(time.Minute), Event: event})
	inv := rig.expect(t, wire.TypeInvoke)
	var body wire.Invoke
	require.NoError(t, inv.DecodeBody(&body))
	require.True(t, bytes.Equal(event, body.Event), "event arrived intact")

	result := bytes.Repeat([]byte("r"), 6*1024*1024-2)
	result = append(append([]byte(`"`), result...), '"')
	rig.reply(t, inv.From, wire.TypeAck, "req-big", wire.Ack{RequestID: "req-big"})
	rig.reply(t, inv.From, wire.TypeResult, "req-big", wire.Result{RequestID: "req-big", Payload: result})
	select {
	case r := <-answer:
		require.False(t, r.Error, "%.300s", r.Payload)
		assert.True(t, bytes.Equal(result, r.Payload), "result arrived intact")
	case <-time.After(60 * time.Second):
		t.Fatal("no answer")
	}
}

func TestNoAckFallsBackToTheOriginalRuntime(t *testing.T) {
	rig := startRelay(t)
	sb := startSandbox(t, sandboxOpts{handler: "echo.handler", env: rig.env("PLLDB_ACK_TIMEOUT=300ms")})
	rig.waitHello(t)
	answer := asyncInvoke(sb, runtimeapi.Invocation{RequestID: "req-silent", Deadline: time.Now().Add(time.Minute), Event: []byte(`{}`)})
	rig.expect(t, wire.TypeInvoke) // the developer sees it but never acks
	select {
	case r := <-answer:
		require.False(t, r.Error, "%s", r.Payload)
		assert.Equal(t, "req-silent", decodeEcho(t, r).RequestID, "the original runtime answered")
	case <-time.After(30 * time.Second):
		t.Fatal("no answer")
	}
}

func TestDeveloperGoneMeansImmediateFallbackOrStrictError(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(map[bool]string{false: "fallback", true: "strict"}[strict], func(t *testing.T) {
			rig := startRelay(t)
			// An ack timeout far beyond the test's own: only the relay's nack can get this answered in time.
			env := rig.env("PLLDB_ACK_TIMEOUT=10m")
			if strict {
				env = append(env, "PLLDB_STRICT=true")
			}
			sb := startSandbox(t, sandboxOpts{handler: "echo.handler", env: env})
			rig.waitHello(t)
			require.NoError(t, rig.dev.Close())

			r := sb.invoke(t, runtimeapi.Invocation{RequestID: "req-alone", Deadline: time.Now().Add(time.Hour), Event: []byte(`{}`)})
			if strict {
				require.True(t, r.Error)
				assert.Equal(t, "Plldb.NoDeveloper", r.ErrorType)
			} else {
				require.False(t, r.Error, "%s", r.Payload)
				assert.Equal(t, "req-alone", decodeEcho(t, r).RequestID)
			}
		})
	}
}

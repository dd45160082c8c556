package relay_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
)

// failingStore wraps a store and fails chosen operations, to check that infrastructure failures are errors
// (500s), not denials or silent drops.
type failingStore struct {
	relay.Store
	failGetSession, failUseTicket, failSessionConns bool
}

func (f *failingStore) GetSession(ctx context.Context, id string) (relay.Session, error) {
	if f.failGetSession {
		return relay.Session{}, errBoom
	}
	return f.Store.GetSession(ctx, id)
}

func (f *failingStore) UseTicket(ctx context.Context, jti string, exp time.Time) error {
	if f.failUseTicket {
		return errBoom
	}
	return f.Store.UseTicket(ctx, jti, exp)
}

func (f *failingStore) SessionConnections(ctx context.Context, s string, r wire.Role) ([]relay.Connection, error) {
	if f.failSessionConns {
		return nil, errBoom
	}
	return f.Store.SessionConnections(ctx, s, r)
}

func TestAuthorize(t *testing.T) {
	const arn = "arn:aws:execute-api:local:000000000000:abc123/local/$connect"
	type outcome int
	const (
		allow outcome = iota
		deny
		unauthorized
		failure
	)
	tests := []struct {
		name  string
		setup func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest
		want  outcome
	}{
		{"valid developer ticket", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			return authRequest(map[string]string{"Authorization": "Bearer " + x.ticket(t, "A", wire.RoleDeveloper, "dev")})
		}, allow},
		{"lower-case header and scheme", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			return authRequest(map[string]string{"authorization": "bearer " + x.ticket(t, "A", wire.RoleDeveloper, "dev")})
		}, allow},
		{"only in multi-value headers", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			r := authRequest(nil)
			r.MultiValueHeaders = map[string][]string{"AUTHORIZATION": {"Bearer " + x.ticket(t, "A", wire.RoleDeveloper, "dev")}}
			return r
		}, allow},
		{"same ticket in both header maps", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			v := "Bearer " + x.ticket(t, "A", wire.RoleDeveloper, "dev")
			r := authRequest(map[string]string{"Authorization": v})
			r.MultiValueHeaders = map[string][]string{"Authorization": {v}}
			return r
		}, allow},
		{"no header", func(*testing.T, *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			return authRequest(map[string]string{"Host": "relay"})
		}, unauthorized},
		{"empty bearer", func(*testing.T, *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			return authRequest(map[string]string{"Authorization": "Bearer   "})
		}, unauthorized},
		{"basic credentials", func(*testing.T, *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			return authRequest(map[string]string{"Authorization": "Basic YWxpY2U6c2VjcmV0"})
		}, unauthorized},
		{"two different tickets", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			r := authRequest(map[string]string{"Authorization": "Bearer " + x.ticket(t, "A", wire.RoleDeveloper, "dev")})
			r.MultiValueHeaders = map[string][]string{"authorization": {"Bearer " + x.ticket(t, "B", wire.RoleDeveloper, "dev")}}
			return r
		}, unauthorized},
		{"garbage ticket", func(*testing.T, *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			return authRequest(map[string]string{"Authorization": "Bearer not-a-ticket"})
		}, deny},
		{"replayed ticket", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			tok := x.ticket(t, "A", wire.RoleFunction, "f/fn")
			r := authRequest(map[string]string{"Authorization": "Bearer " + tok})
			first, err := x.h.Authorize(context.Background(), r)
			require.NoError(t, err)
			require.Equal(t, "Allow", first.PolicyDocument.Statement[0].Effect)
			return r
		}, deny},
		{"wrong audience", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			s, err := x.store.GetSession(context.Background(), "A")
			require.NoError(t, err)
			tok, err := ticket.Mint(s.Keys[wire.RoleDeveloper], ticket.Claims{Session: "A", Role: wire.RoleDeveloper,
				Peer: "dev", Audience: "wss://elsewhere", IssuedAt: x.clock.Now()})
			require.NoError(t, err)
			return authRequest(map[string]string{"Authorization": "Bearer " + tok})
		}, deny},
		{"function key for a developer ticket", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			s, err := x.store.GetSession(context.Background(), "A")
			require.NoError(t, err)
			tok, err := ticket.Mint(s.Keys[wire.RoleFunction], ticket.Claims{Session: "A", Role: wire.RoleDeveloper,
				Peer: "dev", Audience: testAudience, IssuedAt: x.clock.Now()})
			require.NoError(t, err)
			return authRequest(map[string]string{"Authorization": "Bearer " + tok})
		}, deny},
		{"unknown session", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			tok := x.ticket(t, "A", wire.RoleDeveloper, "dev")
			x.store.DeleteSession("A")
			return authRequest(map[string]string{"Authorization": "Bearer " + tok})
		}, deny},
		{"expired session", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			s := relay.NewSession("short", "bob", x.clock.Now().Add(30*time.Second))
			x.store.PutSession(s)
			tok := x.ticket(t, "short", wire.RoleDeveloper, "dev")
			x.clock.Advance(31 * time.Second)
			return authRequest(map[string]string{"Authorization": "Bearer " + tok})
		}, deny},
		{"store down", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			tok := x.ticket(t, "A", wire.RoleDeveloper, "dev")
			x.h.Store = &failingStore{Store: x.store, failGetSession: true}
			return authRequest(map[string]string{"Authorization": "Bearer " + tok})
		}, failure},
		{"ticket table down", func(t *testing.T, x *harness) events.APIGatewayCustomAuthorizerRequestTypeRequest {
			tok := x.ticket(t, "A", wire.RoleDeveloper, "dev")
			x.h.Store = &failingStore{Store: x.store, failUseTicket: true}
			return authRequest(map[string]string{"Authorization": "Bearer " + tok})
		}, failure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newHarness(t, "A", "B")
			req := tt.setup(t, x)
			resp, err := x.h.Authorize(context.Background(), req)
			switch tt.want {
			case allow:
				require.NoError(t, err)
				require.Len(t, resp.PolicyDocument.Statement, 1)
				st := resp.PolicyDocument.Statement[0]
				assert.Equal(t, "Allow", st.Effect)
				assert.Equal(t, []string{arn}, st.Resource)
				assert.Equal(t, []string{"execute-api:Invoke"}, st.Action)
				assert.Equal(t, "dev", resp.PrincipalID)
				assert.Equal(t, map[string]any{"session": "A", "role": "developer", "peer": "dev"}, resp.Context)
			case deny:
				require.NoError(t, err)
				require.Len(t, resp.PolicyDocument.Statement, 1)
				assert.Equal(t, "Deny", resp.PolicyDocument.Statement[0].Effect)
				assert.Equal(t, []string{arn}, resp.PolicyDocument.Statement[0].Resource)
				assert.Empty(t, resp.Context)
				assert.Contains(t, x.logs.String(), "relay ticket denied", "the reason is logged")
			case unauthorized:
				require.Error(t, err)
				assert.Equal(t, "Unauthorized", err.Error(), "API Gateway needs exactly this message for a 401")
			case failure:
				require.Error(t, err)
				assert.ErrorIs(t, err, errBoom)
				assert.NotEqual(t, "Unauthorized", err.Error())
			}
			for _, v := range req.Headers {
				if tok, ok := strings.CutPrefix(strings.ToLower(v), "bearer "); ok && len(tok) > 8 {
					assert.NotContains(t, strings.ToLower(x.logs.String()), strings.TrimSpace(tok), "tickets are never logged")
					if err != nil {
						assert.NotContains(t, strings.ToLower(err.Error()), strings.TrimSpace(tok))
					}
				}
			}
		})
	}
}

func connectReq(id string, authorizer any) events.APIGatewayWebsocketProxyRequest {
	return events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{
		ConnectionID: id, RouteKey: "$connect", EventType: "CONNECT", Authorizer: authorizer,
	}}
}

func TestConnect(t *testing.T) {
	x := newHarness(t, "A")
	ctx := context.Background()

	refused := map[string]any{
		"no context":     nil,
		"not a map":      "session=A",
		"missing peer":   map[string]any{"session": "A", "role": "developer"},
		"empty session":  map[string]any{"session": "", "role": "developer", "peer": "p"},
		"unknown role":   map[string]any{"session": "A", "role": "admin", "peer": "p"},
		"non-string":     map[string]any{"session": "A", "role": "developer", "peer": 7},
		"peer too long":  map[string]any{"session": "A", "role": "developer", "peer": strings.Repeat("p", wire.MaxPeerLen+1)},
		"string map bad": map[string]string{"session": "A", "role": "function"},
	}
	for name, auth := range refused {
		resp, err := x.h.Connect(ctx, connectReq("c-"+name, auth))
		require.NoError(t, err, name)
		assert.Equal(t, 403, resp.StatusCode, name)
		_, err = x.store.GetConnection(ctx, "c-"+name)
		assert.ErrorIs(t, err, relay.ErrNotFound, "%s: nothing stored", name)
	}

	resp, err := x.h.Connect(ctx, connectReq("", map[string]any{"session": "A", "role": "developer", "peer": "p"}))
	require.NoError(t, err)
	assert.Equal(t, 403, resp.StatusCode, "no connection id")

	resp, err = x.h.Connect(ctx, connectReq("c1", map[string]string{"session": "A", "role": "function", "peer": "f/fn-1"}))
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	c, err := x.store.GetConnection(ctx, "c1")
	require.NoError(t, err)
	assert.Equal(t, "c1", c.ID)
	assert.Equal(t, "A", c.Session)
	assert.Equal(t, wire.RoleFunction, c.Role)
	assert.Equal(t, "f/fn-1", c.Peer)
	assert.False(t, c.ConnectedAt.IsZero())
}

func TestRouteFunctionToDeveloper(t *testing.T) {
	x := newHarness(t, "A")
	dev := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	fn := x.connect(t, "A", wire.RoleFunction, "f/fn-1")

	body := wire.Invoke{RequestID: "req-1", Event: []byte(`{"secret-marker":"s3cr3t-b0dy"}`),
		Function: fnF}
	// The sender tries to pass itself off as someone else; the relay overwrites from.
	msg := envelope(t, wire.TypeInvoke, "req-1", "", "dev-1", body)
	resp, err := x.send(t, fn, msg)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)

	got := decode(t, x.conns.take(dev))
	require.Len(t, got, 1)
	assert.Equal(t, wire.TypeInvoke, got[0].T)
	assert.Equal(t, "req-1", got[0].ID)
	assert.Equal(t, "f/fn-1", got[0].From, "from is the sender's peer, not what it claimed")
	var sent struct {
		Body json.RawMessage `json:"body"`
	}
	require.NoError(t, json.Unmarshal(msg, &sent))
	assert.JSONEq(t, string(sent.Body), string(got[0].Body), "body passes unchanged")
	assert.Empty(t, x.conns.take(fn), "nothing goes back to the sender")
	assert.NotContains(t, x.logs.String(), "s3cr3t-b0dy", "bodies are never logged")
}

func TestRouteDeveloperToFunction(t *testing.T) {
	x := newHarness(t, "A")
	dev := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	fn1 := x.connect(t, "A", wire.RoleFunction, "f/fn-1")
	fn2 := x.connect(t, "A", wire.RoleFunction, "f/fn-2")

	resp, err := x.send(t, dev, envelope(t, wire.TypeResult, "req-9", "f/fn-2", "f/fn-1",
		wire.Result{RequestID: "req-9", Payload: []byte(`"ok"`)}))
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)

	got := decode(t, x.conns.take(fn2))
	require.Len(t, got, 1)
	assert.Equal(t, wire.TypeResult, got[0].T)
	assert.Equal(t, "dev-1", got[0].From)
	assert.Equal(t, "f/fn-2", got[0].To)
	assert.Empty(t, x.conns.take(fn1))
	assert.Empty(t, x.conns.take(dev))
}

func TestRouteToNewestConnection(t *testing.T) {
	x := newHarness(t, "A")
	oldDev := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	newDev := x.connect(t, "A", wire.RoleDeveloper, "dev-1") // planned reconnect: new connection first
	oldFn := x.connect(t, "A", wire.RoleFunction, "f/fn-1")
	newFn := x.connect(t, "A", wire.RoleFunction, "f/fn-1")

	_, err := x.send(t, oldFn, envelope(t, wire.TypeLog, "l1", "", "", wire.Log{Text: "x"}))
	require.NoError(t, err)
	assert.Len(t, x.conns.take(newDev), 1, "function traffic goes to the newest developer connection")
	assert.Empty(t, x.conns.take(oldDev))

	_, err = x.send(t, oldDev, envelope(t, wire.TypeAck, "a1", "f/fn-1", "", wire.Ack{RequestID: "r"}))
	require.NoError(t, err)
	assert.Len(t, x.conns.take(newFn), 1, "developer traffic goes to the peer's newest connection")
	assert.Empty(t, x.conns.take(oldFn))
}

func TestRouteNeverCrossesSessions(t *testing.T) {
	x := newHarness(t, "A", "B")
	devA := x.connect(t, "A", wire.RoleDeveloper, "dev-a")
	fnA := x.connect(t, "A", wire.RoleFunction, "f/fn-a")
	devB := x.connect(t, "B", wire.RoleDeveloper, "dev-b")
	fnB := x.connect(t, "B", wire.RoleFunction, "f/fn-b")
	shared := x.connect(t, "B", wire.RoleFunction, "f/fn-shared")

	// Addressing a function that exists only in session B: same answer as for a peer that exists nowhere.
	for _, to := range []string{"f/fn-b", "no-such-peer"} {
		_, err := x.send(t, devA, envelope(t, wire.TypeResult, "r-"+to, to, "", wire.Result{RequestID: "r"}))
		require.NoError(t, err)
		got := decode(t, x.conns.take(devA))
		require.Len(t, got, 1)
		n := nackOf(t, got[0])
		assert.Equal(t, "r-"+to, n.Ref)
		assert.Equal(t, wire.TypeResult, n.T)
		assert.Equal(t, relay.ReasonNotConnected, n.Reason, "the reason never tells whether the peer exists elsewhere")
	}
	assert.Empty(t, x.conns.take(fnB))
	assert.Empty(t, x.conns.take(devB))
	assert.Empty(t, x.conns.take(fnA))

	// A peer id present in both sessions reaches only the sender's session.
	sharedA := x.connect(t, "A", wire.RoleFunction, "f/fn-shared")
	_, err := x.send(t, devA, envelope(t, wire.TypeAck, "a", "f/fn-shared", "", wire.Ack{RequestID: "r"}))
	require.NoError(t, err)
	assert.Len(t, x.conns.take(sharedA), 1)
	assert.Empty(t, x.conns.take(shared))

	// Function traffic of B goes to B's developer only.
	_, err = x.send(t, fnB, envelope(t, wire.TypeInvoke, "i", "dev-a", "", wire.Invoke{RequestID: "i", Function: fnF}))
	require.NoError(t, err)
	assert.Len(t, x.conns.take(devB), 1)
	assert.Empty(t, x.conns.take(devA), "a function's to cannot pick another session's developer")
}

func TestRouteUndeliverable(t *testing.T) {
	x := newHarness(t, "A")
	fn := x.connect(t, "A", wire.RoleFunction, "f/fn-1")

	_, err := x.send(t, fn, envelope(t, wire.TypeInvoke, "req-1", "", "", wire.Invoke{RequestID: "req-1", Function: fnF}))
	require.NoError(t, err)
	got := decode(t, x.conns.take(fn))
	require.Len(t, got, 1)
	assert.Equal(t, wire.Nack{Ref: "req-1", T: wire.TypeInvoke, Reason: relay.ReasonNoDeveloper}, nackOf(t, got[0]))

	dev := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	otherDev := x.connect(t, "A", wire.RoleDeveloper, "dev-2")
	for _, tc := range []struct{ to, reason string }{
		{"", relay.ReasonNoDestination},
		{"dev-2", relay.ReasonNotConnected}, // developers talk to functions only
	} {
		_, err := x.send(t, dev, envelope(t, wire.TypeHello, "h", tc.to, "", wire.Hello{Role: wire.RoleDeveloper, Peer: "dev-1"}))
		require.NoError(t, err)
		got := decode(t, x.conns.take(dev))
		require.Len(t, got, 1, "to=%q", tc.to)
		assert.Equal(t, tc.reason, nackOf(t, got[0]).Reason, "to=%q", tc.to)
	}
	assert.Empty(t, x.conns.take(otherDev))
}

func TestRouteGoneDestination(t *testing.T) {
	x := newHarness(t, "A")
	dev := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	fn := x.connect(t, "A", wire.RoleFunction, "f/fn-1")
	x.conns.setGone(dev)

	_, err := x.send(t, fn, envelope(t, wire.TypeInvoke, "req-1", "", "", wire.Invoke{RequestID: "req-1", Function: fnF}))
	require.NoError(t, err)
	got := decode(t, x.conns.take(fn))
	require.Len(t, got, 1)
	assert.Equal(t, wire.Nack{Ref: "req-1", T: wire.TypeInvoke, Reason: relay.ReasonGone}, nackOf(t, got[0]))
	_, err = x.store.GetConnection(context.Background(), dev)
	assert.ErrorIs(t, err, relay.ErrNotFound, "the stale connection is removed")

	// With the stale entry gone, the next message says plainly that no developer is there.
	_, err = x.send(t, fn, envelope(t, wire.TypeInvoke, "req-2", "", "", wire.Invoke{RequestID: "req-2", Function: fnF}))
	require.NoError(t, err)
	got = decode(t, x.conns.take(fn))
	require.Len(t, got, 1)
	assert.Equal(t, relay.ReasonNoDeveloper, nackOf(t, got[0]).Reason)

	// A developer reaching a gone function.
	dev2 := x.connect(t, "A", wire.RoleDeveloper, "dev-2")
	x.conns.setGone(fn)
	_, err = x.send(t, dev2, envelope(t, wire.TypeResult, "r", "f/fn-1", "", wire.Result{RequestID: "r"}))
	require.NoError(t, err)
	got = decode(t, x.conns.take(dev2))
	require.Len(t, got, 1)
	assert.Equal(t, relay.ReasonGone, nackOf(t, got[0]).Reason)
	_, err = x.store.GetConnection(context.Background(), fn)
	assert.ErrorIs(t, err, relay.ErrNotFound)
}

func TestRouteDeliveryFailure(t *testing.T) {
	x := newHarness(t, "A")
	dev := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	fn := x.connect(t, "A", wire.RoleFunction, "f/fn-1")
	x.conns.setFailing(dev, fmt.Errorf("post: payload too large (413)"))

	_, err := x.send(t, fn, envelope(t, wire.TypeInvoke, "req-1", "", "", wire.Invoke{RequestID: "req-1", Function: fnF}))
	require.NoError(t, err)
	got := decode(t, x.conns.take(fn))
	require.Len(t, got, 1)
	assert.Equal(t, relay.ReasonFailed, nackOf(t, got[0]).Reason)
	_, err = x.store.GetConnection(context.Background(), dev)
	assert.NoError(t, err, "only 410 removes a connection")
}

func TestRouteStoreFailure(t *testing.T) {
	x := newHarness(t, "A")
	fn := x.connect(t, "A", wire.RoleFunction, "f/fn-1")
	x.h.Store = &failingStore{Store: x.store, failSessionConns: true}
	resp, err := x.send(t, fn, envelope(t, wire.TypeInvoke, "req-1", "", "", wire.Invoke{RequestID: "req-1", Function: fnF}))
	require.ErrorIs(t, err, errBoom)
	assert.Equal(t, 500, resp.StatusCode)
	got := decode(t, x.conns.take(fn))
	require.Len(t, got, 1, "the sender still hears that its message went nowhere")
	assert.Equal(t, relay.ReasonUnavailable, nackOf(t, got[0]).Reason)
}

func TestPingPong(t *testing.T) {
	x := newHarness(t, "A")
	dev := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	fn := x.connect(t, "A", wire.RoleFunction, "f/fn-1")

	for _, c := range []string{dev, fn} {
		_, err := x.send(t, c, envelope(t, wire.TypePing, "ping-"+c, "", "", wire.Ping{Sent: time.Now()}))
		require.NoError(t, err)
		got := decode(t, x.conns.take(c))
		require.Len(t, got, 1)
		assert.Equal(t, wire.TypePong, got[0].T)
		assert.Equal(t, "ping-"+c, got[0].ID)
		assert.Empty(t, got[0].From)
		var p wire.Ping
		require.NoError(t, json.Unmarshal(got[0].Body, &p))
		assert.False(t, p.Sent.IsZero())
	}
	assert.Equal(t, 2, x.conns.total(), "pongs go to the sender only")
}

func TestInvalidMessages(t *testing.T) {
	x := newHarness(t, "A")
	dev := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	fn := x.connect(t, "A", wire.RoleFunction, "f/fn-1")

	for name, msg := range map[string]string{
		"not JSON":      "hello",
		"empty":         "",
		"array":         `[1,2]`,
		"wrong version": `{"v":2,"t":"invoke","id":"x"}`,
		"no type":       `{"v":1,"id":"x"}`,
	} {
		resp, err := x.send(t, fn, []byte(msg))
		require.NoError(t, err, name)
		assert.Equal(t, 200, resp.StatusCode, name)
		got := decode(t, x.conns.take(fn))
		require.Len(t, got, 1, name)
		n := nackOf(t, got[0])
		assert.True(t, strings.HasPrefix(n.Reason, relay.ReasonInvalid+": "), "%s: %q", name, n.Reason)
		assert.Greater(t, len(n.Reason), len(relay.ReasonInvalid)+2, "%s: the parse error is included", name)
	}
	for _, typ := range []wire.Type{wire.TypePong, wire.TypeNack} {
		_, err := x.send(t, fn, envelope(t, typ, "spoof", "", "", map[string]string{}))
		require.NoError(t, err)
		got := decode(t, x.conns.take(fn))
		require.Len(t, got, 1)
		assert.Contains(t, nackOf(t, got[0]).Reason, relay.ReasonReserved)
	}
	assert.Empty(t, x.conns.take(dev), "nothing invalid is forwarded")

	// Binary frames arrive base64-encoded.
	req := wsRequest(fn, "$default", base64.StdEncoding.EncodeToString(envelope(t, wire.TypeLog, "l", "", "", wire.Log{Text: "bin"})))
	req.IsBase64Encoded = true
	_, err := x.h.Default(context.Background(), req)
	require.NoError(t, err)
	assert.Len(t, x.conns.take(dev), 1)
	req.Body = "!!not base64"
	_, err = x.h.Default(context.Background(), req)
	require.NoError(t, err)
	got := decode(t, x.conns.take(fn))
	require.Len(t, got, 1)
	assert.Contains(t, nackOf(t, got[0]).Reason, "base64")
}

func TestDefaultUnknownSender(t *testing.T) {
	x := newHarness(t, "A")
	resp, err := x.send(t, "nobody", envelope(t, wire.TypePing, "p", "", "", nil))
	require.ErrorIs(t, err, relay.ErrNotFound)
	assert.Equal(t, 403, resp.StatusCode)
	assert.Zero(t, x.conns.total())
}

func TestDisconnectSendsBye(t *testing.T) {
	x := newHarness(t, "A", "B")
	dev := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	fn1 := x.connect(t, "A", wire.RoleFunction, "f/fn-1")
	fn2 := x.connect(t, "A", wire.RoleFunction, "f/fn-2")
	fnGone := x.connect(t, "A", wire.RoleFunction, "f/fn-3")
	x.connect(t, "B", wire.RoleDeveloper, "dev-b")
	fnB := x.connect(t, "B", wire.RoleFunction, "f/fn-b")
	x.conns.setGone(fnGone)

	x.disconnect(t, dev)
	_, err := x.store.GetConnection(context.Background(), dev)
	assert.ErrorIs(t, err, relay.ErrNotFound)
	for _, fn := range []string{fn1, fn2} {
		got := decode(t, x.conns.take(fn))
		require.Len(t, got, 1, fn)
		assert.Equal(t, wire.TypeBye, got[0].T)
		assert.Empty(t, got[0].From)
		var bye wire.Bye
		require.NoError(t, json.Unmarshal(got[0].Body, &bye))
		assert.Equal(t, "developer disconnected", bye.Reason)
	}
	assert.Empty(t, x.conns.take(fnB), "other sessions are not told")
	_, err = x.store.GetConnection(context.Background(), fnGone)
	assert.ErrorIs(t, err, relay.ErrNotFound, "a function that answered 410 is dropped")
}

func TestDisconnectNoByeWhileADeveloperRemains(t *testing.T) {
	x := newHarness(t, "A")
	oldDev := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	fn := x.connect(t, "A", wire.RoleFunction, "f/fn-1")
	newDev := x.connect(t, "A", wire.RoleDeveloper, "dev-1") // reconnected before the old one closed

	x.disconnect(t, oldDev)
	assert.Empty(t, x.conns.take(fn), "a newer developer connection replaced the old one")

	// A function leaving never says bye to anyone.
	x.disconnect(t, fn)
	assert.Zero(t, x.conns.total())

	fn2 := x.connect(t, "A", wire.RoleFunction, "f/fn-2")
	x.disconnect(t, newDev)
	got := decode(t, x.conns.take(fn2))
	require.Len(t, got, 1)
	assert.Equal(t, wire.TypeBye, got[0].T)

	// Disconnecting an id the store no longer knows (e.g. removed after a 410) is fine.
	x.disconnect(t, newDev)
	x.disconnect(t, "never-connected")
}

// The full life of a session, the handlers driven concurrently the way API Gateway runs them.
func TestConcurrentTraffic(t *testing.T) {
	x := newHarness(t, "A")
	dev := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	const fns, msgs = 8, 25
	ids := make([]string, fns)
	for i := range ids {
		ids[i] = x.connect(t, "A", wire.RoleFunction, fmt.Sprintf("f/fn-%d", i))
	}
	// Messages are built up front: require must not be called from the sending goroutines.
	fromFn := make([][][]byte, fns)
	fromDev := make([][][]byte, fns)
	for i := range ids {
		for j := range msgs {
			fromFn[i] = append(fromFn[i], envelope(t, wire.TypeInvoke, fmt.Sprintf("%d-%d", i, j), "", "", wire.Invoke{Function: fnF}))
			fromDev[i] = append(fromDev[i], envelope(t, wire.TypeAck, fmt.Sprintf("a%d-%d", i, j), fmt.Sprintf("f/fn-%d", i), "", nil))
		}
	}
	errs := make(chan error, 2*fns)
	run := func(conn string, batch [][]byte) {
		for _, m := range batch {
			if _, err := x.h.Default(context.Background(), wsRequest(conn, "$default", string(m))); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}
	for i := range ids {
		go run(ids[i], fromFn[i])
		go run(dev, fromDev[i])
	}
	for range 2 * fns {
		require.NoError(t, <-errs)
	}
	assert.Len(t, x.conns.take(dev), fns*msgs)
	for _, id := range ids {
		got := decode(t, x.conns.take(id))
		require.Len(t, got, msgs)
		for _, d := range got {
			assert.Equal(t, "dev-1", d.From)
		}
	}
}

func TestSenderCannotSpoofFrom(t *testing.T) {
	x := newHarness(t, "A")
	x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	dev := x.connect(t, "A", wire.RoleDeveloper, "dev-2")
	fn := x.connect(t, "A", wire.RoleFunction, "f/fn-1")

	for _, msg := range []string{
		`{"v":1,"t":"ack","id":"1","to":"f/fn-1","from":"dev-1"}`,
		`{"v":1,"t":"ack","id":"2","to":"f/fn-1","FROM":"dev-1"}`,
		`{"v":1,"t":"ack","id":"3","to":"f/fn-1","fr\u006fm":"dev-1","from":"dev-1"}`,
		`{"from":"dev-1","v":1,"t":"ack","id":"4","to":"f/fn-1","body":{"from":"dev-1"}}`,
	} {
		_, err := x.send(t, dev, []byte(msg))
		require.NoError(t, err)
		got := x.conns.take(fn)
		require.Len(t, got, 1, msg)
		// Read it the way a peer does.
		e, err := wire.Unmarshal(got[0])
		require.NoError(t, err, msg)
		assert.Equal(t, "dev-2", e.From, msg)
	}
}

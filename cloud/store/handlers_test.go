package store_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/cloud/store"
)

const audience = "wss://relay.test/prod"

// fakeConns records what the handlers post, like API Gateway's @connections endpoint would deliver it.
type fakeConns struct {
	mu    sync.Mutex
	posts map[string][][]byte
	gone  map[string]bool
}

func newFakeConns() *fakeConns {
	return &fakeConns{posts: map[string][][]byte{}, gone: map[string]bool{}}
}

func (f *fakeConns) PostToConnection(_ context.Context, id string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone[id] {
		return relay.ErrGone
	}
	f.posts[id] = append(f.posts[id], bytes.Clone(data))
	return nil
}

func (f *fakeConns) DeleteConnection(context.Context, string) error { return nil }

func (f *fakeConns) take(id string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.posts[id]
	delete(f.posts, id)
	return p
}

func (f *fakeConns) setGone(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone[id] = true
}

// relayOnDynamo is the relay Lambda's handlers over the DynamoDB store on moto.
type relayOnDynamo struct {
	d     *dynamo
	s     *store.Store
	conns *fakeConns
	h     *relay.Handlers
}

func newRelay(t testing.TB, logs io.Writer) *relayOnDynamo {
	t.Helper()
	d := newDynamo(t)
	s := d.store(nil)
	conns := newFakeConns()
	return &relayOnDynamo{d: d, s: s, conns: conns, h: &relay.Handlers{
		Store: s, Conns: conns, Audience: audience,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}}
}

func (r *relayOnDynamo) ticket(t testing.TB, session string, role wire.Role, peer string) string {
	t.Helper()
	sess, err := r.s.GetSession(context.Background(), session)
	require.NoError(t, err)
	key := sess.Keys[role]
	if role == wire.RoleFunction { // the key attach gives the function whose namespace peer is in
		key = ticket.FunctionKey(key, ticket.PeerFunction(peer))
	}
	tok, err := ticket.Mint(key, ticket.Claims{Session: session, Role: role, Function: ticket.PeerFunction(peer), Peer: peer, Audience: audience, IssuedAt: time.Now()})
	require.NoError(t, err)
	return tok
}

func authRequest(tok string) events.APIGatewayCustomAuthorizerRequestTypeRequest {
	return events.APIGatewayCustomAuthorizerRequestTypeRequest{
		MethodArn: "arn:aws:execute-api:us-east-1:123456789012:abc/prod/$connect",
		Headers:   map[string]string{"Authorization": "Bearer " + tok},
	}
}

// connect runs the authorizer then $connect, the way API Gateway chains them, and returns the authorizer's
// effect.
func (r *relayOnDynamo) connect(t testing.TB, id, tok string) string {
	t.Helper()
	ctx := context.Background()
	auth, err := r.h.Authorize(ctx, authRequest(tok))
	require.NoError(t, err)
	effect := auth.PolicyDocument.Statement[0].Effect
	if effect != "Allow" {
		return effect
	}
	resp, err := r.h.Connect(ctx, events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{
		ConnectionID: id, RouteKey: "$connect", EventType: "CONNECT", Authorizer: auth.Context,
	}})
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	return effect
}

func (r *relayOnDynamo) send(t testing.TB, from string, msg []byte) {
	t.Helper()
	resp, err := r.h.Default(context.Background(), events.APIGatewayWebsocketProxyRequest{
		Body: string(msg), RequestContext: events.APIGatewayWebsocketProxyRequestContext{ConnectionID: from, RouteKey: "$default", EventType: "MESSAGE"},
	})
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
}

func (r *relayOnDynamo) disconnect(t testing.TB, id string) {
	t.Helper()
	resp, err := r.h.Disconnect(context.Background(), events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{ConnectionID: id, RouteKey: "$disconnect", EventType: "DISCONNECT"},
	})
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
}

func envelope(t testing.TB, typ wire.Type, id, to string, body any) []byte {
	t.Helper()
	e, err := wire.NewEnvelope(typ, id, body)
	require.NoError(t, err)
	e.To = to
	b, err := wire.Marshal(e)
	require.NoError(t, err)
	return b
}

func received(t testing.TB, msgs [][]byte) []*wire.Envelope {
	t.Helper()
	var out []*wire.Envelope
	for _, m := range msgs {
		e, err := wire.Unmarshal(m)
		require.NoError(t, err)
		out = append(out, e)
	}
	return out
}

func TestHandlersOnDynamoDB(t *testing.T) {
	var logs bytes.Buffer
	r := newRelay(t, &logs)
	ctx := context.Background()
	require.NoError(t, r.s.PutSession(ctx, relay.NewSession("A", "alice@host", time.Now().Add(time.Hour))))
	require.NoError(t, r.s.PutSession(ctx, relay.NewSession("B", "bob@host", time.Now().Add(time.Hour))))

	// $connect: tickets verify against the keys in DynamoDB and are single use.
	devTicket := r.ticket(t, "A", wire.RoleDeveloper, "dev")
	require.Equal(t, "Allow", r.connect(t, "dev-1", devTicket))
	require.Equal(t, "Deny", r.connect(t, "dev-1-again", devTicket), "a replayed ticket is denied")
	require.Equal(t, "Allow", r.connect(t, "fn-1", r.ticket(t, "A", wire.RoleFunction, "f/sandbox-1")))
	require.Equal(t, "Allow", r.connect(t, "b-dev", r.ticket(t, "B", wire.RoleDeveloper, "dev")))
	c, err := r.s.GetConnection(ctx, "fn-1")
	require.NoError(t, err)
	assert.Equal(t, relay.Connection{ID: "fn-1", Session: "A", Role: wire.RoleFunction, Peer: "f/sandbox-1", ConnectedAt: c.ConnectedAt}, c)
	forged, err := ticket.Mint(make([]byte, ticket.KeyLen), ticket.Claims{Session: "A", Role: wire.RoleDeveloper, Peer: "dev", Audience: audience, IssuedAt: time.Now()})
	require.NoError(t, err)
	require.Equal(t, "Deny", r.connect(t, "forged", forged), "a ticket signed with another key is denied")
	late := r.ticket(t, "B", wire.RoleDeveloper, "dev") // minted while B existed
	require.NoError(t, r.s.DeleteSession(ctx, "B"))
	require.Equal(t, "Deny", r.connect(t, "b-late", late), "a deleted session admits nobody")

	// $default, function → developer: the invocation reaches the session's developer, stamped with its sender.
	r.send(t, "fn-1", envelope(t, wire.TypeInvoke, "req-1", "", wire.Invoke{RequestID: "req-1", Function: wire.FunctionIdentity{Name: "f"}, Event: []byte(`{"k":1}`)}))
	got := received(t, r.conns.take("dev-1"))
	require.Len(t, got, 1)
	assert.Equal(t, wire.TypeInvoke, got[0].T)
	assert.Equal(t, "f/sandbox-1", got[0].From)

	// developer → function, addressed by peer.
	r.send(t, "dev-1", envelope(t, wire.TypeResult, "req-1", "f/sandbox-1", wire.Result{RequestID: "req-1", Payload: []byte(`"ok"`)}))
	got = received(t, r.conns.take("fn-1"))
	require.Len(t, got, 1)
	assert.Equal(t, wire.TypeResult, got[0].T)
	assert.Equal(t, "dev", got[0].From)

	// Each function has its own key: g's key cannot connect as f, and g's own connection can neither invoke as f
	// nor receive f's replies.
	sessA, err := r.s.GetSession(ctx, "A")
	require.NoError(t, err)
	asF, err := ticket.Mint(ticket.FunctionKey(sessA.Keys[wire.RoleFunction], "g"), ticket.Claims{Session: "A", Role: wire.RoleFunction,
		Function: "f", Peer: "f/sandbox-1", Audience: audience, IssuedAt: time.Now()})
	require.NoError(t, err)
	require.Equal(t, "Deny", r.connect(t, "g-as-f", asF), "one function's key cannot connect as another")
	require.Equal(t, "Allow", r.connect(t, "g-1", r.ticket(t, "A", wire.RoleFunction, "g/sandbox-1")))
	r.send(t, "g-1", envelope(t, wire.TypeInvoke, "req-g", "", wire.Invoke{RequestID: "req-g", Function: wire.FunctionIdentity{Name: "f"}}))
	assert.Empty(t, r.conns.take("dev-1"), "an invocation naming another function never reaches the developer")
	got = received(t, r.conns.take("g-1"))
	require.Len(t, got, 1)
	assert.Equal(t, wire.TypeNack, got[0].T)
	r.send(t, "dev-1", envelope(t, wire.TypeResult, "req-1b", "f/sandbox-1", wire.Result{RequestID: "req-1b", Payload: []byte(`"ok"`)}))
	assert.Len(t, r.conns.take("fn-1"), 1, "f's sandbox keeps its replies")
	assert.Empty(t, r.conns.take("g-1"))
	r.disconnect(t, "g-1")

	// Sessions stay apart: B's developer cannot reach A's function.
	r.send(t, "b-dev", envelope(t, wire.TypeResult, "req-x", "f/sandbox-1", wire.Result{RequestID: "req-x"}))
	assert.Empty(t, r.conns.take("fn-1"))
	got = received(t, r.conns.take("b-dev"))
	require.Len(t, got, 1)
	assert.Equal(t, wire.TypeNack, got[0].T)

	// A newer connection of the same sandbox takes the traffic; a gone one is dropped from the store.
	require.Equal(t, "Allow", r.connect(t, "fn-2", r.ticket(t, "A", wire.RoleFunction, "f/sandbox-1")))
	r.send(t, "dev-1", envelope(t, wire.TypeAck, "req-2", "f/sandbox-1", wire.Ack{RequestID: "req-2"}))
	assert.Len(t, r.conns.take("fn-2"), 1)
	assert.Empty(t, r.conns.take("fn-1"))
	r.conns.setGone("fn-2")
	r.send(t, "dev-1", envelope(t, wire.TypeAck, "req-3", "f/sandbox-1", wire.Ack{RequestID: "req-3"}))
	_, err = r.s.GetConnection(ctx, "fn-2")
	require.ErrorIs(t, err, relay.ErrNotFound, "410 Gone removes the stale connection")
	got = received(t, r.conns.take("dev-1"))
	require.Len(t, got, 1)
	assert.Equal(t, wire.TypeNack, got[0].T, "the sender learns it was not delivered")

	// $disconnect of the last developer says bye to the session's functions.
	r.disconnect(t, "dev-1")
	_, err = r.s.GetConnection(ctx, "dev-1")
	require.ErrorIs(t, err, relay.ErrNotFound)
	got = received(t, r.conns.take("fn-1"))
	require.Len(t, got, 1)
	assert.Equal(t, wire.TypeBye, got[0].T)
	r.send(t, "fn-1", envelope(t, wire.TypeInvoke, "req-4", "", wire.Invoke{RequestID: "req-4", Function: wire.FunctionIdentity{Name: "f"}}))
	got = received(t, r.conns.take("fn-1"))
	require.Len(t, got, 1)
	assert.Equal(t, wire.TypeNack, got[0].T, "no developer left")
	r.disconnect(t, "fn-1")
	r.disconnect(t, "fn-1")
	all, err := r.s.SessionConnections(ctx, "A", "")
	require.NoError(t, err)
	assert.Empty(t, all)

	assert.NotContains(t, logs.String(), devTicket, "tickets are never logged")
}

// TestStoreCallsPerRoutedMessage pins the hot path: every routed message costs two DynamoDB reads (sender,
// destination) and nothing else: no writes, no scans, no polling.
func TestStoreCallsPerRoutedMessage(t *testing.T) {
	r := newRelay(t, io.Discard)
	r.s.Now = newClock().Now // a clock that stands still: the developer's once-a-minute last-seen write never falls due
	ctx := context.Background()
	require.NoError(t, r.s.PutSession(ctx, relay.NewSession("A", "alice", time.Time{})))
	require.Equal(t, "Allow", r.connect(t, "dev", r.ticket(t, "A", wire.RoleDeveloper, "dev")))
	require.Equal(t, "Allow", r.connect(t, "fn", r.ticket(t, "A", wire.RoleFunction, "f/sandbox")))
	up := envelope(t, wire.TypeInvoke, "r", "", wire.Invoke{RequestID: "r", Function: wire.FunctionIdentity{Name: "f"}})
	down := envelope(t, wire.TypeResult, "r", "f/sandbox", wire.Result{RequestID: "r", Payload: []byte(`1`)})

	r.d.calls.take()
	r.send(t, "fn", up)
	assert.Equal(t, map[string]int{"GetItem": 1, "Query": 1}, r.d.calls.take(), "function → developer")
	r.send(t, "dev", down)
	assert.Equal(t, map[string]int{"GetItem": 1, "Query": 1}, r.d.calls.take(), "developer → function")
	assert.Len(t, r.conns.take("dev"), 1)
	assert.Len(t, r.conns.take("fn"), 1)
}

// BenchmarkRoutedMessage reports the DynamoDB calls per routed message (one invocation hop each way) through the
// relay handlers on the store; ns/op is dominated by moto, not by DynamoDB.
func BenchmarkRoutedMessage(b *testing.B) {
	r := newRelay(b, io.Discard)
	r.s.Now = newClock().Now // as in TestStoreCallsPerRoutedMessage
	ctx := context.Background()
	require.NoError(b, r.s.PutSession(ctx, relay.NewSession("A", "alice", time.Time{})))
	require.Equal(b, "Allow", r.connect(b, "dev", r.ticket(b, "A", wire.RoleDeveloper, "dev")))
	require.Equal(b, "Allow", r.connect(b, "fn", r.ticket(b, "A", wire.RoleFunction, "f/sandbox")))
	up := envelope(b, wire.TypeInvoke, "r", "", wire.Invoke{RequestID: "r", Function: wire.FunctionIdentity{Name: "f"}})
	down := envelope(b, wire.TypeResult, "r", "f/sandbox", wire.Result{RequestID: "r", Payload: []byte(`1`)})
	r.d.calls.take()
	msgs := 0
	for b.Loop() {
		r.send(b, "fn", up)
		r.send(b, "dev", down)
		msgs += 2
		r.conns.take("dev")
		r.conns.take("fn")
	}
	calls := r.d.calls.take()
	b.ReportMetric(float64(total(calls))/float64(msgs), "dynamodb-calls/msg")
	b.ReportMetric(float64(calls["Scan"]+calls["PutItem"]+calls["TransactWriteItems"])/float64(msgs), "dynamodb-writes+scans/msg")
}

// TestDeveloperSeenCostsOneWriteAMinute: the relay records when a session's developer was last heard from (for
// the dead-man sweep) without putting a write on every message: one conditional UpdateItem per connection per
// minute at most, none for a function's messages.
func TestDeveloperSeenCostsOneWriteAMinute(t *testing.T) {
	r := newRelay(t, io.Discard)
	clk := newClock()
	r.s.Now = clk.Now
	ctx := context.Background()
	require.NoError(t, r.s.PutSession(ctx, relay.NewSession("A", "alice", time.Time{})))
	require.Equal(t, "Allow", r.connect(t, "dev", r.ticket(t, "A", wire.RoleDeveloper, "dev")))
	require.Equal(t, "Allow", r.connect(t, "fn", r.ticket(t, "A", wire.RoleFunction, "f/sandbox")))
	up := envelope(t, wire.TypeInvoke, "r", "", wire.Invoke{RequestID: "r", Function: wire.FunctionIdentity{Name: "f"}})
	down := envelope(t, wire.TypeResult, "r", "f/sandbox", wire.Result{RequestID: "r", Payload: []byte(`1`)})

	r.d.calls.take()
	r.send(t, "dev", down)
	assert.Equal(t, map[string]int{"GetItem": 1, "Query": 1}, r.d.calls.take(), "seen at connect: no write within the minute")
	clk.Advance(store.SeenInterval + time.Second)
	r.send(t, "fn", up)
	assert.Equal(t, map[string]int{"GetItem": 1, "Query": 1}, r.d.calls.take(), "a function's message is no sign of the developer")
	r.send(t, "dev", down)
	assert.Equal(t, map[string]int{"GetItem": 1, "Query": 1, "UpdateItem": 1}, r.d.calls.take(), "a minute later, one write")
	r.send(t, "dev", down)
	assert.Equal(t, map[string]int{"GetItem": 1, "Query": 1}, r.d.calls.take())
	r.conns.take("dev")
	r.conns.take("fn")

	// A deleted session is not brought back by a late record.
	require.NoError(t, r.s.DeleteSession(ctx, "A"))
	clk.Advance(store.SeenInterval + time.Second)
	r.send(t, "dev", down)
	_, err := r.s.GetSession(ctx, "A")
	require.ErrorIs(t, err, store.ErrNotFound)
	stale, err := r.s.StaleSessions(ctx, time.Hour)
	require.NoError(t, err)
	assert.Empty(t, stale, "no claims, nothing to sweep")
}

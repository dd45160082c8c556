package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/testfixtures/logbuf"
)

const testAudience = "wss://relay.test/local"

// fakeConns is a Connections that records what is posted and can play 410 Gone or fail for chosen ids.
type fakeConns struct {
	mu      sync.Mutex
	posts   map[string][][]byte
	order   []string // connection ids in post order
	gone    map[string]bool
	failing map[string]error
	deleted []string
}

func newFakeConns() *fakeConns {
	return &fakeConns{posts: map[string][][]byte{}, gone: map[string]bool{}, failing: map[string]error{}}
}

func (f *fakeConns) PostToConnection(_ context.Context, id string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone[id] {
		return fmt.Errorf("post to %s: %w", id, relay.ErrGone)
	}
	if err := f.failing[id]; err != nil {
		return err
	}
	f.posts[id] = append(f.posts[id], bytes.Clone(data))
	f.order = append(f.order, id)
	return nil
}

func (f *fakeConns) DeleteConnection(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, id)
	return nil
}

func (f *fakeConns) setGone(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone[id] = true
}

func (f *fakeConns) setFailing(id string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing[id] = err
}

// received returns the raw messages posted to id and forgets them.
func (f *fakeConns) take(id string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.posts[id]
	delete(f.posts, id)
	return p
}

func (f *fakeConns) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.order)
}

// clock advances a millisecond on every reading, so connections made one after another have distinct
// ConnectedAt times, as they would in reality.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 21, 17, 30, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Add(int64(time.Millisecond))).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type harness struct {
	store *relay.MemoryStore
	conns *fakeConns
	h     *relay.Handlers
	clock *clock
	logs  *logbuf.Buffer
	n     atomic.Int64
}

func newHarness(t testing.TB, sessions ...string) *harness {
	t.Helper()
	x := &harness{store: relay.NewMemoryStore(), conns: newFakeConns(), clock: newClock(), logs: &logbuf.Buffer{}}
	x.store.Now = x.clock.Now
	x.h = &relay.Handlers{
		Store:    x.store,
		Conns:    x.conns,
		Audience: testAudience,
		Logger:   slog.New(slog.NewTextHandler(x.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      x.clock.Now,
	}
	for _, s := range sessions {
		x.store.PutSession(relay.NewSession(s, "alice@host", time.Time{}))
	}
	return x
}

func (x *harness) ticket(t testing.TB, session string, role wire.Role, peer string) string {
	t.Helper()
	s, err := x.store.GetSession(context.Background(), session)
	require.NoError(t, err)
	tok, err := ticket.Mint(roleKey(s, role, peer), ticket.Claims{
		Session: session, Role: role, Function: ticket.PeerFunction(peer), Peer: peer, Audience: testAudience, IssuedAt: x.clock.Now(),
	})
	require.NoError(t, err)
	return tok
}

// fnF is the identity of function "f", whose peers the tests name "f/…".
var fnF = wire.FunctionIdentity{Name: "f"}

// roleKey is the key that signs a ticket for peer: the developer key, or the key of the function whose namespace
// peer is in (as attach gives each function).
func roleKey(s relay.Session, role wire.Role, peer string) []byte {
	if role == wire.RoleFunction {
		return ticket.FunctionKey(s.Keys[role], ticket.PeerFunction(peer))
	}
	return s.Keys[role]
}

func authRequest(headers map[string]string) events.APIGatewayCustomAuthorizerRequestTypeRequest {
	return events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type:      "REQUEST",
		MethodArn: "arn:aws:execute-api:local:000000000000:abc123/local/$connect",
		Headers:   headers,
	}
}

// connect runs a connection through the authorizer and $connect, as the gateway would, and returns its id.
func (x *harness) connect(t testing.TB, session string, role wire.Role, peer string) string {
	t.Helper()
	ctx := context.Background()
	tok := x.ticket(t, session, role, peer)
	auth, err := x.h.Authorize(ctx, authRequest(map[string]string{"Authorization": "Bearer " + tok}))
	require.NoError(t, err)
	require.Equal(t, "Allow", auth.PolicyDocument.Statement[0].Effect)
	authorizer := map[string]any{"principalId": auth.PrincipalID}
	for k, v := range auth.Context {
		authorizer[k] = v
	}
	id := fmt.Sprintf("conn-%s-%d=", peer, x.n.Add(1))
	resp, err := x.h.Connect(ctx, events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			ConnectionID: id, RouteKey: "$connect", EventType: "CONNECT", Authorizer: authorizer,
		},
	})
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	return id
}

func wsRequest(id, route, body string) events.APIGatewayWebsocketProxyRequest {
	return events.APIGatewayWebsocketProxyRequest{
		Body: body,
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			ConnectionID: id, RouteKey: route, EventType: "MESSAGE",
		},
	}
}

// send delivers a raw message from connection id through $default.
func (x *harness) send(t testing.TB, id string, msg []byte) (events.APIGatewayProxyResponse, error) {
	t.Helper()
	return x.h.Default(context.Background(), wsRequest(id, "$default", string(msg)))
}

func (x *harness) disconnect(t testing.TB, id string) {
	t.Helper()
	req := wsRequest(id, "$disconnect", "")
	req.RequestContext.EventType = "DISCONNECT"
	resp, err := x.h.Disconnect(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
}

func envelope(t testing.TB, typ wire.Type, id, to, from string, body any) []byte {
	t.Helper()
	e, err := wire.NewEnvelope(typ, id, body)
	require.NoError(t, err)
	e.To, e.From = to, from
	b, err := wire.Marshal(e)
	require.NoError(t, err)
	return b
}

// decoded is a posted message, parsed for assertions.
type decoded struct {
	V    int             `json:"v"`
	T    wire.Type       `json:"t"`
	ID   string          `json:"id"`
	To   string          `json:"to"`
	From string          `json:"from"`
	Body json.RawMessage `json:"body"`
}

func decode(t testing.TB, msgs [][]byte) []decoded {
	t.Helper()
	out := make([]decoded, len(msgs))
	for i, m := range msgs {
		require.NoError(t, json.Unmarshal(m, &out[i]), "posted message %d is JSON", i)
	}
	return out
}

func nackOf(t testing.TB, d decoded) wire.Nack {
	t.Helper()
	require.Equal(t, wire.TypeNack, d.T)
	require.Empty(t, d.From, "relay messages carry no from")
	var n wire.Nack
	require.NoError(t, json.Unmarshal(d.Body, &n))
	return n
}

var errBoom = errors.New("boom")

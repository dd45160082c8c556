package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/store"
	"github.com/plldb/plldb/cloud/wsmanage"
)

const audience = "plldb:test"

// management is an httptest stand-in for API Gateway's @connections API; gone ids answer 410.
type management struct {
	mu    sync.Mutex
	posts map[string][][]byte
	gone  map[string]bool
}

func newManagement(t testing.TB) (*management, *httptest.Server) {
	m := &management{posts: map[string][][]byte{}, gone: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const prefix = "/relay/@connections/"
		id := r.URL.Path[len(prefix):]
		b, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.gone[id] {
			w.WriteHeader(http.StatusGone)
			return
		}
		m.posts[id] = append(m.posts[id], b)
	}))
	t.Cleanup(srv.Close)
	return m, srv
}

func (m *management) take(id string) [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.posts[id]
	delete(m.posts, id)
	return p
}

type fixture struct {
	r       *Router
	store   *relay.MemoryStore
	mgmt    *management
	session relay.Session
}

func newFixture(t testing.TB, endpointOverride bool) *fixture {
	m, srv := newManagement(t)
	store := relay.NewMemoryStore()
	s := relay.NewSession("s1", "alice@host", time.Now().Add(time.Hour))
	store.PutSession(s)
	r := &Router{
		Store:    store,
		Audience: audience,
		AWS:      aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")},
		Logger:   slog.New(slog.DiscardHandler),
	}
	if endpointOverride {
		r.ManagementEndpoint = srv.URL + "/relay"
	}
	return &fixture{r: r, store: store, mgmt: m, session: s}
}

func (f *fixture) handle(t *testing.T, ev any) (any, error) {
	t.Helper()
	raw, err := json.Marshal(ev)
	require.NoError(t, err)
	return f.r.Handle(context.Background(), raw)
}

func authorizerEvent(header string) map[string]any {
	ev := map[string]any{
		"type":      "REQUEST",
		"methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abc123/relay/$connect",
		"headers":   map[string]string{},
		"requestContext": map[string]any{
			"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "conn-1",
			"domainName": "abc123.execute-api.eu-west-1.amazonaws.com", "stage": "relay",
		},
	}
	if header != "" {
		ev["headers"] = map[string]string{"Authorization": header}
	}
	return ev
}

func routeEvent(route, conn string, authorizer map[string]any, body string) map[string]any {
	rc := map[string]any{"routeKey": route, "connectionId": conn, "domainName": "127.0.0.1", "stage": "relay"}
	if authorizer != nil {
		rc["authorizer"] = authorizer
	}
	return map[string]any{"requestContext": rc, "body": body}
}

func TestAuthorizerWithoutTicketIsUnauthorized(t *testing.T) {
	f := newFixture(t, true)
	_, err := f.handle(t, authorizerEvent(""))
	require.Error(t, err)
	assert.Equal(t, "Unauthorized", err.Error(), "API Gateway answers 401 only for this exact message")
}

func TestAuthorizerAllowsAValidTicketAndDeniesAForgedOne(t *testing.T) {
	f := newFixture(t, true)
	tok, err := ticket.Mint(f.session.Keys[wire.RoleDeveloper], ticket.Claims{Session: "s1", Role: wire.RoleDeveloper, Peer: "dev-1", Audience: audience})
	require.NoError(t, err)
	out, err := f.handle(t, authorizerEvent("Bearer "+tok))
	require.NoError(t, err)
	resp, ok := out.(events.APIGatewayCustomAuthorizerResponse)
	require.True(t, ok, "%T", out)
	assert.Equal(t, "Allow", resp.PolicyDocument.Statement[0].Effect)
	assert.Equal(t, "s1", resp.Context[relay.ContextSession])

	forged, err := ticket.Mint(ticket.NewKey(), ticket.Claims{Session: "s1", Role: wire.RoleDeveloper, Peer: "dev-1", Audience: audience})
	require.NoError(t, err)
	out, err = f.handle(t, authorizerEvent("Bearer "+forged))
	require.NoError(t, err)
	assert.Equal(t, "Deny", out.(events.APIGatewayCustomAuthorizerResponse).PolicyDocument.Statement[0].Effect)
}

func connect(t *testing.T, f *fixture, conn string, role wire.Role, peer string) {
	t.Helper()
	out, err := f.handle(t, routeEvent("$connect", conn, map[string]any{
		relay.ContextSession: "s1", relay.ContextRole: string(role), relay.ContextPeer: peer,
	}, ""))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, out.(events.APIGatewayProxyResponse).StatusCode)
}

func envelope(t *testing.T, typ wire.Type, id string, body any) string {
	t.Helper()
	e, err := wire.NewEnvelope(typ, id, body)
	require.NoError(t, err)
	b, err := wire.Marshal(e)
	require.NoError(t, err)
	return string(b)
}

func TestRoutesReachTheHandlersAndTheManagementAPI(t *testing.T) {
	f := newFixture(t, true)
	connect(t, f, "dev-conn", wire.RoleDeveloper, "dev-1")
	connect(t, f, "fn-conn", wire.RoleFunction, "fn-1")
	c, err := f.store.GetConnection(context.Background(), "dev-conn")
	require.NoError(t, err)
	assert.Equal(t, "dev-1", c.Peer)

	// A ping on $default is answered with a pong through the management API.
	out, err := f.handle(t, routeEvent("$default", "dev-conn", nil, envelope(t, wire.TypePing, "p1", wire.Ping{Sent: time.Now()})))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, out.(events.APIGatewayProxyResponse).StatusCode)
	posts := f.mgmt.take("dev-conn")
	require.Len(t, posts, 1)
	h, err := wire.PeekHeader(posts[0])
	require.NoError(t, err)
	assert.Equal(t, wire.TypePong, h.T)
	assert.Equal(t, "p1", h.ID)

	// The last developer leaving: $disconnect removes the connection and tells the function (bye).
	_, err = f.handle(t, routeEvent("$disconnect", "dev-conn", nil, ""))
	require.NoError(t, err)
	_, err = f.store.GetConnection(context.Background(), "dev-conn")
	require.ErrorIs(t, err, relay.ErrNotFound)
	posts = f.mgmt.take("fn-conn")
	require.Len(t, posts, 1)
	h, err = wire.PeekHeader(posts[0])
	require.NoError(t, err)
	assert.Equal(t, wire.TypeBye, h.T)
}

func TestGoneConnectionsAreDropped(t *testing.T) {
	f := newFixture(t, true)
	connect(t, f, "dev-conn", wire.RoleDeveloper, "dev-1")
	f.mgmt.mu.Lock()
	f.mgmt.gone["dev-conn"] = true
	f.mgmt.mu.Unlock()
	_, err := f.handle(t, routeEvent("$default", "dev-conn", nil, envelope(t, wire.TypePing, "p1", wire.Ping{Sent: time.Now()})))
	require.NoError(t, err)
	_, err = f.store.GetConnection(context.Background(), "dev-conn")
	require.ErrorIs(t, err, relay.ErrNotFound, "a 410 from the management API removes the stale connection")
}

func TestEndpointComesFromTheEventWithoutOverride(t *testing.T) {
	f := newFixture(t, false)
	conns := f.r.handlers(probe{RequestContext: struct {
		RouteKey   string `json:"routeKey"`
		DomainName string `json:"domainName"`
		Stage      string `json:"stage"`
	}{"$default", "abc.execute-api.eu-west-1.amazonaws.com", "relay"}}).Conns
	c, ok := conns.(*wsmanage.Client)
	require.True(t, ok, "%T", conns)
	assert.Equal(t, "https://abc.execute-api.eu-west-1.amazonaws.com/relay", c.Endpoint)
	assert.Equal(t, "eu-west-1", c.Region)
}

func TestUnknownEventsAreErrors(t *testing.T) {
	f := newFixture(t, true)
	_, err := f.r.Handle(context.Background(), json.RawMessage(`{"hello":"world"}`))
	require.ErrorIs(t, err, errUnknownEvent)
	_, err = f.r.Handle(context.Background(), json.RawMessage(`[1,2`))
	require.ErrorContains(t, err, "decode event")
}

func TestEnvironmentIsChecked(t *testing.T) {
	_, err := readEnv(func(string) string { return "" })
	require.ErrorContains(t, err, "PLLDB_AUDIENCE")
	require.ErrorContains(t, err, "PLLDB_CLAIMS_TABLE")
	env := map[string]string{
		"PLLDB_AUDIENCE": "plldb:x", "PLLDB_SESSIONS_TABLE": "x-sessions", "PLLDB_CONNECTIONS_TABLE": "x-connections",
		"PLLDB_TICKETS_TABLE": "x-tickets", "PLLDB_CLAIMS_TABLE": "x-claims",
	}
	e, err := readEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, "x-claims", e.Tables.Claims)
	// The relay runs on the DynamoDB store over the tables the environment names.
	t.Setenv("AWS_REGION", "us-east-1")
	r, err := setup(context.Background(), func(k string) string { return env[k] }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.IsType(t, &store.Store{}, r.Store)
	assert.Equal(t, "plldb:x", r.Audience)
	assert.NotNil(t, r.Sweep, "the schedule's sweep is wired on the DynamoDB store")
	assert.Equal(t, instrument.DefaultGrace, e.Grace)

	env["PLLDB_DEADMAN_GRACE"] = "45m"
	e, err = readEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, 45*time.Minute, e.Grace)
	for _, bad := range []string{"soon", "5m", "-1h"} {
		env["PLLDB_DEADMAN_GRACE"] = bad
		_, err = readEnv(func(k string) string { return env[k] })
		require.ErrorContains(t, err, "PLLDB_DEADMAN_GRACE", bad)
	}
}

// scheduledEvent is what an EventBridge schedule rule sends its target.
func scheduledEvent() map[string]any {
	return map[string]any{
		"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
		"source": "aws.events", "account": "123456789012", "time": "2026-12-02T06:00:00Z", "region": "eu-west-1",
		"resources": []string{"arn:aws:events:eu-west-1:123456789012:rule/plldb-sweep"}, "detail": map[string]any{},
	}
}

func TestTheScheduleRunsTheSweep(t *testing.T) {
	f := newFixture(t, true)
	_, err := f.handle(t, scheduledEvent())
	require.ErrorContains(t, err, "no sweep is configured")

	runs := 0
	f.r.Sweep = func(context.Context) (instrument.SweepReport, error) {
		runs++
		return instrument.SweepReport{Swept: []instrument.Swept{{Session: "s-1", Reason: "expired"}}}, nil
	}
	out, err := f.handle(t, scheduledEvent())
	require.NoError(t, err)
	assert.Equal(t, 1, runs)
	assert.Equal(t, "s-1", out.(instrument.SweepReport).Swept[0].Session)

	// Only a schedule's event sweeps: anything else from EventBridge is not a route either.
	ev := scheduledEvent()
	ev["detail-type"] = "EC2 Instance State-change Notification"
	_, err = f.handle(t, ev)
	require.ErrorIs(t, err, errUnknownEvent)
	assert.Equal(t, 1, runs)
}

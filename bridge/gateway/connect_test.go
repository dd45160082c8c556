package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

var awsIDPattern = regexp.MustCompile(`^[A-Za-z0-9+]{15}=$`)

func TestConnectAllowedCarriesTheEventsAPIGatewaySends(t *testing.T) {
	g, r := startGateway(t, Config{Stage: "dev", APIID: "abcdef1234"})
	require.Regexp(t, `^ws://127\.0\.0\.1:\d+/dev$`, g.URL())
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/dev$`, g.ManagementURL())

	ws, resp, err := dial(t, g, url.Values{"name": {"dev1"}, "tag": {"a", "b"}}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	id := r.id(t, "dev1")
	assert.Regexp(t, awsIDPattern, id)

	r.mu.Lock()
	auth, conn := r.auths[0], r.connects[0]
	r.mu.Unlock()

	assert.Equal(t, "REQUEST", auth.Type)
	assert.Equal(t, "arn:aws:execute-api:local:000000000000:abcdef1234/dev/$connect", auth.MethodArn)
	assert.Equal(t, "Bearer secret-ticket", auth.Headers["Authorization"])
	assert.Equal(t, []string{"Bearer secret-ticket"}, auth.MultiValueHeaders["Authorization"])
	assert.Equal(t, "websocket", auth.Headers["Upgrade"])
	assert.Contains(t, auth.Headers["Host"], "127.0.0.1:")
	assert.Equal(t, "127.0.0.1", auth.Headers["X-Forwarded-For"])
	assert.Equal(t, "b", auth.QueryStringParameters["tag"], "single-value query keeps the last value")
	assert.Equal(t, []string{"a", "b"}, auth.MultiValueQueryStringParameters["tag"])
	assert.Equal(t, "dev", auth.RequestContext.Stage)
	assert.Equal(t, "abcdef1234", auth.RequestContext.APIID)
	assert.Equal(t, "127.0.0.1", auth.RequestContext.Identity.SourceIP)
	assert.Equal(t, "$connect", auth.RequestContext.ResourcePath)
	assert.NotEmpty(t, auth.RequestContext.RequestID)

	assert.Equal(t, "$connect", conn.RequestContext.RouteKey)
	assert.Equal(t, "CONNECT", conn.RequestContext.EventType)
	assert.Equal(t, "IN", conn.RequestContext.MessageDirection)
	assert.Equal(t, id, conn.RequestContext.ConnectionID)
	assert.Equal(t, "abcdef1234.execute-api.local.amazonaws.com", conn.RequestContext.DomainName)
	assert.Equal(t, "plldb-test/1", conn.RequestContext.Identity.UserAgent)
	assert.Equal(t, "127.0.0.1", conn.RequestContext.Identity.SourceIP)
	assert.Equal(t, "Bearer secret-ticket", conn.Headers["Authorization"])
	assert.Equal(t, "dev1", conn.QueryStringParameters["name"])
	assert.NotZero(t, conn.RequestContext.ConnectedAt)
	assert.Regexp(t, `^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$`, conn.RequestContext.RequestTime)
	authz, ok := conn.RequestContext.Authorizer.(map[string]any)
	require.True(t, ok, "authorizer context must be a map[string]any, got %T", conn.RequestContext.Authorizer)
	assert.Equal(t, "s1", authz["session"])
	assert.Equal(t, "developer", authz["role"])
	assert.Equal(t, "dev1", authz["peer"])
	assert.Equal(t, "dev1", authz["principalId"])
	assert.Equal(t, float64(7), authz["n"], "context values arrive as they would after Lambda's JSON")

	info, err := g.GetConnection(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", info.SourceIP)
	assert.Equal(t, "plldb-test/1", info.UserAgent)

	// The authorizer context reaches every later event of the connection too.
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("hi")))
	require.Eventually(t, func() bool { return len(r.messagesOf(id)) == 1 }, eventually, tick)
	msg := r.messagesOf(id)[0]
	assert.Equal(t, "dev1", msg.RequestContext.Authorizer.(map[string]any)["peer"])
	assert.Empty(t, msg.Headers, "$default events carry no headers")
}

func TestConnectRefusals(t *testing.T) {
	cases := []struct {
		name, key, value string
		status           int
	}{
		{"deny policy", "auth", "deny", http.StatusForbidden},
		{"allow for another resource", "auth", "elsewhere", http.StatusForbidden},
		{"authorizer Unauthorized", "auth", "unauthorized", http.StatusUnauthorized},
		{"wrapped Unauthorized is an authorizer failure", "auth", "wrapped", http.StatusInternalServerError},
		{"authorizer error", "auth", "fail", http.StatusInternalServerError},
		{"authorizer context with an object", "auth", "nested", http.StatusInternalServerError},
		{"authorizer panic", "auth", "panic", http.StatusInternalServerError},
		{"$connect 403", "connect", "403", http.StatusForbidden},
		{"$connect 429", "connect", "429", http.StatusTooManyRequests},
		{"$connect error", "connect", "error", http.StatusInternalServerError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, r := startGateway(t, Config{})
			ws, resp, err := dial(t, g, url.Values{"name": {"x"}, tc.key: {tc.value}}, nil)
			require.ErrorIs(t, err, websocket.ErrBadHandshake)
			require.Nil(t, ws)
			require.Equal(t, tc.status, resp.StatusCode)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(body, &m), "body %q", body)
			assert.Contains(t, m, "message")
			auths, connects, _, disconnects := r.counts()
			assert.Equal(t, 1, auths)
			if tc.key == "auth" {
				assert.Zero(t, connects, "$connect must not run when the authorizer refuses")
			}
			assert.Zero(t, disconnects, "a refused connection never existed")
			g.mu.Lock()
			assert.Empty(t, g.conns)
			g.mu.Unlock()
		})
	}
}

func TestNonWebSocketRequests(t *testing.T) {
	g, r := startGateway(t, Config{})
	resp, err := http.Get(g.ManagementURL())
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)

	resp, err = http.Get(g.ManagementURL() + "/elsewhere")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	auths, _, _, _ := r.counts()
	assert.Zero(t, auths, "requests that cannot be upgraded never reach the authorizer")
	http.DefaultClient.CloseIdleConnections()
}

func TestStartRefusesNonLoopbackAndStartsOnce(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0", "[::]:0", "nonsense"} {
		err := New(Config{Addr: addr}, nil).Start(context.Background())
		require.Error(t, err, addr)
	}
	bad := New(Config{Stage: "a/b"}, nil)
	require.ErrorContains(t, bad.Start(context.Background()), "stage")

	g := New(Config{Addr: "localhost:0"}, newFakeRoutes())
	require.NoError(t, g.Start(context.Background()))
	require.Regexp(t, `^ws://127\.0\.0\.1:\d+/local$`, g.URL())
	require.Error(t, g.Start(context.Background()))
	require.NoError(t, g.Close())
	require.NoError(t, g.Close())
	require.ErrorIs(t, g.Start(context.Background()), ErrClosed)
	goleak.VerifyNone(t, ignore)
}

func TestStartContextCancelClosesTheGateway(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	r := newFakeRoutes()
	g := New(Config{Logger: testLogger(t)}, nil)
	r.gw = g
	g.SetRoutes(r)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, g.Start(ctx))
	ws, id := mustDial(t, g, r, "a")
	cancel()
	ce := readClose(t, ws)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	r.waitDisconnect(t, id)
	require.NoError(t, g.Close())
	goleak.VerifyNone(t, ignore)
}

func TestPolicyEvaluation(t *testing.T) {
	arn := "arn:aws:execute-api:local:000000000000:api/local/$connect"
	stmt := func(effect, action, resource string) events.IAMPolicyStatement {
		return events.IAMPolicyStatement{Effect: effect, Action: []string{action}, Resource: []string{resource}}
	}
	cases := []struct {
		name    string
		stmts   []events.IAMPolicyStatement
		allowed bool
		err     bool
	}{
		{"exact allow", []events.IAMPolicyStatement{stmt("Allow", "execute-api:Invoke", arn)}, true, false},
		{"wildcard resource", []events.IAMPolicyStatement{stmt("Allow", "execute-api:Invoke", "arn:aws:execute-api:*:*:api/*/$connect")}, true, false},
		{"wildcard action", []events.IAMPolicyStatement{stmt("Allow", "execute-api:*", "*")}, true, false},
		{"action case-insensitive", []events.IAMPolicyStatement{stmt("Allow", "Execute-API:invoke", arn)}, true, false},
		{"question mark", []events.IAMPolicyStatement{stmt("Allow", "execute-api:Invoke", "arn:aws:execute-api:local:000000000000:ap?/local/$connect")}, true, false},
		{"other api", []events.IAMPolicyStatement{stmt("Allow", "execute-api:Invoke", "arn:aws:execute-api:local:000000000000:other/local/$connect")}, false, false},
		{"other action", []events.IAMPolicyStatement{stmt("Allow", "s3:GetObject", arn)}, false, false},
		{"deny wins", []events.IAMPolicyStatement{stmt("Allow", "*", "*"), stmt("Deny", "execute-api:Invoke", arn)}, false, false},
		{"no statements", nil, false, true},
		{"bad effect", []events.IAMPolicyStatement{stmt("Maybe", "execute-api:Invoke", arn)}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := policyAllows(events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17", Statement: tc.stmts}, arn)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.allowed, ok)
		})
	}
}

func TestWildcardMatch(t *testing.T) {
	assert.True(t, wildcardMatch("*", ""))
	assert.True(t, wildcardMatch("a*b*c", "axxbyyc"))
	assert.False(t, wildcardMatch("a*b*c", "axxbyy"))
	assert.True(t, wildcardMatch("a?c", "abc"))
	assert.False(t, wildcardMatch("a?c", "ac"))
	assert.False(t, wildcardMatch("", "a"))
	// A pathological pattern stays linear-ish rather than exponential.
	assert.False(t, wildcardMatch("*a*a*a*a*a*a*a*a*a*b", string(make([]byte, 2000))))
}

func TestConnectMayChooseASubprotocol(t *testing.T) {
	g, _ := startGateway(t, Config{})
	d := &websocket.Dialer{Subprotocols: []string{"plldb.v1", "other"}}
	ws, _, err := dial(t, g, url.Values{"name": {"a"}, "proto": {"plldb.v1"}}, d)
	require.NoError(t, err)
	assert.Equal(t, "plldb.v1", ws.Subprotocol())
}

func TestCloseDuringAHandshake(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	r := newFakeRoutes()
	g := New(Config{Logger: testLogger(t)}, nil)
	r.gw = g
	g.SetRoutes(r)
	require.NoError(t, g.Start(context.Background()))

	type result struct {
		status int
		err    error
	}
	dialed := make(chan result, 1)
	go func() {
		ws, resp, err := websocket.DefaultDialer.Dial(g.URL()+"?name=late&auth=block", nil)
		res := result{err: err}
		if resp != nil {
			res.status = resp.StatusCode
			_ = resp.Body.Close()
		}
		if ws != nil {
			_ = ws.Close()
		}
		dialed <- res
	}()
	require.Eventually(t, func() bool { a, _, _, _ := r.counts(); return a == 1 }, eventually, tick)

	closed := make(chan error, 1)
	go func() { closed <- g.Close() }()
	require.Eventually(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.closed }, eventually, tick)
	close(r.authRelease)

	res := <-dialed
	require.ErrorIs(t, res.err, websocket.ErrBadHandshake)
	assert.Equal(t, http.StatusServiceUnavailable, res.status)
	require.NoError(t, <-closed)
	_, connects, _, disconnects := r.counts()
	assert.Equal(t, 1, connects, "$connect ran before the gateway noticed it was closing")
	assert.Equal(t, 1, disconnects, "so the connection's owner hears it is gone")
	goleak.VerifyNone(t, ignore)
}

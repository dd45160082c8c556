package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// fakeRoutes records every event and behaves according to the connect request's query parameters:
//
//	name=X          remembered so tests can find X's connection id
//	auth=deny|unauthorized|wrapped|fail|nested|elsewhere   authorizer outcome (default: allow)
//	connect=NNN|error                                     $connect outcome (default: 200)
//
// and to message bodies: "fail" makes $default return an error, "block" waits for release, "echo X" posts X
// back to the sender.
type fakeRoutes struct {
	gw *Gateway

	mu          sync.Mutex
	ids         map[string]string
	auths       []events.APIGatewayCustomAuthorizerRequestTypeRequest
	connects    []events.APIGatewayWebsocketProxyRequest
	messages    []events.APIGatewayWebsocketProxyRequest
	disconnects []events.APIGatewayWebsocketProxyRequest

	release     chan struct{}
	authRelease chan struct{} // auth=block waits for it
}

func newFakeRoutes() *fakeRoutes {
	return &fakeRoutes{ids: map[string]string{}, release: make(chan struct{}), authRelease: make(chan struct{})}
}

func (f *fakeRoutes) Authorize(_ context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	f.mu.Lock()
	f.auths = append(f.auths, req)
	f.mu.Unlock()
	name := req.QueryStringParameters["name"]
	allow := events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: name,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version:   "2012-10-17",
			Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{req.MethodArn}}},
		},
		Context: map[string]any{"session": "s1", "role": "developer", "peer": name, "n": 7},
	}
	switch req.QueryStringParameters["auth"] {
	case "deny":
		allow.PolicyDocument.Statement[0].Effect = "Deny"
	case "elsewhere":
		allow.PolicyDocument.Statement[0].Resource = []string{"arn:aws:execute-api:local:000000000000:other/local/$connect"}
	case "unauthorized":
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")
	case "wrapped":
		return events.APIGatewayCustomAuthorizerResponse{}, fmt.Errorf("check ticket: %w", errors.New("Unauthorized"))
	case "fail":
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("store unreachable")
	case "nested":
		allow.Context["obj"] = map[string]any{"a": 1}
	case "block":
		<-f.authRelease
	case "panic":
		panic("authorizer bug")
	}
	return allow, nil
}

func (f *fakeRoutes) Connect(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	f.mu.Lock()
	f.connects = append(f.connects, req)
	f.ids[req.QueryStringParameters["name"]] = req.RequestContext.ConnectionID
	f.mu.Unlock()
	switch c := req.QueryStringParameters["connect"]; c {
	case "":
		resp := events.APIGatewayProxyResponse{StatusCode: 200}
		if p := req.QueryStringParameters["proto"]; p != "" {
			resp.Headers = map[string]string{"Sec-WebSocket-Protocol": p}
		}
		return resp, nil
	case "error":
		return events.APIGatewayProxyResponse{}, errors.New("connect exploded")
	default:
		n, _ := strconv.Atoi(c)
		return events.APIGatewayProxyResponse{StatusCode: n}, nil
	}
}

func (f *fakeRoutes) Disconnect(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	f.mu.Lock()
	f.disconnects = append(f.disconnects, req)
	f.mu.Unlock()
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

func (f *fakeRoutes) Default(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	f.mu.Lock()
	f.messages = append(f.messages, req)
	f.mu.Unlock()
	switch {
	case req.Body == "fail":
		return events.APIGatewayProxyResponse{}, errors.New("handler exploded")
	case req.Body == "panic":
		panic("handler bug")
	case req.Body == "block":
		select {
		case <-f.release:
		case <-ctx.Done():
		}
	case strings.HasPrefix(req.Body, "echo "):
		if err := f.gw.PostToConnection(ctx, req.RequestContext.ConnectionID, []byte(strings.TrimPrefix(req.Body, "echo "))); err != nil {
			return events.APIGatewayProxyResponse{}, err
		}
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

func (f *fakeRoutes) id(t *testing.T, name string) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.ids[name]
	require.True(t, ok, "no $connect seen for %q", name)
	return id
}

func (f *fakeRoutes) counts() (auths, connects, messages, disconnects int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.auths), len(f.connects), len(f.messages), len(f.disconnects)
}

func (f *fakeRoutes) messagesOf(id string) []events.APIGatewayWebsocketProxyRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []events.APIGatewayWebsocketProxyRequest
	for _, m := range f.messages {
		if m.RequestContext.ConnectionID == id {
			out = append(out, m)
		}
	}
	return out
}

func (f *fakeRoutes) disconnectsOf(id string) []events.APIGatewayWebsocketProxyRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []events.APIGatewayWebsocketProxyRequest
	for _, m := range f.disconnects {
		if m.RequestContext.ConnectionID == id {
			out = append(out, m)
		}
	}
	return out
}

// waitDisconnect waits for id's $disconnect and returns it.
func (f *fakeRoutes) waitDisconnect(t *testing.T, id string) events.APIGatewayWebsocketProxyRequest {
	t.Helper()
	require.Eventually(t, func() bool { return len(f.disconnectsOf(id)) > 0 }, 10*time.Second, 5*time.Millisecond, "no $disconnect for %s", id)
	ds := f.disconnectsOf(id)
	require.Len(t, ds, 1, "$disconnect must run exactly once")
	return ds[0]
}

// testLogger sends the gateway's logs to the test log, so a failing test shows them.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startGateway starts a gateway with fake routes; cleanup closes it and checks that nothing it started is left
// running.
func startGateway(t *testing.T, cfg Config) (*Gateway, *fakeRoutes) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ignore := goleak.IgnoreCurrent()
	routes := newFakeRoutes()
	g := New(cfg, nil)
	routes.gw = g
	g.SetRoutes(routes)
	require.NoError(t, g.Start(context.Background()))
	t.Cleanup(func() {
		require.NoError(t, g.Close())
		goleak.VerifyNone(t, ignore)
	})
	return g, routes
}

func assertEventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dial opens a WebSocket to the gateway with the given query and Authorization header.
func dial(t *testing.T, g *Gateway, query url.Values, d *websocket.Dialer) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{}
	}
	hdr := http.Header{"Authorization": {"Bearer secret-ticket"}, "User-Agent": {"plldb-test/1"}}
	ws, resp, err := d.Dial(g.URL()+"?"+query.Encode(), hdr)
	if resp != nil && resp.Body != nil {
		t.Cleanup(func() { _ = resp.Body.Close() })
	}
	if ws != nil {
		t.Cleanup(func() { _ = ws.Close() })
	}
	return ws, resp, err
}

// mustDial connects as name and returns the client and its connection id.
func mustDial(t *testing.T, g *Gateway, r *fakeRoutes, name string) (*websocket.Conn, string) {
	t.Helper()
	ws, _, err := dial(t, g, url.Values{"name": {name}}, nil)
	require.NoError(t, err)
	return ws, r.id(t, name)
}

// readClose reads until the server's close frame and returns it.
func readClose(t *testing.T, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		return ce
	}
}

// mgmt calls the management API over HTTP with the gateway's management token.
func mgmt(t *testing.T, g *Gateway, method, id string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	return mgmtAuth(t, g, "Bearer "+g.ManagementToken(), method, id, body)
}

// mgmtAuth calls the management API over HTTP with the given Authorization header ("" sends none).
func mgmtAuth(t *testing.T, g *Gateway, auth, method, id string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, g.ManagementURL()+"/@connections/"+url.PathEscape(id), bytes.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b, resp.Header
}

// recordingConn keeps a copy of every byte the client receives, so tests can look at the server's frames.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.buf.Bytes()...)
}

// frame is one parsed WebSocket frame header.
type frame struct {
	fin    bool
	opcode byte
	size   int
}

// parseFrames parses a complete byte stream of frames (after the HTTP handshake).
func parseFrames(t *testing.T, b []byte) []frame {
	t.Helper()
	var out []frame
	for len(b) > 0 {
		require.GreaterOrEqual(t, len(b), 2)
		f := frame{fin: b[0]&0x80 != 0, opcode: b[0] & 0x0f}
		n, hdr := int(b[1]&0x7f), 2
		switch n {
		case 126:
			n, hdr = int(b[2])<<8|int(b[3]), 4
		case 127:
			n = 0
			for _, x := range b[2:10] {
				n = n<<8 | int(x)
			}
			hdr = 10
		}
		if b[1]&0x80 != 0 {
			hdr += 4
		}
		f.size = n
		require.GreaterOrEqual(t, len(b), hdr+n, "truncated frame")
		out = append(out, f)
		b = b[hdr+n:]
	}
	return out
}

// rawFrame builds one masked client frame with the given payload, as a client that ignores the limits would.
func rawFrame(opcode byte, fin bool, payload []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n < 1<<16:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		for i := 7; i >= 0; i-- {
			out = append(out, byte(uint64(n)>>(8*i)))
		}
	}
	key := []byte{1, 2, 3, 4}
	out = append(out, key...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

const (
	eventually = 10 * time.Second
	tick       = 5 * time.Millisecond
)

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func slogTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func urlValues(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"

	"github.com/plldb/plldb/bridge/relay"
)

// requestTimeLayout is the format of requestContext.requestTime ("21/Nov/2026:17:21:16 +0000").
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

// handshake is what the $connect request tells the events of the connection it opens.
type handshake struct {
	connID      string
	requestID   string
	connectedAt time.Time
	sourceIP    string
	userAgent   string
	headers     map[string]string
	mvHeaders   map[string][]string
	query       map[string]string
	mvQuery     map[string][]string
}

// serveWebSocket runs the $connect sequence: authorizer, $connect route, and only then the upgrade, so a
// refused client never gets a WebSocket.
func (g *Gateway) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if problem := handshakeProblem(r); problem != "" {
		// API Gateway answers plain HTTP on a WebSocket endpoint with 426.
		g.log.Debug("not a websocket handshake", "problem", problem)
		w.Header().Set("Upgrade", "websocket")
		writeJSONMessage(w, http.StatusUpgradeRequired, "", "Upgrade Required: "+problem)
		return
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		writeJSONMessage(w, http.StatusServiceUnavailable, "", "Service Unavailable")
		return
	}
	g.wg.Add(1)
	g.mu.Unlock()
	defer g.wg.Done()

	routes := g.currentRoutes()
	if routes == nil {
		g.log.Error("connect refused: no routes set")
		writeJSONMessage(w, http.StatusInternalServerError, "", "Internal server error")
		return
	}
	hs := g.newHandshake(r)
	// Logs name the connection by its ref: its id is the @connections address, and stays out of logs above DEBUG.
	log := g.log.With("conn", relay.LogRef(hs.connID), "request", hs.requestID, "source", hs.sourceIP)

	authz, status, msg := g.authorize(r.Context(), routes, hs, log)
	if status != 0 {
		writeJSONMessage(w, status, "", msg)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), integrationTimeout)
	ev := g.connectEvent(hs, authz)
	resp, err := invoke("$connect", func() (events.APIGatewayProxyResponse, error) { return routes.Connect(ctx, ev) })
	cancel()
	if err != nil {
		log.Error("$connect handler failed", "err", err)
		writeJSONMessage(w, http.StatusInternalServerError, "", "Internal server error")
		return
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		log.Info("$connect refused the connection", "status", resp.StatusCode)
		status := resp.StatusCode
		if status < 100 || status > 599 {
			status = http.StatusInternalServerError // an integration answer that is no HTTP status at all
		}
		writeJSONMessage(w, status, "", http.StatusText(status))
		return
	}

	// A $connect route may pick a subprotocol by returning Sec-WebSocket-Protocol, as with API Gateway.
	var respHeader http.Header
	for k, v := range resp.Headers {
		if strings.EqualFold(k, "Sec-WebSocket-Protocol") {
			respHeader = http.Header{"Sec-Websocket-Protocol": {v}}
		}
	}

	// Register before the 101 goes out: a client that has its WebSocket must find its connection id valid
	// (posts to it wait the moment until the upgrade is complete).
	c := newConn(g, hs, authz, log)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		writeJSONMessage(w, http.StatusServiceUnavailable, "", "Service Unavailable")
		g.disconnect(hs, authz, websocket.CloseGoingAway, "Going away", log)
		return
	}
	g.conns[c.id] = c
	g.wg.Add(1)
	g.mu.Unlock()

	ws, err := g.upgrader.Upgrade(w, r, respHeader)
	if err != nil {
		// $connect already accepted the connection, so its owner must hear that it is gone.
		log.Warn("upgrade after $connect failed", "err", err)
		c.abandon()
		return
	}
	raw, ok := ws.NetConn().(*sniffConn)
	if !ok {
		log.Error("hijacked connection is not sniffable; refusing it")
		_ = ws.Close()
		c.abandon()
		return
	}
	raw.enable(g.cfg.MaxFrameBytes)
	c.attach(ws, raw)
	log.Info("connected")
	log.Debug("connection id", "id", hs.connID)
	go c.run()
}

// handshakeProblem checks what gorilla's Upgrade would check, before any handler runs: a request that cannot be
// upgraded must not reach $connect.
func handshakeProblem(r *http.Request) string {
	switch {
	case r.Method != http.MethodGet:
		return "method is not GET"
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return "Connection header lacks 'upgrade'"
	case !headerHasToken(r.Header, "Upgrade", "websocket"):
		return "Upgrade header lacks 'websocket'"
	case !headerHasToken(r.Header, "Sec-Websocket-Version", "13"):
		return "Sec-WebSocket-Version is not 13"
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-Websocket-Key"))
	if err != nil || len(key) != 16 {
		return "Sec-WebSocket-Key is not 16 base64-encoded bytes"
	}
	return ""
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func (g *Gateway) newHandshake(r *http.Request) handshake {
	now := time.Now()
	sourceIP, port, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		sourceIP = r.RemoteAddr
	}
	hs := handshake{
		connID:      g.uniqueConnID(),
		requestID:   newAWSID(),
		connectedAt: now,
		sourceIP:    sourceIP,
		userAgent:   r.UserAgent(),
		headers:     map[string]string{},
		mvHeaders:   map[string][]string{},
		query:       map[string]string{},
		mvQuery:     map[string][]string{},
	}
	for k, vs := range r.Header {
		if len(vs) == 0 {
			continue
		}
		hs.headers[k] = vs[len(vs)-1] // API Gateway keeps the last value in headers, all of them in multiValueHeaders
		hs.mvHeaders[k] = append([]string(nil), vs...)
	}
	// Go moves Host out of the header map; API Gateway passes it, and adds the X-Forwarded-* family.
	extra := map[string]string{"Host": r.Host, "X-Forwarded-For": sourceIP, "X-Forwarded-Port": port, "X-Forwarded-Proto": "http"}
	for k, v := range extra {
		if _, ok := hs.headers[k]; !ok && v != "" {
			hs.headers[k] = v
			hs.mvHeaders[k] = []string{v}
		}
	}
	for k, vs := range r.URL.Query() {
		if len(vs) == 0 {
			continue
		}
		hs.query[k] = vs[len(vs)-1]
		hs.mvQuery[k] = append([]string(nil), vs...)
	}
	return hs
}

func (g *Gateway) uniqueConnID() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		id := newAWSID()
		if _, taken := g.conns[id]; !taken {
			return id
		}
	}
}

// authorize runs the REQUEST authorizer. It returns the authorizer map that later events carry as
// requestContext.authorizer, or the HTTP status and message that refuse the handshake.
func (g *Gateway) authorize(ctx context.Context, routes Routes, hs handshake, log *slog.Logger) (map[string]any, int, string) {
	methodArn := fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/$connect", Region, Account, g.cfg.APIID, g.cfg.Stage)
	req := events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type:                            "REQUEST",
		MethodArn:                       methodArn,
		Resource:                        "$connect", // the events type has no routeKey; this is where the route shows
		Path:                            "/" + g.cfg.Stage,
		HTTPMethod:                      http.MethodGet,
		Headers:                         hs.headers,
		MultiValueHeaders:               hs.mvHeaders,
		QueryStringParameters:           hs.query,
		MultiValueQueryStringParameters: hs.mvQuery,
		PathParameters:                  map[string]string{},
		StageVariables:                  map[string]string{},
		RequestContext: events.APIGatewayCustomAuthorizerRequestTypeRequestContext{
			Path:         "/" + g.cfg.Stage,
			AccountID:    Account,
			Stage:        g.cfg.Stage,
			RequestID:    hs.requestID,
			Identity:     events.APIGatewayCustomAuthorizerRequestTypeRequestIdentity{SourceIP: hs.sourceIP},
			ResourcePath: "$connect",
			HTTPMethod:   http.MethodGet,
			APIID:        g.cfg.APIID,
		},
	}
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, integrationTimeout)
	resp, err := invoke("authorizer", func() (events.APIGatewayCustomAuthorizerResponse, error) { return routes.Authorize(actx, req) })
	cancel()
	latency := time.Since(start).Milliseconds()
	if err != nil {
		// Lambda reports the error message; API Gateway maps exactly "Unauthorized" to 401, anything else to
		// 500. A wrapped "…: Unauthorized" is a 500 there too, so it is here.
		if err.Error() == "Unauthorized" {
			log.Info("authorizer: unauthorized")
			return nil, http.StatusUnauthorized, "Unauthorized"
		}
		log.Error("authorizer failed", "err", err)
		return nil, http.StatusInternalServerError, "Internal server error"
	}
	// The real authorizer's answer crosses Lambda as JSON; values that do not survive that are the authorizer's
	// bug, and API Gateway reports them as a 500.
	resp, err = jsonRoundTrip(resp)
	if err != nil {
		log.Error("authorizer response is not valid JSON", "err", err)
		return nil, http.StatusInternalServerError, "Internal server error"
	}
	allowed, err := policyAllows(resp.PolicyDocument, methodArn)
	if err != nil {
		log.Error("authorizer returned an invalid policy", "err", err)
		return nil, http.StatusInternalServerError, "Internal server error"
	}
	if !allowed {
		log.Info("authorizer: denied", "principal", resp.PrincipalID)
		return nil, http.StatusForbidden, "Forbidden"
	}
	authz := map[string]any{}
	for k, v := range resp.Context {
		switch v.(type) {
		case string, float64, bool:
			authz[k] = v
		case nil:
		default:
			log.Error("authorizer context holds an object or array; only strings, numbers and booleans are allowed", "key", k)
			return nil, http.StatusInternalServerError, "Internal server error"
		}
	}
	authz["principalId"] = resp.PrincipalID
	authz["integrationLatency"] = float64(latency)
	return authz, 0, ""
}

func jsonRoundTrip(resp events.APIGatewayCustomAuthorizerResponse) (events.APIGatewayCustomAuthorizerResponse, error) {
	b, err := json.Marshal(resp)
	if err != nil {
		return resp, fmt.Errorf("marshal authorizer response: %w", err)
	}
	var out events.APIGatewayCustomAuthorizerResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return resp, fmt.Errorf("unmarshal authorizer response: %w", err)
	}
	return out, nil
}

// policyAllows evaluates an authorizer's IAM policy for execute-api:Invoke on arn the way IAM does: an explicit
// Deny wins, otherwise some Allow must match, otherwise the request is denied. Actions and resources may use
// the * and ? wildcards.
func policyAllows(p events.APIGatewayCustomAuthorizerPolicy, arn string) (bool, error) {
	if len(p.Statement) == 0 {
		return false, fmt.Errorf("policy has no statements")
	}
	allowed := false
	for i, s := range p.Statement {
		if !anyMatches(s.Action, "execute-api:Invoke", true) || !anyMatches(s.Resource, arn, false) {
			continue
		}
		switch s.Effect {
		case "Allow":
			allowed = true
		case "Deny":
			return false, nil
		default:
			return false, fmt.Errorf("statement %d: effect %q is neither Allow nor Deny", i, s.Effect)
		}
	}
	return allowed, nil
}

func anyMatches(patterns []string, s string, foldCase bool) bool {
	for _, p := range patterns {
		if foldCase {
			if wildcardMatch(strings.ToLower(p), strings.ToLower(s)) {
				return true
			}
		} else if wildcardMatch(p, s) {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against an IAM pattern with * (any run) and ? (one character), iteratively so a
// hostile pattern cannot blow the stack or take exponential time.
func wildcardMatch(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// baseEvent fills what every route event of a connection carries.
func (g *Gateway) baseEvent(hs handshake, authz map[string]any, routeKey, eventType string) events.APIGatewayWebsocketProxyRequest {
	now := time.Now()
	reqID := newAWSID()
	var authorizer any
	if authz != nil {
		// Each event gets its own copy: a handler may change its map without touching the next event's.
		m := make(map[string]any, len(authz))
		for k, v := range authz {
			m[k] = v
		}
		authorizer = m
	}
	return events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			AccountID:         Account,
			Stage:             g.cfg.Stage,
			RequestID:         reqID,
			ExtendedRequestID: reqID,
			Identity:          events.APIGatewayRequestIdentity{SourceIP: hs.sourceIP, UserAgent: hs.userAgent},
			Authorizer:        authorizer,
			APIID:             g.cfg.APIID,
			ConnectedAt:       hs.connectedAt.UnixMilli(),
			ConnectionID:      hs.connID,
			DomainName:        g.domainName(),
			EventType:         eventType,
			MessageDirection:  "IN",
			RequestTime:       now.UTC().Format(requestTimeLayout),
			RequestTimeEpoch:  now.UnixMilli(),
			RouteKey:          routeKey,
		},
	}
}

func (g *Gateway) connectEvent(hs handshake, authz map[string]any) events.APIGatewayWebsocketProxyRequest {
	ev := g.baseEvent(hs, authz, "$connect", "CONNECT")
	ev.RequestContext.RequestID = hs.requestID
	ev.RequestContext.ExtendedRequestID = hs.requestID
	ev.Headers = hs.headers
	ev.MultiValueHeaders = hs.mvHeaders
	ev.QueryStringParameters = hs.query
	ev.MultiValueQueryStringParameters = hs.mvQuery
	ev.IsBase64Encoded = false
	return ev
}

// disconnect runs the $disconnect route. Its errors are logged: nobody is left to tell.
func (g *Gateway) disconnect(hs handshake, authz map[string]any, code int, reason string, log *slog.Logger) {
	routes := g.currentRoutes()
	if routes == nil {
		return
	}
	ev := g.baseEvent(hs, authz, "$disconnect", "DISCONNECT")
	ev.RequestContext.DisconnectStatusCode = int64(code)
	ev.RequestContext.DisconnectReason = &reason
	ev.Headers = map[string]string{"Host": hs.headers["Host"], "X-Forwarded-For": hs.sourceIP}
	ev.MultiValueHeaders = map[string][]string{"Host": {hs.headers["Host"]}, "X-Forwarded-For": {hs.sourceIP}}
	ctx, cancel := context.WithTimeout(context.Background(), integrationTimeout)
	defer cancel()
	if _, err := invoke("$disconnect", func() (events.APIGatewayProxyResponse, error) { return routes.Disconnect(ctx, ev) }); err != nil {
		log.Error("$disconnect handler failed", "err", err)
	}
	log.Info("disconnected", "code", code, "reason", reason)
}

// invoke calls a handler the way the Lambda runtime does: a panic becomes the invocation's error (and is
// logged with its stack by the caller's error log) instead of taking the whole gateway down.
func invoke[T any](name string, fn func() (T, error)) (resp T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s handler panicked: %v\n%s", name, p, debug.Stack())
		}
	}()
	return fn()
}

// writeJSONMessage writes API Gateway's error body {"message": …}. errType, when set, goes into
// X-Amzn-ErrorType, which AWS SDKs read to pick the exception type.
func writeJSONMessage(w http.ResponseWriter, status int, errType, msg string) {
	body, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if errType != "" {
		w.Header().Set("X-Amzn-ErrorType", errType)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

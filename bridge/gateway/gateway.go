// Package gateway is an embedded stand-in for an Amazon API Gateway WebSocket API. It runs route handlers
// written for Lambda (a REQUEST authorizer on $connect, then $connect, $disconnect and $default) in-process,
// with API Gateway's event shapes, status codes, limits (32 KiB frames, 128 KiB messages, 10 min idle, 2 h
// connection lifetime) and @connections management API, so `plldb local` and the tests exercise the relay
// handlers the way AWS runs them.
//
// Like API Gateway, the gateway lets nobody else in: it listens on 127.0.0.1 only, the authorizer decides who
// connects, and the @connections API over HTTP wants the gateway's own secret (ManagementToken), so a local
// process that learns a connection id cannot post into it. Logs name connections by relay.LogRef, never by id
// (the id shows only at DEBUG).
//
// Goroutines: one HTTP server goroutine accepts connections (handshakes and management calls run on the
// server's per-request goroutines); every WebSocket connection has exactly one reader goroutine, which also
// invokes the $default handler for each message in order and the $disconnect handler once when the
// connection ends. Writes (PostToConnection) run on the caller's goroutine, serialised per connection.
// Idle and lifetime limits are timers. Close stops the server, closes every connection and waits for all of
// their goroutines, including the $disconnect calls.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"
)

// Routes are the Lambda handlers of the WebSocket API. The gateway calls them as API Gateway would invoke the
// integration Lambdas: Authorize for the $connect authorizer, then the route handlers.
type Routes interface {
	Authorize(ctx context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error)
	Connect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)
	Disconnect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)
	Default(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)
}

// Config tunes the gateway. Zero values take API Gateway's defaults and quotas.
type Config struct {
	Addr            string        // "" → 127.0.0.1:0; only 127.0.0.1 (or localhost) is accepted
	Stage           string        // "" → "local"; the WebSocket URL is ws://host:port/<stage>
	APIID           string        // "" → a random 10-character id (used in MethodArn and DomainName)
	IdleTimeout     time.Duration // 0 → 10 min without a data message in either direction → close 1001
	MaxConnDuration time.Duration // 0 → 2 h → close 1001
	MaxFrameBytes   int           // 0 → 32 KiB: a larger inbound frame → close 1009; outbound frames are cut to it
	MaxMessageBytes int           // 0 → 128 KiB: a larger inbound message → close 1009; a larger post → ErrPayloadTooLarge
	Logger          *slog.Logger  // nil → slog.Default()
}

// Defaults are API Gateway's documented quotas for WebSocket APIs.
const (
	DefaultStage           = "local"
	DefaultIdleTimeout     = 10 * time.Minute
	DefaultMaxConnDuration = 2 * time.Hour
	DefaultMaxFrameBytes   = 32 << 10
	DefaultMaxMessageBytes = 128 << 10

	// Region and Account appear in MethodArn and DomainName; they are not real.
	Region  = "local"
	Account = "000000000000"
)

// Timings that are not API Gateway quotas but keep a misbehaving peer or handler from holding things forever.
const (
	integrationTimeout = 29 * time.Second // API Gateway's integration timeout: each handler call's deadline
	writeTimeout       = 30 * time.Second // a post to a client that stops reading fails after this
	closeWriteWait     = 2 * time.Second  // how long a close frame may wait behind an in-flight post
	closeGrace         = 2 * time.Second  // how long we wait for the client's close reply before hanging up
	drainLimit         = 4 << 20          // bytes discarded at most while waiting for a client after 1009
)

// ErrPayloadTooLarge is returned (wrapped) by PostToConnection for data over MaxMessageBytes: API Gateway's
// 413 PayloadTooLargeException.
var ErrPayloadTooLarge = errors.New("payload too large")

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("gateway closed")

// ConnectionInfo is what GetConnection returns: API Gateway's GetConnection output.
type ConnectionInfo struct {
	ID           string
	ConnectedAt  time.Time
	LastActiveAt time.Time
	SourceIP     string
	UserAgent    string
}

// Gateway is the embedded WebSocket API. Create it with New, then Start it.
type Gateway struct {
	cfg Config
	log *slog.Logger
	// mgmtToken authorizes HTTP calls of the @connections API (see ManagementToken).
	mgmtToken string

	routesMu sync.RWMutex
	routes   Routes

	upgrader websocket.Upgrader

	mu      sync.Mutex
	conns   map[string]*conn
	started bool
	closed  bool
	addr    string // host:port once listening
	srv     *http.Server

	wg        sync.WaitGroup // handshakes in flight and live connections (each until its $disconnect returned)
	serveDone chan struct{}
	stopCtx   func() bool

	closeOnce sync.Once
	closeErr  error
}

// New returns a gateway that is not yet listening. routes may be nil and set later with SetRoutes.
func New(cfg Config, routes Routes) *Gateway {
	if cfg.Stage == "" {
		cfg.Stage = DefaultStage
	}
	if cfg.APIID == "" {
		cfg.APIID = newAPIID()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxConnDuration <= 0 {
		cfg.MaxConnDuration = DefaultMaxConnDuration
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	g := &Gateway{
		cfg:       cfg,
		mgmtToken: newSecret(),
		log:       log.With("component", "gateway", "api", cfg.APIID, "stage", cfg.Stage),
		routes:    routes,
		conns:     make(map[string]*conn),
		serveDone: make(chan struct{}),
	}
	g.upgrader = websocket.Upgrader{
		ReadBufferSize:   16 << 10,
		HandshakeTimeout: 10 * time.Second, // bounds the write of the 101 response
		// gorilla cuts a server message into frames of at most WriteBufferSize bytes as long as each Write is
		// no larger than that (see conn.send), which keeps outbound frames inside API Gateway's frame limit.
		WriteBufferSize: cfg.MaxFrameBytes,
		// API Gateway does not check Origin; the authorizer decides.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			g.log.Warn("websocket upgrade failed", "status", status, "err", reason)
			writeJSONMessage(w, status, "", http.StatusText(status))
		},
	}
	return g
}

// SetRoutes sets or replaces the handlers. Handlers usually need the gateway (as their Connections) before they
// can be built, hence the two steps. Requests arriving while no routes are set get 500.
func (g *Gateway) SetRoutes(r Routes) {
	g.routesMu.Lock()
	g.routes = r
	g.routesMu.Unlock()
}

func (g *Gateway) currentRoutes() Routes {
	g.routesMu.RLock()
	defer g.routesMu.RUnlock()
	return g.routes
}

// Start listens on the configured loopback address and serves until Close or until ctx is cancelled. It
// returns once the listener accepts connections.
func (g *Gateway) Start(ctx context.Context) error {
	addr, err := loopbackAddr(g.cfg.Addr)
	if err != nil {
		return fmt.Errorf("start gateway: %w", err)
	}
	if strings.ContainsAny(g.cfg.Stage, "/?#@ ") {
		return fmt.Errorf("start gateway: stage %q: must be one path segment without '@'", g.cfg.Stage)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return fmt.Errorf("start gateway: %w", ErrClosed)
	}
	if g.started {
		return errors.New("start gateway: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("start gateway: listen on %s: %w", addr, err)
	}
	g.started = true
	g.addr = ln.Addr().String()
	g.srv = &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(g.serveDone)
		if err := g.srv.Serve(sniffListener{ln}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("gateway server stopped", "err", err)
		}
	}()
	g.stopCtx = context.AfterFunc(ctx, func() { _ = g.Close() })
	g.log.Info("gateway listening", "url", "ws://"+g.addr+"/"+g.cfg.Stage)
	return nil
}

// loopbackAddr resolves the configured address, refusing anything but 127.0.0.1: the gateway must never be
// reachable from another machine.
func loopbackAddr(addr string) (string, error) {
	if addr == "" {
		return "127.0.0.1:0", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	switch host {
	case "127.0.0.1":
	case "localhost", "":
		host = "127.0.0.1"
	default:
		return "", fmt.Errorf("address %q: the gateway binds only to 127.0.0.1", addr)
	}
	return net.JoinHostPort(host, port), nil
}

// URL is the WebSocket URL clients dial: ws://127.0.0.1:PORT/<stage>. Empty before Start.
func (g *Gateway) URL() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.addr == "" {
		return ""
	}
	return "ws://" + g.addr + "/" + g.cfg.Stage
}

// ManagementURL is the management API endpoint, http://127.0.0.1:PORT/<stage>, with @connections under it.
// Calls must carry "Authorization: Bearer " + ManagementToken(). Empty before Start.
func (g *Gateway) ManagementURL() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.addr == "" {
		return ""
	}
	return "http://" + g.addr + "/" + g.cfg.Stage
}

// APIID is the API id used in MethodArn and DomainName.
func (g *Gateway) APIID() string { return g.cfg.APIID }

// domainName is what events carry as requestContext.domainName, shaped like the real one.
func (g *Gateway) domainName() string {
	return g.cfg.APIID + ".execute-api." + Region + ".amazonaws.com"
}

// Close stops accepting, closes every connection with 1001 "Going away" (each gets its $disconnect), and waits
// for every goroutine the gateway started. It is safe to call more than once and from several goroutines.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() { g.closeErr = g.doClose() })
	return g.closeErr
}

func (g *Gateway) doClose() error {
	g.mu.Lock()
	g.closed = true
	started := g.started
	conns := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	if g.stopCtx != nil {
		g.stopCtx()
	}
	for _, c := range conns {
		c.initiateClose(websocket.CloseGoingAway, "Going away")
	}
	var err error
	if started {
		// Shutdown waits for handshakes still running their authorizer or $connect; those see g.closed when
		// they try to register and tear themselves down (with $disconnect).
		if serr := g.srv.Shutdown(context.Background()); serr != nil {
			err = fmt.Errorf("close gateway: %w", serr)
		}
		<-g.serveDone
	}
	g.wg.Wait()
	g.log.Info("gateway closed", "connections", len(conns))
	return err
}

// ServeHTTP routes the stage's WebSocket endpoint and its management API; anything else is API Gateway's 403.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	stage := "/" + g.cfg.Stage
	path := r.URL.EscapedPath()
	switch {
	case path == stage || path == stage+"/":
		g.serveWebSocket(w, r)
	case strings.HasPrefix(path, stage+"/@connections/"):
		g.serveManagement(w, r, strings.TrimPrefix(path, stage+"/@connections/"))
	default:
		writeJSONMessage(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
	}
}

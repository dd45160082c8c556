package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/plldb/plldb/bridge/relay"
)

// The relay handlers reach connections through relay.Connections; the gateway is that, in-process.
var _ relay.Connections = (*Gateway)(nil)

func (g *Gateway) lookup(id string) *conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conns[id]
}

func (g *Gateway) unregister(c *conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns[c.id] == c {
		delete(g.conns, c.id)
	}
}

// PostToConnection sends data to the client as one WebSocket message (a text message when data is valid UTF-8,
// otherwise binary), in frames of at most MaxFrameBytes. An unknown or closing connection gives an error
// wrapping relay.ErrGone (API Gateway's 410); data over MaxMessageBytes gives one wrapping ErrPayloadTooLarge
// (413).
func (g *Gateway) PostToConnection(ctx context.Context, id string, data []byte) error {
	c := g.lookup(id)
	if c == nil {
		return fmt.Errorf("post to connection %s: %w", relay.LogRef(id), relay.ErrGone)
	}
	if len(data) > g.cfg.MaxMessageBytes {
		return fmt.Errorf("post to connection %s: %d bytes, limit %d: %w", relay.LogRef(id), len(data), g.cfg.MaxMessageBytes, ErrPayloadTooLarge)
	}
	return c.send(ctx, data)
}

// DeleteConnection closes the connection (close code 1000); its $disconnect runs once the client has answered
// or the close grace period passed. Unknown connections give an error wrapping relay.ErrGone.
func (g *Gateway) DeleteConnection(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete connection %s: %w", relay.LogRef(id), err)
	}
	c := g.lookup(id)
	if c == nil {
		return fmt.Errorf("delete connection %s: %w", relay.LogRef(id), relay.ErrGone)
	}
	c.initiateClose(websocket.CloseNormalClosure, "")
	return nil
}

// GetConnection describes a live connection, or returns an error wrapping relay.ErrGone.
func (g *Gateway) GetConnection(ctx context.Context, id string) (ConnectionInfo, error) {
	if err := ctx.Err(); err != nil {
		return ConnectionInfo{}, fmt.Errorf("get connection %s: %w", relay.LogRef(id), err)
	}
	c := g.lookup(id)
	if c == nil {
		return ConnectionInfo{}, fmt.Errorf("get connection %s: %w", relay.LogRef(id), relay.ErrGone)
	}
	return ConnectionInfo{
		ID:           c.id,
		ConnectedAt:  c.hs.connectedAt,
		LastActiveAt: time.Unix(0, c.lastActive.Load()),
		SourceIP:     c.hs.sourceIP,
		UserAgent:    c.hs.userAgent,
	}, nil
}

// isoMillis is the ISO 8601 form AWS uses for timestamps in JSON answers ("2026-11-21T17:21:16.123Z").
const isoMillis = "2006-01-02T15:04:05.000Z07:00"

// connectionJSON is GetConnection's HTTP answer. It carries each field twice: with the capitalised names of
// the SDK documentation (what callers of this package were promised) and with the lower-case names AWS
// actually puts on the wire (connectedAt, identity.sourceIp, …), which is what an AWS SDK client parses.
type connectionJSON struct {
	ConnectedAt     string       `json:"ConnectedAt"`
	Identity        identityJSON `json:"Identity"`
	LastActiveAt    string       `json:"LastActiveAt"`
	WireConnectedAt string       `json:"connectedAt"`
	WireIdentity    identityJSON `json:"identity"`
	WireLastActive  string       `json:"lastActiveAt"`
}

type identityJSON struct {
	SourceIP      string `json:"SourceIp"`
	UserAgent     string `json:"UserAgent"`
	WireSourceIP  string `json:"sourceIp"`
	WireUserAgent string `json:"userAgent"`
}

// serveManagement is the @connections API: POST (send), GET (describe), DELETE (close). Every call must carry
// the gateway's management token (see ManagementToken); without it API Gateway's 403 answers, before the
// connection id is even looked at.
func (g *Gateway) serveManagement(w http.ResponseWriter, r *http.Request, escapedID string) {
	if status, msg := g.checkManagementAuth(r); status != 0 {
		g.log.Warn("management call refused", "method", r.Method, "source", r.RemoteAddr, "reason", msg)
		writeJSONMessage(w, status, "ForbiddenException", msg)
		return
	}
	id, err := url.PathUnescape(escapedID)
	if err != nil || id == "" || strings.Contains(id, "/") {
		writeJSONMessage(w, http.StatusBadRequest, "BadRequestException", "Invalid connectionId")
		return
	}
	log := g.log.With("conn", relay.LogRef(id), "method", r.Method)
	switch r.Method {
	case http.MethodPost:
		// Read one byte past the limit to tell "exactly at the limit" from "over it" without buffering more.
		body, err := io.ReadAll(io.LimitReader(r.Body, int64(g.cfg.MaxMessageBytes)+1))
		if err != nil {
			log.Warn("management post: reading the body failed", "err", err)
			writeJSONMessage(w, http.StatusBadRequest, "BadRequestException", "Could not read the request body")
			return
		}
		err = g.PostToConnection(r.Context(), id, body)
		switch {
		case err == nil:
			w.WriteHeader(http.StatusOK)
		case errors.Is(err, ErrPayloadTooLarge):
			log.Info("management post refused: payload too large", "bytes", len(body))
			writeJSONMessage(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Request entity too large")
		default:
			g.writeManagementError(w, log, err)
		}
	case http.MethodGet:
		info, err := g.GetConnection(r.Context(), id)
		if err != nil {
			g.writeManagementError(w, log, err)
			return
		}
		connected := info.ConnectedAt.UTC().Format(isoMillis)
		last := info.LastActiveAt.UTC().Format(isoMillis)
		ident := identityJSON{SourceIP: info.SourceIP, UserAgent: info.UserAgent, WireSourceIP: info.SourceIP, WireUserAgent: info.UserAgent}
		body, err := json.Marshal(connectionJSON{
			ConnectedAt: connected, Identity: ident, LastActiveAt: last,
			WireConnectedAt: connected, WireIdentity: ident, WireLastActive: last,
		})
		if err != nil {
			g.writeManagementError(w, log, fmt.Errorf("encode connection: %w", err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	case http.MethodDelete:
		if err := g.DeleteConnection(r.Context(), id); err != nil {
			g.writeManagementError(w, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSONMessage(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
	}
}

// ManagementToken is the secret an HTTP caller of the @connections API must send, as
// "Authorization: Bearer <token>". It is drawn from crypto/rand for each gateway and exists only in this
// process: the relay handlers that run inside the gateway reach connections through the Gateway's methods
// (PostToConnection, DeleteConnection, GetConnection) and never need it; it is for a caller that the owner of
// the gateway hands it to explicitly (tests, a relay run out of process).
//
// Why a bearer secret and not SigV4 as API Gateway requires: the listener is loopback only, so the token never
// crosses a network where SigV4's keeping the secret off the wire would matter (whoever can read loopback
// traffic can read this process's memory too), and one constant-time comparison is far less code to get right
// than a second implementation of SigV4's canonical request (paths, escaping, signed headers, clock skew). The
// point is the same either way: knowing a connection id is no longer enough to inject a message into it.
func (g *Gateway) ManagementToken() string { return g.mgmtToken }

// checkManagementAuth answers 0 for a request that carries the management token, otherwise API Gateway's 403
// status and message for a request without credentials or with wrong ones.
func (g *Gateway) checkManagementAuth(r *http.Request) (int, string) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return http.StatusForbidden, "Missing Authentication Token"
	}
	scheme, token, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(g.mgmtToken)) != 1 {
		return http.StatusForbidden, "The security token included in the request is invalid"
	}
	return 0, ""
}

func (g *Gateway) writeManagementError(w http.ResponseWriter, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, relay.ErrGone):
		writeJSONMessage(w, http.StatusGone, "GoneException", "Gone")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeJSONMessage(w, http.StatusGatewayTimeout, "", "Request cancelled")
	default:
		log.Warn("management call failed", "err", err)
		writeJSONMessage(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
	}
}

// ConnectionIDs lists the live connections, sorted; API Gateway has no such call, but plldb local and the
// tests use it to look at (and drop) what is connected.
func (g *Gateway) ConnectionIDs() []string {
	g.mu.Lock()
	ids := make([]string, 0, len(g.conns))
	for id := range g.conns {
		ids = append(ids, id)
	}
	g.mu.Unlock()
	sort.Strings(ids)
	return ids
}

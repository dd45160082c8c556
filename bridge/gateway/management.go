package gateway

import (
	"context"
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
		return fmt.Errorf("post to connection %s: %w", id, relay.ErrGone)
	}
	if len(data) > g.cfg.MaxMessageBytes {
		return fmt.Errorf("post to connection %s: %d bytes, limit %d: %w", id, len(data), g.cfg.MaxMessageBytes, ErrPayloadTooLarge)
	}
	return c.send(ctx, data)
}

// DeleteConnection closes the connection (close code 1000); its $disconnect runs once the client has answered
// or the close grace period passed. Unknown connections give an error wrapping relay.ErrGone.
func (g *Gateway) DeleteConnection(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete connection %s: %w", id, err)
	}
	c := g.lookup(id)
	if c == nil {
		return fmt.Errorf("delete connection %s: %w", id, relay.ErrGone)
	}
	c.initiateClose(websocket.CloseNormalClosure, "")
	return nil
}

// GetConnection describes a live connection, or returns an error wrapping relay.ErrGone.
func (g *Gateway) GetConnection(ctx context.Context, id string) (ConnectionInfo, error) {
	if err := ctx.Err(); err != nil {
		return ConnectionInfo{}, fmt.Errorf("get connection %s: %w", id, err)
	}
	c := g.lookup(id)
	if c == nil {
		return ConnectionInfo{}, fmt.Errorf("get connection %s: %w", id, relay.ErrGone)
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

// serveManagement is the @connections API: POST (send), GET (describe), DELETE (close). Requests are not
// signature-checked: the listener is loopback only.
func (g *Gateway) serveManagement(w http.ResponseWriter, r *http.Request, escapedID string) {
	id, err := url.PathUnescape(escapedID)
	if err != nil || id == "" || strings.Contains(id, "/") {
		writeJSONMessage(w, http.StatusBadRequest, "BadRequestException", "Invalid connectionId")
		return
	}
	log := g.log.With("conn", id, "method", r.Method)
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

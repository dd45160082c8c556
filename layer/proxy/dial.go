package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
)

// RelayDialer connects a session-mode proxy to the relay: bridge/wsclient with a fresh function ticket per dial.
// It is the dialer of the layer binary and of the offline harness, so both run the same code.
func RelayDialer(sc *SessionConfig, log *slog.Logger) (func(context.Context) (Link, error), error) {
	mint := func(context.Context) (string, error) {
		now := time.Now()
		return ticket.Mint(sc.FunctionKey, ticket.Claims{
			Session:  sc.SessionID,
			Role:     wire.RoleFunction,
			Function: sc.Function.Name,
			Peer:     sc.Peer,
			Audience: sc.Audience,
			IssuedAt: now,
			Expires:  now.Add(time.Minute),
		})
	}
	return func(ctx context.Context) (Link, error) {
		c, err := wsclient.Dial(ctx, wsclient.Config{
			URL:    sc.Endpoint,
			Ticket: mint,
			OnConnect: func(ctx context.Context, c *wsclient.Client) error {
				return c.Send(ctx, HelloEnvelope(sc))
			},
			Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("dial relay %s: %w", sc.Endpoint, err)
		}
		return c, nil
	}, nil
}

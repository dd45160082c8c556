package wsclient_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
)

// A function-role peer: a fresh ticket per dial, hello on every new connection, then traffic.
func ExampleDial() {
	mintTicket := func(ctx context.Context) (string, error) { return "…signed JWT…", nil }

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, wsclient.Config{
		URL:    "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod",
		Ticket: mintTicket,
		OnConnect: func(ctx context.Context, c *wsclient.Client) error {
			hello, err := wire.NewEnvelope(wire.TypeHello, "", wire.Hello{Role: wire.RoleFunction, Peer: "sandbox-1"})
			if err != nil {
				return err
			}
			return c.Send(ctx, hello) // ctx routes this to the new connection
		},
		Logger: slog.Default(),
	})
	if err != nil {
		slog.Error("relay unreachable", "err", err) // errors.Is(err, wsclient.ErrUnauthorized): bad ticket
		return
	}
	defer c.Close()

	for e := range c.Recv() { // closed after Close, or when the client gives up (see c.Err)
		_ = e
	}
}

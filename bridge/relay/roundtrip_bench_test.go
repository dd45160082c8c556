package relay_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/gateway"
	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
)

// BenchmarkRelayRoundTrip measures one relay hop each way on loopback, through everything a cloud invocation
// crosses between the sandbox and the developer: function client → embedded gateway → relay handlers →
// developer client, and back.
func BenchmarkRelayRoundTrip(b *testing.B) {
	quiet := slog.New(slog.DiscardHandler)
	store := relay.NewMemoryStore()
	session := relay.NewSession("bench", "bench@host", time.Time{})
	store.PutSession(session)
	gw := gateway.New(gateway.Config{Logger: quiet}, nil)
	gw.SetRoutes(&relay.Handlers{Store: store, Conns: gw, Audience: "bench", Logger: quiet})
	require.NoError(b, gw.Start(context.Background()))
	b.Cleanup(func() { _ = gw.Close() })

	dial := func(role wire.Role, peer string) *wsclient.Client {
		c, err := wsclient.Dial(context.Background(), wsclient.Config{
			URL:    gw.URL(),
			Logger: quiet,
			Ticket: func(context.Context) (string, error) {
				return ticket.Mint(roleKey(session, role, peer), ticket.Claims{Session: "bench", Role: role, Function: ticket.PeerFunction(peer), Peer: peer, Audience: "bench"})
			},
		})
		require.NoError(b, err)
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	dev := dial(wire.RoleDeveloper, "dev")
	fn := dial(wire.RoleFunction, "fn/sandbox")

	// The developer answers every invoke with a result, as the dispatcher does.
	go func() {
		for e := range dev.Recv() {
			if e.T != wire.TypeInvoke {
				continue
			}
			r, _ := wire.NewEnvelope(wire.TypeResult, e.ID, wire.Result{RequestID: e.ID, Payload: []byte(`{"ok":true}`)})
			r.To = e.From
			_ = dev.Send(context.Background(), r)
		}
	}()

	event := []byte(`{"httpMethod":"GET","path":"/orders/42","headers":{"accept":"application/json"}}`)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		id := strconv.Itoa(i)
		inv, err := wire.NewEnvelope(wire.TypeInvoke, id, wire.Invoke{RequestID: id, Function: wire.FunctionIdentity{Name: "fn"}, Event: event})
		require.NoError(b, err)
		require.NoError(b, fn.Send(ctx, inv))
		for e := range fn.Recv() {
			if e.T == wire.TypeResult && e.ID == id {
				break
			}
		}
	}
}

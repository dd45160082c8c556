package relay_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/gateway"
	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
)

// rig is the embedded gateway running the real relay handlers, with a shortened idle timeout.
type rig struct {
	gw      *gateway.Gateway
	session relay.Session
}

func newRig(t *testing.T, idle time.Duration) *rig {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	store := relay.NewMemoryStore()
	r := &rig{session: relay.NewSession("it", "tester@host", time.Time{})}
	store.PutSession(r.session)
	r.gw = gateway.New(gateway.Config{IdleTimeout: idle, Logger: quiet}, nil)
	r.gw.SetRoutes(&relay.Handlers{Store: store, Conns: r.gw, Audience: "it", Logger: quiet})
	require.NoError(t, r.gw.Start(context.Background()))
	t.Cleanup(func() { _ = r.gw.Close() })
	return r
}

// dial connects a client and counts its connections (OnConnect runs once per connection).
func (r *rig) dial(t *testing.T, role wire.Role, peer string, heartbeat time.Duration, conns *atomic.Int32) *wsclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, wsclient.Config{
		URL:               r.gw.URL(),
		HeartbeatInterval: heartbeat,
		PongTimeout:       time.Second,
		BackoffMin:        10 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
		Ticket: func(context.Context) (string, error) {
			return ticket.Mint(roleKey(r.session, role, peer), ticket.Claims{Session: r.session.ID, Role: role, Function: ticket.PeerFunction(peer), Peer: peer, Audience: "it"})
		},
		OnConnect: func(context.Context, *wsclient.Client) error { conns.Add(1); return nil },
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestHeartbeatKeepsAnIdleConnectionPastTheGatewayIdleTimeout(t *testing.T) {
	r := newRig(t, 300*time.Millisecond)
	var withBeat, without atomic.Int32
	r.dial(t, wire.RoleDeveloper, "dev", 50*time.Millisecond, &withBeat)
	r.dial(t, wire.RoleFunction, "f/fn", -1, &without) // heartbeat off

	// Over several idle timeouts the silent client is cut off and comes back; the beating one never is.
	assert.Eventually(t, func() bool { return without.Load() >= 3 }, 10*time.Second, 20*time.Millisecond,
		"without heartbeats the gateway closes idle connections")
	assert.Equal(t, int32(1), withBeat.Load(), "heartbeats keep the connection open")
}

func TestMessagesFlowBothWaysAfterAReconnect(t *testing.T) {
	r := newRig(t, time.Hour)
	var devConns, fnConns atomic.Int32
	dev := r.dial(t, wire.RoleDeveloper, "dev", -1, &devConns)
	fn := r.dial(t, wire.RoleFunction, "f/fn", -1, &fnConns)

	send := func(c *wsclient.Client, to, id string) {
		e, err := wire.NewEnvelope(wire.TypeLog, id, wire.Log{Text: id})
		require.NoError(t, err)
		e.To = to
		require.NoError(t, c.Send(context.Background(), e))
	}
	expect := func(c *wsclient.Client, id, from string) {
		t.Helper()
		for {
			select {
			case e := <-c.Recv():
				if e.T == wire.TypeBye {
					// The developer's old connection going away tells the function so; when the function has
					// already reconnected, its new connection hears it. That is not the message under test.
					continue
				}
				assert.Equal(t, id, e.ID)
				assert.Equal(t, from, e.From)
				return
			case <-time.After(10 * time.Second):
				t.Fatalf("%s never arrived", id)
			}
		}
	}
	send(fn, "", "before")
	expect(dev, "before", "f/fn")

	// The gateway drops both connections (as API Gateway does at its 2-hour cap); the clients come back with
	// fresh tickets and the relay routes to the new connections by peer.
	conns := 0
	for _, id := range connectionIDs(t, r) {
		require.NoError(t, r.gw.DeleteConnection(context.Background(), id))
		conns++
	}
	require.Equal(t, 2, conns)
	require.Eventually(t, func() bool { return fnConns.Load() == 2 && devConns.Load() == 2 }, 10*time.Second, 10*time.Millisecond)
	send(dev, "f/fn", "after")
	expect(fn, "after", "dev")
	send(fn, "", "back")
	expect(dev, "back", "f/fn")
}

func connectionIDs(t *testing.T, r *rig) []string {
	t.Helper()
	ids := r.gw.ConnectionIDs()
	require.NotEmpty(t, ids)
	return ids
}

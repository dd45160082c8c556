package relay_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
)

func TestNewSession(t *testing.T) {
	exp := time.Date(2026, 11, 21, 20, 0, 0, 0, time.UTC)
	s := relay.NewSession("s1", "alice@host", exp)
	assert.Equal(t, "s1", s.ID)
	assert.Equal(t, "alice@host", s.Owner)
	assert.Equal(t, exp, s.ExpiresAt)
	require.Len(t, s.Keys[wire.RoleDeveloper], ticket.KeyLen)
	require.Len(t, s.Keys[wire.RoleFunction], ticket.KeyLen)
	assert.NotEqual(t, s.Keys[wire.RoleDeveloper], s.Keys[wire.RoleFunction], "one key per role")
	assert.NotEqual(t, s.Keys[wire.RoleDeveloper], relay.NewSession("s1", "", exp).Keys[wire.RoleDeveloper])
}

func TestMemoryStoreSessions(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := relay.NewMemoryStore()
	m.Now = clk.Now

	_, err := m.GetSession(ctx, "nope")
	require.ErrorIs(t, err, relay.ErrNotFound)

	s := relay.NewSession("s1", "alice", clk.Now().Add(time.Hour))
	m.PutSession(s)
	got, err := m.GetSession(ctx, "s1")
	require.NoError(t, err)
	assert.Equal(t, s, got)

	got.Keys[wire.RoleDeveloper] = nil // callers cannot corrupt the stored session
	again, err := m.GetSession(ctx, "s1")
	require.NoError(t, err)
	assert.Equal(t, s.Keys[wire.RoleDeveloper], again.Keys[wire.RoleDeveloper])

	m.PutSession(relay.NewSession("forever", "bob", time.Time{}))
	clk.Advance(time.Hour)
	_, err = m.GetSession(ctx, "s1")
	require.ErrorIs(t, err, relay.ErrNotFound, "sessions expire")
	assert.Contains(t, err.Error(), "expired")
	_, err = m.GetSession(ctx, "forever")
	require.NoError(t, err, "a zero ExpiresAt never expires")

	m.DeleteSession("forever")
	_, err = m.GetSession(ctx, "forever")
	require.ErrorIs(t, err, relay.ErrNotFound)
}

func TestMemoryStoreTickets(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := relay.NewMemoryStore()
	m.Now = clk.Now

	exp := clk.Now().Add(time.Minute)
	require.NoError(t, m.UseTicket(ctx, "j1", exp))
	err := m.UseTicket(ctx, "j1", exp)
	require.ErrorIs(t, err, relay.ErrReplayed)
	require.ErrorIs(t, err, ticket.ErrReplayed, "the verifier recognises the store's replay error")

	clk.Advance(2 * time.Minute)
	require.NoError(t, m.UseTicket(ctx, "j1", clk.Now().Add(time.Minute)),
		"a jti is only remembered until its ticket expires")

	// Expired jtis are pruned, so the table does not grow with every ticket ever seen.
	for i := range 1000 {
		require.NoError(t, m.UseTicket(ctx, fmt.Sprintf("old-%d", i), clk.Now().Add(time.Second)))
	}
	clk.Advance(time.Minute)
	for i := range 1000 {
		require.NoError(t, m.UseTicket(ctx, fmt.Sprintf("new-%d", i), clk.Now().Add(time.Minute)))
	}
	assert.LessOrEqual(t, m.Tickets(), 1000+128, "expired entries were pruned")
	require.ErrorIs(t, m.UseTicket(ctx, "new-5", clk.Now().Add(time.Minute)), relay.ErrReplayed,
		"live entries survive pruning")
}

func TestMemoryStoreConnections(t *testing.T) {
	ctx := context.Background()
	m := relay.NewMemoryStore()
	t0 := time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC)

	require.Error(t, m.PutConnection(ctx, relay.Connection{Session: "A"}), "id required")
	require.Error(t, m.PutConnection(ctx, relay.Connection{ID: "x"}), "session required")

	conns := []relay.Connection{
		{ID: "d1", Session: "A", Role: wire.RoleDeveloper, Peer: "dev", ConnectedAt: t0},
		{ID: "f1", Session: "A", Role: wire.RoleFunction, Peer: "fn", ConnectedAt: t0.Add(time.Second)},
		{ID: "f2", Session: "A", Role: wire.RoleFunction, Peer: "fn", ConnectedAt: t0.Add(2 * time.Second)},
		{ID: "f3", Session: "A", Role: wire.RoleFunction, Peer: "fn", ConnectedAt: t0.Add(2 * time.Second)}, // tie: later insert wins
		{ID: "b1", Session: "B", Role: wire.RoleFunction, Peer: "fn", ConnectedAt: t0.Add(time.Hour)},
	}
	for _, c := range conns {
		require.NoError(t, m.PutConnection(ctx, c))
	}
	got, err := m.GetConnection(ctx, "f1")
	require.NoError(t, err)
	assert.Equal(t, conns[1], got)
	_, err = m.GetConnection(ctx, "zz")
	require.ErrorIs(t, err, relay.ErrNotFound)

	p, err := m.PeerConnection(ctx, "A", "fn")
	require.NoError(t, err)
	assert.Equal(t, "f3", p.ID, "newest connection of the peer in that session")
	_, err = m.PeerConnection(ctx, "A", "ghost")
	require.ErrorIs(t, err, relay.ErrNotFound)
	_, err = m.PeerConnection(ctx, "C", "fn")
	require.ErrorIs(t, err, relay.ErrNotFound)

	ids := func(cs []relay.Connection) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	all, err := m.SessionConnections(ctx, "A", "")
	require.NoError(t, err)
	assert.Equal(t, []string{"d1", "f1", "f2", "f3"}, ids(all), "oldest first")
	fns, err := m.SessionConnections(ctx, "A", wire.RoleFunction)
	require.NoError(t, err)
	assert.Equal(t, []string{"f1", "f2", "f3"}, ids(fns))
	none, err := m.SessionConnections(ctx, "C", "")
	require.NoError(t, err)
	assert.Empty(t, none)

	require.NoError(t, m.DeleteConnection(ctx, "f3"))
	require.NoError(t, m.DeleteConnection(ctx, "f3"), "deleting twice is fine")
	p, err = m.PeerConnection(ctx, "A", "fn")
	require.NoError(t, err)
	assert.Equal(t, "f2", p.ID)

	// Re-putting an id under another session moves it.
	require.NoError(t, m.PutConnection(ctx, relay.Connection{ID: "f2", Session: "B", Role: wire.RoleFunction, Peer: "fn2", ConnectedAt: t0}))
	fns, err = m.SessionConnections(ctx, "A", wire.RoleFunction)
	require.NoError(t, err)
	assert.Equal(t, []string{"f1"}, ids(fns))
}

func TestMemoryStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	m := relay.NewMemoryStore()
	m.PutSession(relay.NewSession("A", "", time.Time{}))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				id := fmt.Sprintf("c-%d-%d", g, i)
				_ = m.PutConnection(ctx, relay.Connection{ID: id, Session: "A", Role: wire.RoleFunction, Peer: fmt.Sprintf("p%d", g), ConnectedAt: time.Now()})
				_, _ = m.PeerConnection(ctx, "A", fmt.Sprintf("p%d", g))
				if i%10 == 0 {
					_, _ = m.SessionConnections(ctx, "A", wire.RoleFunction)
				}
				_, _ = m.GetSession(ctx, "A")
				_ = m.UseTicket(ctx, id, time.Now().Add(time.Minute))
				if i%2 == 0 {
					_ = m.DeleteConnection(ctx, id)
				}
			}
		}()
	}
	wg.Wait()
	all, err := m.SessionConnections(ctx, "A", "")
	require.NoError(t, err)
	assert.Len(t, all, 8*50)
	assert.Equal(t, 8*100, m.Tickets())
}

package store_test

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

// sessionStore is relay.Store plus the session writes attach makes, in the shape of *store.Store.
type sessionStore interface {
	relay.Store
	PutSession(ctx context.Context, s relay.Session) error
	DeleteSession(ctx context.Context, id string) error
}

// memoryStore gives relay.MemoryStore the context-and-error session writes of sessionStore.
type memoryStore struct{ *relay.MemoryStore }

func (m memoryStore) PutSession(_ context.Context, s relay.Session) error {
	m.MemoryStore.PutSession(s)
	return nil
}

func (m memoryStore) DeleteSession(_ context.Context, id string) error {
	m.MemoryStore.DeleteSession(id)
	return nil
}

// storeFactory returns an empty store whose clock is now.
type storeFactory func(t *testing.T, now func() time.Time) sessionStore

func TestConformanceMemory(t *testing.T) {
	testConformance(t, func(_ *testing.T, now func() time.Time) sessionStore {
		m := relay.NewMemoryStore()
		m.Now = now
		return memoryStore{m}
	})
}

func TestConformanceDynamoDB(t *testing.T) {
	testConformance(t, func(t *testing.T, now func() time.Time) sessionStore {
		return newDynamo(t).store(now)
	})
}

func connIDs(cs []relay.Connection) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

// testConformance is the behaviour every relay.Store must have, run against the in-memory reference and the
// DynamoDB store alike.
func testConformance(t *testing.T, factory storeFactory) {
	t0 := time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, s sessionStore, clk *clock)
	}{
		{"unknown session is not found", func(t *testing.T, ctx context.Context, s sessionStore, _ *clock) {
			_, err := s.GetSession(ctx, "nope")
			require.ErrorIs(t, err, relay.ErrNotFound)
			assert.Contains(t, err.Error(), `"nope"`)
		}},
		{"empty ids find nothing", func(t *testing.T, ctx context.Context, s sessionStore, _ *clock) {
			require.NoError(t, s.PutConnection(ctx, relay.Connection{ID: "c", Session: "A", Role: wire.RoleFunction, Peer: "p"}))
			_, err := s.GetSession(ctx, "")
			require.ErrorIs(t, err, relay.ErrNotFound)
			_, err = s.GetConnection(ctx, "")
			require.ErrorIs(t, err, relay.ErrNotFound)
			_, err = s.PeerConnection(ctx, "A", "")
			require.ErrorIs(t, err, relay.ErrNotFound)
			_, err = s.PeerConnection(ctx, "", "p")
			require.ErrorIs(t, err, relay.ErrNotFound)
			all, err := s.SessionConnections(ctx, "", "")
			require.NoError(t, err)
			assert.Empty(t, all)
			require.NoError(t, s.DeleteConnection(ctx, ""))
		}},
		{"session round trip", func(t *testing.T, ctx context.Context, s sessionStore, clk *clock) {
			sess := relay.NewSession("s1", "alice@host", clk.Now().Add(time.Hour+123*time.Nanosecond))
			require.NoError(t, s.PutSession(ctx, sess))
			got, err := s.GetSession(ctx, "s1")
			require.NoError(t, err)
			assert.Equal(t, sess, got)

			got.Keys[wire.RoleDeveloper][0] ^= 0xff // callers cannot corrupt the stored session
			got.Keys[wire.RoleFunction] = nil
			again, err := s.GetSession(ctx, "s1")
			require.NoError(t, err)
			assert.Equal(t, sess.Keys, again.Keys)
		}},
		{"put session replaces", func(t *testing.T, ctx context.Context, s sessionStore, clk *clock) {
			require.NoError(t, s.PutSession(ctx, relay.NewSession("s1", "alice", clk.Now().Add(time.Minute))))
			next := relay.NewSession("s1", "bob", time.Time{})
			require.NoError(t, s.PutSession(ctx, next))
			got, err := s.GetSession(ctx, "s1")
			require.NoError(t, err)
			assert.Equal(t, next, got)
			clk.Advance(time.Hour)
			_, err = s.GetSession(ctx, "s1")
			require.NoError(t, err, "the replacement has no expiry")
		}},
		{"sessions expire at ExpiresAt exactly", func(t *testing.T, ctx context.Context, s sessionStore, clk *clock) {
			require.NoError(t, s.PutSession(ctx, relay.NewSession("s1", "alice", clk.Now().Add(time.Minute))))
			require.NoError(t, s.PutSession(ctx, relay.NewSession("forever", "bob", time.Time{})))
			clk.Advance(time.Minute - time.Nanosecond)
			_, err := s.GetSession(ctx, "s1")
			require.NoError(t, err, "live until the last nanosecond")
			clk.Advance(time.Nanosecond)
			_, err = s.GetSession(ctx, "s1")
			require.ErrorIs(t, err, relay.ErrNotFound)
			assert.Contains(t, err.Error(), "expired")
			clk.Advance(1000 * time.Hour)
			_, err = s.GetSession(ctx, "forever")
			require.NoError(t, err, "a zero ExpiresAt never expires")
		}},
		{"delete session", func(t *testing.T, ctx context.Context, s sessionStore, _ *clock) {
			require.NoError(t, s.PutSession(ctx, relay.NewSession("s1", "alice", time.Time{})))
			require.NoError(t, s.PutSession(ctx, relay.NewSession("s2", "alice", time.Time{})))
			require.NoError(t, s.DeleteSession(ctx, "s1"))
			require.NoError(t, s.DeleteSession(ctx, "s1"), "deleting twice is fine")
			_, err := s.GetSession(ctx, "s1")
			require.ErrorIs(t, err, relay.ErrNotFound)
			_, err = s.GetSession(ctx, "s2")
			require.NoError(t, err, "other sessions stay")
		}},
		{"tickets are single use until they expire", func(t *testing.T, ctx context.Context, s sessionStore, clk *clock) {
			exp := clk.Now().Add(time.Minute)
			require.NoError(t, s.UseTicket(ctx, "j1", exp))
			require.NoError(t, s.UseTicket(ctx, "j2", exp), "another id is independent")
			err := s.UseTicket(ctx, "j1", exp)
			require.ErrorIs(t, err, relay.ErrReplayed)
			require.ErrorIs(t, err, ticket.ErrReplayed, "the verifier recognises the store's replay error")
			clk.Advance(time.Minute - time.Nanosecond)
			require.ErrorIs(t, s.UseTicket(ctx, "j1", clk.Now().Add(time.Minute)), relay.ErrReplayed,
				"remembered until the last nanosecond")
			clk.Advance(time.Nanosecond)
			require.NoError(t, s.UseTicket(ctx, "j1", clk.Now().Add(time.Minute)),
				"a jti is only remembered until its ticket expires")
			require.ErrorIs(t, s.UseTicket(ctx, "j1", clk.Now().Add(time.Minute)), relay.ErrReplayed,
				"and is remembered again once reused")
		}},
		{"put connection needs id and session", func(t *testing.T, ctx context.Context, s sessionStore, _ *clock) {
			require.Error(t, s.PutConnection(ctx, relay.Connection{Session: "A"}), "id required")
			require.Error(t, s.PutConnection(ctx, relay.Connection{ID: "x"}), "session required")
			_, err := s.GetConnection(ctx, "x")
			require.ErrorIs(t, err, relay.ErrNotFound, "nothing was stored")
		}},
		{"connection lookups", func(t *testing.T, ctx context.Context, s sessionStore, _ *clock) {
			conns := []relay.Connection{
				{ID: "d1", Session: "A", Role: wire.RoleDeveloper, Peer: "dev", ConnectedAt: t0},
				{ID: "f1", Session: "A", Role: wire.RoleFunction, Peer: "fn", ConnectedAt: t0.Add(time.Second)},
				{ID: "f2", Session: "A", Role: wire.RoleFunction, Peer: "fn", ConnectedAt: t0.Add(2 * time.Second)},
				{ID: "f3", Session: "A", Role: wire.RoleFunction, Peer: "fn", ConnectedAt: t0.Add(2 * time.Second)}, // tie: later insert wins
				{ID: "f0", Session: "A", Role: wire.RoleFunction, Peer: "early", ConnectedAt: t0.Add(-time.Second)},
				{ID: "b1", Session: "B", Role: wire.RoleFunction, Peer: "fn", ConnectedAt: t0.Add(time.Hour)},
			}
			for _, c := range conns {
				require.NoError(t, s.PutConnection(ctx, c))
			}
			for _, c := range conns {
				got, err := s.GetConnection(ctx, c.ID)
				require.NoError(t, err)
				assert.Equal(t, c, got)
			}
			_, err := s.GetConnection(ctx, "zz")
			require.ErrorIs(t, err, relay.ErrNotFound)

			p, err := s.PeerConnection(ctx, "A", "fn")
			require.NoError(t, err)
			assert.Equal(t, conns[3], p, "newest connection of the peer in that session")
			p, err = s.PeerConnection(ctx, "B", "fn")
			require.NoError(t, err)
			assert.Equal(t, "b1", p.ID)
			p, err = s.PeerConnection(ctx, "A", "dev")
			require.NoError(t, err)
			assert.Equal(t, "d1", p.ID, "any role")
			_, err = s.PeerConnection(ctx, "A", "ghost")
			require.ErrorIs(t, err, relay.ErrNotFound)
			_, err = s.PeerConnection(ctx, "C", "fn")
			require.ErrorIs(t, err, relay.ErrNotFound)

			all, err := s.SessionConnections(ctx, "A", "")
			require.NoError(t, err)
			assert.Equal(t, []string{"f0", "d1", "f1", "f2", "f3"}, connIDs(all), "oldest first, across roles")
			assert.Equal(t, conns[0], all[1])
			fns, err := s.SessionConnections(ctx, "A", wire.RoleFunction)
			require.NoError(t, err)
			assert.Equal(t, []string{"f0", "f1", "f2", "f3"}, connIDs(fns))
			devs, err := s.SessionConnections(ctx, "A", wire.RoleDeveloper)
			require.NoError(t, err)
			assert.Equal(t, []string{"d1"}, connIDs(devs))
			none, err := s.SessionConnections(ctx, "C", "")
			require.NoError(t, err)
			assert.Empty(t, none)
			none, err = s.SessionConnections(ctx, "B", wire.RoleDeveloper)
			require.NoError(t, err)
			assert.Empty(t, none)
		}},
		{"delete connection", func(t *testing.T, ctx context.Context, s sessionStore, _ *clock) {
			for i, id := range []string{"f1", "f2", "f3"} {
				require.NoError(t, s.PutConnection(ctx, relay.Connection{ID: id, Session: "A", Role: wire.RoleFunction,
					Peer: "fn", ConnectedAt: t0.Add(time.Duration(i) * time.Second)}))
			}
			require.NoError(t, s.DeleteConnection(ctx, "f3"))
			require.NoError(t, s.DeleteConnection(ctx, "f3"), "deleting twice is fine")
			require.NoError(t, s.DeleteConnection(ctx, "never"), "deleting a missing one is fine")
			_, err := s.GetConnection(ctx, "f3")
			require.ErrorIs(t, err, relay.ErrNotFound)
			p, err := s.PeerConnection(ctx, "A", "fn")
			require.NoError(t, err)
			assert.Equal(t, "f2", p.ID, "the next newest takes over")
			all, err := s.SessionConnections(ctx, "A", "")
			require.NoError(t, err)
			assert.Equal(t, []string{"f1", "f2"}, connIDs(all))
			require.NoError(t, s.DeleteConnection(ctx, "f1"))
			require.NoError(t, s.DeleteConnection(ctx, "f2"))
			_, err = s.PeerConnection(ctx, "A", "fn")
			require.ErrorIs(t, err, relay.ErrNotFound)
			all, err = s.SessionConnections(ctx, "A", wire.RoleFunction)
			require.NoError(t, err)
			assert.Empty(t, all)
		}},
		{"re-putting an id replaces the connection", func(t *testing.T, ctx context.Context, s sessionStore, _ *clock) {
			require.NoError(t, s.PutConnection(ctx, relay.Connection{ID: "f1", Session: "A", Role: wire.RoleFunction, Peer: "fn", ConnectedAt: t0}))
			require.NoError(t, s.PutConnection(ctx, relay.Connection{ID: "f2", Session: "A", Role: wire.RoleFunction, Peer: "fn", ConnectedAt: t0.Add(time.Second)}))
			moved := relay.Connection{ID: "f2", Session: "B", Role: wire.RoleDeveloper, Peer: "dev2", ConnectedAt: t0}
			require.NoError(t, s.PutConnection(ctx, moved))
			got, err := s.GetConnection(ctx, "f2")
			require.NoError(t, err)
			assert.Equal(t, moved, got)
			fns, err := s.SessionConnections(ctx, "A", "")
			require.NoError(t, err)
			assert.Equal(t, []string{"f1"}, connIDs(fns), "moved out of its old session")
			p, err := s.PeerConnection(ctx, "A", "fn")
			require.NoError(t, err)
			assert.Equal(t, "f1", p.ID)
			devs, err := s.SessionConnections(ctx, "B", wire.RoleDeveloper)
			require.NoError(t, err)
			assert.Equal(t, []relay.Connection{moved}, devs)

			renamed := relay.Connection{ID: "f1", Session: "A", Role: wire.RoleFunction, Peer: "fn-new", ConnectedAt: t0}
			require.NoError(t, s.PutConnection(ctx, renamed))
			_, err = s.PeerConnection(ctx, "A", "fn")
			require.ErrorIs(t, err, relay.ErrNotFound, "the old peer entry is gone")
			p, err = s.PeerConnection(ctx, "A", "fn-new")
			require.NoError(t, err)
			assert.Equal(t, renamed, p)
			all, err := s.SessionConnections(ctx, "A", "")
			require.NoError(t, err)
			assert.Equal(t, []relay.Connection{renamed}, all, "listed once")
		}},
		{"peer names that look like key syntax", func(t *testing.T, ctx context.Context, s sessionStore, _ *clock) {
			peers := []string{"a", "a#b", "a%23b", "a#", "#", "%", "a%", "ü-λ"}
			for i, p := range peers {
				require.NoError(t, s.PutConnection(ctx, relay.Connection{ID: fmt.Sprintf("c%d", i), Session: "A#x",
					Role: wire.RoleFunction, Peer: p, ConnectedAt: t0.Add(time.Duration(len(peers)-i) * time.Second)}))
			}
			for i, p := range peers {
				got, err := s.PeerConnection(ctx, "A#x", p)
				require.NoError(t, err, p)
				assert.Equal(t, fmt.Sprintf("c%d", i), got.ID, "peer %q", p)
			}
			_, err := s.PeerConnection(ctx, "A", "x#b")
			require.ErrorIs(t, err, relay.ErrNotFound, "session names do not leak into each other either")
			all, err := s.SessionConnections(ctx, "A#x", wire.RoleFunction)
			require.NoError(t, err)
			assert.Len(t, all, len(peers))
		}},
		{"zero connection time", func(t *testing.T, ctx context.Context, s sessionStore, _ *clock) {
			c := relay.Connection{ID: "z", Session: "A", Role: wire.RoleFunction, Peer: "fn"}
			require.NoError(t, s.PutConnection(ctx, c))
			require.NoError(t, s.PutConnection(ctx, relay.Connection{ID: "y", Session: "A", Role: wire.RoleFunction, Peer: "fn", ConnectedAt: t0}))
			got, err := s.GetConnection(ctx, "z")
			require.NoError(t, err)
			assert.Equal(t, c, got)
			all, err := s.SessionConnections(ctx, "A", "")
			require.NoError(t, err)
			assert.Equal(t, []string{"z", "y"}, connIDs(all))
		}},
		{"concurrent use", func(t *testing.T, ctx context.Context, s sessionStore, _ *clock) {
			const workers, each = 4, 6
			var wg sync.WaitGroup
			errs := make(chan error, workers*each*4)
			for g := range workers {
				wg.Go(func() {
					for i := range each {
						id := fmt.Sprintf("c-%d-%d", g, i)
						peer := fmt.Sprintf("p%d", g)
						errs <- s.PutConnection(ctx, relay.Connection{ID: id, Session: "A", Role: wire.RoleFunction, Peer: peer, ConnectedAt: t0.Add(time.Duration(i) * time.Second)})
						_, err := s.PeerConnection(ctx, "A", peer)
						errs <- err
						errs <- s.UseTicket(ctx, id, t0.Add(time.Hour))
						if i%2 == 0 {
							errs <- s.DeleteConnection(ctx, id)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			all, err := s.SessionConnections(ctx, "A", "")
			require.NoError(t, err)
			assert.Len(t, all, workers*each/2)
			for g := range workers {
				p, err := s.PeerConnection(ctx, "A", fmt.Sprintf("p%d", g))
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprintf("c-%d-%d", g, each-1), p.ID)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			tc.run(t, context.Background(), factory(t, clk.Now), clk)
		})
	}
}

package relay

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
)

// NewSession returns a session with fresh random keys for both roles. A zero expires means no expiry.
func NewSession(id, owner string, expires time.Time) Session {
	return Session{
		ID: id,
		Keys: map[wire.Role][]byte{
			wire.RoleDeveloper: ticket.NewKey(),
			wire.RoleFunction:  ticket.NewKey(),
		},
		Owner:     owner,
		ExpiresAt: expires,
	}
}

// MemoryStore is a Store held in memory, for plldb local and tests. It is safe for concurrent use.
type MemoryStore struct {
	// Now is the store's clock, for session and ticket expiry; nil means time.Now. Set it before first use.
	Now func() time.Time

	mu       sync.RWMutex
	sessions map[string]Session
	tickets  map[string]time.Time // jti → until when it must be remembered
	// pruneAt is the ticket count that triggers the next sweep of expired jtis; doubling it after each sweep
	// keeps UseTicket amortised O(1) however many tickets are live.
	pruneAt   int
	conns     map[string]memConn
	bySession map[string]map[string]struct{} // session → connection ids
	seq       uint64
}

type memConn struct {
	Connection
	seq uint64 // insertion order, to break ConnectedAt ties
}

const minPruneAt = 64

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		sessions:  map[string]Session{},
		tickets:   map[string]time.Time{},
		pruneAt:   minPruneAt,
		conns:     map[string]memConn{},
		bySession: map[string]map[string]struct{}{},
	}
}

func (m *MemoryStore) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// PutSession stores s, replacing a session with the same ID.
func (m *MemoryStore) PutSession(s Session) {
	s.Keys = maps.Clone(s.Keys)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[s.ID] = s
}

// DeleteSession removes the session; its connections stay until they disconnect, but no new ticket for it
// verifies.
func (m *MemoryStore) DeleteSession(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, id)
}

// GetSession implements Store. An expired session is removed and reported as not found.
func (m *MemoryStore) GetSession(_ context.Context, id string) (Session, error) {
	now := m.now()
	m.mu.RLock()
	s, ok := m.sessions[id]
	m.mu.RUnlock()
	if !ok {
		return Session{}, fmt.Errorf("session %q: %w", id, ErrNotFound)
	}
	if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
		m.mu.Lock()
		if cur, ok := m.sessions[id]; ok && cur.ExpiresAt.Equal(s.ExpiresAt) {
			delete(m.sessions, id)
		}
		m.mu.Unlock()
		return Session{}, fmt.Errorf("session %q expired: %w", id, ErrNotFound)
	}
	s.Keys = maps.Clone(s.Keys)
	return s, nil
}

// UseTicket implements Store.
func (m *MemoryStore) UseTicket(_ context.Context, jti string, expires time.Time) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if until, ok := m.tickets[jti]; ok && now.Before(until) {
		return fmt.Errorf("ticket id: %w", ErrReplayed)
	}
	m.tickets[jti] = expires
	if len(m.tickets) >= m.pruneAt {
		for id, until := range m.tickets {
			if !now.Before(until) {
				delete(m.tickets, id)
			}
		}
		m.pruneAt = max(minPruneAt, 2*len(m.tickets))
	}
	return nil
}

// Tickets returns how many ticket ids the store remembers, expired ones not yet pruned included.
func (m *MemoryStore) Tickets() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.tickets)
}

// PutConnection implements Store.
func (m *MemoryStore) PutConnection(_ context.Context, c Connection) error {
	if c.ID == "" || c.Session == "" {
		return fmt.Errorf("put connection: id and session are required (id %q, session %q)", c.ID, c.Session)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.conns[c.ID]; ok && old.Session != c.Session {
		m.unindex(old.Connection)
	}
	m.seq++
	m.conns[c.ID] = memConn{Connection: c, seq: m.seq}
	ids := m.bySession[c.Session]
	if ids == nil {
		ids = map[string]struct{}{}
		m.bySession[c.Session] = ids
	}
	ids[c.ID] = struct{}{}
	return nil
}

func (m *MemoryStore) unindex(c Connection) {
	ids := m.bySession[c.Session]
	delete(ids, c.ID)
	if len(ids) == 0 {
		delete(m.bySession, c.Session)
	}
}

// GetConnection implements Store.
func (m *MemoryStore) GetConnection(_ context.Context, id string) (Connection, error) {
	m.mu.RLock()
	c, ok := m.conns[id]
	m.mu.RUnlock()
	if !ok {
		return Connection{}, fmt.Errorf("connection %q: %w", id, ErrNotFound)
	}
	return c.Connection, nil
}

// DeleteConnection implements Store.
func (m *MemoryStore) DeleteConnection(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.conns[id]; ok {
		delete(m.conns, id)
		m.unindex(c.Connection)
	}
	return nil
}

// PeerConnection implements Store.
func (m *MemoryStore) PeerConnection(_ context.Context, session, peer string) (Connection, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var best memConn
	found := false
	for id := range m.bySession[session] {
		c := m.conns[id]
		if c.Peer == peer && (!found || newer(c, best)) {
			best, found = c, true
		}
	}
	if !found {
		return Connection{}, fmt.Errorf("peer %q in session %q: %w", peer, session, ErrNotFound)
	}
	return best.Connection, nil
}

// SessionConnections implements Store. The list is ordered oldest first.
func (m *MemoryStore) SessionConnections(_ context.Context, session string, role wire.Role) ([]Connection, error) {
	m.mu.RLock()
	list := make([]memConn, 0, len(m.bySession[session]))
	for id := range m.bySession[session] {
		if c := m.conns[id]; role == "" || c.Role == role {
			list = append(list, c)
		}
	}
	m.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return newer(list[j], list[i]) })
	out := make([]Connection, len(list))
	for i, c := range list {
		out[i] = c.Connection
	}
	return out, nil
}

func newer(a, b memConn) bool {
	if !a.ConnectedAt.Equal(b.ConnectedAt) {
		return a.ConnectedAt.After(b.ConnectedAt)
	}
	return a.seq > b.seq
}

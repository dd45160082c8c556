package relay_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/wire"
)

// seenStore is a MemoryStore that records what the handlers tell a relay.SeenRecorder.
type seenStore struct {
	*relay.MemoryStore
	mu   sync.Mutex
	seen []string // "session/peer" per call
	err  error
}

func (s *seenStore) DeveloperSeen(_ context.Context, c relay.Connection) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, c.Session+"/"+c.Peer)
	return s.err
}

func (s *seenStore) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.seen...)
	s.seen = nil
	return out
}

// TestDeveloperMessagesAndHeartbeatsAreSeen: the dead-man sweep needs to know when a session's developer was
// last heard from; the relay tells a SeenRecorder store on a developer's connect and on each of its messages,
// pings included, and never for a function.
func TestDeveloperMessagesAndHeartbeatsAreSeen(t *testing.T) {
	x := newHarness(t, "A")
	st := &seenStore{MemoryStore: x.store}
	x.h.Store = st
	dev := x.connect(t, "A", wire.RoleDeveloper, "dev")
	fn := x.connect(t, "A", wire.RoleFunction, "f/sandbox")
	assert.Equal(t, []string{"A/dev"}, st.calls(), "a developer's connect counts, a function's does not")

	_, err := x.send(t, dev, envelope(t, wire.TypePing, "p1", "", "", wire.Ping{}))
	require.NoError(t, err)
	assert.Equal(t, []string{"A/dev"}, st.calls(), "a heartbeat counts")
	_, err = x.send(t, fn, envelope(t, wire.TypeInvoke, "r1", "", "", wire.Invoke{RequestID: "r1", Function: fnF}))
	require.NoError(t, err)
	assert.Empty(t, st.calls(), "a function's message does not")
	_, err = x.send(t, dev, envelope(t, wire.TypeResult, "r1", "f/sandbox", "", wire.Result{RequestID: "r1", Payload: []byte(`1`)}))
	require.NoError(t, err)
	assert.Equal(t, []string{"A/dev"}, st.calls())
	assert.Len(t, x.conns.take(fn), 1, "the result still went through")

	st.err = errors.New("table throttled")
	_, err = x.send(t, dev, envelope(t, wire.TypeResult, "r2", "f/sandbox", "", wire.Result{RequestID: "r2", Payload: []byte(`1`)}))
	require.NoError(t, err, "a failed record never costs the message")
	assert.Len(t, x.conns.take(fn), 1)
	assert.Contains(t, x.logs.String(), "could not record that the developer was seen")
}

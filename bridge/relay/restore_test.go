package relay_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/wire"
)

type fakeRestorer struct {
	mu       sync.Mutex
	sessions []string
	err      error
}

func (f *fakeRestorer) RestoreSession(_ context.Context, session string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = append(f.sessions, session)
	return f.err
}

func (f *fakeRestorer) restored() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sessions...)
}

func TestDisconnectRestoresAnEndedSession(t *testing.T) {
	x := newHarness(t, "A", "B")
	r := &fakeRestorer{}
	x.h.Restorer = r

	devA := x.connect(t, "A", wire.RoleDeveloper, "dev-a")
	devB := x.connect(t, "B", wire.RoleDeveloper, "dev-b")
	x.store.DeleteSession("A") // ended (expired, or deleted) while its developer was still connected
	x.disconnect(t, devA)
	assert.Equal(t, []string{"A"}, r.restored(), "the ended session's functions are restored")

	x.disconnect(t, devB)
	assert.Equal(t, []string{"A"}, r.restored(), "a live session whose developer left may come back: not restored")
}

func TestDisconnectRestoresOnlyWhenTheLastDeveloperLeaves(t *testing.T) {
	x := newHarness(t, "A")
	r := &fakeRestorer{err: errors.New("lambda says no")}
	x.h.Restorer = r
	first := x.connect(t, "A", wire.RoleDeveloper, "dev-1")
	second := x.connect(t, "A", wire.RoleDeveloper, "dev-2")
	x.store.DeleteSession("A")
	x.disconnect(t, first)
	assert.Empty(t, r.restored())
	x.disconnect(t, second)
	require.Equal(t, []string{"A"}, r.restored())
	assert.Contains(t, x.logs.String(), "could not restore", "a failed restore is logged")
}

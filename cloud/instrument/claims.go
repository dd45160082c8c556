package instrument

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/plldb/plldb/cloud/store"
)

// Snapshot is what a function looked like before plldb changed it, kept in the claim store so that any plldb
// process (detach, the next attach, the relay's expiry path) can put it back after a crash. It is the claim
// store's type, so that the DynamoDB store (*store.Store) is a Claims as it is.
type Snapshot = store.Snapshot

// HeldError says that another live session holds a function.
type HeldError = store.HeldError

// The DynamoDB store is a claim store.
var _ Claims = (*store.Store)(nil)

// ErrNotHeld is returned by Claims.SetRevisionAfter when the session does not hold the function.
var ErrNotHeld = errors.New("function is not held by this session")

// Claims is the store of function claims and snapshots. A function is held by at most one session; the claim
// carries the snapshot taken before the session changed the function. *store.Store implements it on DynamoDB;
// MemoryClaims implements it in memory.
type Claims interface {
	// Claim records snap as snap.Session's claim on snap.FunctionARN. It returns a *HeldError if another live
	// session holds the function. A claim held by a session that is no longer live is replaced. A re-claim by
	// the same session keeps the first snapshot.
	Claim(ctx context.Context, snap Snapshot, owner string) error
	// SetRevisionAfter records the revision plldb's update left on the function.
	SetRevisionAfter(ctx context.Context, functionARN, session, revision string) error
	// GetSnapshot returns the claim on the function, whoever holds it.
	GetSnapshot(ctx context.Context, functionARN string) (Snapshot, bool, error)
	// SessionSnapshots lists the claims the session holds.
	SessionSnapshots(ctx context.Context, session string) ([]Snapshot, error)
	// Release drops the session's claim on the function; releasing a claim the session does not hold is a
	// no-op.
	Release(ctx context.Context, functionARN, session string) error
}

// MemoryClaims is Claims in memory, for tests and for single-process use. Every session is live until
// EndSession says otherwise.
type MemoryClaims struct {
	mu     sync.Mutex
	claims map[string]memoryClaim
	ended  map[string]bool
}

type memoryClaim struct {
	snap  Snapshot
	owner string
}

// NewMemoryClaims returns an empty store.
func NewMemoryClaims() *MemoryClaims {
	return &MemoryClaims{claims: map[string]memoryClaim{}, ended: map[string]bool{}}
}

// EndSession marks a session as no longer live (expired or crashed): its claims can then be taken over.
func (m *MemoryClaims) EndSession(session string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ended[session] = true
}

// Claim implements Claims.
func (m *MemoryClaims) Claim(ctx context.Context, snap Snapshot, owner string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if snap.FunctionARN == "" || snap.Session == "" {
		return errors.New("claim: snapshot needs a function ARN and a session")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.claims[snap.FunctionARN]; ok {
		if cur.snap.Session == snap.Session {
			return nil
		}
		if !m.ended[cur.snap.Session] {
			name := cur.snap.FunctionName // as the DynamoDB store names it: by the holder's claim
			if name == "" {
				name = cur.snap.FunctionARN
			}
			return &HeldError{Session: cur.snap.Session, Owner: cur.owner, Function: name}
		}
	}
	m.claims[snap.FunctionARN] = memoryClaim{snap: copySnapshot(snap), owner: owner}
	return nil
}

// SetRevisionAfter implements Claims.
func (m *MemoryClaims) SetRevisionAfter(ctx context.Context, functionARN, session, revision string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.claims[functionARN]
	if !ok || cur.snap.Session != session {
		return fmt.Errorf("set revision of %s for session %s: %w", functionARN, session, ErrNotHeld)
	}
	cur.snap.RevisionAfter = revision
	m.claims[functionARN] = cur
	return nil
}

// GetSnapshot implements Claims.
func (m *MemoryClaims) GetSnapshot(ctx context.Context, functionARN string) (Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.claims[functionARN]
	if !ok {
		return Snapshot{}, false, nil
	}
	return copySnapshot(cur.snap), true, nil
}

// SessionSnapshots implements Claims; the snapshots come sorted by function ARN.
func (m *MemoryClaims) SessionSnapshots(ctx context.Context, session string) ([]Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Snapshot
	for _, c := range m.claims {
		if c.snap.Session == session {
			out = append(out, copySnapshot(c.snap))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FunctionARN < out[j].FunctionARN })
	return out, nil
}

// Release implements Claims.
func (m *MemoryClaims) Release(ctx context.Context, functionARN, session string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.claims[functionARN]; ok && cur.snap.Session == session {
		delete(m.claims, functionARN)
	}
	return nil
}

func copySnapshot(s Snapshot) Snapshot {
	s.Config = slices.Clone(s.Config)
	if s.Environment != nil {
		s.Environment = maps.Clone(s.Environment)
	}
	if s.Layers != nil {
		s.Layers = slices.Clone(s.Layers)
	}
	return s
}

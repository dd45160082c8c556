package instrument

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/plldb/plldb/cloud/store"
)

// Snapshot is what a function looked like before plldb changed it, kept in the claim store so that any plldb
// process (detach, the next attach, the relay's expiry path) can put it back after a crash. It is the claim
// store's type, so that the DynamoDB store (*store.Store) is a Claims as it is.
type Snapshot = store.Snapshot

// HeldError says that another live session holds a function.
type HeldError = store.HeldError

// Holder is one of the selective sessions sharing a claim.
type Holder = store.Holder

// The DynamoDB store is a claim store.
var _ Claims = (*store.Store)(nil)

// ErrNotHeld is returned by Claims.SetRevisionAfter when the session does not hold the function.
var ErrNotHeld = errors.New("function is not held by this session")

// Claims is the store of function claims and snapshots. A function is held either exclusively by one session or
// shared by any number of selective sessions (Snapshot.Shared, Holders); the claim carries the snapshot taken
// before the first session changed the function. *store.Store implements it on DynamoDB; MemoryClaims
// implements it in memory.
type Claims interface {
	// Claim records snap as snap.Session's claim on snap.FunctionARN: exclusive, or with snap.Shared a
	// selective claim that joins the sessions already sharing the function (keeping the first snapshot and
	// dropping holders that are no longer live). It returns a *HeldError if a live session holds the function
	// exclusively, or, for an exclusive claim, if live selective sessions share it (HeldError.Holders). A claim
	// whose holders are all no longer live is replaced. A re-claim by the same session keeps the first snapshot.
	// It never writes snap.Releasing (only Leave and MarkReleasing do).
	Claim(ctx context.Context, snap Snapshot, owner string) error
	// Join is Claim for a selective session's shared claim (snap.Shared set) that also returns the claim's
	// holders as its write left them, this session among them.
	Join(ctx context.Context, snap Snapshot, owner string) (holders []Holder, err error)
	// Leave takes session out of a shared claim, dropping holders that are no longer live. With other live
	// holders left it returns the claim with them (last false); otherwise the claim becomes session's exclusive
	// claim, marked Releasing, and last is true: the caller puts the snapshot back and releases it, and a claim
	// by another session meanwhile fails with a *HeldError with Releasing set. On session's own exclusive claim
	// it returns that, unchanged, with last true. read names the function (FunctionARN); when read.Version is
	// set it is the shared claim as the caller read it (SessionSnapshots), which a store may build on instead
	// of reading the claim again, as long as its write fails when the claim changed since.
	Leave(ctx context.Context, read Snapshot, session string) (snap Snapshot, last bool, err error)
	// MarkReleasing marks session's exclusive claim on the function as being released, before a plain
	// session's detach puts the snapshot back: a claim by another session meanwhile fails with a *HeldError
	// with Releasing set, as for the last selective session out (Leave), and the mark goes with the claim
	// (Release) or with a takeover after session ended. It fails with a *HeldError when another session holds
	// the function, and with an error wrapping store.ErrNotFound when nobody does. One conditional write.
	MarkReleasing(ctx context.Context, functionARN, session string) error
	// SetRevisionAfter records the revision plldb's update left on the function.
	SetRevisionAfter(ctx context.Context, functionARN, session, revision string) error
	// GetSnapshot returns the claim on the function, whoever holds it.
	GetSnapshot(ctx context.Context, functionARN string) (Snapshot, bool, error)
	// StackSnapshots returns the claims on those of the functions that are claimed, whoever holds them, in the
	// order of arns (duplicates once): GetSnapshot for many functions at once (the DynamoDB store reads 100 per
	// request).
	StackSnapshots(ctx context.Context, arns []string) ([]Snapshot, error)
	// SessionSnapshots lists the claims the session holds, shared ones with Session set to it.
	SessionSnapshots(ctx context.Context, session string) ([]Snapshot, error)
	// Release drops the session's claim on the function (for a shared claim, its membership; the claim goes
	// with its last holder); releasing a claim the session does not hold is a no-op.
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

func (m *MemoryClaims) held(cur memoryClaim, holders []Holder) *HeldError {
	name := cur.snap.FunctionName // as the DynamoDB store names it: by the holder's claim
	if name == "" {
		name = cur.snap.FunctionARN
	}
	if cur.snap.Shared {
		return &HeldError{Function: name, Holders: holders}
	}
	return &HeldError{Session: cur.snap.Session, Owner: cur.owner, Function: name, Releasing: cur.snap.Releasing}
}

// live is the holders whose sessions have not ended.
func (m *MemoryClaims) live(hs []Holder) []Holder {
	var out []Holder
	for _, h := range hs {
		if !m.ended[h.Session] {
			out = append(out, h)
		}
	}
	return out
}

// Claim implements Claims.
func (m *MemoryClaims) Claim(ctx context.Context, snap Snapshot, owner string) error {
	_, err := m.claim(ctx, snap, owner)
	return err
}

// Join implements Claims.
func (m *MemoryClaims) Join(ctx context.Context, snap Snapshot, owner string) ([]Holder, error) {
	if !snap.Shared {
		return nil, fmt.Errorf("join %s: the snapshot is not a shared claim", snap.FunctionARN)
	}
	return m.claim(ctx, snap, owner)
}

// claim is Claim, with the holders a shared claim has once it is made.
func (m *MemoryClaims) claim(ctx context.Context, snap Snapshot, owner string) ([]Holder, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if snap.FunctionARN == "" || snap.Session == "" {
		return nil, errors.New("claim: snapshot needs a function ARN and a session")
	}
	snap.Releasing = false // only Leave and MarkReleasing mark a claim so
	m.mu.Lock()
	defer m.mu.Unlock()
	me := Holder{Session: snap.Session, Owner: owner}
	cur, ok := m.claims[snap.FunctionARN]
	switch {
	case !ok:
	case cur.snap.Shared:
		if snap.Shared && holdsSession(cur.snap.Holders, snap.Session) {
			return slices.Clone(cur.snap.Holders), nil
		}
		live := m.live(cur.snap.Holders)
		if snap.Shared {
			cur.snap.Holders = sortHolders(append(live, me))
			m.claims[snap.FunctionARN] = cur
			return slices.Clone(cur.snap.Holders), nil
		}
		if len(live) > 0 {
			return nil, m.held(cur, live)
		}
	case cur.snap.Session == snap.Session:
		if snap.Shared {
			return nil, fmt.Errorf("claim %s: session %s holds it exclusively already", snap.FunctionARN, snap.Session)
		}
		return nil, nil
	case !m.ended[cur.snap.Session]:
		return nil, m.held(cur, nil)
	}
	c := memoryClaim{snap: copySnapshot(snap), owner: owner}
	c.snap.Holders = nil
	if snap.Shared {
		c.snap.Session, c.owner, c.snap.Holders = "", "", []Holder{me}
	}
	m.claims[snap.FunctionARN] = c
	return slices.Clone(c.snap.Holders), nil
}

// Leave implements Claims.
func (m *MemoryClaims) Leave(ctx context.Context, read Snapshot, session string) (Snapshot, bool, error) {
	functionARN := read.FunctionARN
	if err := ctx.Err(); err != nil {
		return Snapshot{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.claims[functionARN]
	switch {
	case !ok:
		return Snapshot{}, false, fmt.Errorf("leave %s: no claim: %w", functionARN, store.ErrNotFound)
	case !cur.snap.Shared && cur.snap.Session == session:
		return copySnapshot(cur.snap), true, nil
	case !cur.snap.Shared:
		return Snapshot{}, false, m.held(cur, nil)
	}
	owner := ""
	for _, h := range cur.snap.Holders {
		if h.Session == session {
			owner = h.Owner
		}
	}
	others := m.live(slices.DeleteFunc(slices.Clone(cur.snap.Holders), func(h Holder) bool { return h.Session == session }))
	if len(others) == 0 {
		cur.snap.Shared, cur.snap.Holders, cur.snap.Session, cur.owner = false, nil, session, owner
		cur.snap.Releasing = true
		m.claims[functionARN] = cur
		return copySnapshot(cur.snap), true, nil
	}
	cur.snap.Holders = others
	m.claims[functionARN] = cur
	return copySnapshot(cur.snap), false, nil
}

func holdsSession(hs []Holder, session string) bool {
	return slices.ContainsFunc(hs, func(h Holder) bool { return h.Session == session })
}

func sortHolders(hs []Holder) []Holder {
	slices.SortFunc(hs, func(a, b Holder) int { return strings.Compare(a.Session, b.Session) })
	return hs
}

// MarkReleasing implements Claims.
func (m *MemoryClaims) MarkReleasing(ctx context.Context, functionARN, session string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.claims[functionARN]
	switch {
	case !ok:
		return fmt.Errorf("mark %s as being released by session %s: no claim: %w", functionARN, session, store.ErrNotFound)
	case cur.snap.Shared:
		return m.held(cur, slices.Clone(cur.snap.Holders)) // as the DynamoDB store answers: the holders as stored
	case cur.snap.Session != session:
		return m.held(cur, nil)
	}
	cur.snap.Releasing = true
	m.claims[functionARN] = cur
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
	if !ok || (!cur.snap.Shared && cur.snap.Session != session) {
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

// StackSnapshots implements Claims.
func (m *MemoryClaims) StackSnapshots(ctx context.Context, arns []string) ([]Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Snapshot
	seen := map[string]bool{}
	for _, a := range arns {
		if c, ok := m.claims[a]; ok && !seen[a] {
			seen[a] = true
			out = append(out, copySnapshot(c.snap))
		}
	}
	return out, nil
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
		switch {
		case c.snap.Shared && holdsSession(c.snap.Holders, session):
			snap := copySnapshot(c.snap)
			snap.Session = session
			out = append(out, snap)
		case !c.snap.Shared && c.snap.Session == session:
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
	cur, ok := m.claims[functionARN]
	switch {
	case !ok:
	case cur.snap.Shared && holdsSession(cur.snap.Holders, session):
		cur.snap.Holders = slices.DeleteFunc(slices.Clone(cur.snap.Holders), func(h Holder) bool { return h.Session == session })
		if len(cur.snap.Holders) == 0 {
			delete(m.claims, functionARN)
		} else {
			m.claims[functionARN] = cur
		}
	case !cur.snap.Shared && cur.snap.Session == session:
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
	s.Holders = slices.Clone(s.Holders)
	return s
}

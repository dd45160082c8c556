package instrument_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/instrument"
)

// signalHandler is a slog handler that closes ch at the first record whose message starts with prefix: how a
// test sees that Instrument has waited for a function being put back and started again.
type signalHandler struct {
	prefix string
	once   *sync.Once
	ch     chan struct{}
}

func newSignal(prefix string) signalHandler {
	return signalHandler{prefix: prefix, once: &sync.Once{}, ch: make(chan struct{})}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}

func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// retried is the message Instrument logs each time it starts again after waiting for a release.
const retried = "attaching again after waiting for functions being put back"

// awaitSignal waits for the record h looks for; the bound only keeps a broken test from hanging.
func awaitSignal(t *testing.T, h signalHandler) {
	t.Helper()
	select {
	case <-h.ch:
	case <-time.After(2 * time.Minute):
		t.Fatalf("Instrument never logged %q after meeting the function being put back", h.prefix)
	}
}

type attachResult struct {
	att *instrument.Attachment
	err error
}

// lastOneOutLeaves attaches a selectively to tg and takes it out through the claim store alone, as the first
// step of its detach: the claim is then a's, marked as being released, and the function still instrumented,
// as it is while a's plldb puts it back.
func lastOneOutLeaves(t *testing.T, in *instrument.Instrumenter, cs claimStore, tg instrument.Target, a dev) {
	t.Helper()
	join(t, in, tg, a)
	_, last, err := cs.claims.Leave(context.Background(), instrument.Snapshot{FunctionARN: tg.ARN}, a.s.ID)
	require.NoError(t, err)
	require.True(t, last)
	snap, _, err := cs.claims.GetSnapshot(context.Background(), tg.ARN)
	require.NoError(t, err)
	require.True(t, snap.Releasing)
}

// TestSelectiveAttachWaitsForTheLastOneOutToPutTheFunctionBack: bob attaches selectively while alice, the last
// selective session on a function, is putting it back. Bob's attach waits, neither returning nor refused, until
// alice's restore is done, then attaches afresh: a new snapshot equal to the original configuration, and only
// bob's entries on the function. A second function, free all along, is attached with it.
func TestSelectiveAttachWaitsForTheLastOneOutToPutTheFunctionBack(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "rejoin", env: map[string]string{"TABLE": "orders"}, layers: []string{e.userLayer("deps")}, timeout: 7})
		free := e.create(fn{what: "free", env: map[string]string{"TABLE": "items"}})
		before, freeBefore := restorable(t, e.raw(tg.Name)), restorable(t, e.raw(free.Name))
		in := e.sharedInstrumenter(cs.claims)
		a, b := newDev(t, cs, "s-a", "alice@host"), newDev(t, cs, "s-b", "bob@host")
		lastOneOutLeaves(t, in, cs, tg, a)
		instrumented := restorable(t, e.raw(tg.Name))

		sig := newSignal(retried)
		in.Logger = slog.New(sig)
		in.ReleaseWait = time.Hour // alice's restore is never too slow for this test
		done := make(chan attachResult, 1)
		go func() {
			freeB := free
			freeB.Key = []byte("function-key-of-s-b-for-free-0123456789")
			att, err := in.Instrument(ctx, b.s, []instrument.Target{b.target(tg), freeB})
			done <- attachResult{att, err}
		}()
		awaitSignal(t, sig)
		select {
		case r := <-done:
			t.Fatalf("bob's attach returned while alice was putting the function back: %v", r.err)
		default:
		}
		held, err := cs.claims.SessionSnapshots(ctx, b.s.ID)
		require.NoError(t, err)
		assert.Empty(t, held, "a waiting attach holds nothing")
		assert.Equal(t, instrumented, restorable(t, e.raw(tg.Name)), "the waiting attach changed nothing")
		assert.Equal(t, freeBefore, restorable(t, e.raw(free.Name)))

		results, err := in.Restore(ctx, a.s.ID)
		require.NoError(t, err)
		assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))

		r := <-done
		require.NoError(t, r.err)
		assert.Len(t, r.att.Functions, 2)
		snap, ok, err := cs.claims.GetSnapshot(ctx, tg.ARN)
		require.NoError(t, err)
		require.True(t, ok)
		assert.True(t, snap.Shared)
		assert.False(t, snap.Releasing)
		assert.Equal(t, []string{"s-b"}, holderIDs(snap.Holders))
		assert.Equal(t, before, restorable(t, snap.Config), "bob's snapshot is the original configuration")
		assert.Equal(t, map[string]string{"TABLE": "orders"}, snap.Environment)
		assert.EqualValues(t, 7, snap.Timeout)
		assert.Len(t, snap.Layers, 1, "the user's layer only")
		assertEntries(t, vars(e.config(tg.Name)), b)

		results, err = in.Restore(ctx, b.s.ID)
		require.NoError(t, err)
		assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored, free.Name: instrument.Restored}, outcomes(results))
		assert.Equal(t, before, restorable(t, e.raw(tg.Name)), "back byte for byte")
		assert.Equal(t, freeBefore, restorable(t, e.raw(free.Name)))
	})
}

// TestExclusiveAttachWaitsForTheLastOneOutToo: a plain attach meeting the same moment waits as well (the function
// is about to be free) and then takes it exclusively from a fresh snapshot.
func TestExclusiveAttachWaitsForTheLastOneOutToo(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "rejoinx", env: map[string]string{"TABLE": "orders"}})
		before := restorable(t, e.raw(tg.Name))
		in := e.sharedInstrumenter(cs.claims)
		a := newDev(t, cs, "s-a", "alice@host")
		lastOneOutLeaves(t, in, cs, tg, a)
		x := session("s-excl")
		cs.start(t, x.ID, x.Owner)

		sig := newSignal(retried)
		in.Logger = slog.New(sig)
		in.ReleaseWait = time.Hour
		done := make(chan attachResult, 1)
		go func() {
			att, err := in.Instrument(ctx, x, []instrument.Target{tg})
			done <- attachResult{att, err}
		}()
		awaitSignal(t, sig)
		select {
		case r := <-done:
			t.Fatalf("the plain attach returned while alice was putting the function back: %v", r.err)
		default:
		}
		_, err := in.Restore(ctx, a.s.ID)
		require.NoError(t, err)

		r := <-done
		require.NoError(t, r.err)
		snap, _, err := cs.claims.GetSnapshot(ctx, tg.ARN)
		require.NoError(t, err)
		assert.False(t, snap.Shared)
		assert.Equal(t, x.ID, snap.Session)
		assert.Equal(t, before, restorable(t, snap.Config))
		v := vars(e.config(tg.Name))
		assert.Equal(t, x.ID, v["PLLDB_SESSION"])
		assert.NotContains(t, v, "PLLDB_SESSIONS")
		_, err = in.Restore(ctx, x.ID)
		require.NoError(t, err)
		assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
	})
}

// TestAttachRefusedWhenTheFunctionIsStillBeingPutBackAtTheBound: if the last one out has not put the function
// back within ReleaseWait, the attach is refused as before, saying who is putting it back and how long plldb
// waited, and holds nothing; once the function is back, attaching again works.
func TestAttachRefusedWhenTheFunctionIsStillBeingPutBackAtTheBound(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "bound", env: map[string]string{"TABLE": "orders"}})
		in := e.sharedInstrumenter(cs.claims)
		a, b := newDev(t, cs, "s-a", "alice@host"), newDev(t, cs, "s-b", "bob@host")
		lastOneOutLeaves(t, in, cs, tg, a)
		refusedAtTheBound(t, e, in, cs, tg, b, "s-a", "alice@host")

		_, err := in.Restore(ctx, a.s.ID)
		require.NoError(t, err)
		_, err = in.Instrument(ctx, b.s, []instrument.Target{b.target(tg)})
		require.NoError(t, err)
		assertEntries(t, vars(e.config(tg.Name)), b)
	})
}

// TestAttachWaitingForAReleaseStopsWithItsContext: cancelling the attach while it waits for a release ends it
// with the context's error, holding nothing.
func TestAttachWaitingForAReleaseStopsWithItsContext(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		tg := e.create(fn{what: "cancel", env: map[string]string{"TABLE": "orders"}})
		in := e.sharedInstrumenter(cs.claims)
		a, b := newDev(t, cs, "s-a", "alice@host"), newDev(t, cs, "s-b", "bob@host")
		lastOneOutLeaves(t, in, cs, tg, a)

		// The first pause is as long as the bound, so that the cancel lands in it: the waiting message is logged
		// just before it.
		sig := newSignal("waiting for detaching sessions")
		in.Logger = slog.New(sig)
		in.ReleaseWait, in.PollInterval = time.Hour, time.Hour
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan attachResult, 1)
		go func() {
			att, err := in.Instrument(ctx, b.s, []instrument.Target{b.target(tg)})
			done <- attachResult{att, err}
		}()
		awaitSignal(t, sig)
		cancel()
		r := <-done
		require.ErrorIs(t, r.err, context.Canceled)
		assert.Contains(t, r.err.Error(), "stopped waiting for "+tg.Name+" to be put back")
		held, err := cs.claims.SessionSnapshots(context.Background(), b.s.ID)
		require.NoError(t, err)
		assert.Empty(t, held)
		snap, _, err := cs.claims.GetSnapshot(context.Background(), tg.ARN)
		require.NoError(t, err)
		assert.Equal(t, a.s.ID, snap.Session, "alice's claim stands")
		assert.True(t, snap.Releasing)
	})
}

// joinHooks is a claim store that runs a hook once before, and once after, session's first Join of a function
// (by ARN): how a test puts other sessions' steps between an attach's claims.
type joinHooks struct {
	instrument.Claims
	session       string
	mu            sync.Mutex
	before, after map[string]func()
}

func (h *joinHooks) take(m map[string]func(), arn string) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := m[arn]
	delete(m, arn)
	if f == nil {
		f = func() {}
	}
	return f
}

func (h *joinHooks) Join(ctx context.Context, snap instrument.Snapshot, owner string) ([]instrument.Holder, error) {
	if snap.Session != h.session {
		return h.Claims.Join(ctx, snap, owner)
	}
	h.take(h.before, snap.FunctionARN)()
	hs, err := h.Claims.Join(ctx, snap, owner)
	h.take(h.after, snap.FunctionARN)()
	return hs, err
}

// TestRefusedAttachLastOnAFunctionPutsItBack: bob attaches orders, which carol shares, and items, which alice
// shares. Bob joins orders; carol then leaves it, only her entries going since bob still holds it; alice leaves
// items as its last one out before bob's claim on it, which is refused as being put back. Bob's attach, giving
// up what it claimed, is then the last one out of orders: it puts the snapshot back and releases the claim,
// rather than deleting the claim and leaving orders instrumented with nothing to restore it from (which made
// its next attempt refuse orders as carrying plldb's instrumentation with no snapshot).
func TestRefusedAttachLastOnAFunctionPutsItBack(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		orders := e.create(fn{what: "lastorders", env: map[string]string{"TABLE": "orders"}})
		items := e.create(fn{what: "lastitems", env: map[string]string{"TABLE": "items"}})
		before := restorable(t, e.raw(orders.Name))
		in := e.sharedInstrumenter(cs.claims)
		a, b, c := newDev(t, cs, "s-a", "alice@host"), newDev(t, cs, "s-b", "bob@host"), newDev(t, cs, "s-c", "carol@host")
		join(t, in, orders, c)
		join(t, in, items, a)

		carolLeft := make(chan struct{})
		hooks := &joinHooks{Claims: cs.claims, session: b.s.ID}
		hooks.after = map[string]func(){orders.ARN: func() {
			defer close(carolLeft)
			_, last, err := cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: orders.ARN}, c.s.ID)
			assert.NoError(t, err)
			assert.False(t, last, "bob holds orders too")
		}}
		hooks.before = map[string]func(){items.ARN: func() {
			select {
			case <-carolLeft:
			case <-time.After(time.Minute):
				t.Error("bob's claim on orders never came")
			}
			_, last, err := cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: items.ARN}, a.s.ID)
			assert.NoError(t, err)
			assert.True(t, last)
		}}
		in.Claims = hooks
		in.ReleaseWait = 50 * time.Millisecond
		itemsB := b.target(items)
		itemsB.Key = []byte("function-key-of-s-b-for-items-0123456789")
		_, err := in.Instrument(ctx, b.s, []instrument.Target{b.target(orders), itemsB})
		var refused *instrument.RefusedError
		require.ErrorAs(t, err, &refused)
		require.Len(t, refused.Refusals, 1, "%v", err)
		assert.Equal(t, items.Name, refused.Refusals[0].Function.Name)
		require.NotNil(t, refused.Refusals[0].Held)
		assert.True(t, refused.Refusals[0].Held.Releasing)

		_, ok, err := cs.claims.GetSnapshot(ctx, orders.ARN)
		require.NoError(t, err)
		assert.False(t, ok, "nobody holds orders")
		assert.Equal(t, before, restorable(t, e.raw(orders.Name)), "and it is put back")
		held, err := cs.claims.SessionSnapshots(ctx, b.s.ID)
		require.NoError(t, err)
		assert.Empty(t, held)
	})
}

// refusedAtTheBound attaches b to tg, which session holder (owner) marked as being put back and is not
// finishing, with a ReleaseWait of 50 ms: the refusal says the function is being put back, by whom and how
// long plldb waited, b holds nothing and the function is as it was.
func refusedAtTheBound(t *testing.T, e *env, in *instrument.Instrumenter, cs claimStore, tg instrument.Target, b dev, holder, owner string) {
	t.Helper()
	ctx := context.Background()
	instrumented := restorable(t, e.raw(tg.Name))
	in.ReleaseWait = 50 * time.Millisecond
	_, err := in.Instrument(ctx, b.s, []instrument.Target{b.target(tg)})
	var refused *instrument.RefusedError
	require.ErrorAs(t, err, &refused)
	require.Len(t, refused.Refusals, 1)
	require.NotNil(t, refused.Refusals[0].Held)
	assert.True(t, refused.Refusals[0].Held.Releasing)
	assert.Equal(t, holder, refused.Refusals[0].Held.Session)
	assert.Contains(t, err.Error(), "is being put back by session "+holder+" (owner "+owner+"), which is detaching from it")
	assert.Contains(t, err.Error(), "plldb waited 50ms for it to finish")
	assert.NotContains(t, err.Error(), "without --selective")
	held, err := cs.claims.SessionSnapshots(ctx, b.s.ID)
	require.NoError(t, err)
	assert.Empty(t, held)
	assert.Equal(t, instrumented, restorable(t, e.raw(tg.Name)), "the refused attach changed nothing")
}

package instrument_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/store"
)

// plainDetachStopsAfterMarking attaches the plain session x to tg and runs its detach until it is about to
// update the function, where the detach stops as a plldb killed at that moment would: the claim is x's,
// marked as being released by x's detach, and the function still instrumented.
func plainDetachStopsAfterMarking(t *testing.T, in *instrument.Instrumenter, cs claimStore, tg instrument.Target, x instrument.Session) {
	t.Helper()
	cs.start(t, x.ID, x.Owner)
	_, err := in.Instrument(context.Background(), x, []instrument.Target{tg})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	setBeforeUpdate(in, cancel)
	results, err := in.Restore(ctx, x.ID)
	require.NoError(t, err)
	require.Len(t, results, 1)
	require.Equal(t, instrument.Failed, results[0].Outcome, results[0].Message)
	snap, ok, err := cs.claims.GetSnapshot(context.Background(), tg.ARN)
	require.NoError(t, err)
	require.True(t, ok, "a stopped detach keeps the claim")
	require.Equal(t, x.ID, snap.Session)
	require.True(t, snap.Releasing, "the detach marked the claim before it started putting the function back")
}

// setBeforeUpdate runs hook once, before the next update the instrumenter's Lambda (revisions) sends.
func setBeforeUpdate(in *instrument.Instrumenter, hook func()) {
	rev := in.Lambda.(*revisions)
	rev.mu.Lock()
	defer rev.mu.Unlock()
	rev.beforeUpdate = hook
}

// TestAttachWaitsForAPlainDetachToPutTheFunctionBack: a developer attaches while a colleague's plain session is
// detaching from the function (its restore is about to update it). The attach waits, holding nothing and
// changing nothing, until the detach has put the function back and released the claim, then attaches from a
// fresh snapshot equal to the original configuration, with only its own entries. Both a plain and a selective
// attach wait.
func TestAttachWaitsForAPlainDetachToPutTheFunctionBack(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		for _, selective := range []bool{false, true} {
			what := map[bool]string{false: "plainwait", true: "selwait"}[selective]
			tg := e.create(fn{what: what, env: map[string]string{"TABLE": "orders"}, layers: []string{e.userLayer("deps")}, timeout: 7})
			before := restorable(t, e.raw(tg.Name))
			in := e.sharedInstrumenter(cs.claims)
			x := session("s-x-" + what)
			x.Owner = "carol@host"
			cs.start(t, x.ID, x.Owner)
			_, err := in.Instrument(ctx, x, []instrument.Target{tg})
			require.NoError(t, err)
			instrumented := restorable(t, e.raw(tg.Name))

			b := newDev(t, cs, "s-b-"+what, "bob@host")
			bs, btg := b.s, b.target(tg)
			if !selective {
				bs = session("s-b-" + what)
				bs.Owner = "bob@host"
				btg = tg
			}
			// Bob's plldb is another process: its own instrumenter, on the same Lambda.
			bob := *in
			sig := newSignal(retried)
			bob.Logger = slog.New(sig)
			bob.ReleaseWait = time.Hour // carol's restore is never too slow for this test
			done := make(chan attachResult, 1)
			waited := false
			setBeforeUpdate(in, func() {
				go func() {
					att, err := bob.Instrument(ctx, bs, []instrument.Target{btg})
					done <- attachResult{att, err}
				}()
				select {
				case <-sig.ch:
					waited = true
				case r := <-done:
					t.Errorf("bob's attach returned while carol's detach was putting the function back: %v", r.err)
					done <- r
					return
				case <-time.After(2 * time.Minute):
					t.Error("bob's attach neither waited nor returned")
					return
				}
				held, err := cs.claims.SessionSnapshots(ctx, bs.ID)
				assert.NoError(t, err)
				assert.Empty(t, held, "a waiting attach holds nothing")
				snap, _, err := cs.claims.GetSnapshot(ctx, tg.ARN)
				assert.NoError(t, err)
				assert.Equal(t, x.ID, snap.Session)
				assert.True(t, snap.Releasing)
				assert.Equal(t, instrumented, restorable(t, e.raw(tg.Name)), "the waiting attach changed nothing")
			})
			results, err := in.Restore(ctx, x.ID)
			require.NoError(t, err)
			assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
			require.True(t, waited, "bob's attach met carol's detach")

			r := <-done
			require.NoError(t, r.err)
			require.Len(t, r.att.Functions, 1)
			snap, ok, err := cs.claims.GetSnapshot(ctx, tg.ARN)
			require.NoError(t, err)
			require.True(t, ok)
			assert.False(t, snap.Releasing)
			assert.Equal(t, before, restorable(t, snap.Config), "bob's snapshot is the original configuration")
			assert.Equal(t, map[string]string{"TABLE": "orders"}, snap.Environment)
			assert.EqualValues(t, 7, snap.Timeout)
			assert.Len(t, snap.Layers, 1, "the user's layer only")
			v := vars(e.config(tg.Name))
			if selective {
				assert.True(t, snap.Shared)
				assert.Equal(t, []string{bs.ID}, holderIDs(snap.Holders))
				assertEntries(t, v, b)
			} else {
				assert.False(t, snap.Shared)
				assert.Equal(t, bs.ID, snap.Session)
				assert.Equal(t, bs.ID, v["PLLDB_SESSION"])
				assert.NotContains(t, v, "PLLDB_SESSIONS")
			}
			assert.NotContains(t, v[selectiveSessionsVar], x.ID, "nothing of carol's")

			results, err = in.Restore(ctx, bs.ID)
			require.NoError(t, err)
			assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
			assert.Equal(t, before, restorable(t, e.raw(tg.Name)), "back byte for byte")
		}
	})
}

const selectiveSessionsVar = "PLLDB_SESSIONS"

// TestAttachMeetingAStoppedPlainDetachIsRefusedAtTheBound: a plain detach that stopped after marking its claim
// (its session still live) keeps an attach waiting ReleaseWait at most; the refusal names the session putting
// the function back and how long plldb waited, and holds nothing. Once the session detaches again, the attach
// works.
func TestAttachMeetingAStoppedPlainDetachIsRefusedAtTheBound(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "plainbound", env: map[string]string{"TABLE": "orders"}})
		before := restorable(t, e.raw(tg.Name))
		in := e.sharedInstrumenter(cs.claims)
		x := session("s-x")
		x.Owner = "carol@host"
		plainDetachStopsAfterMarking(t, in, cs, tg, x)
		b := newDev(t, cs, "s-b", "bob@host")
		refusedAtTheBound(t, e, in, cs, tg, b, "s-x", "carol@host")

		results, err := in.Restore(ctx, x.ID)
		require.NoError(t, err)
		assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results), "detaching again finishes")
		assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
		_, err = in.Instrument(ctx, b.s, []instrument.Target{b.target(tg)})
		require.NoError(t, err)
		assertEntries(t, vars(e.config(tg.Name)), b)
	})
}

// TestAttachWaitingForAPlainDetachStopsWithItsContext: cancelling an attach that waits for a plain detach ends
// it with the context's error, holding nothing, and the detaching session's marked claim stands.
func TestAttachWaitingForAPlainDetachStopsWithItsContext(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		tg := e.create(fn{what: "plaincancel", env: map[string]string{"TABLE": "orders"}})
		in := e.sharedInstrumenter(cs.claims)
		x := session("s-x")
		plainDetachStopsAfterMarking(t, in, cs, tg, x)
		y := session("s-y")
		cs.start(t, y.ID, y.Owner)

		sig := newSignal("waiting for detaching sessions")
		in.Logger = slog.New(sig)
		in.ReleaseWait, in.PollInterval = time.Hour, time.Hour
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan attachResult, 1)
		go func() {
			att, err := in.Instrument(ctx, y, []instrument.Target{tg})
			done <- attachResult{att, err}
		}()
		awaitSignal(t, sig)
		cancel()
		r := <-done
		require.ErrorIs(t, r.err, context.Canceled)
		assert.Contains(t, r.err.Error(), "stopped waiting for "+tg.Name+" to be put back")
		held, err := cs.claims.SessionSnapshots(context.Background(), y.ID)
		require.NoError(t, err)
		assert.Empty(t, held)
		snap, _, err := cs.claims.GetSnapshot(context.Background(), tg.ARN)
		require.NoError(t, err)
		assert.Equal(t, x.ID, snap.Session, "the detaching session's claim stands")
		assert.True(t, snap.Releasing)
	})
}

// TestAPlainDetachThatDiedAfterMarkingIsTakenOver: the plain session's plldb dies after marking its claim,
// before it puts the function back, and its session ends. The next attach takes the claim over as it does
// the last selective session out's: it puts the ended session's snapshot back first, then attaches from the
// restored configuration with only its own entries.
func TestAPlainDetachThatDiedAfterMarkingIsTakenOver(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "plaindied", env: map[string]string{"TABLE": "orders"}, timeout: 7})
		before := restorable(t, e.raw(tg.Name))
		in := e.sharedInstrumenter(cs.claims)
		x := session("s-x")
		plainDetachStopsAfterMarking(t, in, cs, tg, x)
		cs.end(t, x.ID)

		b := newDev(t, cs, "s-b", "bob@host")
		att, err := in.Instrument(ctx, b.s, []instrument.Target{b.target(tg)})
		require.NoError(t, err)
		assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(att.Recovered), "the ended session's snapshot went back first")
		snap, ok, err := cs.claims.GetSnapshot(ctx, tg.ARN)
		require.NoError(t, err)
		require.True(t, ok)
		assert.True(t, snap.Shared)
		assert.False(t, snap.Releasing)
		assert.Equal(t, []string{"s-b"}, holderIDs(snap.Holders))
		assert.Equal(t, before, restorable(t, snap.Config), "a fresh snapshot of the restored configuration")
		assertEntries(t, vars(e.config(tg.Name)), b)

		results, err := in.Restore(ctx, b.s.ID)
		require.NoError(t, err)
		assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
		assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
	})
}

// TestAPlainDetachThatConflictsKeepsOthersWaitingOnlyBoundedly: someone changed the function in a way plldb
// cannot undo, so the plain detach stops on a conflict and keeps its claim, still marked, as the last selective
// session out's does. An attach meanwhile waits ReleaseWait at most and is refused; once the session has ended
// (as plldb ends it after its detach), the next attach takes the claim over at once and is refused for the
// conflict itself, naming the ended session, rather than waiting on a mark nobody will clear.
func TestAPlainDetachThatConflictsKeepsOthersWaitingOnlyBoundedly(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "plainconflict", env: map[string]string{"A": "1"}})
		in := e.sharedInstrumenter(cs.claims)
		x := session("s-x")
		cs.start(t, x.ID, x.Owner)
		_, err := in.Instrument(ctx, x, []instrument.Target{tg})
		require.NoError(t, err)
		theirs := vars(e.config(tg.Name))
		theirs["AWS_LAMBDA_EXEC_WRAPPER"] = "/opt/their-wrapper"
		// Through the revisions wrapper, so that the function's RevisionId moves as in Lambda.
		_, err = in.Lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(tg.Name), Environment: &types.Environment{Variables: theirs},
		})
		require.NoError(t, err)
		tangled := restorable(t, e.raw(tg.Name))

		results, err := in.Restore(ctx, x.ID)
		require.NoError(t, err)
		require.Len(t, results, 1)
		assert.Equal(t, instrument.Conflict, results[0].Outcome, results[0].Message)
		snap, ok, err := cs.claims.GetSnapshot(ctx, tg.ARN)
		require.NoError(t, err)
		require.True(t, ok, "the claim stays for a later detach")
		assert.True(t, snap.Releasing, "marked, as the last selective session out's claim stays after a conflict")

		y := session("s-y")
		cs.start(t, y.ID, y.Owner)
		in.ReleaseWait = 50 * time.Millisecond
		_, err = in.Instrument(ctx, y, []instrument.Target{tg})
		var refused *instrument.RefusedError
		require.ErrorAs(t, err, &refused)
		require.Len(t, refused.Refusals, 1)
		require.NotNil(t, refused.Refusals[0].Held)
		assert.True(t, refused.Refusals[0].Held.Releasing)
		assert.Contains(t, err.Error(), "plldb waited 50ms for it to finish, and if that session's restore stopped (on a conflict or a failure)")

		cs.end(t, x.ID)
		in.ReleaseWait = time.Hour // the mark of an ended session keeps nobody waiting
		_, err = in.Instrument(ctx, y, []instrument.Target{tg})
		require.ErrorAs(t, err, &refused)
		require.Len(t, refused.Refusals, 1)
		assert.Nil(t, refused.Refusals[0].Held)
		assert.Contains(t, refused.Refusals[0].Reason, "ended session s-x left it instrumented and someone else changed it since")
		assert.Equal(t, tangled, restorable(t, e.raw(tg.Name)), "their change stands")
		snap, _, err = cs.claims.GetSnapshot(ctx, tg.ARN)
		require.NoError(t, err)
		assert.Equal(t, y.ID, snap.Session, "taken over, to keep the snapshot")
		assert.False(t, snap.Releasing, "a takeover's restore is no detach: nobody waits on it")
	})
}

// interleavedClaims is a claim store through which one plldb process runs, with hooks that let another
// process act at a chosen moment of its detach.
type interleavedClaims struct {
	instrument.Claims
	afterSessionSnapshots func()          // once, after the detach listed its claims
	afterMarkReleasing    func(err error) // once, after the detach tried to mark a claim
	markFails             error           // when set, MarkReleasing fails so, as a store that cannot be written
}

func (c *interleavedClaims) SessionSnapshots(ctx context.Context, session string) ([]instrument.Snapshot, error) {
	snaps, err := c.Claims.SessionSnapshots(ctx, session)
	if hook := c.afterSessionSnapshots; hook != nil {
		c.afterSessionSnapshots = nil
		hook()
	}
	return snaps, err
}

func (c *interleavedClaims) MarkReleasing(ctx context.Context, functionARN, session string) error {
	if c.markFails != nil {
		return c.markFails
	}
	err := c.Claims.MarkReleasing(ctx, functionARN, session)
	if hook := c.afterMarkReleasing; hook != nil {
		c.afterMarkReleasing = nil
		hook(err)
	}
	return err
}

// TestADetachFindingItsClaimGoneLeavesTheFunctionAlone: two detaches of one plain session run alongside (its
// own Ctrl-C and the relay's expiry restore). The first puts the function back and releases the claim; by the
// time the second goes to mark the claim there is none, and a colleague attaches at once. The second detach
// must not "put back" its stale snapshot over the colleague's instrumentation: no claim left means the
// function was put back already.
func TestADetachFindingItsClaimGoneLeavesTheFunctionAlone(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "claimgone", env: map[string]string{"TABLE": "orders"}})
		before := restorable(t, e.raw(tg.Name))
		in := e.instrumenter(cs.claims)
		x := session("s-x")
		x.Owner = "carol@host"
		cs.start(t, x.ID, x.Owner)
		_, err := in.Instrument(ctx, x, []instrument.Target{tg})
		require.NoError(t, err)

		b := session("s-b")
		b.Owner = "bob@host"
		cs.start(t, b.ID, b.Owner)
		hooked := &interleavedClaims{Claims: cs.claims}
		hooked.afterSessionSnapshots = func() {
			results, err := in.Restore(ctx, x.ID)
			require.NoError(t, err)
			require.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
			require.Equal(t, before, restorable(t, e.raw(tg.Name)))
		}
		hooked.afterMarkReleasing = func(err error) {
			require.ErrorIs(t, err, store.ErrNotFound, "the first detach released the claim")
			_, err = in.Instrument(ctx, b, []instrument.Target{tg})
			require.NoError(t, err)
		}
		second := e.instrumenter(hooked)
		results, err := second.Restore(ctx, x.ID)
		require.NoError(t, err)
		require.Len(t, results, 1)
		assert.Equal(t, instrument.Restored, results[0].Outcome, results[0].Message)
		assert.Contains(t, results[0].Message, "already put back")

		assert.Equal(t, b.ID, vars(e.config(tg.Name))["PLLDB_SESSION"], "bob's instrumentation stands")
		snap, ok, err := cs.claims.GetSnapshot(ctx, tg.ARN)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, b.ID, snap.Session)
		results, err = in.Restore(ctx, b.ID)
		require.NoError(t, err)
		assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
		assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
	})
}

// TestADetachWhoseMarkFailsStillPutsTheFunctionBack: the releasing mark only spares an attach a refusal; when
// the store cannot write it (throttled past the SDK's retries, say), the detach still puts the function back
// and releases the claim, as before the mark existed, rather than leaving the function instrumented.
func TestADetachWhoseMarkFailsStillPutsTheFunctionBack(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "markfails", env: map[string]string{"TABLE": "orders"}})
		before := restorable(t, e.raw(tg.Name))
		x := session("s-x")
		cs.start(t, x.ID, x.Owner)
		hooked := &interleavedClaims{Claims: cs.claims}
		in := e.instrumenter(hooked)
		_, err := in.Instrument(ctx, x, []instrument.Target{tg})
		require.NoError(t, err)

		hooked.markFails = errors.New("ProvisionedThroughputExceededException: rate of requests exceeds the allowed throughput")
		results, err := in.Restore(ctx, x.ID)
		require.NoError(t, err)
		require.Len(t, results, 1)
		assert.Equal(t, instrument.Restored, results[0].Outcome, results[0].Message)
		assert.Equal(t, before, restorable(t, e.raw(tg.Name)), "back byte for byte")
		_, ok, err := cs.claims.GetSnapshot(ctx, tg.ARN)
		require.NoError(t, err)
		assert.False(t, ok, "the claim is released")
	})
}

package instrument_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/testfixtures/awsharness"
)

// TestStoreIsTheInstrumentersClaimStore: the DynamoDB store, used as instrument.Claims, answers with the
// instrumenter's types and errors, which is what its refusal messages and rollbacks rely on.
func TestStoreIsTheInstrumentersClaimStore(t *testing.T) {
	h := awsharness.New(t, awsharness.Options{})
	ctx := context.Background()
	for _, id := range []string{"s-alice", "s-bob"} {
		require.NoError(t, h.Store.PutSession(ctx, relay.NewSession(id, id+"@host", time.Now().Add(time.Hour))))
	}
	var c instrument.Claims = h.Store
	arn := "arn:aws:lambda:us-east-1:123456789012:function:orders"
	snap := instrument.Snapshot{
		FunctionARN: arn, FunctionName: "orders", Session: "s-alice", Config: []byte(`{"Timeout":3}`),
		Environment: map[string]string{"A": "1"}, HasEnvironment: true, Layers: []string{}, Timeout: 3,
		TakenAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	require.NoError(t, c.Claim(ctx, snap, "alice@host"))

	err := c.Claim(ctx, instrument.Snapshot{FunctionARN: arn, Session: "s-bob"}, "bob@host")
	var held *instrument.HeldError
	require.ErrorAs(t, err, &held)
	assert.Equal(t, instrument.HeldError{Session: "s-alice", Owner: "alice@host", Function: "orders"}, *held)

	err = c.SetRevisionAfter(ctx, arn, "s-bob", "r2")
	require.ErrorAs(t, err, &held, "only the holder records its revision")
	require.NoError(t, c.SetRevisionAfter(ctx, arn, "s-alice", "r1"))
	got, ok, err := c.GetSnapshot(ctx, arn)
	require.NoError(t, err)
	require.True(t, ok)
	snap.RevisionAfter = "r1"
	assert.Equal(t, snap.Environment, got.Environment)
	assert.Equal(t, snap.Config, got.Config)
	assert.Equal(t, "r1", got.RevisionAfter)
	list, err := c.SessionSnapshots(ctx, "s-alice")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, arn, list[0].FunctionARN)

	require.NoError(t, c.Release(ctx, arn, "s-alice"))
	_, ok, err = c.GetSnapshot(ctx, arn)
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestSharedClaimsConformance is what both claim stores do with shared (selective) claims.
func TestSharedClaimsConformance(t *testing.T) {
	arn := "arn:aws:lambda:us-east-1:123456789012:function:orders"
	snap := func(session string, shared bool) instrument.Snapshot {
		return instrument.Snapshot{
			FunctionARN: arn, FunctionName: "orders", Session: session, Config: []byte(`{"Timeout":3}`),
			Environment: map[string]string{"A": session}, HasEnvironment: true, Layers: []string{}, Timeout: 3, Shared: shared,
		}
	}
	cases := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, cs claimStore)
	}{
		{"selective sessions share one snapshot, the first", func(t *testing.T, ctx context.Context, cs claimStore) {
			for _, id := range []string{"s-1", "s-2", "s-3"} {
				cs.start(t, id, id+"@host")
				require.NoError(t, cs.claims.Claim(ctx, snap(id, true), id+"@host"))
			}
			require.NoError(t, cs.claims.Claim(ctx, snap("s-2", true), "s-2@host"), "a retried claim")
			got, ok, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			require.True(t, ok)
			assert.True(t, got.Shared)
			assert.Equal(t, "", got.Session)
			assert.Equal(t, map[string]string{"A": "s-1"}, got.Environment, "the first session's snapshot")
			assert.Equal(t, []instrument.Holder{{Session: "s-1", Owner: "s-1@host"}, {Session: "s-2", Owner: "s-2@host"}, {Session: "s-3", Owner: "s-3@host"}}, got.Holders)
			for _, id := range []string{"s-1", "s-3"} {
				list, err := cs.claims.SessionSnapshots(ctx, id)
				require.NoError(t, err)
				require.Len(t, list, 1)
				assert.Equal(t, id, list[0].Session, "listed for the session asked about")
				assert.True(t, list[0].Shared)
			}
			require.NoError(t, cs.claims.SetRevisionAfter(ctx, arn, "s-2", "r-2"))
			got, _, err = cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.Equal(t, "r-2", got.RevisionAfter)
		}},
		{"an exclusive claim is refused naming every live holder", func(t *testing.T, ctx context.Context, cs claimStore) {
			for _, id := range []string{"s-1", "s-2"} {
				cs.start(t, id, map[string]string{"s-1": "alice", "s-2": "bob"}[id])
				require.NoError(t, cs.claims.Claim(ctx, snap(id, true), map[string]string{"s-1": "alice", "s-2": "bob"}[id]))
			}
			cs.start(t, "s-x", "carol")
			err := cs.claims.Claim(ctx, snap("s-x", false), "carol")
			var held *instrument.HeldError
			require.ErrorAs(t, err, &held)
			assert.Equal(t, "function orders is held by selective sessions s-1 (alice), s-2 (bob): detach them or attach with --selective", err.Error())
		}},
		{"a selective claim is refused by an exclusive holder", func(t *testing.T, ctx context.Context, cs claimStore) {
			cs.start(t, "s-x", "carol")
			require.NoError(t, cs.claims.Claim(ctx, snap("s-x", false), "carol"))
			cs.start(t, "s-1", "alice")
			err := cs.claims.Claim(ctx, snap("s-1", true), "alice")
			var held *instrument.HeldError
			require.ErrorAs(t, err, &held)
			assert.Equal(t, instrument.HeldError{Session: "s-x", Owner: "carol", Function: "orders"}, *held)
		}},
		{"holders whose sessions ended are pruned when met", func(t *testing.T, ctx context.Context, cs claimStore) {
			for _, id := range []string{"s-1", "s-2"} {
				cs.start(t, id, id)
				require.NoError(t, cs.claims.Claim(ctx, snap(id, true), id))
			}
			cs.end(t, "s-1")
			cs.start(t, "s-3", "s-3")
			require.NoError(t, cs.claims.Claim(ctx, snap("s-3", true), "s-3"))
			got, _, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.Equal(t, []string{"s-2", "s-3"}, holderIDs(got.Holders))
			assert.Equal(t, map[string]string{"A": "s-1"}, got.Environment, "the snapshot stays the first one")
			list, err := cs.claims.SessionSnapshots(ctx, "s-1")
			require.NoError(t, err)
			assert.Empty(t, list, "a pruned session holds nothing")

			cs.end(t, "s-2")
			cs.end(t, "s-3")
			cs.start(t, "s-x", "carol")
			require.NoError(t, cs.claims.Claim(ctx, snap("s-x", false), "carol"), "every holder ended: an exclusive claim takes over")
			got, _, err = cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.False(t, got.Shared)
			assert.Equal(t, "s-x", got.Session)
			assert.Nil(t, got.Holders)
		}},
		{"leave: the others remain, then the last one takes the claim", func(t *testing.T, ctx context.Context, cs claimStore) {
			for _, id := range []string{"s-1", "s-2", "s-3"} {
				cs.start(t, id, id+"@host")
				require.NoError(t, cs.claims.Claim(ctx, snap(id, true), id+"@host"))
			}
			left, last, err := cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, "s-2")
			require.NoError(t, err)
			assert.False(t, last)
			assert.Equal(t, []string{"s-1", "s-3"}, holderIDs(left.Holders))
			list, err := cs.claims.SessionSnapshots(ctx, "s-2")
			require.NoError(t, err)
			assert.Empty(t, list)

			cs.end(t, "s-3") // not live: does not count as a remaining holder
			got, last, err := cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, "s-1")
			require.NoError(t, err)
			assert.True(t, last)
			assert.False(t, got.Shared)
			assert.Equal(t, "s-1", got.Session)
			assert.Equal(t, map[string]string{"A": "s-1"}, got.Environment)
			_, last, err = cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, "s-1")
			require.NoError(t, err)
			assert.True(t, last, "leaving again is the same answer")

			cs.start(t, "s-4", "dave")
			err = cs.claims.Claim(ctx, snap("s-4", true), "dave")
			var held *instrument.HeldError
			require.ErrorAs(t, err, &held, "nobody joins while the last one out restores")
			assert.Equal(t, "s-1", held.Session)
			assert.True(t, held.Releasing)

			list, err = cs.claims.SessionSnapshots(ctx, "s-1")
			require.NoError(t, err)
			require.Len(t, list, 1)
			require.NoError(t, cs.claims.Release(ctx, arn, "s-1"))
			_, ok, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.False(t, ok)
			_, _, err = cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, "s-1")
			assert.ErrorIs(t, err, relay.ErrNotFound)
		}},
		{"the last one out's claim is marked releasing until it is released", func(t *testing.T, ctx context.Context, cs claimStore) {
			for _, id := range []string{"s-1", "s-2"} {
				cs.start(t, id, map[string]string{"s-1": "alice", "s-2": "bob"}[id])
				require.NoError(t, cs.claims.Claim(ctx, snap(id, true), map[string]string{"s-1": "alice", "s-2": "bob"}[id]))
			}
			left, last, err := cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, "s-2")
			require.NoError(t, err)
			require.False(t, last)
			assert.False(t, left.Releasing, "others remain: nothing is being put back")
			got, _, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.False(t, got.Releasing)

			got, last, err = cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, "s-1")
			require.NoError(t, err)
			require.True(t, last)
			assert.True(t, got.Releasing)
			got, _, err = cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.True(t, got.Releasing, "stored with the claim")
			list, err := cs.claims.SessionSnapshots(ctx, "s-1")
			require.NoError(t, err)
			require.Len(t, list, 1)
			assert.True(t, list[0].Releasing)

			cs.start(t, "s-3", "carol")
			for _, shared := range []bool{true, false} {
				var held *instrument.HeldError
				require.ErrorAs(t, cs.claims.Claim(ctx, snap("s-3", shared), "carol"), &held, "shared %v", shared)
				assert.Equal(t, instrument.HeldError{Session: "s-1", Owner: "alice", Function: "orders", Releasing: true}, *held)
				assert.Equal(t, "function orders is being put back by session s-1 (owner alice), which is detaching from it", held.Error())
			}
			got, last, err = cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, "s-1")
			require.NoError(t, err)
			assert.True(t, last)
			assert.True(t, got.Releasing, "a repeated leave keeps the mark")
			got, _, err = cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.True(t, got.Releasing)

			require.NoError(t, cs.claims.Release(ctx, arn, "s-1"))
			require.NoError(t, cs.claims.Claim(ctx, snap("s-3", true), "carol"), "released: free to join")
			got, _, err = cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.False(t, got.Releasing, "the mark went with the claim")
			assert.Equal(t, map[string]string{"A": "s-3"}, got.Environment, "a fresh snapshot")
		}},
		{"an exclusive claim of one's own is not marked by Leave", func(t *testing.T, ctx context.Context, cs claimStore) {
			cs.start(t, "s-x", "carol")
			require.NoError(t, cs.claims.Claim(ctx, snap("s-x", false), "carol"))
			got, last, err := cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, "s-x")
			require.NoError(t, err)
			assert.True(t, last)
			assert.False(t, got.Releasing)
			cs.start(t, "s-1", "alice")
			var held *instrument.HeldError
			require.ErrorAs(t, cs.claims.Claim(ctx, snap("s-1", true), "alice"), &held)
			assert.False(t, held.Releasing, "a plain session's claim is not about to be free")
		}},
		{"a plain session's detach marks its own claim releasing until it is released", func(t *testing.T, ctx context.Context, cs claimStore) {
			cs.start(t, "s-x", "carol")
			cs.start(t, "s-1", "alice")
			err := cs.claims.MarkReleasing(ctx, arn, "s-x")
			assert.ErrorIs(t, err, relay.ErrNotFound, "no claim to mark")

			require.NoError(t, cs.claims.Claim(ctx, snap("s-x", false), "carol"))
			require.NoError(t, cs.claims.SetRevisionAfter(ctx, arn, "s-x", "r-x"))
			var held *instrument.HeldError
			require.ErrorAs(t, cs.claims.MarkReleasing(ctx, arn, "s-1"), &held, "only the holder marks its claim")
			assert.Equal(t, instrument.HeldError{Session: "s-x", Owner: "carol", Function: "orders"}, *held)
			got, _, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.False(t, got.Releasing, "a refused mark changes nothing")

			require.NoError(t, cs.claims.MarkReleasing(ctx, arn, "s-x"))
			require.NoError(t, cs.claims.MarkReleasing(ctx, arn, "s-x"), "marking again")
			got, _, err = cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.True(t, got.Releasing)
			assert.False(t, got.Shared)
			assert.Equal(t, "s-x", got.Session)
			assert.Equal(t, map[string]string{"A": "s-x"}, got.Environment, "the snapshot stays as it was")
			assert.Equal(t, "r-x", got.RevisionAfter)
			list, err := cs.claims.SessionSnapshots(ctx, "s-x")
			require.NoError(t, err)
			require.Len(t, list, 1)
			assert.True(t, list[0].Releasing)
			for _, shared := range []bool{true, false} {
				require.ErrorAs(t, cs.claims.Claim(ctx, snap("s-1", shared), "alice"), &held, "shared %v", shared)
				assert.Equal(t, instrument.HeldError{Session: "s-x", Owner: "carol", Function: "orders", Releasing: true}, *held)
				assert.Equal(t, "function orders is being put back by session s-x (owner carol), which is detaching from it", held.Error())
			}
			_, last, err := cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, "s-x")
			require.NoError(t, err)
			assert.True(t, last)

			require.NoError(t, cs.claims.Release(ctx, arn, "s-x"))
			require.NoError(t, cs.claims.Claim(ctx, snap("s-1", false), "alice"), "released: free to claim")
			got, _, err = cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.False(t, got.Releasing, "the mark went with the claim")
		}},
		{"a marked claim of a session that ended is taken over unmarked", func(t *testing.T, ctx context.Context, cs claimStore) {
			cs.start(t, "s-x", "carol")
			cs.start(t, "s-1", "alice")
			require.NoError(t, cs.claims.Claim(ctx, snap("s-x", false), "carol"))
			require.NoError(t, cs.claims.MarkReleasing(ctx, arn, "s-x"))
			cs.end(t, "s-x")
			stale, _, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			require.True(t, stale.Releasing)
			mine := stale
			mine.Session = "s-1"
			require.NoError(t, cs.claims.Claim(ctx, mine, "alice"), "a takeover, as Recover and attach make it")
			got, _, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.Equal(t, "s-1", got.Session)
			assert.False(t, got.Releasing)
			assert.Equal(t, map[string]string{"A": "s-x"}, got.Environment, "the ended session's snapshot, to put back")
		}},
		{"a shared claim is not marked by MarkReleasing", func(t *testing.T, ctx context.Context, cs claimStore) {
			for _, id := range []string{"s-1", "s-2"} {
				cs.start(t, id, id)
				require.NoError(t, cs.claims.Claim(ctx, snap(id, true), id))
			}
			var held *instrument.HeldError
			require.ErrorAs(t, cs.claims.MarkReleasing(ctx, arn, "s-1"), &held)
			assert.Equal(t, []string{"s-1", "s-2"}, holderIDs(held.Holders))
			assert.False(t, held.Releasing)
			got, _, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.True(t, got.Shared)
			assert.False(t, got.Releasing)
		}},
		{"release takes one holder out and the claim goes with the last", func(t *testing.T, ctx context.Context, cs claimStore) {
			for _, id := range []string{"s-1", "s-2"} {
				cs.start(t, id, id)
				require.NoError(t, cs.claims.Claim(ctx, snap(id, true), id))
			}
			require.NoError(t, cs.claims.Release(ctx, arn, "s-1"))
			require.NoError(t, cs.claims.Release(ctx, arn, "s-1"), "releasing what it no longer holds")
			got, ok, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, []string{"s-2"}, holderIDs(got.Holders))
			require.NoError(t, cs.claims.Release(ctx, arn, "s-2"))
			_, ok, err = cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.False(t, ok)
		}},
		{"concurrent joins and leaves", func(t *testing.T, ctx context.Context, cs claimStore) {
			ids := []string{"s-1", "s-2", "s-3", "s-4", "s-5"}
			for _, id := range ids {
				cs.start(t, id, id)
			}
			var wg sync.WaitGroup
			errs := make([]error, len(ids))
			for i, id := range ids {
				wg.Go(func() { errs[i] = cs.claims.Claim(ctx, snap(id, true), id) })
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			got, _, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.Equal(t, ids, holderIDs(got.Holders), "every join is there")

			lasts := make([]bool, len(ids))
			for i, id := range ids {
				wg.Go(func() { _, lasts[i], errs[i] = cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, id) })
			}
			wg.Wait()
			n := 0
			for i, err := range errs {
				require.NoError(t, err)
				if lasts[i] {
					n++
				}
			}
			assert.Equal(t, 1, n, "exactly one is the last one out")
		}},
		{"a claim or leave built on a stale reading of the claim is read again and loses nobody", func(t *testing.T, ctx context.Context, cs claimStore) {
			// The DynamoDB store takes a snapshot's Version and Holders as the claim it will find (Claim, Leave)
			// instead of reading it once more; its write is conditioned on that version, so a stale reading
			// must end in a fresh one, never in a holder lost or a claim taken whole.
			for _, id := range []string{"s-1", "s-2", "s-3", "s-4"} {
				cs.start(t, id, id)
			}
			require.NoError(t, cs.claims.Claim(ctx, snap("s-1", true), "s-1"))
			read, ok, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			require.True(t, ok)
			as := func(r instrument.Snapshot, session string) instrument.Snapshot {
				r.Session = session
				r.Environment = map[string]string{"A": session}
				return r
			}
			require.NoError(t, cs.claims.Claim(ctx, as(read, "s-2"), "s-2"))
			require.NoError(t, cs.claims.Claim(ctx, as(read, "s-3"), "s-3"), "the same reading, stale now")
			require.NoError(t, cs.claims.Claim(ctx, snap("s-4", true), "s-4"), "a reading that saw no claim at all")
			got, _, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.Equal(t, []string{"s-1", "s-2", "s-3", "s-4"}, holderIDs(got.Holders))
			assert.Equal(t, map[string]string{"A": "s-1"}, got.Environment, "the first snapshot stands")

			// By the stale reading s-1 is the only holder, which would make it the last one out.
			left, last, err := cs.claims.Leave(ctx, read, "s-1")
			require.NoError(t, err)
			assert.False(t, last)
			assert.Equal(t, []string{"s-2", "s-3", "s-4"}, holderIDs(left.Holders))

			listed, err := cs.claims.SessionSnapshots(ctx, "s-2")
			require.NoError(t, err)
			require.Len(t, listed, 1)
			for _, id := range []string{"s-3", "s-4"} {
				_, last, err = cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, id)
				require.NoError(t, err)
				require.False(t, last)
			}
			got, last, err = cs.claims.Leave(ctx, listed[0], "s-2")
			require.NoError(t, err)
			assert.True(t, last, "s-2 is the last one out, though its listing showed three holders")
			assert.True(t, got.Releasing)
			assert.Equal(t, "s-2", got.Session)
			stored, _, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.False(t, stored.Shared)
			assert.True(t, stored.Releasing)
			assert.Equal(t, "s-2", stored.Session)
			assert.Equal(t, map[string]string{"A": "s-1"}, stored.Environment)
		}},
		{"a reading of a claim that went since is not taken for a new claim on the function", func(t *testing.T, ctx context.Context, cs claimStore) {
			// Between a caller's reading and its write the claim can be put back, released and made afresh by
			// another session: the new claim must not pass for the one read, or the write built on the reading
			// would drop the new claim's holders.
			for _, id := range []string{"s-1", "s-2", "s-3"} {
				cs.start(t, id, id)
			}
			require.NoError(t, cs.claims.Claim(ctx, snap("s-1", true), "s-1"))
			read, ok, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			require.True(t, ok)
			listed, err := cs.claims.SessionSnapshots(ctx, "s-1")
			require.NoError(t, err)
			require.Len(t, listed, 1)
			_, last, err := cs.claims.Leave(ctx, instrument.Snapshot{FunctionARN: arn}, "s-1")
			require.NoError(t, err)
			require.True(t, last)
			require.NoError(t, cs.claims.Release(ctx, arn, "s-1"))
			require.NoError(t, cs.claims.Claim(ctx, snap("s-2", true), "s-2"), "the function is free: a new claim")

			joined := read
			joined.Session = "s-3"
			holders, err := cs.claims.Join(ctx, joined, "s-3")
			require.NoError(t, err)
			assert.Equal(t, []string{"s-2", "s-3"}, holderIDs(holders))
			got, _, err := cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.Equal(t, []string{"s-2", "s-3"}, holderIDs(got.Holders), "s-2 stays, s-1 (gone) does not come back")
			assert.Equal(t, map[string]string{"A": "s-2"}, got.Environment, "the new claim's snapshot")

			// s-1's listing from before is stale the same way: it does not hold the new claim, so its leave is
			// not the last one out and puts nothing back under s-2 and s-3.
			left, last, err := cs.claims.Leave(ctx, listed[0], "s-1")
			require.NoError(t, err)
			assert.False(t, last)
			assert.Equal(t, []string{"s-2", "s-3"}, holderIDs(left.Holders))
			got, _, err = cs.claims.GetSnapshot(ctx, arn)
			require.NoError(t, err)
			assert.True(t, got.Shared)
			assert.Equal(t, []string{"s-2", "s-3"}, holderIDs(got.Holders))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Run("memory", func(t *testing.T) { c.run(t, context.Background(), memoryClaimStore()) })
			t.Run("dynamodb", func(t *testing.T) { c.run(t, context.Background(), newEnv(t).dynamoClaimStore()) })
		})
	}
}

// TestSharedClaimsInTheStoresListings: the DynamoDB store's scans see a shared claim once, with its holders,
// and the sweep finds its holders' sessions.
func TestSharedClaimsInTheStoresListings(t *testing.T) {
	cs := newEnv(t).dynamoClaimStore()
	ctx := context.Background()
	arn := "arn:aws:lambda:us-east-1:123456789012:function:orders"
	for _, id := range []string{"s-1", "s-2"} {
		cs.start(t, id, id)
		require.NoError(t, cs.claims.Claim(ctx, instrument.Snapshot{FunctionARN: arn, FunctionName: "orders", Session: id, Shared: true}, id))
	}
	all, err := cs.st.Snapshots(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1, "membership items are not claims")
	assert.Equal(t, []string{"s-1", "s-2"}, holderIDs(all[0].Holders))
	byARN, err := cs.st.StackSnapshots(ctx, []string{arn})
	require.NoError(t, err)
	require.Len(t, byARN, 1)
	assert.True(t, byARN[0].Shared)

	cs.end(t, "s-1")
	stale, err := cs.st.StaleSessions(ctx, time.Hour)
	require.NoError(t, err)
	require.Len(t, stale, 1)
	assert.Equal(t, "s-1", stale[0].ID)
}

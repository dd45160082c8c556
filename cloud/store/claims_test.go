package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/cloud/store"
)

const arnPrefix = "arn:aws:lambda:us-east-1:123456789012:function:"

func snapshot(name, session string) store.Snapshot {
	return store.Snapshot{
		FunctionARN:    arnPrefix + name,
		FunctionName:   name,
		Session:        session,
		Config:         []byte(`{"FunctionName":"` + name + `","Timeout":3,  "Environment":{"Variables":{"A":"1"}}}` + "\n"),
		Environment:    map[string]string{"A": "1"},
		HasEnvironment: true,
		Layers:         []string{"arn:aws:lambda:us-east-1:123456789012:layer:deps:3"},
		Timeout:        3,
		TakenAt:        time.Date(2026, 11, 21, 18, 30, 0, 123456789, time.UTC),
	}
}

type claimsFixture struct {
	s   *store.Store
	clk *clock
	d   *dynamo
}

func newClaims(t *testing.T, sessions ...relay.Session) *claimsFixture {
	t.Helper()
	d := newDynamo(t)
	clk := newClock()
	s := d.store(clk.Now)
	for _, sess := range sessions {
		require.NoError(t, s.PutSession(context.Background(), sess))
	}
	return &claimsFixture{s: s, clk: clk, d: d}
}

func TestSnapshotRoundTrip(t *testing.T) {
	x := newClaims(t, relay.NewSession("S", "alice@host", time.Time{}))
	ctx := context.Background()
	base := snapshot("f", "S")
	variants := map[string]func(*store.Snapshot){
		"as taken": func(*store.Snapshot) {},
		"no environment at all": func(s *store.Snapshot) {
			s.Environment, s.HasEnvironment = nil, false
		},
		"environment with nil variables": func(s *store.Snapshot) {
			s.Environment, s.HasEnvironment = nil, true
		},
		"environment with no variables": func(s *store.Snapshot) {
			s.Environment, s.HasEnvironment = map[string]string{}, true
		},
		"empty and unusual values": func(s *store.Snapshot) {
			s.Environment = map[string]string{"EMPTY": "", "UNI": "ü λ 🐍", "JSON": `{"a":[1,2]}`, "NL": "a\nb\tc"}
		},
		"wrapper, revision and three layers in order": func(s *store.Snapshot) {
			s.ExecWrapper = "/opt/other/wrapper"
			s.RevisionAfter = "rev-2"
			s.Layers = []string{arnPrefix + "z:1", arnPrefix + "a:2", arnPrefix + "m:3"}
		},
		"the plldb layer attach added": func(s *store.Snapshot) {
			s.PlldbLayer = "arn:aws:lambda:us-east-1:123456789012:layer:plldb-x86_64:3"
		},
		"nil layers":   func(s *store.Snapshot) { s.Layers = nil },
		"empty layers": func(s *store.Snapshot) { s.Layers = []string{} },
		"zero values": func(s *store.Snapshot) {
			s.Config, s.Timeout, s.TakenAt, s.FunctionName = nil, 0, time.Time{}, ""
		},
		"largest timeout": func(s *store.Snapshot) { s.Timeout = 900 },
		"binary-looking config": func(s *store.Snapshot) {
			s.Config = []byte{0, 1, 2, 0xff, '{', '}'}
		},
	}
	i := 0
	for name, mutate := range variants {
		t.Run(name, func(t *testing.T) {
			snap := base
			snap.FunctionARN = fmt.Sprintf("%s%d", arnPrefix, i)
			i++
			mutate(&snap)
			require.NoError(t, x.s.Claim(ctx, snap, "alice@host"))
			got, ok, err := x.s.GetSnapshot(ctx, snap.FunctionARN)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, snap, got)
			// nil and empty must stay apart: assert.Equal treats them alike for maps of the same type.
			assert.Equal(t, snap.Environment == nil, got.Environment == nil, "nil environment map round-trips")
			assert.Equal(t, snap.Layers == nil, got.Layers == nil, "nil layer list round-trips")

			listed, err := x.s.StackSnapshots(ctx, []string{snap.FunctionARN})
			require.NoError(t, err)
			require.Len(t, listed, 1)
			assert.Equal(t, snap, listed[0])
		})
	}
	_, ok, err := x.s.GetSnapshot(ctx, arnPrefix+"unclaimed")
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestClaimHeldByAnotherLiveSession(t *testing.T) {
	x := newClaims(t, relay.NewSession("S1", "alice@host", time.Time{}), relay.NewSession("S2", "bob@laptop", time.Time{}))
	ctx := context.Background()
	first := snapshot("orders", "S1")
	require.NoError(t, x.s.Claim(ctx, first, "alice@host"))

	err := x.s.Claim(ctx, snapshot("orders", "S2"), "bob@laptop")
	var held *store.HeldError
	require.ErrorAs(t, err, &held)
	assert.Equal(t, &store.HeldError{Session: "S1", Owner: "alice@host", Function: "orders"}, held)
	assert.Equal(t, "function orders is held by session S1 (owner alice@host)", err.Error())

	got, _, err := x.s.GetSnapshot(ctx, first.FunctionARN)
	require.NoError(t, err)
	assert.Equal(t, first, got, "the refused claim changed nothing")
}

func TestReclaimKeepsTheFirstSnapshot(t *testing.T) {
	x := newClaims(t, relay.NewSession("S", "alice", time.Time{}))
	ctx := context.Background()
	first := snapshot("f", "S")
	require.NoError(t, x.s.Claim(ctx, first, "alice"))
	require.NoError(t, x.s.SetRevisionAfter(ctx, first.FunctionARN, "S", "rev-after"))

	instrumented := first
	instrumented.Environment = map[string]string{"A": "1", "AWS_LAMBDA_EXEC_WRAPPER": "/opt/plldb/wrapper"}
	instrumented.Timeout = 900
	instrumented.Config = []byte(`{"already":"instrumented"}`)
	require.NoError(t, x.s.Claim(ctx, instrumented, "alice"), "the same session may claim again")

	got, _, err := x.s.GetSnapshot(ctx, first.FunctionARN)
	require.NoError(t, err)
	want := first
	want.RevisionAfter = "rev-after"
	assert.Equal(t, want, got, "the original configuration survives a retried attach")
}

func TestClaimTakesOverFromDeadSessions(t *testing.T) {
	x := newClaims(t)
	ctx := context.Background()
	require.NoError(t, x.s.PutSession(ctx, relay.NewSession("old", "alice", x.clk.Now().Add(time.Hour))))
	require.NoError(t, x.s.PutSession(ctx, relay.NewSession("gone", "carol", time.Time{})))
	require.NoError(t, x.s.PutSession(ctx, relay.NewSession("new", "bob", time.Time{})))
	require.NoError(t, x.s.Claim(ctx, snapshot("a", "old"), "alice"))
	require.NoError(t, x.s.Claim(ctx, snapshot("b", "gone"), "carol"))

	var held *store.HeldError
	require.ErrorAs(t, x.s.Claim(ctx, snapshot("a", "new"), "bob"), &held, "live until it expires")
	x.clk.Advance(time.Hour)
	takeover := snapshot("a", "new")
	takeover.Timeout = 42
	require.NoError(t, x.s.Claim(ctx, takeover, "bob"), "an expired session's claim can be taken over")
	got, _, err := x.s.GetSnapshot(ctx, takeover.FunctionARN)
	require.NoError(t, err)
	assert.Equal(t, takeover, got)

	require.NoError(t, x.s.DeleteSession(ctx, "gone"))
	require.NoError(t, x.s.Claim(ctx, snapshot("b", "new"), "bob"), "so can a deleted session's")
	snaps, err := x.s.SessionSnapshots(ctx, "new")
	require.NoError(t, err)
	assert.Len(t, snaps, 2)
	snaps, err = x.s.SessionSnapshots(ctx, "old")
	require.NoError(t, err)
	assert.Empty(t, snaps)
}

func TestClaimNeedsALiveSession(t *testing.T) {
	x := newClaims(t, relay.NewSession("S", "alice", time.Time{}))
	ctx := context.Background()
	err := x.s.Claim(ctx, snapshot("f", "missing"), "mallory")
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.Contains(t, err.Error(), "missing")
	_, ok, err := x.s.GetSnapshot(ctx, arnPrefix+"f")
	require.NoError(t, err)
	assert.False(t, ok)

	bad := snapshot("f", "S")
	bad.FunctionARN = ""
	require.ErrorContains(t, x.s.Claim(ctx, bad, "alice"), "function ARN")
	bad = snapshot("f", "")
	require.ErrorContains(t, x.s.Claim(ctx, bad, "alice"), "session")
	_, _, err = x.s.GetSnapshot(ctx, "")
	require.ErrorContains(t, err, "empty function ARN")
	require.ErrorContains(t, x.s.Release(ctx, "", "S"), "empty function ARN")
	require.ErrorContains(t, x.s.SetRevisionAfter(ctx, "", "S", "r"), "empty function ARN")
}

func TestSetRevisionAfter(t *testing.T) {
	x := newClaims(t, relay.NewSession("S1", "alice", time.Time{}), relay.NewSession("S2", "bob", time.Time{}))
	ctx := context.Background()
	snap := snapshot("f", "S1")
	require.NoError(t, x.s.Claim(ctx, snap, "alice"))
	require.NoError(t, x.s.SetRevisionAfter(ctx, snap.FunctionARN, "S1", "r1"))
	require.NoError(t, x.s.SetRevisionAfter(ctx, snap.FunctionARN, "S1", "r2"))

	var held *store.HeldError
	require.ErrorAs(t, x.s.SetRevisionAfter(ctx, snap.FunctionARN, "S2", "evil"), &held)
	assert.Equal(t, "S1", held.Session)
	assert.Equal(t, "alice", held.Owner)
	require.ErrorIs(t, x.s.SetRevisionAfter(ctx, arnPrefix+"nobody", "S1", "r"), store.ErrNotFound)
	_, ok, err := x.s.GetSnapshot(ctx, arnPrefix+"nobody")
	require.NoError(t, err)
	assert.False(t, ok, "no claim is created by a revision update")

	got, _, err := x.s.GetSnapshot(ctx, snap.FunctionARN)
	require.NoError(t, err)
	snap.RevisionAfter = "r2"
	assert.Equal(t, snap, got)
}

func TestRelease(t *testing.T) {
	x := newClaims(t, relay.NewSession("S1", "alice", time.Time{}), relay.NewSession("S2", "bob", time.Time{}))
	ctx := context.Background()
	snap := snapshot("f", "S1")
	require.NoError(t, x.s.Claim(ctx, snap, "alice"))

	var held *store.HeldError
	require.ErrorAs(t, x.s.Release(ctx, snap.FunctionARN, "S2"), &held, "only the holder releases")
	assert.Equal(t, "f", held.Function)
	_, ok, err := x.s.GetSnapshot(ctx, snap.FunctionARN)
	require.NoError(t, err)
	require.True(t, ok, "still claimed")

	require.NoError(t, x.s.Release(ctx, snap.FunctionARN, "S1"))
	_, ok, err = x.s.GetSnapshot(ctx, snap.FunctionARN)
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, x.s.Release(ctx, snap.FunctionARN, "S1"), "releasing twice is fine")
	require.NoError(t, x.s.Claim(ctx, snapshot("f", "S2"), "bob"), "a released function is free")
}

func TestSessionAndStackSnapshots(t *testing.T) {
	x := newClaims(t, relay.NewSession("S1", "alice", time.Time{}), relay.NewSession("S2", "bob", time.Time{}))
	ctx := context.Background()
	const n = 105 // more than one BatchGetItem
	var arns []string
	for i := range n {
		sess := "S1"
		if i%3 == 0 {
			sess = "S2"
		}
		snap := snapshot(fmt.Sprintf("fn-%03d", i), sess)
		require.NoError(t, x.s.Claim(ctx, snap, "someone"))
		arns = append(arns, snap.FunctionARN)
	}

	s2, err := x.s.SessionSnapshots(ctx, "S2")
	require.NoError(t, err)
	require.Len(t, s2, 35)
	for i, snap := range s2 {
		assert.Equal(t, "S2", snap.Session)
		assert.Equal(t, snapshot(fmt.Sprintf("fn-%03d", 3*i), "S2"), snap, "ordered by ARN, complete")
	}
	none, err := x.s.SessionSnapshots(ctx, "S3")
	require.NoError(t, err)
	assert.Empty(t, none)

	// Reverse order, a duplicate and unclaimed functions: the answer follows the request, once each.
	query := []string{arnPrefix + "unclaimed"}
	for i := n - 1; i >= 0; i-- {
		query = append(query, arns[i])
	}
	query = append(query, arns[7], "", arnPrefix+"other")
	x.d.calls.take()
	got, err := x.s.StackSnapshots(ctx, query)
	require.NoError(t, err)
	require.Len(t, got, n)
	for i, snap := range got {
		assert.Equal(t, arns[n-1-i], snap.FunctionARN)
	}
	assert.Equal(t, map[string]int{"BatchGetItem": 2}, x.d.calls.take(), "100 keys per request")

	empty, err := x.s.StackSnapshots(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	x := newClaims(t, relay.NewSession("S1", "alice", time.Time{}), relay.NewSession("S2", "bob", time.Time{}))
	ctx := context.Background()
	for round := range 8 {
		name := fmt.Sprintf("contested-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, sess := range []string{"S1", "S2"} {
			wg.Go(func() { errs[i] = x.s.Claim(ctx, snapshot(name, sess), "owner-"+sess) })
		}
		wg.Wait()
		winners := 0
		var held *store.HeldError
		for _, err := range errs {
			if err == nil {
				winners++
				continue
			}
			require.ErrorAs(t, err, &held, "the loser is told who holds it")
		}
		require.Equal(t, 1, winners, "round %d: exactly one claim wins (%v)", round, errs)
		got, ok, err := x.s.GetSnapshot(ctx, arnPrefix+name)
		require.NoError(t, err)
		require.True(t, ok)
		assert.NotEqual(t, held.Session, "", "the loser names a session")
		assert.Equal(t, got.Session, held.Session, "the loser names the winner")
	}
}

func TestClaimReportsStoreFailures(t *testing.T) {
	x := newClaims(t, relay.NewSession("S", "alice", time.Time{}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := x.s.Claim(ctx, snapshot("f", "S"), "alice")
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), "the cause is kept: %v", err)
	var held *store.HeldError
	assert.False(t, errors.As(err, &held), "a failure is not a refusal")
}

func TestListings(t *testing.T) {
	x := newClaims(t)
	ctx := context.Background()
	created := x.clk.Now()
	exp := x.clk.Now().Add(time.Hour)
	require.NoError(t, x.s.PutSession(ctx, relay.NewSession("S2", "bob", exp)))
	require.NoError(t, x.s.PutSession(ctx, relay.NewSession("S1", "alice", time.Time{})))
	require.NoError(t, x.s.PutSession(ctx, relay.NewSession("S0", "carol", x.clk.Now().Add(time.Minute))))
	require.NoError(t, x.s.Claim(ctx, snapshot("b", "S2"), "bob"))
	require.NoError(t, x.s.Claim(ctx, snapshot("a", "S1"), "alice"))
	x.clk.Advance(time.Minute)

	sessions, err := x.s.Sessions(ctx)
	require.NoError(t, err)
	assert.Equal(t, []store.SessionInfo{{ID: "S1", Owner: "alice", Seen: created}, {ID: "S2", Owner: "bob", ExpiresAt: exp, Seen: created}}, sessions,
		"live sessions only, by id, without keys, with when their developer was last heard from")

	snaps, err := x.s.Snapshots(ctx)
	require.NoError(t, err)
	assert.Equal(t, []store.Snapshot{snapshot("a", "S1"), snapshot("b", "S2")}, snaps)
}

// BenchmarkClaimRelease50 is the store's share of attaching and detaching 50 functions: 50 claims in parallel,
// then 50 releases in parallel, against moto.
func BenchmarkClaimRelease50(b *testing.B) {
	d := newDynamo(b)
	s := d.store(nil)
	ctx := context.Background()
	require.NoError(b, s.PutSession(ctx, relay.NewSession("S", "alice", time.Time{})))
	const n = 50
	round := 0
	for b.Loop() {
		round++
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = s.Claim(ctx, snapshot(fmt.Sprintf("r%d-f%d", round, i), "S"), "alice") })
		}
		wg.Wait()
		for i := range n {
			wg.Go(func() {
				errs[i] = errors.Join(errs[i], s.Release(ctx, fmt.Sprintf("%sr%d-f%d", arnPrefix, round, i), "S"))
			})
		}
		wg.Wait()
		require.NoError(b, errors.Join(errs...))
	}
	b.ReportMetric(float64(total(d.calls.take()))/float64(round), "dynamodb-calls/op")
}

// TestStaleSessions: the dead-man sweep's query finds the sessions holding claims that are over: expired,
// deleted (by a detach that crashed half-way, or by DynamoDB TTL), or whose developer has been silent for
// longer than the grace period; live sessions whose developer was heard from lately, and sessions without
// claims, are left alone.
func TestStaleSessions(t *testing.T) {
	t0 := newClock().Now() // newClaims's clock starts there too
	x := newClaims(t,
		relay.NewSession("live", "alice@laptop", t0.Add(12*time.Hour)),
		relay.NewSession("expiring", "bob@desk", t0.Add(time.Hour)),
		relay.NewSession("silent", "carol@home", t0.Add(12*time.Hour)),
		relay.NewSession("deleted", "dave@away", t0.Add(12*time.Hour)),
		relay.NewSession("noclaims", "erin@idle", t0.Add(12*time.Hour)),
	)
	ctx := context.Background()
	for _, s := range []string{"live", "expiring", "silent", "deleted"} {
		require.NoError(t, x.s.Claim(ctx, snapshot("f-"+s, s), "owner"))
	}
	require.NoError(t, x.s.Claim(ctx, snapshot("g-live", "live"), "owner"))
	require.NoError(t, x.s.DeleteSession(ctx, "deleted"))

	x.clk.Advance(70 * time.Minute)
	require.NoError(t, x.s.DeveloperSeen(ctx, relay.Connection{ID: "c1", Session: "live", Role: wire.RoleDeveloper}))
	x.clk.Advance(5 * time.Minute)

	stale, err := x.s.StaleSessions(ctx, 20*time.Minute)
	require.NoError(t, err)
	got := map[string]string{}
	for _, s := range stale {
		got[s.ID] = s.Reason
	}
	require.Len(t, got, 3, "%v", stale)
	assert.Contains(t, got["expiring"], "expired")
	assert.Equal(t, "gone", got["deleted"])
	assert.Contains(t, got["silent"], "silent since "+t0.Format(time.RFC3339))
	assert.NotContains(t, got, "live", "heard from 5 minutes ago")
	assert.NotContains(t, got, "noclaims")

	stale, err = x.s.StaleSessions(ctx, 2*time.Hour)
	require.NoError(t, err)
	assert.Len(t, stale, 2, "with a longer grace only the expired and the deleted session are over: %v", stale)
}

// TestLeaveMarksTheLastOnesClaimReleasing: the last selective session out gets the claim marked as being
// released in the one transaction Leave makes anyway; a claim by anyone else meanwhile, shared or exclusive,
// is refused saying so; a repeated Leave keeps the mark; once released, the function is free and a new claim
// is not marked.
func TestLeaveMarksTheLastOnesClaimReleasing(t *testing.T) {
	x := newClaims(t, relay.NewSession("S1", "alice", time.Time{}), relay.NewSession("S2", "bob", time.Time{}))
	ctx := context.Background()
	first := snapshot("f", "S1")
	first.Shared = true
	require.NoError(t, x.s.Claim(ctx, first, "alice"))
	x.d.calls.take()

	got, last, err := x.s.Leave(ctx, store.Snapshot{FunctionARN: first.FunctionARN}, "S1")
	require.NoError(t, err)
	require.True(t, last)
	assert.True(t, got.Releasing)
	assert.Equal(t, map[string]int{"GetItem": 1, "TransactWriteItems": 1}, x.d.calls.take(), "no request more than the leave itself")
	stored, ok, err := x.s.GetSnapshot(ctx, first.FunctionARN)
	require.NoError(t, err)
	require.True(t, ok)
	assert.True(t, stored.Releasing)
	assert.False(t, stored.Shared)
	assert.Equal(t, "S1", stored.Session)

	want := &store.HeldError{Session: "S1", Owner: "alice", Function: "f", Releasing: true}
	for _, shared := range []bool{true, false} {
		join := snapshot("f", "S2")
		join.Shared = shared
		var held *store.HeldError
		require.ErrorAs(t, x.s.Claim(ctx, join, "bob"), &held, "shared %v", shared)
		assert.Equal(t, want, held)
		assert.Equal(t, "function f is being put back by session S1 (owner alice), which is detaching from it", held.Error())
	}

	again, last, err := x.s.Leave(ctx, store.Snapshot{FunctionARN: first.FunctionARN}, "S1")
	require.NoError(t, err)
	assert.True(t, last)
	assert.True(t, again.Releasing, "a repeated leave keeps the mark")
	stored, _, err = x.s.GetSnapshot(ctx, first.FunctionARN)
	require.NoError(t, err)
	assert.True(t, stored.Releasing)

	require.NoError(t, x.s.Release(ctx, first.FunctionARN, "S1"))
	next := snapshot("f", "S2")
	next.Shared = true
	require.NoError(t, x.s.Claim(ctx, next, "bob"), "released: free to join")
	stored, _, err = x.s.GetSnapshot(ctx, first.FunctionARN)
	require.NoError(t, err)
	assert.False(t, stored.Releasing)
	assert.Equal(t, []store.Holder{{Session: "S2", Owner: "bob"}}, stored.Holders)
}

// TestReleasingClaimOfAnEndedSessionIsTakenOverUnmarked: if the last one out dies before it puts the function
// back, the next claim takes the claim over (and restores it), and the mark does not carry over, even when the
// snapshot claimed is the one read back from the marked claim.
func TestReleasingClaimOfAnEndedSessionIsTakenOverUnmarked(t *testing.T) {
	x := newClaims(t, relay.NewSession("S1", "alice", time.Time{}), relay.NewSession("S2", "bob", time.Time{}))
	ctx := context.Background()
	first := snapshot("f", "S1")
	first.Shared = true
	require.NoError(t, x.s.Claim(ctx, first, "alice"))
	_, _, err := x.s.Leave(ctx, store.Snapshot{FunctionARN: first.FunctionARN}, "S1")
	require.NoError(t, err)
	require.NoError(t, x.s.DeleteSession(ctx, "S1"))

	stale, _, err := x.s.GetSnapshot(ctx, first.FunctionARN)
	require.NoError(t, err)
	require.True(t, stale.Releasing)
	stale.Session = "S2"
	require.NoError(t, x.s.Claim(ctx, stale, "bob"))
	got, _, err := x.s.GetSnapshot(ctx, first.FunctionARN)
	require.NoError(t, err)
	assert.Equal(t, "S2", got.Session)
	assert.False(t, got.Releasing)
}

// TestMarkReleasingMarksAPlainSessionsOwnClaim: a plain session's detach marks its exclusive claim with one
// conditional UpdateItem that keeps the rest of the claim as stored; a claim by anyone else meanwhile is refused
// saying the function is being put back; the mark is refused on another session's claim, on a shared claim and
// where there is no claim, changing nothing; a takeover after the session ended does not carry it over.
func TestMarkReleasingMarksAPlainSessionsOwnClaim(t *testing.T) {
	x := newClaims(t, relay.NewSession("S1", "alice", time.Time{}), relay.NewSession("S2", "bob", time.Time{}))
	ctx := context.Background()
	first := snapshot("f", "S1")
	assert.ErrorIs(t, x.s.MarkReleasing(ctx, first.FunctionARN, "S1"), store.ErrNotFound, "no claim")
	require.NoError(t, x.s.Claim(ctx, first, "alice"))
	require.NoError(t, x.s.SetRevisionAfter(ctx, first.FunctionARN, "S1", "r-1"))

	var held *store.HeldError
	require.ErrorAs(t, x.s.MarkReleasing(ctx, first.FunctionARN, "S2"), &held)
	assert.Equal(t, &store.HeldError{Session: "S1", Owner: "alice", Function: "f"}, held)
	x.d.calls.take()
	require.NoError(t, x.s.MarkReleasing(ctx, first.FunctionARN, "S1"))
	assert.Equal(t, map[string]int{"UpdateItem": 1}, x.d.calls.take(), "one conditional write")
	require.NoError(t, x.s.MarkReleasing(ctx, first.FunctionARN, "S1"), "marking again")
	stored, ok, err := x.s.GetSnapshot(ctx, first.FunctionARN)
	require.NoError(t, err)
	require.True(t, ok)
	assert.True(t, stored.Releasing)
	assert.Equal(t, "S1", stored.Session)
	assert.Equal(t, "r-1", stored.RevisionAfter, "the rest of the claim stays as stored")
	assert.Equal(t, first.Environment, stored.Environment)

	for _, shared := range []bool{true, false} {
		other := snapshot("f", "S2")
		other.Shared = shared
		require.ErrorAs(t, x.s.Claim(ctx, other, "bob"), &held, "shared %v", shared)
		assert.Equal(t, &store.HeldError{Session: "S1", Owner: "alice", Function: "f", Releasing: true}, held)
	}

	require.NoError(t, x.s.DeleteSession(ctx, "S1"))
	stale := stored
	stale.Session = "S2"
	require.NoError(t, x.s.Claim(ctx, stale, "bob"), "an ended session's marked claim is taken over")
	got, _, err := x.s.GetSnapshot(ctx, first.FunctionARN)
	require.NoError(t, err)
	assert.Equal(t, "S2", got.Session)
	assert.False(t, got.Releasing)
	require.NoError(t, x.s.Release(ctx, first.FunctionARN, "S2"))

	shared := snapshot("g", "S2")
	shared.Shared = true
	require.NoError(t, x.s.Claim(ctx, shared, "bob"))
	require.ErrorAs(t, x.s.MarkReleasing(ctx, shared.FunctionARN, "S2"), &held, "a shared claim is left by Leave, not marked")
	assert.Equal(t, []store.Holder{{Session: "S2", Owner: "bob"}}, held.Holders)
	got, _, err = x.s.GetSnapshot(ctx, shared.FunctionARN)
	require.NoError(t, err)
	assert.True(t, got.Shared)
	assert.False(t, got.Releasing)
}

// TestReleasingMarkIsDecodedStrictly: a releasing attribute that is not a boolean, or one on a shared claim,
// is a claim the store cannot trust, and reading it fails instead of guessing.
func TestReleasingMarkIsDecodedStrictly(t *testing.T) {
	x := newClaims(t)
	ctx := context.Background()
	for name, c := range map[string]struct {
		extra map[string]types.AttributeValue
		want  string
	}{
		"not a boolean": {map[string]types.AttributeValue{"releasing": &types.AttributeValueMemberS{Value: "true"}},
			"attribute releasing is *types.AttributeValueMemberS, not a boolean"},
		"on a shared claim": {map[string]types.AttributeValue{
			"releasing": &types.AttributeValueMemberBOOL{Value: true},
			"shared":    &types.AttributeValueMemberBOOL{Value: true},
			"holders":   &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"S1": &types.AttributeValueMemberS{Value: "alice"}}},
		}, "attribute releasing on a shared claim"},
	} {
		t.Run(name, func(t *testing.T) {
			arn := arnPrefix + badTableChars.ReplaceAllString(name, "-")
			it := map[string]types.AttributeValue{
				"arn":     &types.AttributeValueMemberS{Value: arn},
				"session": &types.AttributeValueMemberS{Value: "S1"},
				"timeout": &types.AttributeValueMemberN{Value: "3"},
			}
			maps.Copy(it, c.extra)
			_, err := x.d.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(x.d.tables.Claims), Item: it})
			require.NoError(t, err)
			_, _, err = x.s.GetSnapshot(ctx, arn)
			require.ErrorContains(t, err, c.want)
			_, err = x.s.StackSnapshots(ctx, []string{arn})
			require.ErrorContains(t, err, c.want)
		})
	}
}

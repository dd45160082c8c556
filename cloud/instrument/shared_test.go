package instrument_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/store"
)

// claimStore is a claim store with a way to start and end sessions, so that the shared-claim tests run on the
// DynamoDB store (moto) and on MemoryClaims alike.
type claimStore struct {
	claims instrument.Claims
	st     *store.Store // the DynamoDB store; nil for MemoryClaims
	start  func(t testing.TB, id, owner string)
	end    func(t testing.TB, id string)
}

func memoryClaimStore() claimStore {
	m := instrument.NewMemoryClaims()
	return claimStore{claims: m, start: func(testing.TB, string, string) {}, end: func(_ testing.TB, id string) { m.EndSession(id) }}
}

func (e *env) dynamoClaimStore() claimStore {
	e.t.Helper()
	tables := store.DefaultTables(unique(e.t, "tbl"))
	require.NoError(e.t, store.CreateTables(context.Background(), dynamodb.NewFromConfig(e.srv.Config()), tables))
	st := store.New(dynamodb.NewFromConfig(e.srv.Config()), tables)
	return claimStore{
		claims: st, st: st,
		start: func(t testing.TB, id, owner string) {
			require.NoError(t, st.PutSession(context.Background(), relay.NewSession(id, owner, time.Now().Add(time.Hour))))
		},
		end: func(t testing.TB, id string) { require.NoError(t, st.DeleteSession(context.Background(), id)) },
	}
}

// eachClaimStore runs the test on both claim stores.
func eachClaimStore(t *testing.T, run func(t *testing.T, e *env, cs claimStore)) {
	t.Run("memory", func(t *testing.T) {
		e := newEnv(t)
		run(t, e, memoryClaimStore())
	})
	t.Run("dynamodb", func(t *testing.T) {
		e := newEnv(t)
		run(t, e, e.dynamoClaimStore())
	})
}

// sharedInstrumenter is the instrumenter on moto with Lambda's RevisionId (revisions), which every change of a
// shared function's lists is guarded by.
func (e *env) sharedInstrumenter(claims instrument.Claims) *instrument.Instrumenter {
	in := e.instrumenter(claims)
	in.Lambda = &revisions{Client: e.lambda, rev: map[string]int{}}
	return in
}

// dev is one developer attached selectively, with the session's own function key for the target.
type dev struct {
	s   instrument.Session
	key []byte
}

func newDev(t testing.TB, cs claimStore, id, owner string) dev {
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	s := session(id)
	s.Owner = owner
	s.Selective, s.KnockKey, s.KnockStack, s.FunctionCredentials = true, pub, "orders-dev", true
	cs.start(t, id, owner)
	return dev{s: s, key: []byte(fmt.Sprintf("function-key-of-%s-0123456789abcdef", id))}
}

func (d dev) target(tg instrument.Target) instrument.Target {
	tg.Key = d.key
	return tg
}

// join attaches each developer selectively to tg, one after another.
func join(t testing.TB, in *instrument.Instrumenter, tg instrument.Target, devs ...dev) {
	t.Helper()
	for _, d := range devs {
		_, err := in.Instrument(context.Background(), d.s, []instrument.Target{d.target(tg)})
		require.NoError(t, err, "%s joins", d.s.ID)
	}
}

// lists reads the function's selective lists.
func lists(t testing.TB, v map[string]string) (map[string]selenv.Link, map[string]ed25519.PublicKey) {
	t.Helper()
	links, err := selenv.ParseSessions(v[selenv.EnvSessions])
	require.NoError(t, err)
	keys, err := selenv.ParseKnockKeys(v[selenv.EnvKnockKeys])
	require.NoError(t, err)
	byID := map[string]selenv.Link{}
	for _, l := range links {
		byID[l.Session] = l
	}
	return byID, keys
}

// assertEntries checks that the function lists exactly devs, each with its own key and options, and none of
// the single-session variables.
func assertEntries(t testing.TB, v map[string]string, devs ...dev) {
	t.Helper()
	links, keys := lists(t, v)
	require.Len(t, links, len(devs), "PLLDB_SESSIONS: %s", v[selenv.EnvSessions])
	require.Len(t, keys, len(devs))
	for _, d := range devs {
		l, ok := links[d.s.ID]
		if assert.True(t, ok, "session %s has its link", d.s.ID) {
			assert.Equal(t, d.key, l.FunctionKey, "session %s's own function key", d.s.ID)
			assert.Equal(t, d.s.Mirror, l.Mirror)
			assert.True(t, l.Credentials)
		}
		assert.Equal(t, d.s.KnockKey, keys[d.s.ID], "session %s's knock key", d.s.ID)
	}
	assert.Equal(t, "true", v[selenv.EnvSelective])
	assert.Equal(t, "orders-dev", v[selenv.EnvKnockStack])
	assert.Equal(t, instrument.WrapperPath, v["AWS_LAMBDA_EXEC_WRAPPER"])
	for _, k := range []string{"PLLDB_SESSION", "PLLDB_FUNCTION_KEY", "PLLDB_CREDENTIALS"} {
		assert.NotContains(t, v, k)
	}
}

func holderIDs(hs []instrument.Holder) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, h.Session)
	}
	return out
}

func TestSharedSelectiveSessionsJoinLeaveAndTheLastRestores(t *testing.T) {
	for _, n := range []int{2, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
				ctx := context.Background()
				tg := e.create(fn{what: "shared", env: map[string]string{"TABLE": "orders"}, layers: []string{e.userLayer("deps")}, timeout: 7})
				before := restorable(t, e.raw(tg.Name))
				in := e.sharedInstrumenter(cs.claims)
				var devs []dev
				for i := range n {
					d := newDev(t, cs, fmt.Sprintf("s-%d", i+1), fmt.Sprintf("dev%d@host", i+1))
					d.s.Mirror = i%2 == 1
					devs = append(devs, d)
					att, err := in.Instrument(ctx, d.s, []instrument.Target{d.target(tg)})
					require.NoError(t, err, "session %d joins", i+1)
					require.Len(t, att.Functions, 1)
					assertEntries(t, vars(e.config(tg.Name)), devs...)
				}
				c := e.config(tg.Name)
				assert.EqualValues(t, instrument.DebugTimeout, *c.Timeout)
				assert.Len(t, layerList(c), 2, "the user's layer and plldb's, once")

				snap, ok, err := cs.claims.GetSnapshot(ctx, tg.ARN)
				require.NoError(t, err)
				require.True(t, ok)
				assert.True(t, snap.Shared)
				assert.Len(t, snap.Holders, n)
				assert.Equal(t, map[string]string{"TABLE": "orders"}, snap.Environment, "the first session's snapshot")
				mine, err := cs.claims.SessionSnapshots(ctx, devs[n-1].s.ID)
				require.NoError(t, err)
				require.Len(t, mine, 1, "a session finds the functions it shares")
				assert.Equal(t, tg.ARN, mine[0].FunctionARN)

				// Attaching again (a retried attach) changes nothing.
				_, err = in.Instrument(ctx, devs[0].s, []instrument.Target{devs[0].target(tg)})
				require.NoError(t, err)
				assertEntries(t, vars(e.config(tg.Name)), devs...)

				// A non-selective attach is refused, naming every holder.
				x := session("s-excl")
				cs.start(t, x.ID, x.Owner)
				_, err = in.Instrument(ctx, x, []instrument.Target{tg})
				var refused *instrument.RefusedError
				require.ErrorAs(t, err, &refused)
				require.NotNil(t, refused.Refusals[0].Held)
				assert.Len(t, refused.Refusals[0].Held.Holders, n)
				assert.Contains(t, err.Error(), "held by selective sessions s-1 (dev1@host), s-2 (dev2@host)")
				assert.Contains(t, err.Error(), "detach them or attach with --selective")
				assertEntries(t, vars(e.config(tg.Name)), devs...)

				// One by one they leave: the others keep their entries until the last one puts everything back.
				for i, d := range devs {
					results, err := in.Restore(ctx, d.s.ID)
					require.NoError(t, err)
					require.Len(t, results, 1)
					if i < n-1 {
						assert.Equal(t, instrument.Left, results[0].Outcome, results[0].Message)
						assertEntries(t, vars(e.config(tg.Name)), devs[i+1:]...)
						continue
					}
					assert.Equal(t, instrument.Restored, results[0].Outcome, results[0].Message)
				}
				assert.Equal(t, before, restorable(t, e.raw(tg.Name)), "back byte for byte")
				_, ok, err = cs.claims.GetSnapshot(ctx, tg.ARN)
				require.NoError(t, err)
				assert.False(t, ok, "the claim went with the last session")
			})
		})
	}
}

func TestExclusiveHolderRefusesSelectiveSessions(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "excl", env: map[string]string{"TABLE": "orders"}})
		in := e.sharedInstrumenter(cs.claims)
		x := session("s-excl")
		cs.start(t, x.ID, x.Owner)
		_, err := in.Instrument(ctx, x, []instrument.Target{tg})
		require.NoError(t, err)
		instrumented := e.raw(tg.Name)

		d := newDev(t, cs, "s-sel", "bob@host")
		_, err = in.Instrument(ctx, d.s, []instrument.Target{d.target(tg)})
		var refused *instrument.RefusedError
		require.ErrorAs(t, err, &refused)
		assert.Contains(t, err.Error(), "held by session s-excl (owner alice@laptop)")
		assert.Contains(t, err.Error(), "without --selective")
		assert.Equal(t, restorable(t, instrumented), restorable(t, e.raw(tg.Name)), "nothing changed")
		assert.Equal(t, "s-excl", vars(e.config(tg.Name))["PLLDB_SESSION"])
	})
}

func TestSharedHolderWhoseSessionEndedIsPrunedWithItsEntries(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "prune", env: map[string]string{"TABLE": "orders"}})
		before := restorable(t, e.raw(tg.Name))
		in := e.sharedInstrumenter(cs.claims)
		a, b := newDev(t, cs, "s-a", "alice@host"), newDev(t, cs, "s-b", "bob@host")
		join(t, in, tg, a, b)
		cs.end(t, a.s.ID) // expired, or deleted by the sweep, without a detach

		c := newDev(t, cs, "s-c", "carol@host")
		join(t, in, tg, c)
		assertEntries(t, vars(e.config(tg.Name)), b, c)
		snap, _, err := cs.claims.GetSnapshot(ctx, tg.ARN)
		require.NoError(t, err)
		assert.Equal(t, []string{"s-b", "s-c"}, holderIDs(snap.Holders))

		// The relay's expiry path for a session that others still share the function with: only its entries go.
		cs.end(t, b.s.ID)
		results, err := in.Restore(ctx, b.s.ID)
		require.NoError(t, err)
		assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Left}, outcomes(results))
		assertEntries(t, vars(e.config(tg.Name)), c)

		results, err = in.Restore(ctx, c.s.ID)
		require.NoError(t, err)
		assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
		assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
	})
}

func TestExclusiveAttachTakesOverASharedFunctionWhoseSessionsAllEnded(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "takeover", env: map[string]string{"TABLE": "orders"}})
		before := restorable(t, e.raw(tg.Name))
		in := e.sharedInstrumenter(cs.claims)
		a, b := newDev(t, cs, "s-a", "alice@host"), newDev(t, cs, "s-b", "bob@host")
		join(t, in, tg, a, b)
		cs.end(t, a.s.ID)
		cs.end(t, b.s.ID)
		x := session("s-excl")
		cs.start(t, x.ID, x.Owner)
		att, err := in.Instrument(ctx, x, []instrument.Target{tg})
		require.NoError(t, err)
		require.Len(t, att.Recovered, 1, "the shared instrumentation was put back first")
		assert.Equal(t, instrument.Restored, att.Recovered[0].Outcome, att.Recovered[0].Message)
		v := vars(e.config(tg.Name))
		assert.Equal(t, "s-excl", v["PLLDB_SESSION"])
		assert.NotContains(t, v, selenv.EnvSessions)
		_, err = in.Restore(ctx, x.ID)
		require.NoError(t, err)
		assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
	})
}

func TestConcurrentSelectiveJoinsAndLeaves(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "race", env: map[string]string{"TABLE": "orders"}})
		before := restorable(t, e.raw(tg.Name))
		in := e.sharedInstrumenter(cs.claims)
		devs := make([]dev, 5)
		for i := range devs {
			devs[i] = newDev(t, cs, fmt.Sprintf("s-%d", i+1), fmt.Sprintf("dev%d@host", i+1))
		}
		var wg sync.WaitGroup
		errs := make([]error, len(devs))
		for i, d := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = in.Instrument(ctx, d.s, []instrument.Target{d.target(tg)})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "session %d", i+1)
		}
		assertEntries(t, vars(e.config(tg.Name)), devs...)

		results := make([][]instrument.Result, len(devs))
		for i, d := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = in.Restore(ctx, d.s.ID)
			}()
		}
		wg.Wait()
		restored := 0
		for i, err := range errs {
			require.NoError(t, err)
			require.Len(t, results[i], 1)
			switch results[i][0].Outcome {
			case instrument.Restored:
				restored++
			case instrument.Left:
			default:
				t.Errorf("session %d: %s: %s", i+1, results[i][0].Outcome, results[i][0].Message)
			}
		}
		assert.Equal(t, 1, restored, "exactly one session was the last one out")
		assert.Equal(t, before, restorable(t, e.raw(tg.Name)), "back byte for byte")
	})
}

func TestSharedSelectiveRefusedWhenTheEnvironmentWouldExceed4KB(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		in := e.sharedInstrumenter(cs.claims)
		a, b := newDev(t, cs, "s-a", "alice@host"), newDev(t, cs, "s-b", "bob@host")
		// Measure what one session takes on a function with an empty PAD.
		probe := e.create(fn{what: "full", env: map[string]string{"PAD": ""}})
		_, err := in.Instrument(ctx, a.s, []instrument.Target{a.target(probe)})
		require.NoError(t, err)
		withA := instrument.EnvironmentSize(vars(e.config(probe.Name)))
		_, err = in.Instrument(ctx, b.s, []instrument.Target{b.target(probe)})
		require.NoError(t, err)
		bCost := instrument.EnvironmentSize(vars(e.config(probe.Name))) - withA
		require.Positive(t, bCost)

		// A function where the first session fits and the second does not.
		tg := e.create(fn{what: "full", env: map[string]string{"PAD": strings.Repeat("p", instrument.MaxEnvironmentBytes-withA-bCost+1)}})
		before := restorable(t, e.raw(tg.Name))
		_, err = in.Instrument(ctx, a.s, []instrument.Target{a.target(tg)})
		require.NoError(t, err)
		withOne := restorable(t, e.raw(tg.Name))
		_, err = in.Instrument(ctx, b.s, []instrument.Target{b.target(tg)})
		var refused *instrument.RefusedError
		require.ErrorAs(t, err, &refused)
		assert.Contains(t, err.Error(), fmt.Sprintf("over Lambda's %d-byte limit", instrument.MaxEnvironmentBytes))
		assert.Equal(t, withOne, restorable(t, e.raw(tg.Name)), "the refused join changed nothing")
		assertEntries(t, vars(e.config(tg.Name)), a)
		snap, _, err := cs.claims.GetSnapshot(ctx, tg.ARN)
		require.NoError(t, err)
		assert.Equal(t, []string{"s-a"}, holderIDs(snap.Holders), "the refused session holds nothing")

		_, err = in.Restore(ctx, a.s.ID)
		require.NoError(t, err)
		assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
	})
}

// TestTheSweepTakesAnExpiredSelectiveSessionOutOfASharedFunction: the relay's dead-man sweep, on the DynamoDB
// store, ends a selective session that expired; the function others still share keeps their entries and loses
// only its own, and when the last one expires too the function goes back byte for byte.
func TestTheSweepTakesAnExpiredSelectiveSessionOutOfASharedFunction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cs := e.dynamoClaimStore()
	var offset time.Duration
	var mu sync.Mutex
	cs.st.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) }
	advance := func(d time.Duration) { mu.Lock(); offset += d; mu.Unlock() }
	in := e.sharedInstrumenter(cs.claims)
	tg := e.create(fn{what: "sweep", env: map[string]string{"TABLE": "orders"}})
	before := restorable(t, e.raw(tg.Name))
	a, b := newDev(t, cs, "s-a", "alice@host"), newDev(t, cs, "s-b", "bob@host")
	// a's session ends in 10 minutes, b's in an hour (newDev's).
	require.NoError(t, cs.st.PutSession(ctx, relay.NewSession(a.s.ID, a.s.Owner, time.Now().Add(10*time.Minute))))
	join(t, in, tg, a, b)
	sweeper := &instrument.Sweeper{Store: cs.st, Restorer: &instrument.Restorer{Instrumenter: in, Logger: slog.New(slog.DiscardHandler)},
		Grace: 3 * time.Hour, Logger: slog.New(slog.DiscardHandler)} // judged by expiry alone

	report, err := sweeper.Sweep(ctx)
	require.NoError(t, err)
	assert.Empty(t, report.Swept, "nobody is stale yet")

	advance(30 * time.Minute)
	report, err = sweeper.Sweep(ctx)
	require.NoError(t, err)
	require.Len(t, report.Swept, 1)
	assert.Equal(t, "s-a", report.Swept[0].Session)
	assert.Empty(t, report.Swept[0].Error)
	assertEntries(t, vars(e.config(tg.Name)), b)
	snap, _, err := cs.claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	assert.Equal(t, []string{"s-b"}, holderIDs(snap.Holders))

	advance(time.Hour)
	report, err = sweeper.Sweep(ctx)
	require.NoError(t, err)
	require.Len(t, report.Swept, 1)
	assert.Equal(t, "s-b", report.Swept[0].Session)
	assert.Empty(t, report.Swept[0].Error)
	assert.Equal(t, before, restorable(t, e.raw(tg.Name)), "the last one out put it back byte for byte")
	_, ok, err := cs.claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestDetachTakesAnEndedSelectiveSessionOutAndLeavesTheLiveOnes: `plldb detach --stack-name` (Recover) after
// a developer's plldb crashed takes that session's entries out of a function a colleague still shares, and
// leaves the colleague's.
func TestDetachTakesAnEndedSelectiveSessionOutAndLeavesTheLiveOnes(t *testing.T) {
	eachClaimStore(t, func(t *testing.T, e *env, cs claimStore) {
		ctx := context.Background()
		tg := e.create(fn{what: "recover", env: map[string]string{"TABLE": "orders"}})
		in := e.sharedInstrumenter(cs.claims)
		a, b, c := newDev(t, cs, "s-a", "alice@host"), newDev(t, cs, "s-b", "bob@host"), newDev(t, cs, "s-c", "carol@host")
		join(t, in, tg, a, b, c)
		cs.end(t, a.s.ID)
		cs.end(t, c.s.ID) // two ended sessions: both sets of entries go
		cs.start(t, "detach-1", "alice@host")
		results, err := in.Recover(ctx, instrument.Recovery{Session: "detach-1", Owner: "alice@host", FunctionARNs: []string{tg.ARN}})
		require.NoError(t, err)
		require.Len(t, results, 1)
		assert.Equal(t, instrument.Left, results[0].Outcome, results[0].Message)
		assertEntries(t, vars(e.config(tg.Name)), b)

		results, err = in.Recover(ctx, instrument.Recovery{Session: "detach-1", Owner: "alice@host", FunctionARNs: []string{tg.ARN}})
		require.NoError(t, err)
		require.Len(t, results, 1)
		assert.Equal(t, instrument.Held, results[0].Outcome, "bob's live session keeps it")
		assert.Contains(t, results[0].Message, "s-b (bob@host)")
		assertEntries(t, vars(e.config(tg.Name)), b)
	})
}

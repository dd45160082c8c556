package instrument_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/cloud/instrument"
)

func TestInstrumentThenRestorePutsEveryFunctionBackByteForByte(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	own1, own2 := e.userLayer("own1"), e.userLayer("own2")
	targets := []instrument.Target{
		e.create(fn{what: "noenv"}),
		e.create(fn{what: "emptyenv", env: map[string]string{}}),
		e.create(fn{what: "values", env: map[string]string{"TABLE": "orders", "QUOTED": `a "b" <c> & é`}, timeout: 30}),
		e.create(fn{what: "wrapper", env: map[string]string{"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-instrument", "X": "1"}}),
		e.create(fn{what: "layers", layers: []string{own1, own2}}),
		e.create(fn{what: "arm", arch: types.ArchitectureArm64, env: map[string]string{"A": "b"}}),
	}
	before := map[string]map[string]string{}
	for _, tg := range targets {
		before[tg.Name] = restorable(t, e.raw(tg.Name))
	}
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)

	e.counter.Reset()
	att, err := in.Instrument(ctx, session("s-exact"), targets)
	require.NoError(t, err)
	require.Len(t, att.Functions, len(targets))
	assert.Empty(t, att.Recovered)
	assert.LessOrEqual(t, e.counter.Total(), 3*len(targets), "Lambda calls for attach: %v", e.counter.Counts())

	for _, tg := range targets {
		c := e.config(tg.Name)
		v := vars(c)
		assert.Equal(t, instrument.WrapperPath, v["AWS_LAMBDA_EXEC_WRAPPER"], tg.LogicalID)
		assert.Equal(t, "wss://relay.example.com/dev", v["PLLDB_ENDPOINT"])
		assert.Equal(t, "s-exact", v["PLLDB_SESSION"])
		assert.Equal(t, "relay.example.com", v["PLLDB_AUDIENCE"])
		assert.Equal(t, tg.LogicalID, v["PLLDB_LOGICAL_ID"])
		key, err := base64.StdEncoding.DecodeString(v["PLLDB_FUNCTION_KEY"])
		require.NoError(t, err)
		assert.Equal(t, tg.Key, key)
		assert.Equal(t, int32(900), aws.ToInt32(c.Timeout))

		snap, ok, err := claims.GetSnapshot(ctx, tg.ARN)
		require.NoError(t, err)
		require.True(t, ok)
		assert.NotEmpty(t, snap.RevisionAfter)
		assert.Equal(t, string(e.raw(tg.Name)) != "", true)
		assert.Equal(t, before[tg.Name], restorable(t, snap.Config), "the snapshot holds the configuration before any change")
	}
	wrapped := e.config(targets[3].Name)
	assert.Equal(t, "/opt/otel-instrument", vars(wrapped)["PLLDB_PREV_WRAPPER"], "an existing wrapper is chained")
	assert.Equal(t, "1", vars(wrapped)["X"])
	assert.NotContains(t, vars(e.config(targets[0].Name)), "PLLDB_PREV_WRAPPER")
	assert.Equal(t, []string{own1, own2, e.layers.X86_64}, layerList(e.config(targets[4].Name)), "own layers stay first")
	assert.Equal(t, []string{e.layers.Arm64}, layerList(e.config(targets[5].Name)), "arm64 gets the arm64 layer")
	assert.Equal(t, []string{e.layers.X86_64}, layerList(e.config(targets[0].Name)), "x86_64 gets the x86_64 layer")
	snap, _, _ := claims.GetSnapshot(ctx, targets[3].ARN)
	assert.Equal(t, "/opt/otel-instrument", snap.ExecWrapper)
	snap, _, _ = claims.GetSnapshot(ctx, targets[0].ARN)
	assert.False(t, snap.HasEnvironment)

	e.counter.Reset()
	results, err := in.Restore(ctx, "s-exact")
	require.NoError(t, err)
	require.Len(t, results, len(targets))
	for _, r := range results {
		assert.Equal(t, instrument.Restored, r.Outcome, "%s: %s", r.FunctionName, r.Message)
	}
	assert.LessOrEqual(t, e.counter.Total(), 3*len(targets), "Lambda calls for detach: %v", e.counter.Counts())
	for _, tg := range targets {
		assert.Equal(t, before[tg.Name], restorable(t, e.raw(tg.Name)), "%s is back byte for byte", tg.LogicalID)
	}
	left, err := claims.SessionSnapshots(ctx, "s-exact")
	require.NoError(t, err)
	assert.Empty(t, left, "restore releases every claim")
}

func TestInstrumentRefusesBeforeChangingAnything(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	big := map[string]string{"BLOB": strings.Repeat("x", 3900)}
	cases := []struct {
		name   string
		bad    fn
		reason []string
		setup  func(claims *instrument.MemoryClaims, bad instrument.Target)
	}{
		{name: "five layers", bad: fn{what: "five"}, reason: []string{"5 layers"}},
		{name: "environment over 4 KB", bad: fn{what: "big", env: big}, reason: []string{"bytes", "4096"}},
		{name: "OS-only runtime", bad: fn{what: "provided", runtime: types.RuntimeProvidedal2023}, reason: []string{"provided.al2023", "exec wrappers"}},
		{name: "container image", bad: fn{what: "image", image: true}, reason: []string{"container image"}},
		{name: "held by another live session", bad: fn{what: "held"}, reason: []string{"s-bob", "bob@desk"},
			setup: func(claims *instrument.MemoryClaims, bad instrument.Target) {
				require.NoError(t, claims.Claim(ctx, instrument.Snapshot{FunctionARN: bad.ARN, FunctionName: bad.Name, Session: "s-bob"}, "bob@desk"))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "five layers" {
				for range 5 {
					tc.bad.layers = append(tc.bad.layers, e.userLayer("l"))
				}
			}
			good := e.create(fn{what: "good", env: map[string]string{"K": "v"}})
			bad := e.create(tc.bad)
			claims := instrument.NewMemoryClaims()
			if tc.setup != nil {
				tc.setup(claims, bad)
			}
			goodBefore, badBefore := e.raw(good.Name), e.raw(bad.Name)

			_, err := e.instrumenter(claims).Instrument(ctx, session("s-refused"), []instrument.Target{good, bad})
			var refused *instrument.RefusedError
			require.ErrorAs(t, err, &refused)
			require.Len(t, refused.Refusals, 1)
			assert.Equal(t, bad.Name, refused.Refusals[0].Function.Name)
			assert.True(t, contains(err.Error(), append(tc.reason, bad.Name, "nothing was changed")...), "message: %s", err)
			assert.NotContains(t, err.Error(), base64.StdEncoding.EncodeToString(good.Key), "no key in messages")

			assert.Equal(t, string(goodBefore), string(e.raw(good.Name)), "the good function is untouched")
			assert.Equal(t, string(badBefore), string(e.raw(bad.Name)), "the refused function is untouched")
			mine, err := claims.SessionSnapshots(ctx, "s-refused")
			require.NoError(t, err)
			assert.Empty(t, mine, "a refused attach leaves no claims")
		})
	}
}

func TestSecondDeveloperIsRefusedWithWhoHoldsTheFunction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "shared", env: map[string]string{"A": "1"}})
	before := restorable(t, e.raw(tg.Name))
	claims := instrument.NewMemoryClaims()
	_, err := e.instrumenter(claims).Instrument(ctx, session("s-alice"), []instrument.Target{tg})
	require.NoError(t, err)
	attached := e.raw(tg.Name)

	bob := instrument.Session{ID: "s-bob", Owner: "bob@desk", Endpoint: "wss://relay.example.com/dev"}
	_, err = e.instrumenter(claims).Instrument(ctx, bob, []instrument.Target{tg})
	var refused *instrument.RefusedError
	require.ErrorAs(t, err, &refused)
	require.NotNil(t, refused.Refusals[0].Held)
	assert.Equal(t, "s-alice", refused.Refusals[0].Held.Session)
	assert.Equal(t, "alice@laptop", refused.Refusals[0].Held.Owner)
	assert.Contains(t, err.Error(), "alice@laptop")
	assert.Equal(t, string(attached), string(e.raw(tg.Name)), "bob changed nothing")

	results, err := e.instrumenter(claims).Restore(ctx, "s-alice")
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
	assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
}

func TestAttachingAgainInTheSameSessionKeepsTheFirstSnapshot(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "again", env: map[string]string{"AWS_LAMBDA_EXEC_WRAPPER": "/opt/mine", "A": "1"}, layers: []string{e.userLayer("own")}})
	before := restorable(t, e.raw(tg.Name))
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	_, err := in.Instrument(ctx, session("s-again"), []instrument.Target{tg})
	require.NoError(t, err)
	_, err = in.Instrument(ctx, session("s-again"), []instrument.Target{tg})
	require.NoError(t, err, "attaching twice is allowed")
	c := e.config(tg.Name)
	assert.Equal(t, "/opt/mine", vars(c)["PLLDB_PREV_WRAPPER"], "the wrapper chain is built on the first snapshot, not on plldb's own wrapper")
	assert.Len(t, c.Layers, 2, "the plldb layer is not added twice")

	results, err := in.Restore(ctx, "s-again")
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
	assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
}

func TestConcurrentChangeBetweenAttachAndDetachIsMergedNotOverwritten(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	changed := e.create(fn{what: "changed", env: map[string]string{"A": "1"}})
	kept := e.create(fn{what: "kept", env: map[string]string{"B": "2"}})
	changedBefore := restorable(t, e.raw(changed.Name))
	keptBefore := restorable(t, e.raw(kept.Name))
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	_, err := in.Instrument(ctx, session("s-conc"), []instrument.Target{changed, kept})
	require.NoError(t, err)

	// Someone else deploys a new setting while the session is attached.
	theirs := vars(e.config(changed.Name))
	theirs["FEATURE"] = "on"
	_, err = e.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(changed.Name),
		Environment:  &types.Environment{Variables: theirs},
	})
	require.NoError(t, err)

	results, err := in.Restore(ctx, "s-conc")
	require.NoError(t, err)
	byName := map[string]instrument.Result{}
	for _, r := range results {
		byName[r.FunctionName] = r
	}
	assert.Equal(t, instrument.Merged, byName[changed.Name].Outcome, byName[changed.Name].Message)
	assert.Contains(t, byName[changed.Name].Message, "changed by someone else since attach")
	assert.Equal(t, map[string]string{"A": "1", "FEATURE": "on"}, vars(e.config(changed.Name)), "their variable stays, plldb's go")
	got := restorable(t, e.raw(changed.Name))
	assert.Equal(t, changedBefore["Layers"], got["Layers"])
	assert.Equal(t, changedBefore["Timeout"], got["Timeout"])
	assert.Equal(t, instrument.Restored, byName[kept.Name].Outcome)
	assert.Equal(t, keptBefore, restorable(t, e.raw(kept.Name)))
	left, err := claims.SessionSnapshots(ctx, "s-conc")
	require.NoError(t, err)
	assert.Empty(t, left, "the claim on the merged function is released too")
}

func TestCrashRecoveryRestoresFromTheClaimStoreAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	targets := []instrument.Target{
		e.create(fn{what: "crash1"}),
		e.create(fn{what: "crash2", env: map[string]string{"AWS_LAMBDA_EXEC_WRAPPER": "/opt/w", "Z": "z"}, layers: []string{e.userLayer("own")}}),
	}
	before := map[string]map[string]string{}
	for _, tg := range targets {
		before[tg.Name] = restorable(t, e.raw(tg.Name))
	}
	claims := instrument.NewMemoryClaims()
	func() {
		// The attaching process: everything it knows dies with it, except what it wrote to the store.
		_, err := e.instrumenter(claims).Instrument(ctx, session("s-crashed"), targets)
		require.NoError(t, err)
	}()

	// What a later process has: a Lambda client and the store; no layer ARNs, no memory of the attach.
	fresh := &instrument.Instrumenter{Lambda: e.lambda, Claims: claims}
	t.Run("detach while the crashed session still counts as live", func(t *testing.T) {
		results, err := fresh.Recover(ctx, instrument.Recovery{Session: "s-detach", Owner: "alice@laptop", FunctionARNs: targetsARNs(targets)})
		require.NoError(t, err)
		require.Len(t, results, 2)
		for _, r := range results {
			assert.Equal(t, instrument.Held, r.Outcome)
			assert.Contains(t, r.Message, "s-crashed")
		}
		assert.Equal(t, instrument.WrapperPath, vars(e.config(targets[0].Name))["AWS_LAMBDA_EXEC_WRAPPER"], "left alone")
	})

	t.Run("detach --stack-name after the session ended", func(t *testing.T) {
		claims.EndSession("s-crashed")
		results, err := fresh.Recover(ctx, instrument.Recovery{Session: "s-detach", Owner: "alice@laptop", FunctionARNs: targetsARNs(targets)})
		require.NoError(t, err)
		assert.Equal(t, map[string]instrument.Outcome{targets[0].Name: instrument.Restored, targets[1].Name: instrument.Restored}, outcomes(results))
		for _, tg := range targets {
			assert.Equal(t, before[tg.Name], restorable(t, e.raw(tg.Name)), tg.LogicalID)
			_, ok, err := claims.GetSnapshot(ctx, tg.ARN)
			require.NoError(t, err)
			assert.False(t, ok, "claim released")
		}
	})
}

func TestNextAttachRestoresWhatACrashedSessionLeftFirst(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "next", env: map[string]string{"AWS_LAMBDA_EXEC_WRAPPER": "/opt/w", "Z": "z"}})
	before := restorable(t, e.raw(tg.Name))
	claims := instrument.NewMemoryClaims()
	_, err := e.instrumenter(claims).Instrument(ctx, session("s-old"), []instrument.Target{tg})
	require.NoError(t, err)
	claims.EndSession("s-old")

	in := e.instrumenter(claims)
	att, err := in.Instrument(ctx, session("s-new"), []instrument.Target{tg})
	require.NoError(t, err)
	require.Len(t, att.Recovered, 1)
	assert.Equal(t, instrument.Restored, att.Recovered[0].Outcome)
	c := e.config(tg.Name)
	assert.Equal(t, "s-new", vars(c)["PLLDB_SESSION"])
	assert.Equal(t, "/opt/w", vars(c)["PLLDB_PREV_WRAPPER"], "built on the original configuration, not on the leftovers")
	snap, ok, err := claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, before, restorable(t, snap.Config), "the new snapshot is the original configuration")

	results, err := in.Restore(ctx, "s-new")
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
	assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
}

func TestForcedRecoveryRestoresASessionTheStoreStillCountsLive(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "force", env: map[string]string{"A": "1"}})
	before := restorable(t, e.raw(tg.Name))
	claims := instrument.NewMemoryClaims()
	_, err := e.instrumenter(claims).Instrument(ctx, session("s-mine"), []instrument.Target{tg})
	require.NoError(t, err)
	results, err := e.instrumenter(claims).Recover(ctx, instrument.Recovery{Session: "s-detach", FunctionARNs: []string{tg.ARN}, Force: true})
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
	assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
	_, ok, err := claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	assert.False(t, ok)
}

// failingRevision is a claim store whose SetRevisionAfter fails, as when plldb dies between its update and
// recording the revision.
type failingRevision struct{ *instrument.MemoryClaims }

func (failingRevision) SetRevisionAfter(context.Context, string, string, string) error {
	return errors.New("store unavailable")
}

func TestFailedAttachRollsBackWithoutARecordedRevision(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "rollback", env: map[string]string{"AWS_LAMBDA_EXEC_WRAPPER": "/opt/w"}, layers: []string{e.userLayer("own")}})
	before := restorable(t, e.raw(tg.Name))
	claims := instrument.NewMemoryClaims()
	_, err := e.instrumenter(failingRevision{claims}).Instrument(ctx, session("s-fail"), []instrument.Target{tg})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "store unavailable")
	assert.Equal(t, before, restorable(t, e.raw(tg.Name)), "the function was put back, recognised as changed only by plldb")
	_, ok, err := claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	assert.False(t, ok, "claim released")
}

func TestRestoreOfADeletedFunctionReleasesTheClaim(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "deleted"})
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	_, err := in.Instrument(ctx, session("s-del"), []instrument.Target{tg})
	require.NoError(t, err)
	_, err = e.lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(tg.Name)})
	require.NoError(t, err)
	results, err := in.Restore(ctx, "s-del")
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Gone}, outcomes(results))
	left, err := claims.SessionSnapshots(ctx, "s-del")
	require.NoError(t, err)
	assert.Empty(t, left)
}

func TestInstrumentRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := e.instrumenter(instrument.NewMemoryClaims())
	tg := instrument.Target{StackFunction: instrument.StackFunction{LogicalID: "F", Name: "f", ARN: "arn:aws:lambda:us-east-1:123456789012:function:f"}, Key: make([]byte, 32)}
	for name, call := range map[string]func() error{
		"empty session": func() error { _, err := in.Instrument(ctx, instrument.Session{Endpoint: "wss://x"}, nil); return err },
		"no endpoint":   func() error { _, err := in.Instrument(ctx, instrument.Session{ID: "s"}, nil); return err },
		"short key": func() error {
			k := tg
			k.Key = []byte("short")
			_, err := in.Instrument(ctx, session("s"), []instrument.Target{k})
			return err
		},
		"twice": func() error { _, err := in.Instrument(ctx, session("s"), []instrument.Target{tg, tg}); return err },
		"one key for two functions": func() error {
			g := instrument.Target{StackFunction: instrument.StackFunction{LogicalID: "G", Name: "g", ARN: "arn:aws:lambda:us-east-1:123456789012:function:g"}, Key: tg.Key}
			_, err := in.Instrument(ctx, session("s"), []instrument.Target{tg, g})
			if err != nil && !strings.Contains(err.Error(), "each function needs its own") {
				return nil // refused, but not for the shared key
			}
			return err
		},
		"no ARN": func() error {
			_, err := in.Instrument(ctx, session("s"), []instrument.Target{{Key: []byte("k")}})
			return err
		},
		"restore": func() error { _, err := in.Restore(ctx, ""); return err },
		"no layers": func() error {
			bare := *in
			bare.Layers = instrument.LayerARNs{}
			_, err := bare.Instrument(ctx, session("s"), []instrument.Target{tg})
			return err
		},
	} {
		assert.Error(t, call(), name)
	}
	_, err := in.Instrument(ctx, session("s-missing"), []instrument.Target{tg})
	require.Error(t, err, "an unknown function")
	assert.Contains(t, err.Error(), "read configuration")
}

func TestNextAttachMergesLeftoversSomeoneElseChanged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "leftover", env: map[string]string{"A": "1"}})
	before := restorable(t, e.raw(tg.Name))
	claims := instrument.NewMemoryClaims()
	_, err := e.instrumenter(claims).Instrument(ctx, session("s-gone"), []instrument.Target{tg})
	require.NoError(t, err)
	claims.EndSession("s-gone")
	theirs := vars(e.config(tg.Name))
	theirs["NEW"] = "x"
	_, err = e.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(tg.Name), Environment: &types.Environment{Variables: theirs}})
	require.NoError(t, err)

	in := e.instrumenter(claims)
	att, err := in.Instrument(ctx, session("s-next"), []instrument.Target{tg})
	require.NoError(t, err)
	require.Len(t, att.Recovered, 1)
	assert.Equal(t, instrument.Merged, att.Recovered[0].Outcome, att.Recovered[0].Message)
	snap, ok, err := claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, map[string]string{"A": "1", "NEW": "x"}, snap.Environment, "the new snapshot is the merged configuration")
	assert.Equal(t, "s-next", vars(e.config(tg.Name))["PLLDB_SESSION"])

	results, err := in.Restore(ctx, "s-next")
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
	got := restorable(t, e.raw(tg.Name))
	assert.Equal(t, before["Timeout"], got["Timeout"])
	assert.Equal(t, map[string]string{"A": "1", "NEW": "x"}, vars(e.config(tg.Name)))
}

func TestEnvironmentLimitIsExactlyLambdas(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := session("s-limit")
	// padded gives the function a PAD variable sized so that its environment with plldb's variables takes
	// total bytes.
	padded := func(what string, total int) instrument.Target {
		tg := e.create(fn{what: what})
		withPlldb := map[string]string{
			"PAD": "", "AWS_LAMBDA_EXEC_WRAPPER": instrument.WrapperPath, "PLLDB_ENDPOINT": s.Endpoint, "PLLDB_SESSION": s.ID,
			"PLLDB_FUNCTION_KEY": base64.StdEncoding.EncodeToString(tg.Key), "PLLDB_AUDIENCE": s.Audience, "PLLDB_LOGICAL_ID": tg.LogicalID,
		}
		pad := strings.Repeat("p", total-instrument.EnvironmentSize(withPlldb))
		_, err := e.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(tg.Name), Environment: &types.Environment{Variables: map[string]string{"PAD": pad}},
		})
		require.NoError(t, err)
		return tg
	}
	fits, over := padded("fits", instrument.MaxEnvironmentBytes), padded("over", instrument.MaxEnvironmentBytes+1)
	in := e.instrumenter(instrument.NewMemoryClaims())

	_, err := in.Instrument(ctx, s, []instrument.Target{over})
	var refused *instrument.RefusedError
	require.ErrorAs(t, err, &refused)
	assert.Contains(t, err.Error(), "4097 bytes")

	_, err = in.Instrument(ctx, s, []instrument.Target{fits})
	require.NoError(t, err, "4096 bytes is within the limit")
	assert.Equal(t, instrument.MaxEnvironmentBytes, instrument.EnvironmentSize(vars(e.config(fits.Name))))
	results, err := in.Restore(ctx, s.ID)
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{fits.Name: instrument.Restored}, outcomes(results))
}

func TestSelectiveAttachAddsTheKnockVariablesAndRestoreRemovesThem(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	s := session("s-selective")
	s.Selective, s.KnockKey, s.KnockStack = true, pub, "orders-dev"
	tg := e.create(fn{what: "sel", env: map[string]string{"TABLE": "orders"}})
	before := restorable(t, e.raw(tg.Name))
	in := e.instrumenter(instrument.NewMemoryClaims())

	_, err = in.Instrument(ctx, s, []instrument.Target{tg})
	require.NoError(t, err)
	v := vars(e.config(tg.Name))
	assert.Equal(t, "true", v["PLLDB_SELECTIVE"])
	assert.Equal(t, "s-selective="+base64.RawURLEncoding.EncodeToString(pub), v["PLLDB_KNOCK_KEYS"])
	assert.Equal(t, "orders-dev", v["PLLDB_KNOCK_STACK"])
	assert.Equal(t, selenv.FormatSessions([]selenv.Link{{Session: "s-selective", FunctionKey: tg.Key}}), v["PLLDB_SESSIONS"],
		"the key is listed under the session the layer routes knocks to, with its own link")
	for _, k := range []string{"PLLDB_SESSION", "PLLDB_FUNCTION_KEY", "PLLDB_CREDENTIALS"} {
		assert.NotContains(t, v, k, "selective mode names its sessions in PLLDB_SESSIONS only")
	}
	assert.Equal(t, "orders", v["TABLE"])

	results, err := in.Restore(ctx, s.ID)
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
	after := vars(e.config(tg.Name))
	for _, k := range []string{"PLLDB_SELECTIVE", "PLLDB_KNOCK_KEYS", "PLLDB_KNOCK_STACK", "PLLDB_SESSIONS"} {
		assert.NotContains(t, after, k)
	}
	assert.Equal(t, before, restorable(t, e.raw(tg.Name)), "back byte for byte")
}

func TestSelectiveVariablesCountInTheEnvironmentLimit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	s := session("s-sellimit")
	s.Selective, s.KnockKey, s.KnockStack = true, pub, "orders-dev"
	tg := e.create(fn{what: "sellimit"})
	withPlldb := map[string]string{
		"PAD": "", "AWS_LAMBDA_EXEC_WRAPPER": instrument.WrapperPath, "PLLDB_ENDPOINT": s.Endpoint, "PLLDB_SESSION": s.ID,
		"PLLDB_FUNCTION_KEY": base64.StdEncoding.EncodeToString(tg.Key), "PLLDB_AUDIENCE": s.Audience, "PLLDB_LOGICAL_ID": tg.LogicalID,
	}
	// Fits exactly without the selective variables: with them it must be refused.
	pad := strings.Repeat("p", instrument.MaxEnvironmentBytes-instrument.EnvironmentSize(withPlldb))
	_, err = e.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(tg.Name), Environment: &types.Environment{Variables: map[string]string{"PAD": pad}},
	})
	require.NoError(t, err)
	in := e.instrumenter(instrument.NewMemoryClaims())
	_, err = in.Instrument(ctx, s, []instrument.Target{tg})
	var refused *instrument.RefusedError
	require.ErrorAs(t, err, &refused)
	assert.NotContains(t, vars(e.config(tg.Name)), "PLLDB_SELECTIVE", "nothing changed")

	s.Selective = false
	_, err = in.Instrument(ctx, s, []instrument.Target{tg})
	require.NoError(t, err, "the same function fits without selective mode")
	_, err = in.Restore(ctx, s.ID)
	require.NoError(t, err)
}

func TestSelectiveAttachNeedsAKeyAndAStack(t *testing.T) {
	e := newEnv(t)
	tg := e.create(fn{what: "selbad"})
	in := e.instrumenter(instrument.NewMemoryClaims())
	s := session("s-selbad")
	s.Selective, s.KnockStack = true, "orders-dev"
	_, err := in.Instrument(context.Background(), s, []instrument.Target{tg})
	assert.ErrorContains(t, err, "knock key")
	pub, _, _ := ed25519.GenerateKey(nil)
	s.KnockKey, s.KnockStack = pub, ""
	_, err = in.Instrument(context.Background(), s, []instrument.Target{tg})
	assert.ErrorContains(t, err, "stack name")
}

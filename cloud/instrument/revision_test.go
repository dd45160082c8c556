package instrument_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/instrument"
)

// revisions adds what moto 5.2.5 lacks: Lambda's RevisionId. Every answer carries the function's revision, a
// successful update moves it, and an update with a stale RevisionId fails with PreconditionFailedException,
// as Lambda documents. Everything else is moto's.
type revisions struct {
	*lambda.Client

	mu  sync.Mutex
	rev map[string]int
	// serial makes an update's check of the RevisionId and its write one step, as in Lambda, so that
	// concurrent updates with the same RevisionId cannot both pass.
	serial sync.Mutex
	// beforeUpdate runs once before the next update plldb sends, as someone else acting at that moment.
	beforeUpdate func()
}

func (r *revisions) current(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("rev-%d", r.rev[name])
}

func (r *revisions) GetFunctionConfiguration(ctx context.Context, in *lambda.GetFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error) {
	// Lambda answers a configuration and its RevisionId together: an update landing between reading the one
	// and the other would label the old configuration with the new revision, and a guarded update built on it
	// would pass and undo that update.
	r.serial.Lock()
	defer r.serial.Unlock()
	out, err := r.Client.GetFunctionConfiguration(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	out.RevisionId = aws.String(r.current(aws.ToString(out.FunctionName)))
	return out, nil
}

func (r *revisions) UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
	r.mu.Lock()
	hook := r.beforeUpdate
	r.beforeUpdate = nil
	r.mu.Unlock()
	if hook != nil {
		hook()
	}
	r.serial.Lock()
	defer r.serial.Unlock()
	cur, err := r.Client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: in.FunctionName})
	if err != nil {
		return nil, err
	}
	name := aws.ToString(cur.FunctionName)
	if in.RevisionId != nil && *in.RevisionId != r.current(name) {
		return nil, &types.PreconditionFailedException{Message: aws.String("The Revision Id provided does not match the latest Revision Id.")}
	}
	out, err := r.Client.UpdateFunctionConfiguration(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.rev[name]++
	r.mu.Unlock()
	out.RevisionId = aws.String(r.current(name))
	return out, nil
}

// someoneElse updates the function through the same revision bookkeeping, as a deploy would.
func (r *revisions) someoneElse(t testing.TB, name string) {
	t.Helper()
	cur, err := r.Client.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
	require.NoError(t, err)
	_, err = r.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(name),
		Description:  aws.String("deployed by someone else"),
		// moto needs the environment whenever it is given; keep what is there.
		Environment: &types.Environment{Variables: vars(cur)},
	})
	require.NoError(t, err)
}

func TestAConcurrentDeployDuringAttachIsNeverOverwritten(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	racing := e.create(fn{what: "racing", env: map[string]string{"A": "1"}})
	calm := e.create(fn{what: "calm", env: map[string]string{"B": "2"}})
	calmBefore := restorable(t, e.raw(calm.Name))
	rl := &revisions{Client: e.lambda, rev: map[string]int{}}
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	in.Lambda = rl
	in.Concurrency = 1 // the hook fires before the first update: make that the racing function's
	rl.beforeUpdate = func() { rl.someoneElse(t, racing.Name) }

	_, err := in.Instrument(ctx, session("s-race"), []instrument.Target{racing, calm})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "changed while plldb was attaching")
	assert.Contains(t, err.Error(), racing.Name)

	c := e.config(racing.Name)
	assert.Equal(t, "deployed by someone else", aws.ToString(c.Description), "their deploy stands")
	assert.Equal(t, map[string]string{"A": "1"}, vars(c), "plldb did not write over it")
	assert.Equal(t, calmBefore, restorable(t, e.raw(calm.Name)), "the other function was rolled back")
	for _, tg := range []instrument.Target{racing, calm} {
		_, ok, err := claims.GetSnapshot(ctx, tg.ARN)
		require.NoError(t, err)
		assert.False(t, ok, "no claim left on %s", tg.LogicalID)
	}
}

func TestRestoreComparesRevisionIds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	changed := e.create(fn{what: "changed"})
	kept := e.create(fn{what: "kept", env: map[string]string{"K": "v"}})
	keptBefore := restorable(t, e.raw(kept.Name))
	rl := &revisions{Client: e.lambda, rev: map[string]int{}}
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	in.Lambda = rl
	att, err := in.Instrument(ctx, session("s-rev"), []instrument.Target{changed, kept})
	require.NoError(t, err)
	for _, a := range att.Functions {
		assert.Equal(t, "rev-1", a.Revision, "the revision Lambda reports after plldb's update is recorded")
	}

	rl.someoneElse(t, changed.Name)
	results, err := in.Restore(ctx, "s-rev")
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{changed.Name: instrument.Merged, kept.Name: instrument.Restored}, outcomes(results))
	assert.Equal(t, "deployed by someone else", aws.ToString(e.config(changed.Name).Description), "their change stays")
	assert.NotContains(t, vars(e.config(changed.Name)), "AWS_LAMBDA_EXEC_WRAPPER", "plldb's change goes")
	assert.Equal(t, keptBefore, restorable(t, e.raw(kept.Name)))
}

// alwaysRacing is Lambda with someone else updating the function right before every update plldb sends.
type alwaysRacing struct {
	*revisions
	t    testing.TB
	name string
}

func (a alwaysRacing) UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
	a.someoneElse(a.t, a.name)
	return a.revisions.UpdateFunctionConfiguration(ctx, in, optFns...)
}

// TestARevisionRaceThatPersistsKeepsTheClaim: every restore plldb computes is refused by the RevisionId check,
// because someone keeps deploying. plldb gives up without overwriting anything and keeps the claim.
func TestARevisionRaceThatPersistsKeepsTheClaim(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "busy", env: map[string]string{"A": "1"}})
	rl := &revisions{Client: e.lambda, rev: map[string]int{}}
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	in.Lambda = rl
	_, err := in.Instrument(ctx, session("s-busy"), []instrument.Target{tg})
	require.NoError(t, err)

	in.Lambda = alwaysRacing{revisions: rl, t: t, name: tg.Name}
	results, err := in.Restore(ctx, "s-busy")
	require.NoError(t, err)
	require.Len(t, results, 1)
	assert.Equal(t, instrument.Conflict, results[0].Outcome)
	assert.True(t, contains(results[0].Message, "kept changing", "RevisionId", "plldb detach"), results[0].Message)
	assert.Equal(t, instrument.WrapperPath, vars(e.config(tg.Name))["AWS_LAMBDA_EXEC_WRAPPER"], "nothing of theirs was overwritten")
	_, held, err := claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	assert.True(t, held, "the claim stays for a later detach")

	in.Lambda = rl // the deploys stop
	results, err = in.Restore(ctx, "s-busy")
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Merged}, outcomes(results))
	assert.Equal(t, map[string]string{"A": "1"}, vars(e.config(tg.Name)))
}

func TestReattachAfterSomeoneElseChangedTheFunctionIsRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "reattach", env: map[string]string{"A": "1"}})
	rl := &revisions{Client: e.lambda, rev: map[string]int{}}
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	in.Lambda = rl
	_, err := in.Instrument(ctx, session("s-re"), []instrument.Target{tg})
	require.NoError(t, err)
	rl.someoneElse(t, tg.Name)
	theirs := e.raw(tg.Name)

	_, err = in.Instrument(ctx, session("s-re"), []instrument.Target{tg})
	var refused *instrument.RefusedError
	require.ErrorAs(t, err, &refused)
	assert.Contains(t, err.Error(), "changed by someone else since attach")
	assert.Equal(t, string(theirs), string(e.raw(tg.Name)), "their change stands")
}

// echoingLambda refuses updates the way Lambda refuses an oversized environment: by quoting the variables.
type echoingLambda struct{ *lambda.Client }

func (l echoingLambda) UpdateFunctionConfiguration(_ context.Context, in *lambda.UpdateFunctionConfigurationInput, _ ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
	b, _ := json.Marshal(in.Environment.Variables)
	return nil, &types.InvalidParameterValueException{Message: aws.String("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: " + string(b))}
}

func TestTheFunctionKeyNeverAppearsInErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "echo"})
	before := e.raw(tg.Name)
	in := e.instrumenter(instrument.NewMemoryClaims())
	in.Lambda = echoingLambda{e.lambda}
	_, err := in.Instrument(ctx, session("s-echo"), []instrument.Target{tg})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "String measured")
	assert.NotContains(t, err.Error(), base64.StdEncoding.EncodeToString(tg.Key))
	assert.Contains(t, err.Error(), "[redacted]")
	assert.Equal(t, string(before), string(e.raw(tg.Name)))
}

func TestCtrlCDuringAttachLeavesNothingBehind(t *testing.T) {
	e := newEnv(t)
	targets := []instrument.Target{e.create(fn{what: "c1"}), e.create(fn{what: "c2", env: map[string]string{"A": "1"}})}
	before := map[string]string{}
	for _, tg := range targets {
		before[tg.Name] = string(e.raw(tg.Name))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rl := &revisions{Client: e.lambda, rev: map[string]int{}, beforeUpdate: cancel}
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	in.Lambda = rl
	_, err := in.Instrument(ctx, session("s-ctrlc"), targets)
	require.ErrorIs(t, err, context.Canceled)
	for _, tg := range targets {
		assert.Equal(t, before[tg.Name], string(e.raw(tg.Name)), tg.LogicalID)
	}
	left, err := claims.SessionSnapshots(context.Background(), "s-ctrlc")
	require.NoError(t, err)
	assert.Empty(t, left)
}

func TestRecoverAClaimWhoseUpdateNeverHappened(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "never", env: map[string]string{"A": "1"}})
	raw := e.raw(tg.Name)
	claims := instrument.NewMemoryClaims()
	// plldb died after claiming, before its update.
	require.NoError(t, claims.Claim(ctx, instrument.Snapshot{FunctionARN: tg.ARN, FunctionName: tg.Name, Session: "s-dead", Config: raw,
		Environment: map[string]string{"A": "1"}, HasEnvironment: true, Timeout: 3}, "alice"))
	claims.EndSession("s-dead")
	results, err := e.instrumenter(claims).Recover(ctx, instrument.Recovery{Session: "s-detach", FunctionARNs: []string{tg.ARN}})
	require.NoError(t, err)
	require.Len(t, results, 1)
	assert.Equal(t, instrument.Restored, results[0].Outcome)
	assert.Contains(t, results[0].Message, "never reached")
	assert.Equal(t, string(raw), string(e.raw(tg.Name)))
	_, ok, err := claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	assert.False(t, ok)
}

package instrument_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/instrument"
)

// slowUpdates makes moto's updates take time the way Lambda's do: an update answers InProgress and the next
// reads of the function say InProgress too before they say Successful (or Failed). moto 5.2.5 reports every
// update as Successful at once.
type slowUpdates struct {
	*lambda.Client
	inProgressReads int

	mu       sync.Mutex
	pending  map[string]int
	failed   map[string]string
	failNext string // the next update ends Failed with this reason
	reads    int
}

func (s *slowUpdates) GetFunctionConfiguration(ctx context.Context, in *lambda.GetFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error) {
	out, err := s.Client.GetFunctionConfiguration(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	name := aws.ToString(out.FunctionName)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	switch {
	case s.pending[name] > 0:
		s.pending[name]--
		out.LastUpdateStatus = types.LastUpdateStatusInProgress
	case s.failed[name] != "":
		out.LastUpdateStatus = types.LastUpdateStatusFailed
		out.LastUpdateStatusReasonCode = types.LastUpdateStatusReasonCodeSubnetOutOfIPAddresses
		out.LastUpdateStatusReason = aws.String(s.failed[name])
	}
	return out, nil
}

func (s *slowUpdates) UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
	out, err := s.Client.UpdateFunctionConfiguration(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	name := aws.ToString(out.FunctionName)
	s.mu.Lock()
	defer s.mu.Unlock()
	out.LastUpdateStatus = types.LastUpdateStatusInProgress
	s.pending[name] = s.inProgressReads
	delete(s.failed, name)
	if s.failNext != "" {
		s.failed[name], s.failNext = s.failNext, ""
	}
	return out, nil
}

func TestInstrumentAndRestoreWaitUntilTheUpdateIsSuccessful(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "slow", env: map[string]string{"A": "1"}})
	before := restorable(t, e.raw(tg.Name))
	slow := &slowUpdates{Client: e.lambda, inProgressReads: 3, pending: map[string]int{}, failed: map[string]string{}}
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	in.Lambda = slow
	in.PollInterval = time.Millisecond

	_, err := in.Instrument(ctx, session("s-slow"), []instrument.Target{tg})
	require.NoError(t, err)
	assert.Equal(t, 1+4, slow.reads, "one read for the snapshot, then reads until the update is no longer in progress")
	assert.Zero(t, slow.pending[tg.Name])

	results, err := in.Restore(ctx, "s-slow")
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Restored}, outcomes(results))
	assert.Zero(t, slow.pending[tg.Name], "restore waited too")
	assert.Equal(t, before, restorable(t, e.raw(tg.Name)))
}

func TestAFailedUpdateFailsTheAttachAndIsRolledBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "failing", env: map[string]string{"A": "1"}})
	before := restorable(t, e.raw(tg.Name))
	slow := &slowUpdates{Client: e.lambda, inProgressReads: 1, pending: map[string]int{}, failed: map[string]string{}, failNext: "no free IP addresses in the subnet"}
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	in.Lambda = slow
	in.PollInterval = time.Millisecond

	_, err := in.Instrument(ctx, session("s-failing"), []instrument.Target{tg})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no free IP addresses in the subnet")
	assert.Contains(t, err.Error(), "SubnetOutOfIPAddresses")
	assert.Equal(t, before, restorable(t, e.raw(tg.Name)), "rolled back")
	_, ok, err := claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestWaitingForAnUpdateStopsWithItsTimeout(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "stuck"})
	slow := &slowUpdates{Client: e.lambda, inProgressReads: 1 << 30, pending: map[string]int{}, failed: map[string]string{}}
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	in.Lambda = slow
	in.PollInterval = time.Millisecond
	in.WaitTimeout = 50 * time.Millisecond
	_, err := in.Instrument(ctx, session("s-stuck"), []instrument.Target{tg})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "wait for the update of")
	assert.Contains(t, err.Error(), "could not put back "+tg.Name, "the update never settled, so neither could the rollback")
	_, ok, err := claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	assert.True(t, ok, "the snapshot stays for plldb detach")
}

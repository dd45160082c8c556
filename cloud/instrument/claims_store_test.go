package instrument_test

import (
	"context"
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

package instrument_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/store"
)

// TestDynamoDBRequestsPerFunction pins what attaching and detaching cost in DynamoDB requests, counted on the
// store's client: each is a round trip for every function of a stack (and, on the test's moto, a request
// served one at a time). Per function, a selective attach claims it with one transaction, reads the claim
// again after reading the function (the first to write must see the claim as it is) and records the revision;
// a join does the same but for that read, since the function names no session its Join did not see; a leave
// takes one transaction and the revision; the last one out one transaction and the release; a plain session's
// detach marks its claim releasing with one update, then releases it. Per call, the
// claims are read to plan with one BatchGetItem (per 100 functions), session liveness once per session, and a
// detach lists the session's shared claims with one BatchGetItem.
func TestDynamoDBRequestsPerFunction(t *testing.T) {
	const n = 3
	e := newEnv(t)
	ctx := context.Background()
	calls := &instrument.CallCounter{}
	tables := store.DefaultTables(unique(t, "tbl"))
	require.NoError(t, store.CreateTables(ctx, dynamodb.NewFromConfig(e.srv.Config()), tables))
	st := store.New(dynamodb.NewFromConfig(e.srv.Config(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, calls.Register)
	}), tables)
	cs := claimStore{claims: st, st: st, start: func(t testing.TB, id, owner string) {
		require.NoError(t, st.PutSession(ctx, relay.NewSession(id, owner, time.Now().Add(time.Hour))))
	}}
	in := e.sharedInstrumenter(st)
	var fns []instrument.Target
	for i := range n {
		fns = append(fns, e.create(fn{what: fmt.Sprintf("f%d", i), env: map[string]string{"TABLE": "orders"}}))
	}
	targets := func(d dev) []instrument.Target {
		var out []instrument.Target
		for i, tg := range fns {
			tg = d.target(tg)
			tg.Key = append([]byte(fmt.Sprintf("%d-", i)), tg.Key...)
			out = append(out, tg)
		}
		return out
	}
	a, b := newDev(t, cs, "s-a", "alice"), newDev(t, cs, "s-b", "bob")
	phase := func(name string, run func()) map[string]int {
		calls.Reset()
		run()
		got := calls.Counts()
		t.Logf("%s: %v", name, got)
		return got
	}

	got := phase("first attach", func() {
		_, err := in.Instrument(ctx, a.s, targets(a))
		require.NoError(t, err)
	})
	assert.Equal(t, map[string]int{"DynamoDB.BatchGetItem": 1, "DynamoDB.GetItem": n + 1, "DynamoDB.TransactWriteItems": n, "DynamoDB.UpdateItem": n}, got,
		"per function: the transaction, the claim after the function, the revision; the claims to plan in one batch, one session read")

	got = phase("second developer joins", func() {
		_, err := in.Instrument(ctx, b.s, targets(b))
		require.NoError(t, err)
	})
	assert.Equal(t, map[string]int{"DynamoDB.BatchGetItem": 1, "DynamoDB.GetItem": 2, "DynamoDB.TransactWriteItems": n, "DynamoDB.UpdateItem": n}, got,
		"per function: the transaction and the revision; the claims in one batch, one read of each session (the joiner's, the holder's)")

	got = phase("first leaves", func() {
		results, err := in.Restore(ctx, a.s.ID)
		require.NoError(t, err)
		for _, r := range results {
			require.Equal(t, instrument.Left, r.Outcome, r.Message)
		}
	})
	assert.Equal(t, map[string]int{"DynamoDB.Query": 1, "DynamoDB.BatchGetItem": 1, "DynamoDB.GetItem": 1,
		"DynamoDB.TransactWriteItems": n, "DynamoDB.UpdateItem": n}, got,
		"per function: the transaction on the listed claim and the revision; one read of the other holder's session")

	got = phase("last one out", func() {
		results, err := in.Restore(ctx, b.s.ID)
		require.NoError(t, err)
		for _, r := range results {
			require.Equal(t, instrument.Restored, r.Outcome, r.Message)
		}
	})
	assert.Equal(t, map[string]int{"DynamoDB.Query": 1, "DynamoDB.BatchGetItem": 1, "DynamoDB.TransactWriteItems": n, "DynamoDB.DeleteItem": n}, got,
		"per function: the transaction that marks it releasing, and the release")

	x := session("s-x")
	cs.start(t, x.ID, x.Owner)
	got = phase("exclusive attach", func() {
		_, err := in.Instrument(ctx, x, fns)
		require.NoError(t, err)
	})
	assert.Equal(t, map[string]int{"DynamoDB.BatchGetItem": 1, "DynamoDB.GetItem": 1, "DynamoDB.PutItem": n, "DynamoDB.UpdateItem": n}, got,
		"per function: the conditional put and the revision; the claims in one batch, one session read")
	got = phase("exclusive detach", func() {
		results, err := in.Restore(ctx, x.ID)
		require.NoError(t, err)
		require.Len(t, results, n)
	})
	assert.Equal(t, map[string]int{"DynamoDB.Query": 1, "DynamoDB.UpdateItem": n, "DynamoDB.DeleteItem": n}, got,
		"per function: the update that marks it releasing (an attach meeting it waits), and the release")
}

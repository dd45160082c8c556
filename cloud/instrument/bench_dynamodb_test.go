package instrument_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/store"
	"github.com/plldb/plldb/testfixtures/awsharness"
)

// BenchmarkAttachDetach50DynamoDB is BenchmarkAttachDetach50 with the claims in DynamoDB (moto), as plldb attach
// and detach run them: 50 functions instrumented, then restored.
func BenchmarkAttachDetach50DynamoDB(b *testing.B) {
	h := awsharness.New(b, awsharness.Options{})
	var fns []awsharness.Function
	for i := range 50 {
		fns = append(fns, awsharness.Function{LogicalID: fmt.Sprintf("Fn%02d", i), CodeDir: b.TempDir(), Env: map[string]string{"TABLE": "orders"}})
	}
	deployed := h.DeployStack(b, "bench-"+h.Install.Name, fns)
	var targets []instrument.Target
	for _, d := range deployed {
		targets = append(targets, instrument.Target{
			StackFunction: instrument.StackFunction{LogicalID: d.LogicalID, Name: d.Name, ARN: d.ARN},
			Key:           ticket.NewKey(),
		})
	}
	ctx := context.Background()
	r := instrument.NewRestorer(h.AWS, h.Store, nil)
	in := r.Instrumenter
	in.Layers = h.Install.Layers
	var attach, detach time.Duration
	n := 0
	for b.Loop() {
		id := fmt.Sprintf("s-bench-%d", n)
		require.NoError(b, h.Store.PutSession(ctx, relay.NewSession(id, "bench@host", time.Now().Add(time.Hour))))
		start := time.Now()
		att, err := in.Instrument(ctx, instrument.Session{ID: id, Owner: "bench@host", Endpoint: h.Install.WebSocketURL, Audience: h.Install.Audience}, targets)
		attach += time.Since(start)
		require.NoError(b, err)
		require.Len(b, att.Functions, len(targets))
		start = time.Now()
		results, err := in.Restore(ctx, id)
		detach += time.Since(start)
		require.NoError(b, err)
		for _, res := range results {
			require.Equal(b, instrument.Restored, res.Outcome, res.Message)
		}
		require.NoError(b, h.Store.DeleteSession(ctx, id))
		n++
	}
	b.ReportMetric(attach.Seconds()/float64(n), "attach-s")
	b.ReportMetric(detach.Seconds()/float64(n), "detach-s")
}

// BenchmarkSelectiveJoinLeave50DynamoDB is the selective path of BenchmarkAttachDetach50DynamoDB with two
// developers: the first attaches 50 functions (attach-s), the second joins them (join-s), the first leaves while
// the second stays (leave-s), and the second, the last one out, restores them (restore-s). The test moto server
// runs DynamoDB requests one at a time (testfixtures/moto), so the times are an upper bound: against DynamoDB
// they run in parallel.
func BenchmarkSelectiveJoinLeave50DynamoDB(b *testing.B) {
	h := awsharness.New(b, awsharness.Options{})
	var fns []awsharness.Function
	for i := range 50 {
		fns = append(fns, awsharness.Function{LogicalID: fmt.Sprintf("Fn%02d", i), CodeDir: b.TempDir(), Env: map[string]string{"TABLE": "orders"}})
	}
	deployed := h.DeployStack(b, "selbench-"+h.Install.Name, fns)
	ctx := context.Background()
	claims := store.New(dynamodb.NewFromConfig(h.AWS), h.Install.Tables)
	in := &instrument.Instrumenter{Lambda: lambda.NewFromConfig(h.AWS), Claims: claims, Layers: h.Install.Layers}
	sessionWith := func(id string) (instrument.Session, []instrument.Target) {
		pub, _, err := ed25519.GenerateKey(nil)
		require.NoError(b, err)
		require.NoError(b, h.Store.PutSession(ctx, relay.NewSession(id, id+"@host", time.Now().Add(time.Hour))))
		var targets []instrument.Target
		for _, d := range deployed {
			targets = append(targets, instrument.Target{
				StackFunction: instrument.StackFunction{LogicalID: d.LogicalID, Name: d.Name, ARN: d.ARN},
				Key:           ticket.NewKey(),
			})
		}
		return instrument.Session{ID: id, Owner: id + "@host", Endpoint: h.Install.WebSocketURL, Audience: h.Install.Audience,
			Selective: true, KnockKey: pub, KnockStack: "selbench"}, targets
	}
	var attach, join, leave, restore time.Duration
	n := 0
	for b.Loop() {
		first, ft := sessionWith(fmt.Sprintf("s-first-%d", n))
		second, st := sessionWith(fmt.Sprintf("s-second-%d", n))
		start := time.Now()
		_, err := in.Instrument(ctx, first, ft)
		attach += time.Since(start)
		require.NoError(b, err)
		start = time.Now()
		att, err := in.Instrument(ctx, second, st)
		join += time.Since(start)
		require.NoError(b, err)
		require.Len(b, att.Functions, len(st))
		start = time.Now()
		results, err := in.Restore(ctx, first.ID)
		leave += time.Since(start)
		require.NoError(b, err)
		for _, res := range results {
			require.Equal(b, instrument.Left, res.Outcome, res.Message)
		}
		start = time.Now()
		results, err = in.Restore(ctx, second.ID)
		restore += time.Since(start)
		require.NoError(b, err)
		for _, res := range results {
			require.Equal(b, instrument.Restored, res.Outcome, res.Message)
		}
		for _, id := range []string{first.ID, second.ID} {
			require.NoError(b, h.Store.DeleteSession(ctx, id))
		}
		n++
	}
	b.ReportMetric(attach.Seconds()/float64(n), "attach-s")
	b.ReportMetric(join.Seconds()/float64(n), "join-s")
	b.ReportMetric(leave.Seconds()/float64(n), "leave-s")
	b.ReportMetric(restore.Seconds()/float64(n), "restore-s")
}

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
// they run in parallel. It also reports the requests each phase made per function (dynamodb-req/fn, lambda-req/fn),
// counted on the clients: the moto time is roughly proportional to the DynamoDB requests, and against DynamoDB
// each one is a round trip and a cost.
func BenchmarkSelectiveJoinLeave50DynamoDB(b *testing.B) {
	h := awsharness.New(b, awsharness.Options{})
	var fns []awsharness.Function
	for i := range 50 {
		fns = append(fns, awsharness.Function{LogicalID: fmt.Sprintf("Fn%02d", i), CodeDir: b.TempDir(), Env: map[string]string{"TABLE": "orders"}})
	}
	deployed := h.DeployStack(b, "selbench-"+h.Install.Name, fns)
	ctx := context.Background()
	dbCalls, lambdaCalls := &instrument.CallCounter{}, &instrument.CallCounter{}
	claims := store.New(dynamodb.NewFromConfig(h.AWS, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, dbCalls.Register) }),
		h.Install.Tables)
	in := &instrument.Instrumenter{
		Lambda: lambda.NewFromConfig(h.AWS, func(o *lambda.Options) { o.APIOptions = append(o.APIOptions, lambdaCalls.Register) }),
		Claims: claims, Layers: h.Install.Layers,
	}
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
	phases := []string{"attach", "join", "leave", "restore"}
	elapsed := map[string]time.Duration{}
	dbReqs, lambdaReqs := map[string]int{}, map[string]int{}
	dbOps := map[string]map[string]int{} // by phase and operation, for the log
	// timed runs one phase, counting its time and the requests it made.
	timed := func(phase string, fn func()) {
		dbCalls.Reset()
		lambdaCalls.Reset()
		start := time.Now()
		fn()
		elapsed[phase] += time.Since(start)
		dbReqs[phase] += dbCalls.Total()
		if dbOps[phase] == nil {
			dbOps[phase] = map[string]int{}
		}
		for op, c := range dbCalls.Counts() {
			dbOps[phase][op] += c
		}
		lambdaReqs[phase] += lambdaCalls.Total()
	}
	n := 0
	for b.Loop() {
		first, ft := sessionWith(fmt.Sprintf("s-first-%d", n))
		second, st := sessionWith(fmt.Sprintf("s-second-%d", n))
		timed("attach", func() {
			_, err := in.Instrument(ctx, first, ft)
			require.NoError(b, err)
		})
		timed("join", func() {
			att, err := in.Instrument(ctx, second, st)
			require.NoError(b, err)
			require.Len(b, att.Functions, len(st))
		})
		timed("leave", func() {
			results, err := in.Restore(ctx, first.ID)
			require.NoError(b, err)
			for _, res := range results {
				require.Equal(b, instrument.Left, res.Outcome, res.Message)
			}
		})
		var results []instrument.Result
		timed("restore", func() {
			var err error
			results, err = in.Restore(ctx, second.ID)
			require.NoError(b, err)
		})
		for _, res := range results {
			require.Equal(b, instrument.Restored, res.Outcome, res.Message)
		}
		for _, id := range []string{first.ID, second.ID} {
			require.NoError(b, h.Store.DeleteSession(ctx, id))
		}
		n++
	}
	perFn := float64(n * len(deployed))
	for _, p := range phases {
		b.ReportMetric(elapsed[p].Seconds()/float64(n), p+"-s")
		b.ReportMetric(float64(dbReqs[p])/perFn, p+"-dynamodb-req/fn")
		b.ReportMetric(float64(lambdaReqs[p])/perFn, p+"-lambda-req/fn")
		b.Logf("%s: DynamoDB requests over %d runs of %d functions: %v", p, n, len(deployed), dbOps[p])
	}
}

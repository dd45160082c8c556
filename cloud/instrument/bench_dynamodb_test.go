package instrument_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/cloud/instrument"
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

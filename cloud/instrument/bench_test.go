package instrument_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/instrument"
)

// BenchmarkAttachDetach50 attaches and detaches 50 functions against moto with calls in parallel (target:
// each ≤ 5 s) and reports the Lambda calls each function costs.
func BenchmarkAttachDetach50(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	targets := make([]instrument.Target, 50)
	for i := range targets {
		targets[i] = e.create(fn{what: "bench", env: map[string]string{"TABLE": "orders", "STAGE": "dev"}})
	}
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	var attach, detach time.Duration
	var attachCalls, detachCalls int
	for b.Loop() {
		e.counter.Reset()
		start := time.Now()
		att, err := in.Instrument(ctx, session("s-bench"), targets)
		attach += time.Since(start)
		attachCalls += e.counter.Total()
		require.NoError(b, err)
		require.Len(b, att.Functions, len(targets))

		e.counter.Reset()
		start = time.Now()
		results, err := in.Restore(ctx, "s-bench")
		detach += time.Since(start)
		detachCalls += e.counter.Total()
		require.NoError(b, err)
		for _, r := range results {
			require.Equal(b, instrument.Restored, r.Outcome, r.Message)
		}
	}
	n := float64(b.N)
	b.ReportMetric(attach.Seconds()/n, "attach-s")
	b.ReportMetric(detach.Seconds()/n, "detach-s")
	b.ReportMetric(float64(attachCalls)/n/float64(len(targets)), "attach-calls/fn")
	b.ReportMetric(float64(detachCalls)/n/float64(len(targets)), "detach-calls/fn")
}

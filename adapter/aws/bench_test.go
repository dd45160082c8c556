package aws_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/cloud/store"
)

// relayCallsPerInvocation attaches one function, warms its sandbox, and returns the relay's DynamoDB calls for
// n warm invocations, by operation.
func relayCallsPerInvocation(tb testing.TB, f *fixture, n func(yield func() bool)) (map[string]int, int) {
	o := f.options()
	o.Functions = []string{"OrdersFunction"}
	s, err := awsmode.Attach(context.Background(), o)
	require.NoError(tb, err)
	defer func() { _, _ = s.Close(context.Background()) }()
	name := f.fns["OrdersFunction"].Name
	resp, err := f.h.Invoke(context.Background(), name, []byte(`{}`)) // cold start: connects the sandbox
	require.NoError(tb, err)
	require.False(tb, resp.Error, "%s", resp.Payload)
	// The relay records that the developer is alive once a minute at most: have that minute start now, so that
	// a slow attach on a loaded machine does not put the record's write into the measured window.
	devs, err := f.h.Store.SessionConnections(context.Background(), s.ID, wire.RoleDeveloper)
	require.NoError(tb, err)
	f.h.Clock.Advance(store.SeenInterval)
	for _, d := range devs {
		require.NoError(tb, f.h.Store.DeveloperSeen(context.Background(), d))
	}
	f.h.RelayCalls.Reset()
	count := 0
	for range n {
		resp, err := f.h.Invoke(context.Background(), name, []byte(`{"n":1}`))
		require.NoError(tb, err)
		require.False(tb, resp.Error, "%s", resp.Payload)
		require.Contains(tb, string(resp.Payload), `"local"`)
		count++
	}
	return f.h.RelayCalls.Counts(), count
}

func times(n int) func(yield func() bool) {
	return func(yield func() bool) {
		for range n {
			if !yield() {
				return
			}
		}
	}
}

// TestHotPathHasNoPolling: a warm invocation costs the relay a handful of point reads, no scans and no writes
// (the store is written when connections come and go, and once a minute at most per developer connection to
// record that the developer is alive, which these invocations, within a minute of the connect, do not reach),
// whatever the number of invocations.
func TestHotPathHasNoPolling(t *testing.T) {
	f := newFixture(t)
	counts, n := relayCallsPerInvocation(t, f, times(5))
	var ops []string
	total := 0
	for op, c := range counts {
		ops = append(ops, fmt.Sprintf("%s=%d", op, c))
		total += c
		require.NotContains(t, op, "Scan", "the hot path scans: %v", counts)
		require.False(t, strings.Contains(op, "Put") || strings.Contains(op, "Update") || strings.Contains(op, "Delete"),
			"the hot path writes: %v", counts)
	}
	sort.Strings(ops)
	require.Zero(t, total%n, "calls per invocation are the same for every invocation: %v", ops)
	t.Logf("relay DynamoDB calls per warm invocation: %d (%s over %d invocations)", total/n, strings.Join(ops, ", "), n)
}

// BenchmarkWarmInvocation reports the relay's DynamoDB calls per warm invocation through the harness (developer
// side, relay handlers on the DynamoDB store, the real layer proxy): the AWS calls on the hot path.
func BenchmarkWarmInvocation(b *testing.B) {
	f := newFixture(b)
	counts, n := relayCallsPerInvocation(b, f, func(yield func() bool) {
		for b.Loop() {
			if !yield() {
				return
			}
		}
	})
	total := 0
	for _, c := range counts {
		total += c
	}
	b.ReportMetric(float64(total)/float64(n), "ddb-calls/invocation")
	for op, c := range counts {
		b.ReportMetric(float64(c)/float64(n), op+"/invocation")
	}
}

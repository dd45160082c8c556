package aws_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/cloud/instrument"
)

// heard is what one developer's side reported: the invocations it ran and the mirror reports.
type heard struct {
	mu      sync.Mutex
	started []string // request ids
	mirrors chan devside.MirrorReport
}

func newHeard() *heard { return &heard{mirrors: make(chan devside.MirrorReport, 8)} }

func (h *heard) Started(inv *wire.Invoke) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started = append(h.started, inv.RequestID)
}

func (h *heard) Finished(*wire.Invoke, executor.Outcome, error) {}

func (h *heard) ran() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.started)
}

// TestSharedStackKnocksReachOnlyTheirOwnDeveloperAndMirror: alice (in mirror mode) and bob attach one stack
// selectively through the harness's real layer proxy and relay, each with their own environment (Options.Env). Bob's knock reaches
// bob's handler only; alice's knock is answered by the deployed code while her copy runs on her machine only, and
// her OnMirror hook hears both results; an unknocked invocation runs the deployed code on nobody's machine. After
// alice leaves, bob's knocks still reach bob and alice's knock runs the deployed code; after bob leaves the
// functions are as they were.
func TestSharedStackKnocksReachOnlyTheirOwnDeveloperAndMirror(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	attach := func(who string, mirror bool, hd *heard) *awsmode.Session {
		t.Helper()
		t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock")) // each developer's own machine
		o := f.options()
		o.Selective, o.Mirror, o.Owner = true, mirror, who+"@host"
		// The same checkout, told apart by the environment each developer gives it (a launch's "env").
		o.Env = map[string]string{"STAGE": who + "-sandbox"}
		o.Hooks = devside.Hooks{Observer: hd, OnMirror: func(r devside.MirrorReport) { hd.mirrors <- r }}
		s, err := awsmode.Attach(ctx, o)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = s.Close(context.Background()) })
		return s
	}
	aliceHeard, bobHeard := newHeard(), newHeard()
	alice := attach("alice", true, aliceHeard)
	bob := attach("bob", false, bobHeard)
	mint := func(s *awsmode.Session) string {
		t.Helper()
		tok, err := s.KnockSession().Mint(knockkey.MintOptions{Function: "OrdersFunction"})
		require.NoError(t, err)
		return tok
	}
	aliceKnock, bobKnock := mint(alice), mint(bob)

	assert.Equal(t, "deployed", f.invokeEvent(t, "OrdersFunction", httpEvent(""))["where"], "no knock: the deployed code")
	assert.Zero(t, aliceHeard.ran()+bobHeard.ran(), "an unknocked invocation reaches nobody's machine")

	out := f.invokeEvent(t, "OrdersFunction", httpEvent(bobKnock))
	assert.Equal(t, "local", out["where"])
	assert.Equal(t, "bob-sandbox", out["stage"], "bob's knock reaches bob's handler, with bob's environment")
	ev, _ := json.Marshal(out["event"])
	assert.NotContains(t, string(ev), bobKnock)
	assert.Equal(t, 1, bobHeard.ran())
	assert.Zero(t, aliceHeard.ran(), "and not alice's machine")

	// Alice mirrors: her caller is answered by the deployed code, and the copy runs on her machine.
	payload, err := json.Marshal(httpEvent(aliceKnock))
	require.NoError(t, err)
	resp, err := f.h.Invoke(ctx, f.fns["OrdersFunction"].Name, payload)
	require.NoError(t, err)
	require.False(t, resp.Error, "invocation failed: %s", resp.Payload)
	require.NoError(t, json.Unmarshal(resp.Payload, &out))
	assert.Equal(t, "deployed", out["where"], "alice's mirrored knock: the caller gets the deployed answer")
	assert.NotContains(t, string(resp.Payload), aliceKnock)
	var r devside.MirrorReport
	select {
	case r = <-aliceHeard.mirrors:
	case <-time.After(time.Minute):
		t.Fatal("alice's OnMirror heard nothing")
	}
	require.NoError(t, r.LocalErr)
	require.Nil(t, r.Local.Err, "the copy failed: %+v", r.Local.Err)
	var local map[string]any
	require.NoError(t, json.Unmarshal(r.Local.Payload, &local))
	assert.Equal(t, "local", local["where"])
	assert.Equal(t, "alice-sandbox", local["stage"], "the copy ran on alice's machine, with alice's environment")
	ev, _ = json.Marshal(local["event"])
	assert.NotContains(t, string(ev), aliceKnock, "the copy has no knock")
	assert.Contains(t, string(ev), "application/json")
	require.NotNil(t, r.Deployed, "the report has the deployed answer")
	assert.JSONEq(t, string(resp.Payload), string(r.Deployed.Payload), "exactly what the caller got")
	assert.False(t, r.Deployed.Error)
	assert.Equal(t, "OrdersFunction", r.Function.LogicalID)
	assert.Equal(t, 1, aliceHeard.ran())
	assert.Equal(t, 1, bobHeard.ran(), "alice's knock never reaches bob")
	select {
	case r := <-bobHeard.mirrors:
		t.Fatalf("bob does not mirror, yet heard %+v", r)
	default:
	}

	results, err := alice.Close(ctx)
	require.NoError(t, err)
	for _, r := range results {
		assert.Equal(t, instrument.Left, r.Outcome, r.Message)
	}
	out = f.invokeEvent(t, "OrdersFunction", httpEvent(bobKnock))
	assert.Equal(t, "bob-sandbox", out["stage"], "bob's knocks still reach bob after alice left")
	assert.Equal(t, 2, bobHeard.ran())
	assert.Equal(t, "deployed", f.invokeEvent(t, "OrdersFunction", httpEvent(aliceKnock))["where"], "alice's knock now runs the deployed code")
	assert.Equal(t, 2, bobHeard.ran(), "and does not reach bob")
	assert.Equal(t, 1, aliceHeard.ran())

	results, err = bob.Close(ctx)
	require.NoError(t, err)
	for _, r := range results {
		assert.Equal(t, instrument.Restored, r.Outcome, r.Message)
	}
	f.assertRestored(t)
	assert.Equal(t, "deployed", f.invokeEvent(t, "OrdersFunction", httpEvent(bobKnock))["where"], "after the last one left, knocks run the deployed code")
}

package dap

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/testfixtures/awsharness"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/adapter/knockkey"
)

// TestAWSModeMirrorAnswersTheCallerWhileTheCopyIsStopped: an aws launch with "selective" and "mirror", through
// the offline harness (the real layer proxy in the emulated sandbox, the embedded relay on moto). A knocked
// invocation's caller gets the deployed code's answer while the copy, without its knock, is stopped at the
// breakpoint on the developer's machine; once continued, the Debug Console shows both results on one line. An
// unknocked invocation neither stops nor is mirrored, a stopped copy holds no other knocked caller, the launch's
// env reaches the copy, and the knock appears in no DAP message.
func TestAWSModeMirrorAnswersTheCallerWhileTheCopyIsStopped(t *testing.T) {
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	h := newAWSHarness(t)
	app := awsharness.WriteApp(t)
	stack, orders, before := ordersStack(t, h, app, "dap-mir-", map[string]string{"STAGE": "dev"})

	c := startAdapter(t)
	c.ExpectInitializeResponse(t)
	banner := launchAWSOrders(t, c, h, app, stack, map[string]any{
		"selective": true, "mirror": true, "env": map[string]string{"ORDERS_TABLE": "orders-scratch"},
	})
	assert.Contains(t, banner, "selective mirror: the deployed code answers every caller")
	c.ExpectInitializedEvent(t)
	bps := setBreakpoints(t, c, app.Handler, map[string]any{"line": awsharness.BreakpointLine})
	require.Len(t, bps, 1)
	c.Request(t, "configurationDone", nil)

	event := func(knock string, order int) []byte { return ordersEvent(t, knock, order) }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var kr struct{ Value, Audience, Session string }
	require.NoError(t, c.Request(t, "plldbKnock", map[string]any{"function": "OrdersFunction"}).Decode(&kr))
	tok := kr.Value
	require.NotEmpty(t, tok)
	ks, err := knockkey.Load(stack)
	require.NoError(t, err)
	assert.Equal(t, ks.ID, kr.Session)

	// The caller of the knocked invocation is answered by the deployed code, whatever the copy does: the
	// invocation returns here even though the copy is about to stop and nobody has continued it.
	resp, err := h.Invoke(ctx, orders, event(tok, 42))
	require.NoError(t, err)
	require.False(t, resp.Error, "the deployed code answered with an error: %s", resp.Payload)
	var out map[string]any
	require.NoError(t, json.Unmarshal(resp.Payload, &out))
	assert.Equal(t, "deployed", out["where"], "the caller gets the deployed code's answer")
	assert.NotContains(t, string(resp.Payload), tok, "the deployed code got the event without the knock")
	assert.NotContains(t, strings.ToLower(string(resp.Payload)), "x-plldb-knock")

	// Meanwhile the copy stops at the breakpoint here, without the knock.
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	frames := c.StackTrace(t, st.ThreadID)
	require.NotEmpty(t, frames)
	assert.Equal(t, awsharness.BreakpointLine, frames[0].Line)
	assert.Equal(t, "42", c.Evaluate(t, frames[0].ID, "event['order']"))
	assert.Equal(t, "False", c.Evaluate(t, frames[0].ID, "any(k.lower() == 'x-plldb-knock' for k in event['headers'])"), "the copy has no knock")
	assert.Equal(t, "'orders-scratch'", c.Evaluate(t, frames[0].ID, "__import__('os').environ.get('ORDERS_TABLE')"),
		"the launch's env reaches the copy: how a developer points its second round of side effects elsewhere")
	for _, m := range c.History() {
		assert.NotContains(t, string(m.Raw), "plldb: mirror", "no report before the copy has finished")
	}

	// A stopped copy holds nobody: another knocked invocation is answered by the deployed code at once, and its
	// own copy stops in a second sandbox here.
	resp, err = h.Invoke(ctx, orders, event(tok, 43))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(resp.Payload, &out))
	assert.Equal(t, "deployed", out["where"], "a second knocked caller is not held by the first stopped copy")
	st2 := c.ExpectStoppedEventReason(t, "breakpoint")
	require.NotEqual(t, st.ThreadID, st2.ThreadID)
	frames2 := c.StackTrace(t, st2.ThreadID)
	require.NotEmpty(t, frames2)
	assert.Equal(t, "43", c.Evaluate(t, frames2[0].ID, "event['order']"))

	c.Request(t, "continue", map[string]any{"threadId": st2.ThreadID})
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	lines := []string{c.ExpectOutputEventContaining(t, "plldb: mirror OrdersFunction "), c.ExpectOutputEventContaining(t, "plldb: mirror OrdersFunction ")}
	orders42, orders43 := 0, 0
	for _, line := range lines {
		assert.Contains(t, line, ` — deployed: {"where": "deployed"`, "the deployed answer, as the caller got it")
		assert.Contains(t, line, ` · local: {"where": "local"`, "the copy's result")
		assert.Equal(t, 1, strings.Count(line, "\n"))
		deployed, local, ok := strings.Cut(line, " · local: ")
		require.True(t, ok)
		for _, n := range []string{"42", "43"} {
			if strings.Contains(deployed, `"order": `+n) {
				assert.Contains(t, local, `"order": `+n, "both sides of a line are one invocation's")
				if n == "42" {
					orders42++
				} else {
					orders43++
				}
			}
		}
	}
	assert.Equal(t, 1, orders42, "one line for each knocked invocation: %q", lines)
	assert.Equal(t, 1, orders43, "one line for each knocked invocation: %q", lines)

	// An unknocked invocation runs the deployed code: no stop, no copy, no mirror line.
	resp, err = h.Invoke(ctx, orders, event("", 7))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(resp.Payload, &out))
	assert.Equal(t, "deployed", out["where"])
	c.Request(t, "threads", nil) // a round trip: whatever the invocation caused here has arrived by now
	mirrors, stops := 0, 0
	for _, m := range c.History() {
		if strings.Contains(string(m.Raw), "plldb: mirror ") {
			mirrors++
		}
		if m.Type == "event" && m.Event == "stopped" {
			stops++
		}
	}
	assert.Equal(t, 2, mirrors, "only the knocked invocations are mirrored")
	assert.Equal(t, 2, stops, "only their copies stopped")

	c.Request(t, "disconnect", nil)
	<-c.Done()
	for _, m := range c.History() {
		if m.Type == "response" && m.Command == "plldbKnock" {
			continue // the one message that is the knock
		}
		assert.NotContains(t, string(m.Raw), tok, "the knock appears in no other DAP message")
		assert.NotContains(t, string(m.Raw), strings.Split(tok, ".")[2], "nor does its signature")
	}
	assert.Eventually(t, func() bool { return assert.ObjectsAreEqual(before, h.Settings(t, orders)) }, 30*time.Second, 100*time.Millisecond,
		"disconnect restores the function")
}

// TestAWSModeSelectiveLaunchSharingAStackLeavesItToTheOther: alice debugs through an aws selective launch while
// bob (plldb attach --selective on his own machine) shares the stack. Alice's launch says it is selective; her
// knocks stop her, bob's reach bob; when she disconnects her entries go, bob's stay, and nothing is reported as
// "not restored" (leaving a shared function is not a failure). After bob leaves the function is restored.
func TestAWSModeSelectiveLaunchSharingAStackLeavesItToTheOther(t *testing.T) {
	h := newAWSHarness(t)
	app := awsharness.WriteApp(t)
	stack, orders, before := ordersStack(t, h, app, "dap-shr-", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Bob, on his own machine (his own knock directory), with his own checkout.
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "bob-knock"))
	bobApp := awsharness.WriteApp(t)
	require.NoError(t, os.WriteFile(bobApp.Handler, []byte("def handler(event, context):\n    return {\"where\": \"local\", \"who\": \"bob\"}\n"), 0o644))
	in := h.Install
	bob, err := awsmode.Attach(ctx, awsmode.Options{StackName: stack, Template: bobApp.Template, Python: testPython(t), AWS: h.AWS,
		Install: &in, Selective: true, Owner: "bob@desk", Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = bob.Close(context.Background()) })
	bobKnock, err := bob.KnockSession().Mint(knockkey.MintOptions{})
	require.NoError(t, err)

	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "alice-knock"))
	c := startAdapter(t)
	c.ExpectInitializeResponse(t)
	banner := launchAWSOrders(t, c, h, app, stack, map[string]any{"selective": true})
	assert.Contains(t, banner, "selective", "the banner says only knocked invocations run here")
	assert.NotContains(t, banner, "their invocations now run here")
	c.ExpectInitializedEvent(t)
	c.Request(t, "configurationDone", nil)
	var kr struct{ Value string }
	require.NoError(t, c.Request(t, "plldbKnock", map[string]any{"function": "OrdersFunction"}).Decode(&kr))

	call := func(knock string) map[string]any {
		t.Helper()
		resp, err := h.Invoke(ctx, orders, ordersEvent(t, knock, 0))
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(resp.Payload, &out), "payload %s", resp.Payload)
		return out
	}
	assert.Equal(t, "local", call(kr.Value)["where"], "alice's knock reaches alice's launch")
	assert.Nil(t, call(kr.Value)["who"], "alice's handler, not bob's")
	assert.Equal(t, "bob", call(bobKnock)["who"], "bob's knock reaches bob")
	assert.Equal(t, "deployed", call("")["where"])

	c.Request(t, "disconnect", nil)
	<-c.Done()
	for _, m := range c.History() {
		if m.Type == "event" && m.Event == "output" {
			assert.NotContains(t, string(m.Raw), "not restored", "leaving a shared function is not a failure")
		}
	}
	assert.Equal(t, "bob", call(bobKnock)["who"], "bob keeps his knocks after alice left")
	assert.Equal(t, "deployed", call(kr.Value)["where"], "alice's knock runs the deployed code once she left")

	results, err := bob.Close(ctx)
	require.NoError(t, err)
	for _, r := range results {
		assert.Equal(t, instrument.Restored, r.Outcome, r.Message)
	}
	assert.Equal(t, before, h.Settings(t, orders), "the last one out restores the function")
}

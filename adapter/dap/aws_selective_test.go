package dap

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/testfixtures/awsharness"
)

// TestAWSModeSelectiveStopsOnlyKnockedInvocations: a "mode": "aws" launch with "selective": true lets an
// unknocked invocation run the deployed code without stopping, and stops a knocked one (the plldbKnock request's,
// bound to the function) at the breakpoint with the knock gone from the event.
func TestAWSModeSelectiveStopsOnlyKnockedInvocations(t *testing.T) {
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	h := newAWSHarness(t)
	app := awsharness.WriteApp(t)
	stack, orders, before := ordersStack(t, h, app, "dap-sel-", map[string]string{"STAGE": "dev"})

	c := startAdapter(t)
	c.ExpectInitializeResponse(t)
	launchAWSOrders(t, c, h, app, stack, map[string]any{"selective": true})
	c.ExpectInitializedEvent(t)
	bps := setBreakpoints(t, c, app.Handler, map[string]any{"line": awsharness.BreakpointLine})
	require.Len(t, bps, 1)
	c.Request(t, "configurationDone", nil)

	event := func(knock string) []byte { return ordersEvent(t, knock, 42) }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := h.Invoke(ctx, orders, event(""))
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(resp.Payload, &out))
	assert.Equal(t, "deployed", out["where"], "an unknocked invocation runs the deployed code and never stops")

	ks, err := knockkey.Load(stack)
	require.NoError(t, err, "the launch saved the session file for plldb knock")
	// The knock comes from the session, as an editor's command gets it (plldbKnock, knockreq.go).
	var kr struct{ Value, Audience, Session string }
	require.NoError(t, c.Request(t, "plldbKnock", map[string]any{"function": "OrdersFunction"}).Decode(&kr))
	tok := kr.Value
	assert.Equal(t, stack+"/OrdersFunction", kr.Audience)
	assert.Equal(t, ks.ID, kr.Session)
	// Asked by logical id, the AWS CLI line invokes the deployed name: Lambda knows no logical id.
	var line struct{ Text string }
	require.NoError(t, c.Request(t, "plldbKnock", map[string]any{"function": "OrdersFunction", "format": "awsCli"}).Decode(&line))
	assert.True(t, strings.HasPrefix(line.Text, "aws lambda invoke --function-name '"+orders+"' --client-context "), "the line invokes %s", orders)
	type answer struct {
		payload []byte
		err     error
	}
	done := make(chan answer, 1)
	go func() {
		r, err := h.Invoke(ctx, orders, event(tok))
		done <- answer{r.Payload, err}
	}()
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	frames := c.StackTrace(t, st.ThreadID)
	require.NotEmpty(t, frames)
	assert.Equal(t, "42", c.Evaluate(t, frames[0].ID, "event['order']"))
	assert.Equal(t, "False", c.Evaluate(t, frames[0].ID, "any(k.lower() == 'x-plldb-knock' for k in event['headers'])"), "the knock is stripped")
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	var a answer
	select {
	case a = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the knocked invocation got no answer")
	}
	require.NoError(t, a.err)
	require.NoError(t, json.Unmarshal(a.payload, &out))
	assert.Equal(t, "local", out["where"])

	c.Request(t, "disconnect", nil)
	<-c.Done()
	assert.Eventually(t, func() bool { return assert.ObjectsAreEqual(before, h.Settings(t, orders)) }, 30*time.Second, 100*time.Millisecond,
		"disconnect restores the function")
	_, err = knockkey.Load(stack)
	assert.ErrorIs(t, err, knockkey.ErrNoSession, "disconnect removes the session file")
}

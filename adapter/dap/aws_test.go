package dap

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/layer/runtimeapi"
	"github.com/plldb/plldb/testfixtures/awsharness"
	"github.com/plldb/plldb/testfixtures/moto"
)

// TestAWSModeStopsAtBreakpoint: a launch with "mode": "aws" attaches to a deployed stack (moto, the embedded
// gateway on the DynamoDB store, sandboxes running the real layer proxy); an invocation of the deployed function
// stops at a breakpoint in the local code, the caller gets the local result, and disconnecting restores the
// function exactly.
func TestAWSModeStopsAtBreakpoint(t *testing.T) {
	h := newAWSHarness(t)
	app := awsharness.WriteApp(t)
	stack := "dap-aws-" + strings.ToLower(h.Install.Name)
	fns := h.DeployStack(t, stack, []awsharness.Function{
		{LogicalID: "OrdersFunction", CodeDir: app.Deployed, Env: map[string]string{"STAGE": "dev"}, Timeout: 5},
		{LogicalID: "UsersFunction", CodeDir: app.Deployed},
	})
	orders := fns["OrdersFunction"].Name
	before := h.Settings(t, orders)

	c := startAdapter(t)
	c.ExpectInitializeResponse(t)
	c.Request(t, "launch", map[string]any{
		"mode": "aws", "stackName": stack, "installName": h.Install.Name, "endpointUrl": h.Moto.Endpoint, "region": moto.Region,
		"template": app.Template, "python": testPython(t), "functions": []string{"OrdersFunction"},
	})
	c.ExpectOutputEventContaining(t, "attached to stack "+stack)
	c.ExpectInitializedEvent(t)
	assert.Equal(t, int32(900), h.Settings(t, orders).Timeout, "attached")
	bps := setBreakpoints(t, c, app.Handler, map[string]any{"line": awsharness.BreakpointLine})
	require.Len(t, bps, 1)
	c.Request(t, "configurationDone", nil)

	type answer struct {
		resp runtimeapi.Response
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		resp, err := h.Invoke(ctx, orders, []byte(`{"order": 42}`))
		done <- answer{resp, err}
	}()
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	frames := c.StackTrace(t, st.ThreadID)
	require.NotEmpty(t, frames)
	assert.Equal(t, app.Handler, frames[0].Source.Path)
	assert.Equal(t, awsharness.BreakpointLine, frames[0].Line)
	assert.Equal(t, "42", c.Evaluate(t, frames[0].ID, "event['order']"))
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})

	var a answer
	select {
	case a = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the invocation got no answer")
	}
	require.NoError(t, a.err)
	require.False(t, a.resp.Error, "%s", a.resp.Payload)
	var out map[string]any
	require.NoError(t, json.Unmarshal(a.resp.Payload, &out))
	assert.Equal(t, "local", out["where"], "the caller gets what the local code returned")

	c.Request(t, "disconnect", nil)
	<-c.Done()
	assert.Eventually(t, func() bool { return assert.ObjectsAreEqual(before, h.Settings(t, orders)) }, 30*time.Second, 100*time.Millisecond,
		"disconnect restores the function")
	assert.Equal(t, before, h.Settings(t, orders))
}

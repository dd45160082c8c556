package dap

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBreakpointInHandler is the first thing a developer does: set a breakpoint, invoke, look around, continue.
func TestBreakpointInHandler(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	line := bpLine(t, file, "handler")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)
	bps := setBreakpoints(t, c, file, map[string]any{"line": line})
	require.Len(t, bps, 1)
	assert.Equal(t, true, bps[0]["verified"], "%v", bps[0])
	c.Request(t, "configurationDone", nil)

	res := invoke(t, endpoint, "HelloFunction", `{"name": "plldb"}`)
	c.ExpectOutputEventContaining(t, "→ HelloFunction")
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	assert.Equal(t, []int{int(bps[0]["id"].(float64))}, st.HitBreakpointIDs)

	frames := c.StackTrace(t, st.ThreadID)
	require.NotEmpty(t, frames)
	assert.Equal(t, file, frames[0].Source.Path)
	assert.Equal(t, line, frames[0].Line)
	assert.Equal(t, "handler", frames[0].Name)
	for _, f := range frames {
		assert.NotContains(t, f.Source.Path, "executor-", "the executor's own frames are not the developer's code")
	}

	locals := c.Locals(t, frames[0].ID)
	require.Contains(t, locals, "event")
	assert.Contains(t, locals["event"].Value, "plldb")
	assert.Equal(t, "'plldb'", c.Evaluate(t, frames[0].ID, "event['name']"))
	var comp struct {
		Targets []struct {
			Label string `json:"label"`
		} `json:"targets"`
	}
	require.NoError(t, c.Request(t, "completions", map[string]any{"frameId": frames[0].ID, "text": "eve", "column": 4}).Decode(&comp))
	var labels []string
	for _, target := range comp.Targets {
		labels = append(labels, target.Label)
	}
	assert.Contains(t, labels, "event")
	c.Request(t, "setExpression", map[string]any{"frameId": frames[0].ID, "expression": "event['name']", "value": "'edited'"})
	assert.Equal(t, "'edited'", c.Evaluate(t, frames[0].ID, "event['name']"))

	var threads struct {
		Threads []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"threads"`
	}
	require.NoError(t, c.Request(t, "threads", nil).Decode(&threads))
	var names []string
	for _, th := range threads.Threads {
		if th.ID == st.ThreadID {
			names = append(names, th.Name)
		}
	}
	require.Len(t, names, 1)
	assert.Regexp(t, `^HelloFunction [0-9a-f]{8}$`, names[0], "named after the function and the start of the request id")

	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	r := result(t, res)
	assert.Equal(t, 200, r.status)
	var out struct {
		Body string `json:"body"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &out))
	assert.Contains(t, out.Body, "hello from dev")
	assert.Contains(t, out.Body, `"name": "edited"`, "setExpression changed what the handler returned")
	c.ExpectOutputEventContaining(t, "← HelloFunction")
	c.Request(t, "disconnect", nil)
}

package dap

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSelectiveMirrorLaunchAnswersTheCallerWhileTheCopyIsStopped: with "selective" and "mirror", a knocked
// invocation's caller gets the deployed code's answer while a copy of it is stopped at the breakpoint; once the
// copy is continued the Debug Console shows both results on one line. An unknocked invocation neither stops nor
// is mirrored.
func TestSelectiveMirrorLaunchAnswersTheCallerWhileTheCopyIsStopped(t *testing.T) {
	c, endpoint, line := startSelectiveHello(t, map[string]any{"selective": true, "mirror": true})

	tok, ch, thread := plainThenKnocked(t, c, endpoint, line)

	// The copy is stopped, and the caller already has its answer: the deployed code's.
	r := result(t, ch)
	assert.Equal(t, 200, r.status)
	assert.Contains(t, r.body, "knocked")
	assert.NotContains(t, r.body, tok)
	assert.Equal(t, line, c.StackTrace(t, thread)[0].Line, "still stopped at the breakpoint")
	for _, m := range c.History() {
		assert.NotContains(t, string(m.Raw), "plldb: mirror", "no report before the copy has finished")
	}

	c.Request(t, "continue", map[string]any{"threadId": thread})
	out := c.ExpectOutputEventContaining(t, "plldb: mirror HelloFunction ")
	assert.Contains(t, out, ` — deployed: {"statusCode": 200`)
	assert.Contains(t, out, ` · local: {"statusCode": 200`)
	assert.Contains(t, out, "knocked")
	assert.Equal(t, 1, strings.Count(out, "\n"))
	var body struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &body))
	assert.Equal(t, 200, body.StatusCode)

	// Another unknocked invocation: no stop, no mirror line.
	r = result(t, invoke(t, endpoint, "HelloFunction", `{"name": "plain again"}`))
	assert.Equal(t, 200, r.status)
	c.Request(t, "threads", nil) // a round trip: any output the invocation caused has arrived before its answer
	mirrors, stops := 0, 0
	for _, m := range c.History() {
		if strings.Contains(string(m.Raw), "plldb: mirror ") {
			mirrors++
		}
		if m.Type == "event" && m.Event == "stopped" {
			stops++
		}
		assert.NotContains(t, string(m.Raw), tok, "the knock never reaches the debug console")
	}
	assert.Equal(t, 1, mirrors, "only the knocked invocation is mirrored")
	assert.Equal(t, 1, stops, "only its copy stopped")
}

func TestMirrorNeedsSelective(t *testing.T) {
	_, err := parseLaunch([]byte(`{"mode": "aws", "stackName": "orders", "mirror": true}`))
	assert.ErrorContains(t, err, `"mirror": true needs "selective": true`)
	c, err := parseLaunch([]byte(`{"mode": "aws", "stackName": "orders", "selective": true, "mirror": true}`))
	require.NoError(t, err, "accepted in aws launches too")
	assert.True(t, c.Mirror)
	_, err = parseLaunch([]byte(`{"selective": true, "mirror": 1}`))
	assert.ErrorContains(t, err, `"mirror" must be true or false`)
}

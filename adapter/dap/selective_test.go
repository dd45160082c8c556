package dap

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
	"github.com/plldb/plldb/adapter/knockkey"
)

// TestSelectiveLaunchStopsOnlyKnockedInvocations: with "selective": true an invocation without a knock runs past
// the breakpoint, and one with a knock stops there, with the knock gone from the event the debugger shows.
func TestSelectiveLaunchStopsOnlyKnockedInvocations(t *testing.T) {
	c, endpoint, line := startSelectiveHello(t, map[string]any{"selective": true})

	tok, ch, thread := plainThenKnocked(t, c, endpoint, line)
	c.Request(t, "continue", map[string]any{"threadId": thread})
	r := result(t, ch)
	assert.Equal(t, 200, r.status)
	assert.NotContains(t, r.body, tok)
}

func TestSelectiveWorksInBothModes(t *testing.T) {
	c, err := parseLaunch([]byte(`{"mode": "aws", "stackName": "orders", "selective": true}`))
	require.NoError(t, err)
	assert.True(t, c.Selective)
	_, err = parseLaunch([]byte(`{"selective": "yes"}`))
	assert.ErrorContains(t, err, `"selective" must be true or false`)
}

// startSelectiveHello launches the hello app's HelloFunction locally with args (a fresh knock directory), sets a
// breakpoint in its handler and ends the configuration; it returns the client, the Invoke API endpoint and the
// breakpoint's line.
func startSelectiveHello(t *testing.T, args map[string]any) (c *daptest.Client, endpoint string, line int) {
	t.Helper()
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	line = bpLine(t, file, "handler")
	c = startAdapter(t)
	endpoint = launch(t, c, app, []string{"HelloFunction"}, args)
	bps := setBreakpoints(t, c, file, map[string]any{"line": line})
	require.Len(t, bps, 1)
	c.Request(t, "configurationDone", nil)
	return c, endpoint, line
}

// localKnock mints a minute's knock for function with the key of the session file the local launch wrote.
func localKnock(t *testing.T, function string) string {
	t.Helper()
	s, err := knockkey.Load(knockkey.LocalAudience)
	require.NoError(t, err, "the launch wrote the session file")
	tok, err := s.Mint(knockkey.MintOptions{Function: function, TTL: time.Minute})
	require.NoError(t, err)
	return tok
}

// plainThenKnocked invokes HelloFunction without a knock, which is answered without stopping, then with a knock
// of the session, which stops at line with neither the knock header nor the token in the handler's event. It
// returns the token, the knocked call's pending answer and the stopped thread.
func plainThenKnocked(t *testing.T, c *daptest.Client, endpoint string, line int) (tok string, ch <-chan invokeResult, thread int) {
	t.Helper()
	r := result(t, invoke(t, endpoint, "HelloFunction", `{"name": "plain"}`))
	assert.Equal(t, 200, r.status)
	assert.Contains(t, r.body, "plain")

	tok = localKnock(t, "HelloFunction")
	ch = invoke(t, endpoint, "HelloFunction", `{"name": "knocked", "headers": {"X-Plldb-Knock": "`+tok+`"}}`)
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	frames := c.StackTrace(t, st.ThreadID)
	require.NotEmpty(t, frames)
	assert.Equal(t, line, frames[0].Line)
	ev := c.Evaluate(t, frames[0].ID, "repr(event)")
	assert.Contains(t, ev, "knocked")
	assert.NotContains(t, ev, tok)
	assert.NotContains(t, strings.ToLower(ev), "x-plldb-knock", "the knock is stripped before the handler")
	return tok, ch, st.ThreadID
}

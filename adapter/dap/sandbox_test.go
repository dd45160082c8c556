package dap

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBreakpointAddedWhileSandboxesAreBusy: three concurrent invocations of one function pause in three sandboxes,
// each a debuggee of its own; a breakpoint the IDE adds then is verified, and holds in all three.
func TestBreakpointAddedWhileSandboxesAreBusy(t *testing.T) {
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	first := bpLine(t, file, "handler")
	c := startAdapter(t)
	endpoint := launch(t, c, app, []string{"HelloFunction"}, nil)
	setBreakpoints(t, c, file, map[string]any{"line": first})
	c.Request(t, "configurationDone", nil)

	var results []<-chan invokeResult
	stopped := map[int]bool{}
	for i := range 3 {
		results = append(results, invoke(t, endpoint, "HelloFunction", `{"n": `+itoa(i)+`}`))
		st := stoppedOnce(t, c, "breakpoint")
		stopped[st.ThreadID] = true
	}
	require.Len(t, stopped, 3)
	threads := ideThreads(t, c)
	assertOnlyHandlerThreads(t, threads, "HelloFunction")
	sandboxes := map[string]bool{}
	for id := range stopped {
		name := threads[id]
		_, sb, _ := strings.Cut(name, "(")
		sandboxes[sb] = true
	}
	assert.Len(t, sandboxes, 3, "three invocations, three sandboxes, and their thread names say so: %v", threads)

	bps := setBreakpoints(t, c, file, map[string]any{"line": first}, map[string]any{"line": first + 1})
	require.Len(t, bps, 2)
	for _, bp := range bps {
		assert.Equal(t, true, bp["verified"], "%v", bp)
	}
	for id := range stopped {
		c.Request(t, "continue", map[string]any{"threadId": id})
		st := stoppedOnce(t, c, "breakpoint")
		assert.Equal(t, id, st.ThreadID)
		assert.Equal(t, first+1, c.StackTrace(t, st.ThreadID)[0].Line, "the breakpoint added while it was paused holds in this sandbox")
		c.Request(t, "continue", map[string]any{"threadId": id})
	}
	for _, r := range results {
		assert.Equal(t, 200, result(t, r).status)
	}
}

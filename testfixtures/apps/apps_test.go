package apps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBreakpointLines(t *testing.T) {
	cases := []struct {
		file, fn, stmt string
	}{
		{filepath.Join(Dir("hello"), "src", "app.py"), "handler", `greeting = "hello from "`},
		{filepath.Join(Dir("hello"), "src", "app.py"), "fail", `raise ValueError("boom")`},
		{filepath.Join(Dir("hello"), "src", "pkg", "orders.py"), "handler", `items = event.get("items", [])`},
		{filepath.Join(Dir("cdk"), "asset.3f2c9a1b7e", "index.py"), "handler", `region = os.environ.get("REGION")`},
	}
	for _, tc := range cases {
		line, err := BreakpointLine(tc.file, tc.fn)
		require.NoError(t, err)
		data, err := os.ReadFile(tc.file)
		require.NoError(t, err)
		got := strings.TrimSpace(strings.Split(string(data), "\n")[line-1])
		assert.True(t, strings.HasPrefix(got, tc.stmt), "%s:%d is %q", tc.file, line, got)
	}

	_, err := BreakpointLine(filepath.Join(Dir("hello"), "src", "app.py"), "nothere")
	assert.ErrorContains(t, err, "no # BREAKPOINT line in function nothere")
	_, err = BreakpointLine(filepath.Join(Dir("hello"), "missing.py"), "handler")
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.FileExists(t, HelloTemplate())
	assert.FileExists(t, CDKTemplate())
}

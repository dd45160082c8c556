package template

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Aliases can make small templates describe huge or infinite values; none of them may hang or exhaust memory.

func TestMergeAliasCycle(t *testing.T) {
	src := `Globals:
  Function: &g {X: *g, Y: *g, Runtime: python3.12}
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties: &p {X: *p, Y: *p, Handler: a.b}
`
	tmpl, err := parseInline(t, src, LoadOptions{})
	require.NoError(t, err)
	f, ok := tmpl.Function("F")
	require.True(t, ok)
	assert.Equal(t, "python3.12", f.Runtime)
	assert.Equal(t, "a.b", f.Handler)
}

func TestStringBomb(t *testing.T) {
	// Each level doubles a string with two alias resolutions: few steps, exponential size.
	var b strings.Builder
	b.WriteString("X:\n  s0: &s0 " + strings.Repeat("x", 1000) + "\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "  s%d: &s%d !Join [\"\", [*s%d, *s%d]]\n", i, i, i-1, i-1)
	}
	b.WriteString("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: *s40\n")
	_, err := parseInline(t, b.String(), LoadOptions{})
	var te *Error
	require.ErrorAs(t, err, &te)
	assert.Contains(t, te.Msg, "Fn::Join: the value is longer than 1048576 bytes")
}

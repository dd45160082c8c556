package dap

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAttach(t *testing.T) {
	c, err := parseAttach(nil)
	require.NoError(t, err)
	assert.True(t, c.JustMyCode)
	assert.True(t, c.RedirectOutput)

	c, err = parseAttach(json.RawMessage(`{"type": "plldb", "request": "attach", "host": "127.0.0.1", "port": 4711, "justMyCode": false,
		"pathMappings": [{"localRoot": "/a", "remoteRoot": "/b"}], "template": "ignored.yaml"}`))
	require.NoError(t, err)
	assert.False(t, c.JustMyCode)
	assert.Equal(t, []PathMapping{{LocalRoot: "/a", RemoteRoot: "/b"}}, c.PathMappings)

	for raw, want := range map[string]string{
		`[]`:                   "must be a JSON object",
		`{"justMyCode": "no"}`: `"justMyCode" must be true or false`,
		`{"pathMappings": [{"localRoot": "/a"}]}`: `"pathMappings"[0] needs both`,
		`{"token": 12345}`:                        `"token" must be a string`,
	} {
		_, err := parseAttach(json.RawMessage(raw))
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), want, raw)
		assert.NotContains(t, err.Error(), "12345", "a token is never echoed")
	}
}

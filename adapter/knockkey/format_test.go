package knockkey

import (
	"encoding/base64"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/layer/carrier"
)

func TestIssueSaysWhenTheKnockExpires(t *testing.T) {
	t.Setenv(DirEnv, filepath.Join(t.TempDir(), "knock"))
	s, err := New("orders")
	require.NoError(t, err)
	v, err := s.Verifier("CreateOrder")
	require.NoError(t, err)
	for _, ttl := range []time.Duration{0, time.Minute, knock.MaxTTL} {
		tok, exp, err := s.Issue(MintOptions{TTL: ttl})
		require.NoError(t, err)
		c, err := v.Verify(tok, knock.Request{})
		require.NoError(t, err)
		assert.True(t, c.Expires.Equal(exp), "%s: the token's exp %s, Issue said %s", ttl, c.Expires, exp)
		want := ttl
		if want == 0 {
			want = knock.DefaultTTL
		}
		assert.WithinDuration(t, time.Now().Add(want), exp, 5*time.Second)
	}
	_, _, err = s.Issue(MintOptions{TTL: knock.MaxTTL + time.Second})
	assert.ErrorIs(t, err, knock.ErrLifetime)
	_, _, err = s.Issue(MintOptions{TTL: -time.Second})
	assert.Error(t, err)
}

func TestFormatLine(t *testing.T) {
	s, err := New("orders")
	require.NoError(t, err)
	v, err := s.Verifier("CreateOrder")
	require.NoError(t, err)
	tok, err := s.Mint(MintOptions{})
	require.NoError(t, err)

	line, err := FormatLine(FormatHeader, tok, LineOptions{})
	require.NoError(t, err)
	assert.Equal(t, "X-Plldb-Knock: "+tok+"\n", line)
	line, err = FormatLine(FormatCurl, tok, LineOptions{URL: "https://x.example/it's"})
	require.NoError(t, err)
	assert.Equal(t, "curl -H 'X-Plldb-Knock: "+tok+"' 'https://x.example/it'\\''s'\n", line)
	_, err = FormatLine(FormatCurl, tok, LineOptions{})
	assert.ErrorContains(t, err, "needs the URL")
	_, err = FormatLine("wget", tok, LineOptions{})
	assert.ErrorContains(t, err, `unknown knock format "wget"`)
	assert.NotContains(t, err.Error(), tok)

	cc, err := base64.StdEncoding.DecodeString(ClientContext(tok))
	require.NoError(t, err)
	o := carrier.Check(v, []byte(`{}`), string(cc))
	assert.True(t, o.Knocked, "the layer accepts the client context: %v", o.Err)
	line, err = FormatLine(FormatBoto3, tok, LineOptions{Function: "CreateOrder", Endpoint: "http://127.0.0.1:3001"})
	require.NoError(t, err)
	assert.Contains(t, line, `boto3.client("lambda", endpoint_url="http://127.0.0.1:3001").invoke(FunctionName="CreateOrder", Payload=b"{}", ClientContext="`+ClientContext(tok)+`")`)
}

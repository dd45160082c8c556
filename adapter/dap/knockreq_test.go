package dap

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/layer/carrier"
)

type knockReply struct {
	Header, Value, Line, Expires, Audience, Session, Text string
}

func requestKnock(t *testing.T, c *daptest.Client, args map[string]any) knockReply {
	t.Helper()
	var r knockReply
	require.NoError(t, c.Request(t, "plldbKnock", args).Decode(&r))
	return r
}

// TestKnockRequestMintsTheSessionsKnock: in a selective local launch, plldbKnock answers with a knock of the
// session's own key that the layer's check accepts for the audience asked for, narrowed as asked, and that stops
// an invocation at a breakpoint; bad arguments are refused; no token reaches the adapter's log or any other DAP
// message.
func TestKnockRequestMintsTheSessionsKnock(t *testing.T) {
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	app := helloApp(t)
	file := filepath.Join(app, "src", "app.py")
	c, logs := startAdapterLogging(t)
	endpoint := launch(t, c, app, []string{"HelloFunction"}, map[string]any{"selective": true})
	require.Len(t, setBreakpoints(t, c, file, map[string]any{"line": bpLine(t, file, "handler")}), 1)
	c.Request(t, "configurationDone", nil)

	var fns struct {
		Selective bool
		Audience  string
		Functions []struct{ LogicalID, Name string }
	}
	require.NoError(t, c.Request(t, "plldbFunctions", nil).Decode(&fns))
	assert.True(t, fns.Selective)
	assert.Equal(t, knockkey.LocalAudience, fns.Audience)
	require.Len(t, fns.Functions, 1)
	assert.Equal(t, "HelloFunction", fns.Functions[0].LogicalID)

	// The session's public key, as the launch saved it for plldb knock: the key the pipeline verifies with.
	ks, err := knockkey.Load(knockkey.LocalAudience)
	require.NoError(t, err)
	hello, err := ks.Verifier("HelloFunction")
	require.NoError(t, err)
	other, err := ks.Verifier("OtherFunction")
	require.NoError(t, err)

	var tokens []string
	stackWide := requestKnock(t, c, nil)
	tokens = append(tokens, stackWide.Value)
	assert.Equal(t, "X-Plldb-Knock", stackWide.Header)
	assert.Equal(t, "X-Plldb-Knock: "+stackWide.Value, stackWide.Line)
	assert.Equal(t, knockkey.LocalAudience, stackWide.Audience)
	assert.Equal(t, ks.ID, stackWide.Session)
	assert.Empty(t, stackWide.Text, "no format asked")
	exp, err := time.Parse(time.RFC3339, stackWide.Expires)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(knock.DefaultTTL), exp, 5*time.Second)
	claims, err := hello.Verify(stackWide.Value, knock.Request{})
	require.NoError(t, err)
	assert.True(t, claims.Expires.Equal(exp), "expires is the token's: %s vs %s", claims.Expires, exp)
	_, err = other.Verify(stackWide.Value, knock.Request{})
	assert.NoError(t, err, "a stack-wide knock is good for every function")
	o := carrier.Check(hello, []byte(`{"headers": {"x-plldb-knock": "`+stackWide.Value+`"}}`), "")
	assert.True(t, o.Knocked, "the layer's check accepts it in the header: %v", o.Err)

	bound := requestKnock(t, c, map[string]any{"function": "HelloFunction", "for": "5m", "route": "POST /orders/*",
		"format": "curl", "url": "http://localhost:8080/orders/7"})
	tokens = append(tokens, bound.Value)
	assert.Equal(t, "local/HelloFunction", bound.Audience)
	m := regexp.MustCompile(`^curl -H 'X-Plldb-Knock: ([^']+)' 'http://localhost:8080/orders/7'\n$`).FindStringSubmatch(bound.Text)
	require.NotNil(t, m, bound.Text)
	assert.Equal(t, bound.Value, m[1])
	claims, err = hello.Verify(bound.Value, knock.Request{HTTP: true, Method: "POST", Path: "/orders/7"})
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(5*time.Minute), claims.Expires, 5*time.Second)
	_, err = hello.Verify(bound.Value, knock.Request{HTTP: true, Method: "GET", Path: "/orders/7"})
	assert.ErrorIs(t, err, knock.ErrRoute)
	_, err = other.Verify(bound.Value, knock.Request{HTTP: true, Method: "POST", Path: "/orders/7"})
	assert.ErrorIs(t, err, knock.ErrAudience, "bound to HelloFunction")

	awsCLI := requestKnock(t, c, map[string]any{"function": "HelloFunction", "format": "awsCli"})
	tokens = append(tokens, awsCLI.Value)
	assert.True(t, strings.HasPrefix(awsCLI.Text, "aws lambda invoke --endpoint-url '"+endpoint+"' --function-name 'HelloFunction' --client-context "), awsCLI.Text)
	boto3 := requestKnock(t, c, map[string]any{"format": "boto3"})
	tokens = append(tokens, boto3.Value)
	assert.Contains(t, boto3.Text, `boto3.client("lambda", endpoint_url="`+endpoint+`")`)

	for _, bad := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"for": "13h"}, `"for" must be a duration between 1s and 12h0m0s`},
		{map[string]any{"for": "-1m"}, `"for" must be`},
		{map[string]any{"for": "500ms"}, `"for" must be`},
		{map[string]any{"for": "soon"}, `"for" must be`},
		{map[string]any{"function": "NoSuchFunction"}, `"NoSuchFunction" is not a function of this session (it debugs HelloFunction)`},
		{map[string]any{"route": "orders"}, "route"},
		{map[string]any{"format": "wget"}, `unknown knock format "wget"`},
		{map[string]any{"format": "curl"}, "needs the URL"},
		{map[string]any{"format": "awsCli", "route": "POST /orders/*"}, `"route" goes with the formats header and curl: the awsCli and boto3 lines invoke the function with the event {}`},
		{map[string]any{"format": "boto3", "route": "POST /orders/*"}, `"route" goes with the formats header and curl`},
		{map[string]any{"for": 600}, "arguments must be an object of strings"},
	} {
		r := c.RequestError(t, "plldbKnock", bad.args)
		assert.Contains(t, r.ErrorText(), bad.want, "%v", bad.args)
	}

	// The knock the request gave stops an invocation at the breakpoint, as plldb knock's does.
	ch := invoke(t, endpoint, "HelloFunction", `{"name": "knocked", "headers": {"X-Plldb-Knock": "`+stackWide.Value+`"}}`)
	st := c.ExpectStoppedEventReason(t, "breakpoint")
	c.Request(t, "continue", map[string]any{"threadId": st.ThreadID})
	r := result(t, ch)
	assert.Equal(t, 200, r.status)
	assert.Contains(t, r.body, "knocked")

	c.Request(t, "disconnect", nil)
	<-c.Done()
	log := logs.String()
	require.NotEmpty(t, log, "the adapter logged at debug level")
	assert.Contains(t, log, "plldbKnock", "the request itself is logged, by name")
	for _, tok := range tokens {
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		assert.NotContains(t, log, sig, "no knock reaches the adapter's log")
		for _, msg := range c.History() {
			if msg.Type == "response" && msg.Command == "plldbKnock" {
				continue
			}
			assert.NotContains(t, string(msg.Raw), sig, "no knock in any other DAP message")
		}
	}
}

// TestKnockRequestNeedsASelectiveSession: plldbKnock before a launch, and in a launch that is not selective, is
// refused, saying how to launch one it works in.
func TestKnockRequestNeedsASelectiveSession(t *testing.T) {
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	app := helloApp(t)
	c := startAdapter(t)
	c.ExpectInitializeResponse(t)
	r := c.RequestError(t, "plldbKnock", nil)
	assert.Contains(t, r.ErrorText(), "nothing is launched yet")

	c2 := startAdapter(t)
	launch(t, c2, app, []string{"HelloFunction"}, nil)
	c2.Request(t, "configurationDone", nil)
	r = c2.RequestError(t, "plldbKnock", map[string]any{"function": "HelloFunction"})
	assert.Contains(t, r.ErrorText(), `launch with "selective": true`)
	var fns struct{ Selective bool }
	require.NoError(t, json.Unmarshal(c2.Request(t, "plldbFunctions", nil).Body, &fns))
	assert.False(t, fns.Selective)
	_, err := knockkey.Load(knockkey.LocalAudience)
	assert.ErrorIs(t, err, knockkey.ErrNoSession, "a session that is not selective has no knock key")
}

package local_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/testfixtures/logbuf"
)

// selectiveApp writes a one-function app whose handler reports its process id and what it was given.
func selectiveApp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "template.yaml"), []byte(`AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      Timeout: 10
`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "src", "app.py"), []byte(`import os, sys

def handler(event, context):
    cc = context.client_context
    print("event seen:", event)
    return {"pid": os.getpid(), "event": event, "custom": (cc.custom if cc else None)}
`), 0o644))
	return filepath.Join(dir, "template.yaml")
}

type echoed struct {
	PID    int             `json:"pid"`
	Event  json.RawMessage `json:"event"`
	Custom json.RawMessage `json:"custom"`
}

func TestSelectiveRoutesByKnock(t *testing.T) {
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	// Runs after the pipeline's Close (cleanups run last first): the session file is gone, and plldb knock then
	// says no session is running.
	t.Cleanup(func() {
		_, err := knockkey.Load(knockkey.LocalAudience)
		assert.ErrorIs(t, err, knockkey.ErrNoSession)
	})
	logs := &logbuf.Buffer{}
	var handlerOut logbuf.Buffer
	p := start(t, local.Options{
		Template:  selectiveApp(t),
		Selective: true,
		Debug:     true,
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Hooks: devside.Hooks{OnLog: func(l executor.LogLine) {
			_, _ = handlerOut.Write([]byte(l.Text + l.Record))
		}},
	})
	s := p.KnockSession()
	require.NotNil(t, s)
	loaded, err := knockkey.Load(knockkey.LocalAudience)
	require.NoError(t, err, "the session file is there for plldb knock --local")
	assert.Equal(t, s.ID, loaded.ID)
	assert.Equal(t, p.Endpoint(), loaded.Endpoint)

	debugExec, ok := p.Executor("Echo")
	require.True(t, ok)
	plainExec, ok := p.PlainExecutor("Echo")
	require.True(t, ok)
	assert.NotZero(t, debugExec.DebugPort(), "knocked invocations run under debugpy")
	assert.Zero(t, plainExec.DebugPort(), "the deployed code runs without debugpy")
	debugPID, plainPID := debugExec.PID(), plainExec.PID()
	require.NotEqual(t, debugPID, plainPID)

	ctx := context.Background()
	invoke := func(event, cc string) (echoed, local.InvokeResponse) {
		t.Helper()
		req := local.InvokeRequest{Payload: []byte(event)}
		if cc != "" {
			req.ClientContext = base64.StdEncoding.EncodeToString([]byte(cc))
		}
		resp, err := p.Invoke(ctx, "Echo", req)
		require.NoError(t, err)
		require.Empty(t, resp.FunctionError, "%s", resp.Payload)
		var e echoed
		require.NoError(t, json.Unmarshal(resp.Payload, &e), "%s", resp.Payload)
		return e, resp
	}

	// Unknocked: the plain executor, never the debug one.
	e, resp := invoke(`{"n":1}`, "")
	assert.Equal(t, plainPID, e.PID)
	assert.JSONEq(t, `{"n":1}`, string(e.Event))
	assert.Contains(t, string(resp.Log), "event seen: {'n': 1}")
	assert.Regexp(t, `(?m)^REPORT RequestId: `, string(resp.Log))

	// Knocked, in the client context: the debug executor, knock stripped.
	tok, err := loaded.Mint(knockkey.MintOptions{Function: "Echo", TTL: time.Minute})
	require.NoError(t, err)
	e, _ = invoke(`{"n":2}`, `{"custom":{"plldbKnock":"`+tok+`","other":"kept"}}`)
	assert.Equal(t, debugPID, e.PID, "a knocked invocation runs under the debugger")
	assert.JSONEq(t, `{"n":2}`, string(e.Event))
	assert.JSONEq(t, `{"other":"kept"}`, string(e.Custom), "the knock is stripped from the client context")

	// Knocked, as an HTTP header of an API Gateway v2 event.
	e, _ = invoke(`{"version":"2.0","rawPath":"/orders","headers":{"x-plldb-knock":"`+tok+`","accept":"*/*"},"requestContext":{"http":{"method":"POST","path":"/orders"}}}`, "")
	assert.Equal(t, debugPID, e.PID)
	assert.JSONEq(t, `{"version":"2.0","rawPath":"/orders","headers":{"accept":"*/*"},"requestContext":{"http":{"method":"POST","path":"/orders"}}}`, string(e.Event))

	// Invalid knocks: plain, stripped, one line saying why.
	_, otherKey, err := knock.NewKey()
	require.NoError(t, err)
	forged, err := knock.Mint(otherKey, knock.Claims{Issuer: s.ID, Audience: "local"})
	require.NoError(t, err)
	expired, err := knock.Mint(loaded.Private, knock.Claims{Issuer: s.ID, Audience: "local",
		IssuedAt: time.Now().Add(-time.Hour), Expires: time.Now().Add(-30 * time.Minute)})
	require.NoError(t, err)
	wrongAud, err := knock.Mint(loaded.Private, knock.Claims{Issuer: s.ID, Audience: "orders"})
	require.NoError(t, err)
	otherFn, err := loaded.Mint(knockkey.MintOptions{Function: "Payments"})
	require.NoError(t, err)
	bad := map[string]string{
		"forged":    forged,
		"expired":   expired,
		"audience":  wrongAud,
		"function":  otherFn,
		"malformed": "not-a-knock",
		"none-alg":  "eyJhbGciOiJub25lIn0." + strings.Split(tok, ".")[1] + ".",
	}
	for name, k := range bad {
		before := strings.Count(logs.String(), "knock refused")
		e, _ = invoke(`{"n":3,"plldbKnock_not":1}`, `{"custom":{"plldbKnock":"`+k+`"}}`)
		assert.Equal(t, plainPID, e.PID, name)
		assert.Equal(t, "{}", compact(t, e.Custom), name)
		assert.Equal(t, before+1, strings.Count(logs.String(), "knock refused"), "%s: one line saying why", name)
		e, _ = invoke(`{"headers":{"X-Plldb-Knock":"`+k+`"}}`, "")
		assert.Equal(t, plainPID, e.PID, name)
		assert.JSONEq(t, `{"headers":{}}`, string(e.Event), name)
	}

	for _, k := range append([]string{tok}, forged, expired, wrongAud, otherFn) {
		assert.NotContains(t, logs.String(), k, "a knock is never logged")
		assert.NotContains(t, handlerOut.String(), k, "a knock never reaches the handler")
		assert.NotContains(t, logs.String(), strings.Split(k, ".")[2], "not even its signature")
	}
	assert.NotContains(t, logs.String(), base64.StdEncoding.EncodeToString(loaded.Private.Seed()))
	assert.NotContains(t, logs.String(), knock.Header, "no knock of any kind in the logs")
	assert.NotContains(t, handlerOut.String(), knock.Header, "nor in what handlers printed")
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, json.Compact(&b, raw))
	return b.String()
}

package local_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// mirrorApp is selectiveApp whose handler raises when the event asks it to.
func mirrorApp(t *testing.T) string {
	t.Helper()
	tpl := selectiveApp(t)
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(tpl), "src", "app.py"), []byte(`import os

def handler(event, context):
    if event.get("fail"):
        raise ValueError("failed in %d" % os.getpid())
    return {"pid": os.getpid(), "event": event}
`), 0o644))
	return tpl
}

// In selective mirror mode the caller of a knocked invocation gets the plain executor's answer (the deployed
// code), and a copy, without the knock, runs on the debug executor; both results are reported side by side, an
// error by its type. Unknocked invocations are not mirrored.
func TestSelectiveMirrorAnswersFromThePlainExecutorAndReportsBoth(t *testing.T) {
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	var mu sync.Mutex
	var reports []devside.MirrorReport
	var handlerOut logbuf.Buffer
	p := start(t, local.Options{
		Template:  mirrorApp(t),
		Selective: true,
		Mirror:    true,
		Debug:     true,
		Hooks: devside.Hooks{
			OnMirror: func(r devside.MirrorReport) {
				mu.Lock()
				reports = append(reports, r)
				mu.Unlock()
			},
			OnLog: func(l executor.LogLine) { _, _ = handlerOut.Write([]byte(l.Text + l.Record)) },
		},
	})
	got := func() []devside.MirrorReport {
		mu.Lock()
		defer mu.Unlock()
		return append([]devside.MirrorReport(nil), reports...)
	}
	debugExec, _ := p.Executor("Echo")
	plainExec, _ := p.PlainExecutor("Echo")
	debugPID, plainPID := debugExec.PID(), plainExec.PID()
	require.NotEqual(t, debugPID, plainPID)
	s := p.KnockSession()
	tok, err := s.Mint(knockkey.MintOptions{Function: "Echo", TTL: time.Minute})
	require.NoError(t, err)
	ctx := context.Background()

	// Unknocked: the plain executor, no copy.
	resp, err := p.Invoke(ctx, "Echo", local.InvokeRequest{Payload: []byte(`{"n":1}`)})
	require.NoError(t, err)
	var e echoed
	require.NoError(t, json.Unmarshal(resp.Payload, &e))
	assert.Equal(t, plainPID, e.PID)

	// Knocked: the caller's answer is the plain executor's; the copy runs on the debug executor.
	resp, err = p.Invoke(ctx, "Echo", local.InvokeRequest{Payload: []byte(`{"n":2,"headers":{"X-Plldb-Knock":"` + tok + `"}}`)})
	require.NoError(t, err)
	require.Empty(t, resp.FunctionError)
	require.NoError(t, json.Unmarshal(resp.Payload, &e))
	assert.Equal(t, plainPID, e.PID, "the caller is answered by the deployed code")
	assert.JSONEq(t, `{"n":2,"headers":{}}`, string(e.Event))
	require.Eventually(t, func() bool { return len(got()) == 1 }, 30*time.Second, 10*time.Millisecond)
	r := got()[0]
	assert.Equal(t, resp.RequestID, r.RequestID)
	assert.Equal(t, "Echo", r.Function.LogicalID)
	require.NoError(t, r.LocalErr)
	require.Nil(t, r.Local.Err)
	var copyOut echoed
	require.NoError(t, json.Unmarshal(r.Local.Payload, &copyOut))
	assert.Equal(t, debugPID, copyOut.PID, "the copy runs under the debugger")
	assert.JSONEq(t, `{"n":2,"headers":{}}`, string(copyOut.Event), "the copy has no knock either")
	require.NotNil(t, r.Deployed)
	assert.Equal(t, string(resp.Payload), string(r.Deployed.Payload), "the deployed answer is what the caller got")
	assert.False(t, r.Deployed.Error)

	// Knocked and failing: the caller gets the plain executor's error; the report names both errors.
	resp, err = p.Invoke(ctx, "Echo", local.InvokeRequest{Payload: []byte(`{"fail":true,"headers":{"x-plldb-knock":"` + tok + `"}}`)})
	require.NoError(t, err)
	assert.Equal(t, "Unhandled", resp.FunctionError)
	assert.Contains(t, string(resp.Payload), "failed in "+itoa(plainPID))
	require.Eventually(t, func() bool { return len(got()) == 2 }, 30*time.Second, 10*time.Millisecond)
	r = got()[1]
	require.NotNil(t, r.Deployed)
	assert.True(t, r.Deployed.Error)
	assert.Equal(t, "ValueError", r.Deployed.ErrorType)
	require.NotNil(t, r.Local.Err)
	assert.Equal(t, "ValueError", r.Local.Err.ErrorType)
	assert.Contains(t, r.Local.Err.ErrorMessage, "failed in "+itoa(debugPID))
	line := devside.FormatMirror(r)
	assert.Contains(t, line, "deployed: ValueError: failed in "+itoa(plainPID))
	assert.Contains(t, line, "local: ValueError: failed in "+itoa(debugPID))

	// Another unknocked invocation: still no copy.
	_, err = p.Invoke(ctx, "Echo", local.InvokeRequest{Payload: []byte(`{"n":3}`)})
	require.NoError(t, err)
	require.NoError(t, p.Close(ctx))
	assert.Len(t, got(), 2, "only knocked invocations are mirrored")
	assert.NotContains(t, handlerOut.String(), tok)
}

func TestMirrorNeedsSelective(t *testing.T) {
	_, err := local.Start(context.Background(), local.Options{Template: mirrorApp(t), Mirror: true, Python: pyenv.Python(t),
		Logger: slog.New(slog.DiscardHandler)})
	assert.ErrorContains(t, err, "mirror mode needs selective mode")
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

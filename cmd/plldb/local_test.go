package main

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/testfixtures/apps"
)

// TestLocalConcurrencyFlags: --max-concurrency 1 lets one invocation of Slow run; a second synchronous one gets
// Lambda's 429, an Event invocation waits, and Ctrl-C runs it before plldb exits.
func TestLocalConcurrencyFlags(t *testing.T) {
	tpl, err := apps.WriteSlow(t.TempDir(), 1)
	require.NoError(t, err)
	cmd, endpoint, out := startLocal(t, tpl, "--max-concurrency", "1", "--account-concurrency", "5")
	url := endpoint + "/2015-03-31/functions/Slow/invocations"
	first := make(chan int, 1)
	go func() {
		resp, err := http.Post(url, "application/json", strings.NewReader(`{}`))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "START Slow") }, 30*time.Second, 10*time.Millisecond)
	resp, err := http.Post(url, "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, `{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}`, string(body))

	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	id := resp.Header.Get("X-Amzn-Requestid")
	require.NotEmpty(t, id)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	assert.Equal(t, http.StatusOK, <-first)

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "the queued event ran before plldb exited")
	case <-time.After(30 * time.Second):
		t.Fatal("plldb local did not exit")
	}
	assert.Contains(t, out.String(), "END   Slow "+id, "the queued event ran: %s", out.String())
	assert.NotContains(t, out.String(), "not run before shutdown")
}

func TestLocalFlagsRefuseZeroConcurrency(t *testing.T) {
	var stderr strings.Builder
	err := run(t.Context(), []string{"local", "--max-concurrency", "0"}, io.Discard, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--max-concurrency and --account-concurrency must be at least 1")
}

func TestReportUnfinishedPrintsTheRequestIDs(t *testing.T) {
	var out strings.Builder
	left := &local.UnfinishedEventsError{RequestIDs: []string{"id-1", "id-2"}}
	err := reportUnfinished(&out, errors.Join(errors.New("other"), left))
	require.Error(t, err, "still an error: plldb exits 1")
	assert.Equal(t, "2 event invocation(s) were accepted but not run before shutdown:\n  id-1\n  id-2\n", out.String())
	out.Reset()
	assert.NoError(t, reportUnfinished(&out, nil))
	assert.Empty(t, out.String())
}

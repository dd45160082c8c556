package main

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/pyenv"
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

// TestLocalLogLinesSayEachAttributeOnce: plldb local's log lines (here at debug level, in selective mode, through
// a knocked and an unknocked invocation) name each attribute once: a logger handed down with an attribute its
// receiver adds again printed "function=Echo function=Echo" and "component=gateway component=gateway", and one
// whose receiver adds the same key with its own value "component=developer-link component=wsclient".
func TestLocalLogLinesSayEachAttributeOnce(t *testing.T) {
	// Mirror mode dials a link of its own for the knocked invocation's copy.
	for _, mode := range [][]string{{"--selective"}, {"--selective", "--mirror"}} {
		t.Run(strings.Join(mode, " "), func(t *testing.T) {
			t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
			tpl := pythonApp(t, "Echo", "def handler(event, context):\n    return event\n")
			cmd := exec.Command(plldbBin, "local", "--template", tpl, "--port", "0", "--python", pyenv.Python(t), "--log-level", "debug")
			cmd.Args = append(cmd.Args, mode...)
			stderr := &logbuf.Buffer{}
			cmd.Stderr = writerFunc(func(b []byte) (int, error) { stderr.WriteString(string(b)); return len(b), nil })
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			endpoint := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					if ep, ok := strings.CutPrefix(sc.Text(), "Lambda Invoke endpoint: "); ok {
						endpoint <- ep
					}
				}
			}()
			var ep string
			select {
			case ep = <-endpoint:
			case <-time.After(60 * time.Second):
				t.Fatalf("plldb local printed no endpoint\n%s", stderr.String())
			}
			invokeJSON(t, ep, "Echo")
			invokeJSON(t, ep, "Echo", "--knock")
			require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
			require.NoError(t, cmd.Wait())

			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			require.Greater(t, len(lines), 10, "debug logging says something")
			for _, line := range lines {
				// A key twice is as wrong with two values as with one ("component=developer-link component=wsclient"):
				// which one holds depends on who reads the line.
				seen := map[string]bool{}
				for _, kv := range logAttrs(t, line) {
					key, _, _ := strings.Cut(kv, "=")
					assert.False(t, seen[key], "%s twice in %s", key, line)
					seen[key] = true
				}
			}
		})
	}
}

// logAttrs splits a slog text line into its key=value pairs (values quoted with Go's syntax when they need it).
func logAttrs(t *testing.T, line string) []string {
	t.Helper()
	var out []string
	for rest := strings.TrimSpace(line); rest != ""; rest = strings.TrimLeft(rest, " ") {
		key, after, ok := strings.Cut(rest, "=")
		require.True(t, ok && !strings.Contains(key, " "), "not a slog text line: %q", line)
		val := after
		if strings.HasPrefix(after, `"`) {
			q, err := strconv.QuotedPrefix(after)
			require.NoError(t, err, line)
			val = q
		} else if i := strings.IndexByte(after, ' '); i >= 0 {
			val = after[:i]
		}
		out = append(out, key+"="+val)
		rest = after[len(val):]
	}
	return out
}

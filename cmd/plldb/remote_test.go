package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

func TestListenersRefuseNonLoopbackAddressesWithoutAllowRemote(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"dap", "--listen", "0.0.0.0:0"},
		{"dap", "--listen", ":0"},
		{"dap", "--listen", "[::]:0"},
		{"attach", "--stack-name", "shop", "--listen", "0.0.0.0:0"},
		{"local", "--template", apps.HelloTemplate(), "--port", "0", "--host", "0.0.0.0"},
		{"local", "--template", apps.HelloTemplate(), "--port", "0", "--host", "::"},
	} {
		out, err := exec.CommandContext(ctx, plldbBin, args...).CombinedOutput()
		require.Error(t, err, "%v: %s", args, out)
		assert.Contains(t, string(out), "not a loopback address", "%v", args)
		assert.Contains(t, string(out), "--allow-remote", "%v", args)
	}
	out, err := exec.CommandContext(ctx, plldbBin, "dap", "--allow-remote").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "--allow-remote goes with --listen")
}

// startWithStderr starts plldb and returns the first stdout line matching prefix (its rest), and stderr as
// written so far once that line came.
func startWithStderr(t *testing.T, prefix string, args ...string) (string, *logbuf.Buffer, *logbuf.Buffer) {
	t.Helper()
	cmd := exec.Command(plldbBin, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &logbuf.Buffer{}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { stderr.WriteString(string(p)); return len(p), nil })
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	out := &logbuf.Buffer{}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				select {
				case found <- rest:
				default:
				}
			}
		}
	}()
	select {
	case v := <-found:
		return v, out, stderr
	case <-time.After(60 * time.Second):
		t.Fatalf("no %q line\nstderr:\n%s", prefix, stderr.String())
		return "", nil, nil
	}
}

var tokenLine = regexp.MustCompile(`(?m)^WARNING: token \(shown once\): (\S+)$`)

func TestDAPAllowRemoteWantsTheToken(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "dap.log")
	addr, stdout, stderr := startWithStderr(t, "DAP server listening at: ", "dap", "--listen", "127.0.0.1:0", "--allow-remote", "--log-file", logFile, "--log-level", "debug")
	require.Eventually(t, func() bool { return tokenLine.MatchString(stderr.String()) }, 10*time.Second, 10*time.Millisecond)
	m := tokenLine.FindStringSubmatch(stderr.String())
	token := m[1]
	assert.Contains(t, stderr.String(), "WARNING: --allow-remote: the DAP server at "+addr+" accepts connections from other machines")
	assert.Contains(t, stderr.String(), `"token": "<token>"`)

	app := filepath.Dir(apps.HelloTemplate())
	launchArgs := map[string]any{"mode": "local", "template": filepath.Join(app, "template.yaml"), "invokePort": 0,
		"python": pyenv.Python(t), "functions": []string{"HelloFunction"}}

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c := daptest.New(conn)
	c.ExpectInitializeResponse(t)
	msg := c.RequestError(t, "launch", launchArgs)
	assert.Contains(t, msg.ErrorText(), `"token"`)
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the refused client stays connected")
	}

	conn, err = net.Dial("tcp", addr)
	require.NoError(t, err)
	c = daptest.New(conn)
	defer c.Close()
	c.ExpectInitializeResponse(t)
	launchArgs["token"] = token
	c.Request(t, "launch", launchArgs)
	c.ExpectOutputEventContaining(t, "Invoke API at http://127.0.0.1:")
	c.ExpectInitializedEvent(t)
	c.Request(t, "configurationDone", nil)
	c.Request(t, "disconnect", nil)

	assert.Equal(t, 1, strings.Count(stderr.String(), token), "the token is printed once")
	assert.NotContains(t, stdout.String(), token)
	logs, err := os.ReadFile(logFile)
	require.NoError(t, err)
	assert.NotContains(t, string(logs), token, "the token stays out of the log, even at debug")
	assert.Contains(t, string(logs), "DAP client refused")
}

func TestLocalAllowRemoteWantsTheToken(t *testing.T) {
	endpoint, stdout, stderr := startWithStderr(t, "Lambda Invoke endpoint: ", "local", "--template", apps.HelloTemplate(),
		"--port", "0", "--python", pyenv.Python(t), "--allow-remote", "--log-level", "warn")
	require.Eventually(t, func() bool { return tokenLine.MatchString(stderr.String()) }, 10*time.Second, 10*time.Millisecond)
	token := tokenLine.FindStringSubmatch(stderr.String())[1]
	assert.Contains(t, stderr.String(), "WARNING: --allow-remote: the Lambda Invoke endpoint at "+endpoint)
	assert.Contains(t, stderr.String(), "AWS_ACCESS_KEY_ID=<token>")
	v1Line := regexp.MustCompile(`(?m)^  (AWS_ACCESS_KEY_ID=<token from stderr> .*) +# AWS CLI v1$`)
	require.Eventually(t, func() bool { return v1Line.MatchString(stdout.String()) }, 10*time.Second, 10*time.Millisecond,
		stdout.String())

	post := func(auth string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, endpoint+"/2015-03-31/functions/HelloFunction/invocations", strings.NewReader(`{"name":"remote"}`))
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := post("")
	assert.Equal(t, http.StatusForbidden, status, body)
	assert.Contains(t, body, "--allow-remote")
	status, body = post("Bearer " + token)
	assert.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "hello from dev")
	assert.Equal(t, 1, strings.Count(stderr.String(), token), "the token is printed once")
	assert.NotContains(t, stdout.String(), token)

	// What a user without AWS keys in the environment runs: the banner's AWS CLI line with the token put in, and
	// plldb invoke with the token alone in AWS_ACCESS_KEY_ID, as docs/invoke.md says.
	work := t.TempDir()
	env := []string{"PATH=" + filepath.Dir(pyenv.Python(t)) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + work, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + filepath.Join(work, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(work, "none")}
	line := strings.Replace(v1Line.FindStringSubmatch(stdout.String())[1], "<token from stderr>", token, 1)
	cli := exec.Command("sh", "-c", line)
	cli.Dir, cli.Env = work, env
	out, err := cli.CombinedOutput()
	require.NoError(t, err, "%s", out)
	answer, err := os.ReadFile(filepath.Join(work, "out.json"))
	require.NoError(t, err)
	assert.Contains(t, string(answer), `"errorMessage": "boom"`, "the banner's line invokes the first function, FailingFunction")

	inv := exec.Command(plldbBin, "invoke", "HelloFunction", "--endpoint-url", endpoint, "--log", "none")
	inv.Env = append(env, "AWS_ACCESS_KEY_ID="+token)
	var invErr strings.Builder
	inv.Stderr = &invErr
	res, err := inv.Output()
	require.NoError(t, err, invErr.String())
	assert.Contains(t, string(res), "hello from dev")
}

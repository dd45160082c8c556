package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/layer/carrier"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// knockSession starts a selective session of audience owned by this test process, as plldb local or attach would.
func knockSession(t *testing.T, audience, endpoint string) *knockkey.Session {
	t.Helper()
	s, err := knockkey.New(audience)
	require.NoError(t, err)
	s.Endpoint = endpoint
	require.NoError(t, s.Save())
	t.Cleanup(func() { _ = s.Remove() })
	return s
}

func knockCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr strings.Builder
	err := run(t.Context(), append([]string{"knock"}, args...), &stdout, &stderr)
	return stdout.String(), err
}

func TestKnockWithoutSession(t *testing.T) {
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	_, err := knockCmd(t, "--local")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no selective session is running")
	assert.Contains(t, err.Error(), "plldb local --selective")
	_, err = knockCmd(t, "--stack-name", "orders")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "plldb attach --stack-name orders --selective")
	_, err = knockCmd(t)
	assert.ErrorContains(t, err, "--stack-name X")
	for _, ttl := range []string{"13h", "500ms", "0s"} {
		_, err = knockCmd(t, "--local", "--for", ttl)
		assert.ErrorContains(t, err, "--for must be between 1s and 12h0m0s", ttl)
	}

	var stdout, stderr strings.Builder
	err = run(t.Context(), []string{"invoke", "Echo", "--knock", "--endpoint-url", "http://127.0.0.1:1"}, &stdout, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--knock: no selective session is running", "refused before any call")
}

func TestKnockFormats(t *testing.T) {
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	s := knockSession(t, "orders", "")
	v, err := s.Verifier("CreateOrder")
	require.NoError(t, err)

	out, err := knockCmd(t, "--stack-name", "orders", "--function", "CreateOrder", "--for", "10m", "--route", "POST /orders/*")
	require.NoError(t, err)
	tok, ok := strings.CutPrefix(strings.TrimSpace(out), "X-Plldb-Knock: ")
	require.True(t, ok, out)
	c, err := v.Verify(tok, knock.Request{HTTP: true, Method: "POST", Path: "/orders/7"})
	require.NoError(t, err)
	assert.Equal(t, "orders/CreateOrder", c.Audience)
	assert.WithinDuration(t, time.Now().Add(10*time.Minute), c.Expires, 5*time.Second)
	_, err = v.Verify(tok, knock.Request{HTTP: true, Method: "GET", Path: "/orders/7"})
	assert.ErrorIs(t, err, knock.ErrRoute, "bound to its route")

	out, err = knockCmd(t, "--stack-name", "orders", "--curl", "https://api.example.com/orders")
	require.NoError(t, err)
	m := regexp.MustCompile(`^curl -H 'X-Plldb-Knock: ([^']+)' 'https://api\.example\.com/orders'\n$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	_, err = v.Verify(m[1], knock.Request{})
	assert.NoError(t, err)

	out, err = knockCmd(t, "--stack-name", "orders", "--function", "CreateOrder", "--aws-cli")
	require.NoError(t, err)
	m = regexp.MustCompile(`^aws lambda invoke --function-name 'CreateOrder' --client-context ([A-Za-z0-9+/=]+) out\.json\n$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	cc, err := base64.StdEncoding.DecodeString(m[1])
	require.NoError(t, err)
	o := carrier.Check(v, []byte(`{}`), string(cc))
	assert.True(t, o.Knocked, "the layer finds and accepts the knock in the client context: %v", o.Err)
	assert.JSONEq(t, `{"custom":{}}`, o.ClientContext)

	out, err = knockCmd(t, "--stack-name", "orders", "--boto3")
	require.NoError(t, err)
	assert.Contains(t, out, `boto3.client("lambda").invoke(FunctionName="FUNCTION", Payload=b"{}", ClientContext="`)

	_, err = knockCmd(t, "--stack-name", "orders", "--boto3", "--aws-cli")
	assert.ErrorContains(t, err, "one at a time")
}

func TestKnockLocalPrintsTheEndpoint(t *testing.T) {
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	knockSession(t, knockkey.LocalAudience, "http://127.0.0.1:4567")
	out, err := knockCmd(t, "--local", "--aws-cli", "--function", "Echo")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "aws lambda invoke --endpoint-url 'http://127.0.0.1:4567' --function-name 'Echo' --client-context "), out)
	out, err = knockCmd(t, "--local", "--boto3")
	require.NoError(t, err)
	assert.Contains(t, out, `boto3.client("lambda", endpoint_url="http://127.0.0.1:4567")`)
}

// TestInvokeKnockLocal: plldb local --selective runs an unknocked invocation without debugpy and one sent
// with plldb invoke --knock under it, with the knock stripped; the banner says how to knock.
func TestInvokeKnockLocal(t *testing.T) {
	t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock"))
	tpl := pythonApp(t, "Echo", `import sys

def handler(event, context):
    cc = context.client_context
    return {"debugpy": "debugpy" in sys.modules, "custom": cc.custom if cc else None}
`)
	_, endpoint, out := startLocal(t, tpl, "--selective")
	// The banner goes on after the endpoint line startLocal waits for.
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Ctrl-C stops.") }, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, out.String(), "Selective mode")
	assert.Contains(t, out.String(), "plldb knock --local")

	assert.Equal(t, false, invokeJSON(t, endpoint, "Echo")["debugpy"], "unknocked: the deployed code, without debugpy")
	res := invokeJSON(t, endpoint, "Echo", "--knock")
	assert.Equal(t, true, res["debugpy"], "knocked: under debugpy")
	assert.Equal(t, map[string]any{}, res["custom"], "the knock is stripped from the client context")
	require.Eventually(t, func() bool { return strings.Count(out.String(), "END   Echo") == 2 }, 10*time.Second, 10*time.Millisecond,
		"both invocations are printed, the plain one too: %s", out.String())
	// Every knock starts with the pinned header: none appears in plldb local's output.
	assert.NotContains(t, out.String(), knock.Header)

	// `plldb invoke FN --knock`, as the Debug Console line and docs/knock.md write it, with no --endpoint-url: the
	// knock goes to the plldb local whose session signed it, here on a port of its own, not to the default 3001.
	cmd := exec.Command(plldbBin, "invoke", "Echo", "--knock", "--log", "none")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	require.NoError(t, json.Unmarshal(stdout, &res), string(stdout))
	assert.Equal(t, true, res["debugpy"], "knocked, at the session's own endpoint %s: under debugpy", endpoint)

	// A function the session does not serve is refused, as the plldbKnock request refuses it: its knock would
	// verify nowhere and the invocation would run without the debugger.
	nope := exec.Command(plldbBin, "knock", "--local", "--function", "Nope")
	nopeOut, err := nope.CombinedOutput()
	require.Error(t, err)
	assert.Equal(t, "plldb knock: --function \"Nope\" is not a function of this session (it debugs Echo)\n", string(nopeOut))

	// Without --function the boto3 and AWS CLI lines invoke FUNCTION: stderr says what to put there.
	var boto3Err strings.Builder
	b3 := exec.Command(plldbBin, "knock", "--local", "--boto3")
	b3.Stderr = &boto3Err
	b3Out, err := b3.Output()
	require.NoError(t, err)
	assert.Contains(t, string(b3Out), `FunctionName="FUNCTION"`)
	assert.Equal(t, "plldb knock: replace FUNCTION with the function to invoke (Echo), or name it with --function\n", boto3Err.String())

	// The banner's --aws-cli command prints a line, and that line, run as it is printed with the AWS CLI users
	// have (the virtualenv's is v1, which has no --cli-binary-format), runs and is knocked.
	m := regexp.MustCompile(`(?m)^  (plldb knock .*--aws-cli) +# a ready-to-run`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	knockArgs := strings.Fields(m[1])
	line, err := exec.Command(plldbBin, knockArgs[1:]...).Output()
	require.NoError(t, err)
	assert.False(t, strings.Contains(string(line), "'FUNCTION'"), "ready to run: no name to fill in") // the line holds a knock: not printed
	work := t.TempDir()
	cli := exec.Command("sh", "-c", string(line))
	cli.Dir = work
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "PATH=") {
			cli.Env = append(cli.Env, kv)
		}
	}
	cli.Env = append(cli.Env, "PATH="+filepath.Dir(pyenv.Python(t))+string(os.PathListSeparator)+os.Getenv("PATH"),
		"AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(work, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(work, "none"))
	cliOut, err := cli.CombinedOutput()
	require.NoError(t, err, "%s", cliOut)
	answer, err := os.ReadFile(filepath.Join(work, "out.json"))
	require.NoError(t, err)
	res = nil
	require.NoError(t, json.Unmarshal(answer, &res), string(answer))
	assert.Equal(t, true, res["debugpy"], "the aws lambda invoke line is knocked: under debugpy")
	assert.Equal(t, map[string]any{}, res["custom"], "the knock is stripped from the client context")
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/moto"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// invocations records what a pipeline ran, so that a test can tell that a refused command ran nothing.
type invocations struct {
	mu       sync.Mutex
	finished []string // request ids
}

func (r *invocations) Started(*wire.Invoke) {}

func (r *invocations) Finished(inv *wire.Invoke, _ executor.Outcome, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = append(r.finished, inv.RequestID)
}

func (r *invocations) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.finished)
}

func (r *invocations) ran(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.finished {
		if f == id {
			return true
		}
	}
	return false
}

// startHello runs a real plldb local pipeline of the hello app in this process and returns its endpoint.
func startHello(t *testing.T) (string, *invocations) {
	t.Helper()
	rec := &invocations{}
	opts := local.Options{
		Template:  apps.HelloTemplate(),
		Python:    pyenv.Python(t),
		Functions: []string{"HelloFunction", "FailingFunction"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	opts.Observer = rec
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := local.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p.Endpoint(), rec
}

type invokeOutput struct {
	stdout, stderr string
	err            error
	status         int
}

// invokeCmd runs `plldb invoke` with args in this process, as main would.
func invokeCmd(t *testing.T, args ...string) invokeOutput {
	t.Helper()
	var stdout, stderr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, append([]string{"invoke"}, args...), &stdout, &stderr)
	return invokeOutput{stdout.String(), stderr.String(), err, exitStatus(err)}
}

// invokeJSON runs `plldb invoke fn` against endpoint and decodes the handler's JSON answer.
func invokeJSON(t *testing.T, endpoint, fn string, args ...string) map[string]any {
	t.Helper()
	out := invokeCmd(t, append([]string{fn, "--endpoint-url", endpoint, "--log", "none"}, args...)...)
	require.NoError(t, out.err, out.stderr)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &res), out.stdout)
	return res
}

var summaryLine = regexp.MustCompile(`(?m)^executed version (\S+), request id ([0-9a-f-]{36})$`)

func TestInvokeLocal(t *testing.T) {
	endpoint, rec := startHello(t)
	dir := t.TempDir()
	eventFile := filepath.Join(dir, "event.json")
	require.NoError(t, os.WriteFile(eventFile, []byte(`{"name": "file"}`), 0o644))

	t.Run("success", func(t *testing.T) {
		out := invokeCmd(t, "HelloFunction", "--endpoint-url", endpoint, "--event", eventFile)
		require.NoError(t, out.err, out.stderr)
		// The payload alone, pretty, on stdout: what jq reads.
		assert.Equal(t, "{\n  \"statusCode\": 200,\n  \"body\": \"{\\\"greeting\\\": \\\"hello from dev\\\", \\\"event\\\": {\\\"name\\\": \\\"file\\\"}}\"\n}\n", out.stdout)
		m := summaryLine.FindStringSubmatch(out.stderr)
		require.NotNil(t, m, out.stderr)
		assert.Equal(t, "$LATEST", m[1])
		assert.Contains(t, out.stderr, "START RequestId: "+m[2]+" Version: $LATEST\n", "the log tail")
		assert.Contains(t, out.stderr, "REPORT RequestId: "+m[2])
		assert.True(t, rec.ran(m[2]))
	})

	t.Run("function error", func(t *testing.T) {
		out := invokeCmd(t, "FailingFunction", "--endpoint-url", endpoint)
		assert.Equal(t, exitFunctionError, out.status)
		assert.Empty(t, out.err.Error(), "the command printed the error itself")
		var doc struct{ ErrorType, ErrorMessage string }
		require.NoError(t, json.Unmarshal([]byte(out.stdout), &doc), "the error document is the payload: %s", out.stdout)
		assert.Equal(t, "ValueError", doc.ErrorType)
		assert.Contains(t, out.stderr, "function error (Unhandled): ValueError: boom\n")
		// awslambdaric's \r-joined error record, shown line by line.
		assert.Contains(t, out.stderr, "[ERROR] ValueError: boom\nTraceback (most recent call last):\n")
		assert.Regexp(t, summaryLine, out.stderr)
	})

	t.Run("unknown function", func(t *testing.T) {
		before := rec.count()
		out := invokeCmd(t, "NoSuchFunction", "--endpoint-url", endpoint)
		assert.Equal(t, exitInvokeFailed, out.status)
		assert.Empty(t, out.stdout)
		require.Error(t, out.err)
		assert.Contains(t, out.err.Error(), "no function NoSuchFunction at plldb local at "+endpoint+": Function not found: arn:aws:lambda:us-east-1:123456789012:function:NoSuchFunction")
		assert.Contains(t, out.err.Error(), "aws lambda list-functions --endpoint-url "+endpoint)
		assert.Equal(t, before, rec.count())
	})

	t.Run("event from stdin", func(t *testing.T) {
		stdin = strings.NewReader(`{"name": "stdin"}`)
		t.Cleanup(func() { stdin = os.Stdin })
		out := invokeCmd(t, "--endpoint-url", endpoint, "HelloFunction", "--event", "-", "--log", "none")
		require.NoError(t, out.err, out.stderr)
		assert.Contains(t, out.stdout, `\"event\": {\"name\": \"stdin\"}`)
		assert.NotContains(t, out.stderr, "START RequestId", "--log none asks for no tail")
		assert.Regexp(t, summaryLine, out.stderr)
	})

	t.Run("invalid event JSON", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.json")
		require.NoError(t, os.WriteFile(bad, []byte("{\n  \"name\": \"x\",\n}\n"), 0o644))
		before := rec.count()
		out := invokeCmd(t, "HelloFunction", "--endpoint-url", endpoint, "--event", bad)
		assert.Equal(t, exitInvokeFailed, out.status)
		require.Error(t, out.err)
		assert.Contains(t, out.err.Error(), "--event "+bad+": event is not valid JSON: invalid character '}' looking for beginning of object key string (line 3, column 1)")

		stdin = strings.NewReader("")
		t.Cleanup(func() { stdin = os.Stdin })
		out = invokeCmd(t, "HelloFunction", "--endpoint-url", endpoint, "--event", "-")
		assert.Equal(t, exitInvokeFailed, out.status)
		assert.Contains(t, out.err.Error(), "--event stdin is empty")

		out = invokeCmd(t, "HelloFunction", "--endpoint-url", endpoint, "--client-context", "[1]")
		assert.Equal(t, exitInvokeFailed, out.status)
		assert.Equal(t, `plldb invoke: --client-context: not a JSON object: want one such as {"custom": {"key": "value"}}`, out.err.Error())
		assert.Equal(t, before, rec.count(), "nothing was invoked")
	})

	t.Run("payload limits", func(t *testing.T) {
		big := filepath.Join(dir, "big.json")
		require.NoError(t, os.WriteFile(big, []byte(`"`+strings.Repeat("x", invoke6MB-1)+`"`), 0o644))
		before := rec.count()
		out := invokeCmd(t, "HelloFunction", "--endpoint-url", endpoint, "--event", big)
		assert.Equal(t, exitInvokeFailed, out.status)
		assert.Contains(t, out.err.Error(), fmt.Sprintf("--event "+big+": event is %d bytes: a synchronous invocation takes at most 6291456 (6 MB)", invoke6MB+1))

		mid := filepath.Join(dir, "mid.json")
		require.NoError(t, os.WriteFile(mid, []byte(`"`+strings.Repeat("x", 1024*1024)+`"`), 0o644))
		out = invokeCmd(t, "HelloFunction", "--endpoint-url", endpoint, "--event", mid, "--async")
		assert.Equal(t, exitInvokeFailed, out.status)
		assert.Contains(t, out.err.Error(), "--event "+mid+": event is 1048578 bytes: an asynchronous invocation takes at most 1048576 (1 MB)")
		assert.Equal(t, before, rec.count(), "nothing was invoked")
	})

	t.Run("async", func(t *testing.T) {
		out := invokeCmd(t, "HelloFunction", "--endpoint-url", endpoint, "--async")
		require.NoError(t, out.err, out.stderr)
		assert.Empty(t, out.stdout)
		m := regexp.MustCompile(`^accepted \(202\): Event invocation, request id ([0-9a-f-]{36})\n$`).FindStringSubmatch(out.stderr)
		require.NotNil(t, m, out.stderr)
		assert.Eventually(t, func() bool { return rec.ran(m[1]) }, 30*time.Second, 20*time.Millisecond, "the event ran under the id the command printed")
	})

	t.Run("qualifier", func(t *testing.T) {
		out := invokeCmd(t, "HelloFunction", "--endpoint-url", endpoint, "--qualifier", "$LATEST")
		require.NoError(t, out.err, out.stderr)
		assert.Contains(t, out.stdout, "hello from dev")

		out = invokeCmd(t, "HelloFunction", "--endpoint-url", endpoint, "--qualifier", "7")
		assert.Equal(t, exitInvokeFailed, out.status)
		assert.Contains(t, out.err.Error(), "no function HelloFunction (qualifier 7) at plldb local at "+endpoint)
		assert.Contains(t, out.err.Error(), "published versions are not served")
	})

	t.Run("log to a file", func(t *testing.T) {
		logFile := filepath.Join(dir, "tail.log")
		out := invokeCmd(t, "HelloFunction", "--endpoint-url", endpoint, "--log", logFile)
		require.NoError(t, out.err, out.stderr)
		assert.NotContains(t, out.stderr, "START RequestId")
		m := summaryLine.FindStringSubmatch(out.stderr)
		require.NotNil(t, m, out.stderr)
		b, err := os.ReadFile(logFile)
		require.NoError(t, err)
		assert.Contains(t, string(b), "START RequestId: "+m[2])
		fi, err := os.Stat(logFile)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	})

	t.Run("flags", func(t *testing.T) {
		out := invokeCmd(t, "HelloFunction", "--endpoint-url", endpoint, "--stack-name", "shop")
		assert.Equal(t, exitInvokeFailed, out.status)
		assert.Contains(t, out.err.Error(), "one at a time")
		out = invokeCmd(t, "--endpoint-url", endpoint)
		assert.Contains(t, out.err.Error(), "name the function to invoke")
		out = invokeCmd(t, "HelloFunction", "FailingFunction", "--endpoint-url", endpoint)
		assert.Contains(t, out.err.Error(), `unexpected argument "FailingFunction"`)
	})
}

// invoke6MB is Lambda's synchronous request limit.
const invoke6MB = 6 * 1024 * 1024

// TestInvokeBinary runs the built plldb as a shell pipeline would: the event on stdin, the payload alone on
// stdout (so that `| jq` reads it), and the exit statuses a script tests.
func TestInvokeBinary(t *testing.T) {
	endpoint, _ := startHello(t)
	runBin := func(stdin string, args ...string) (string, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, plldbBin, append([]string{"invoke"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return stdout.String(), stderr.String(), ee.ExitCode()
		}
		require.NoError(t, err)
		return stdout.String(), stderr.String(), 0
	}
	stdout, stderr, code := runBin(`{"name": "pipe"}`, "HelloFunction", "--endpoint-url", endpoint, "--event", "-")
	assert.Equal(t, 0, code, stderr)
	var payload struct{ StatusCode int }
	require.NoError(t, json.Unmarshal([]byte(stdout), &payload), "stdout is the JSON payload alone: %q", stdout)
	assert.Equal(t, 200, payload.StatusCode)

	stdout, stderr, code = runBin("", "FailingFunction", "--endpoint-url", endpoint)
	assert.Equal(t, 1, code, stderr)
	assert.True(t, json.Valid([]byte(stdout)))
	assert.Contains(t, stderr, "function error (Unhandled): ValueError: boom")
	assert.NotContains(t, stderr, "plldb:", "no second report of the function error")

	_, stderr, code = runBin("", "Nope", "--endpoint-url", endpoint)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "plldb invoke: no function Nope at plldb local at "+endpoint)
	assert.NotContains(t, stderr, "plldb: plldb", "the command is named once")

	_, stderr, code = runBin("{", "HelloFunction", "--endpoint-url", endpoint, "--event", "-")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "event is not valid JSON")
}

// TestInvokeStackName resolves a logical id of a stack deployed on moto. moto runs Lambda functions only in
// Docker, so the Lambda endpoint (AWS_ENDPOINT_URL_LAMBDA, which the SDK honours per service) is a plldb local
// serving the function under its deployed name: CloudFormation and STS are moto's, the invocation is real.
func TestInvokeStackName(t *testing.T) {
	srv := moto.Start(t)
	moto.IsolateAWSConfig(t)
	endpoint, rec := startHello(t)
	cfg := srv.Config()
	ctx := context.Background()
	_, _ = iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String("plldb-invoke-test"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
	})
	stack := fmt.Sprintf("invoke-%d", time.Now().UnixNano())
	// Greeter is deployed as HelloFunction and Failer as FailingFunction: the names plldb local serves.
	tpl := `Resources:
  Greeter:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: HelloFunction
      Runtime: python3.12
      Handler: app.handler
      Role: arn:aws:iam::123456789012:role/plldb-invoke-test
      Code:
        ZipFile: "def handler(event, context): return event"
  Failer:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: FailingFunction
      Runtime: python3.12
      Handler: app.fail
      Role: arn:aws:iam::123456789012:role/plldb-invoke-test
      Code:
        ZipFile: "def fail(event, context): raise ValueError()"
`
	_, err := cloudformation.NewFromConfig(cfg).CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(stack), TemplateBody: aws.String(tpl)})
	require.NoError(t, err)

	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", endpoint)

	out := invokeCmd(t, "Greeter", "--stack-name", stack, "--region", moto.Region)
	require.NoError(t, out.err, out.stderr)
	assert.Contains(t, out.stdout, "hello from dev")
	m := summaryLine.FindStringSubmatch(out.stderr)
	require.NotNil(t, m, out.stderr)
	assert.True(t, rec.ran(m[2]))

	out = invokeCmd(t, "Failer", "--stack-name", stack)
	assert.Equal(t, exitFunctionError, out.status, out.stderr)
	assert.Contains(t, out.stderr, "function error (Unhandled): ValueError: boom")

	// The physical name works too, and an ARN is taken as it is.
	out = invokeCmd(t, "HelloFunction", "--stack-name", stack)
	require.NoError(t, out.err, out.stderr)
	out = invokeCmd(t, "arn:aws:lambda:us-east-1:123456789012:function:HelloFunction", "--stack-name", stack)
	require.NoError(t, out.err, out.stderr)

	gone := "arn:aws:lambda:us-east-1:123456789012:function:Gone"
	out = invokeCmd(t, gone, "--stack-name", stack)
	assert.Equal(t, exitInvokeFailed, out.status)
	assert.Contains(t, out.err.Error(), "no function "+gone+" at stack "+stack+" (region us-east-1 of account 123456789012): Function not found: "+gone)

	before := rec.count()
	out = invokeCmd(t, "Greeterr", "--stack-name", stack)
	assert.Equal(t, exitInvokeFailed, out.status)
	assert.Contains(t, out.err.Error(), "stack "+stack+" has no function Greeterr; its functions: Failer (FailingFunction), Greeter (HelloFunction)")

	out = invokeCmd(t, "Greeter", "--stack-name", "no-such-stack")
	assert.Equal(t, exitInvokeFailed, out.status)
	assert.Contains(t, out.err.Error(), "in region us-east-1 of account 123456789012: describe stack no-such-stack")
	assert.Equal(t, before, rec.count(), "nothing was invoked")
}

// TestInvokeClientContext: --client-context reaches the handler as context.client_context, and a custom key set
// by code (where a knock will go) rides along with the developer's own.
func TestInvokeClientContext(t *testing.T) {
	tpl := pythonApp(t, "Context",
		"def handler(event, context):\n    cc = context.client_context\n    return {\"custom\": cc.custom if cc else None, \"env\": cc.env if cc else None}\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := local.Start(ctx, local.Options{Template: tpl, Python: pyenv.Python(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close(context.Background()) })

	out := invokeCmd(t, "Context", "--endpoint-url", p.Endpoint(), "--client-context", `{"custom": {"tenant": "t-1"}, "env": {"stage": "dev"}}`)
	require.NoError(t, out.err, out.stderr)
	assert.JSONEq(t, `{"custom": {"tenant": "t-1"}, "env": {"stage": "dev"}}`, out.stdout)

	out = invokeCmd(t, "Context", "--endpoint-url", p.Endpoint())
	require.NoError(t, out.err, out.stderr)
	assert.JSONEq(t, `{"custom": null, "env": null}`, out.stdout)

	out = invokeCmd(t, "Context", "--endpoint-url", p.Endpoint(), "--client-context", `{"custom": {"k": "`+strings.Repeat("x", 3000)+`"}}`)
	assert.Equal(t, exitInvokeFailed, out.status)
	assert.Contains(t, out.err.Error(), "Lambda takes at most 3583")
}

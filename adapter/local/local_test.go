package local_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/adapter/template"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/proxy"
	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

func start(t testing.TB, opts local.Options) *local.Pipeline {
	t.Helper()
	opts.Python = pyenv.Python(t)
	if opts.Logger == nil {
		// Warnings and errors only: the pipeline's info lines would drown test and benchmark output.
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := local.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		assert.NoError(t, p.Close(ctx))
	})
	return p
}

type httpAnswer struct {
	status  int
	header  http.Header
	payload []byte
}

func invokeHTTP(t *testing.T, p *local.Pipeline, fn string, payload []byte, hdr map[string]string) httpAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.Endpoint()+"/2015-03-31/functions/"+fn+"/invocations", bytes.NewReader(payload))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return httpAnswer{resp.StatusCode, resp.Header, body}
}

func TestHelloAppThroughTheSDK(t *testing.T) {
	p := start(t, local.Options{Template: apps.HelloTemplate()})

	client := lambda.New(lambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(p.Endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
	ctx := context.Background()

	out, err := client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String("HelloFunction"),
		Payload:      []byte(`{"name":"plldb"}`),
		LogType:      lambdatypes.LogTypeTail,
	})
	require.NoError(t, err)
	assert.Nil(t, out.FunctionError)
	assert.Equal(t, int32(200), out.StatusCode)
	var res struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	require.NoError(t, json.Unmarshal(out.Payload, &res))
	assert.Equal(t, 200, res.StatusCode)
	assert.JSONEq(t, `{"greeting":"hello from dev","event":{"name":"plldb"}}`, res.Body)
	logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	require.NoError(t, err)
	assert.Contains(t, string(logs), "START RequestId:")
	assert.Regexp(t, `(?m)^REPORT RequestId: \S+\tDuration: [0-9.]+ ms\tBilled Duration: \d+ ms\tMemory Size: \d+ MB\tMax Memory Used: [1-9]\d* MB\tInit Duration: [0-9.]+ ms$`, string(logs),
		"the first invocation of a sandbox is a cold start")
	warm, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("HelloFunction"), Payload: []byte(`{}`), LogType: lambdatypes.LogTypeTail})
	require.NoError(t, err)
	logs, err = base64.StdEncoding.DecodeString(aws.ToString(warm.LogResult))
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^REPORT RequestId: \S+\tDuration: [0-9.]+ ms\tBilled Duration: \d+ ms\tMemory Size: \d+ MB\tMax Memory Used: [1-9]\d* MB$`, string(logs),
		"a warm invocation: no Init Duration")

	// The resolved FunctionName works as well as the logical id, and the package handler sees the merged
	// environment and its layer.
	out, err = client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String("local-orders-dev"),
		Payload:      []byte(`{"items":[1,2,3]}`),
	})
	require.NoError(t, err)
	assert.Nil(t, out.FunctionError)
	assert.JSONEq(t, `{"table":"OrdersTable","shared":"function","stage":"dev","count":3}`, string(out.Payload))

	// A handler that raises: 200 with X-Amz-Function-Error and Lambda's error document.
	out, err = client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("FailingFunction"), Payload: []byte(`{}`)})
	require.NoError(t, err)
	require.NotNil(t, out.FunctionError)
	assert.Equal(t, "Unhandled", *out.FunctionError)
	var lerr struct {
		ErrorMessage string   `json:"errorMessage"`
		ErrorType    string   `json:"errorType"`
		StackTrace   []string `json:"stackTrace"`
	}
	require.NoError(t, json.Unmarshal(out.Payload, &lerr))
	assert.Equal(t, "boom", lerr.ErrorMessage)
	assert.Equal(t, "ValueError", lerr.ErrorType)
	assert.NotEmpty(t, lerr.StackTrace)

	// Unknown function: the SDK's typed ResourceNotFoundException.
	_, err = client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("NoSuchFunction"), Payload: []byte(`{}`)})
	var notFound *lambdatypes.ResourceNotFoundException
	require.ErrorAs(t, err, &notFound)

	// The Node function is listed by the template but not served.
	_, err = client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("NodeFunction"), Payload: []byte(`{}`)})
	require.ErrorAs(t, err, &notFound)
}

func TestInvokeAPIEdges(t *testing.T) {
	p := start(t, local.Options{Template: apps.HelloTemplate(), Functions: []string{"HelloFunction"}})

	t.Run("413 over 6 MB", func(t *testing.T) {
		big := append([]byte(`"`), bytes.Repeat([]byte("a"), local.MaxPayload)...)
		big = append(big, '"')
		a := invokeHTTP(t, p, "HelloFunction", big, nil)
		assert.Equal(t, http.StatusRequestEntityTooLarge, a.status)
		assert.Equal(t, "RequestTooLargeException", a.header.Get("X-Amzn-Errortype"))
	})
	t.Run("invalid JSON", func(t *testing.T) {
		a := invokeHTTP(t, p, "HelloFunction", []byte(`{not json`), nil)
		assert.Equal(t, http.StatusBadRequest, a.status)
		assert.Contains(t, string(a.payload), "Could not parse request body into json")
	})
	t.Run("invalid UTF-8 is refused at once, as Lambda does", func(t *testing.T) {
		// Python's json cannot read it: let through, the invocation would wait for its timeout.
		start := time.Now()
		a := invokeHTTP(t, p, "HelloFunction", []byte("{\"name\": \"\xff\"}"), nil)
		assert.Equal(t, http.StatusBadRequest, a.status)
		assert.Equal(t, "InvalidRequestContentException", a.header.Get("X-Amzn-Errortype"))
		assert.Contains(t, string(a.payload), "not valid UTF-8")
		a = invokeHTTP(t, p, "HelloFunction", []byte(`{}`), map[string]string{"X-Amz-Client-Context": base64.StdEncoding.EncodeToString([]byte("{\"custom\": \"\xfe\"}"))})
		assert.Equal(t, http.StatusBadRequest, a.status)
		assert.Less(t, time.Since(start), 5*time.Second)
	})
	t.Run("404 names the function", func(t *testing.T) {
		a := invokeHTTP(t, p, "Nope", []byte(`{}`), nil)
		assert.Equal(t, http.StatusNotFound, a.status)
		assert.Equal(t, "ResourceNotFoundException", a.header.Get("X-Amzn-Errortype"))
		assert.Contains(t, string(a.payload), "Nope")
	})
	t.Run("Event invocation is accepted and runs", func(t *testing.T) {
		a := invokeHTTP(t, p, "HelloFunction", []byte(`{"async":true}`), map[string]string{"X-Amz-Invocation-Type": "Event"})
		assert.Equal(t, http.StatusAccepted, a.status)
		assert.Empty(t, a.payload)
	})
	t.Run("DryRun", func(t *testing.T) {
		a := invokeHTTP(t, p, "HelloFunction", []byte(`{}`), map[string]string{"X-Amz-Invocation-Type": "DryRun"})
		assert.Equal(t, http.StatusNoContent, a.status)
	})
	t.Run("bad invocation type", func(t *testing.T) {
		a := invokeHTTP(t, p, "HelloFunction", []byte(`{}`), map[string]string{"X-Amz-Invocation-Type": "Sometimes"})
		assert.Equal(t, http.StatusBadRequest, a.status)
		assert.Contains(t, string(a.payload), "Sometimes")
	})
	t.Run("ARN as the function name", func(t *testing.T) {
		a := invokeHTTP(t, p, "arn:aws:lambda:us-east-1:123456789012:function:HelloFunction", []byte(`{}`), nil)
		assert.Equal(t, http.StatusOK, a.status)
	})
}

func TestEventInvocationRunsInTheBackground(t *testing.T) {
	outDir := t.TempDir()
	dir := writeApp(t, map[string]string{"app.py": `
import os
def record(event, context):
    with open(os.path.join(os.environ["OUT_DIR"], event["name"]), "w") as f:
        f.write(context.aws_request_id)
    return "done"
`}, "Record: app.record", "      OUT_DIR: "+outDir)
	p := start(t, local.Options{Template: dir})
	a := invokeHTTP(t, p, "Record", []byte(`{"name":"marker"}`), map[string]string{"X-Amz-Invocation-Type": "Event"})
	require.Equal(t, http.StatusAccepted, a.status)
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(outDir, "marker"))
		return err == nil
	}, 20*time.Second, 20*time.Millisecond)
}

func TestConcurrentInvocationsEachGetTheirOwnAnswer(t *testing.T) {
	// 25 invocations of each function at once: room for all of them, so that none is throttled.
	p := start(t, local.Options{Template: apps.HelloTemplate(), Functions: []string{"HelloFunction", "PackageFunction"}, MaxConcurrency: 25})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				resp, err := p.Invoke(context.Background(), "HelloFunction", local.InvokeRequest{Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
				if err != nil {
					errs <- err
					return
				}
				var res struct{ Body string }
				if err := json.Unmarshal(resp.Payload, &res); err != nil {
					errs <- fmt.Errorf("call %d: %w: %s", i, err, resp.Payload)
					return
				}
				if want := fmt.Sprintf(`"event": {"n": %d}`, i); !strings.Contains(res.Body, want) {
					errs <- fmt.Errorf("call %d got someone else's answer: %s", i, res.Body)
				}
				return
			}
			items := strings.TrimSuffix(strings.Repeat("0,", i), ",")
			resp, err := p.Invoke(context.Background(), "PackageFunction", local.InvokeRequest{Payload: []byte(fmt.Sprintf(`{"items":[%s]}`, items))})
			if err != nil {
				errs <- err
				return
			}
			var res struct{ Count int }
			if err := json.Unmarshal(resp.Payload, &res); err != nil || res.Count != i {
				errs <- fmt.Errorf("call %d: count %d (%v): %s", i, res.Count, err, resp.Payload)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestLogTailCarriesHandlerOutput(t *testing.T) {
	dir := writeApp(t, map[string]string{"app.py": `
import logging
logging.getLogger().setLevel(logging.INFO)
def talk(event, context):
    print("printed", event["n"])
    logging.info("logged %s", event["n"])
    return event["n"]
`}, "Talk: app.talk", "")
	p := start(t, local.Options{Template: dir})
	a := invokeHTTP(t, p, "Talk", []byte(`{"n":7}`), map[string]string{"X-Amz-Log-Type": "Tail"})
	require.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, "7", string(a.payload))
	tail, err := base64.StdEncoding.DecodeString(a.header.Get("X-Amz-Log-Result"))
	require.NoError(t, err)
	assert.Contains(t, string(tail), "printed 7")
	assert.Contains(t, string(tail), "logged 7")
	assert.Contains(t, string(tail), a.header.Get("X-Amzn-Requestid"))
	assert.LessOrEqual(t, len(tail), 4096)
}

func TestHandlerEditIsPickedUpByTheNextInvocation(t *testing.T) {
	dir := writeApp(t, map[string]string{"app.py": "def handler(event, context):\n    return 'v1'\n"}, "Edit: app.handler", "")
	p := start(t, local.Options{Template: dir})
	resp, err := p.Invoke(context.Background(), "Edit", local.InvokeRequest{Payload: []byte(`{}`)})
	require.NoError(t, err)
	assert.Equal(t, `"v1"`, string(resp.Payload))

	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(dir), "src", "app.py"), []byte("def handler(event, context):\n    return 'v2'\n"), 0o644))
	resp, err = p.Invoke(context.Background(), "Edit", local.InvokeRequest{Payload: []byte(`{}`)})
	require.NoError(t, err)
	assert.Equal(t, `"v2"`, string(resp.Payload))
}

func TestTimeoutAndCrashAreAnsweredAndRecovered(t *testing.T) {
	dir := writeApp(t, map[string]string{"app.py": `
import os, time
def slow(event, context):
    time.sleep(30)
def crash(event, context):
    os._exit(3)
def ok(event, context):
    return "fine"
`}, "Slow: app.slow\nCrash: app.crash\nOk: app.ok", "")
	p := start(t, local.Options{Template: dir})

	resp, err := p.Invoke(context.Background(), "Slow", local.InvokeRequest{Payload: []byte(`{}`)})
	require.NoError(t, err)
	assert.Equal(t, "Unhandled", resp.FunctionError)
	assert.Contains(t, string(resp.Payload), "Task timed out after 1.00 seconds")

	resp, err = p.Invoke(context.Background(), "Crash", local.InvokeRequest{Payload: []byte(`{}`)})
	require.NoError(t, err)
	assert.Equal(t, "Unhandled", resp.FunctionError)
	assert.Contains(t, string(resp.Payload), "Runtime.ExitError")
	assert.Contains(t, string(resp.Payload), "exit status 3")

	// Both executors came back: the next invocations are served normally.
	for _, fn := range []string{"Ok", "Crash"} {
		resp, err = p.Invoke(context.Background(), fn, local.InvokeRequest{Payload: []byte(`{}`)})
		require.NoError(t, err)
		if fn == "Ok" {
			assert.Equal(t, `"fine"`, string(resp.Payload))
		} else {
			assert.Contains(t, string(resp.Payload), "Runtime.ExitError")
		}
	}
}

func TestLargePayloadsBothWays(t *testing.T) {
	dir := writeApp(t, map[string]string{"app.py": "def echo(event, context):\n    return event\n"}, "Echo: app.echo @60", "")
	p := start(t, local.Options{Template: dir})
	payload, err := json.Marshal(strings.Repeat("x", local.MaxPayload-1024))
	require.NoError(t, err)
	resp, err := p.Invoke(context.Background(), "Echo", local.InvokeRequest{Payload: payload})
	require.NoError(t, err)
	require.Empty(t, resp.FunctionError, "%s", resp.Payload)
	assert.Equal(t, len(payload), len(resp.Payload))
	assert.True(t, bytes.Equal(payload, resp.Payload))
}

func TestBadTemplatesAreReportedClearly(t *testing.T) {
	ctx := context.Background()
	_, err := local.Start(ctx, local.Options{Template: filepath.Join(t.TempDir(), "missing.yaml")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.yaml")

	bad := filepath.Join(t.TempDir(), "template.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: [oops\n"), 0o644))
	_, err = local.Start(ctx, local.Options{Template: bad})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "template.yaml:")

	_, err = local.Start(ctx, local.Options{Template: apps.HelloTemplate(), Functions: []string{"NodeFunction"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not supported yet")
	assert.ErrorAs(t, err, new(*template.FunctionsError), "a refusal of a function asked for by name")

	_, err = local.Start(ctx, local.Options{Template: apps.HelloTemplate(), Functions: []string{"Ghost"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `no function "Ghost" in the template; its functions: FailingFunction, HelloFunction, NodeFunction, PackageFunction`, "names the ones it has")
	assert.ErrorAs(t, err, new(*template.FunctionsError))
}

// writeApp writes a one-folder SAM app: files go to src/, each "Name: module.fn" line of fns becomes a
// python3.12 function with a 1 s timeout (or N s with a " @N" suffix), and env (already indented YAML lines) becomes Globals variables.
func writeApp(t testing.TB, files map[string]string, fns, env string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "src", name), []byte(strings.TrimLeft(body, "\n")), 0o644))
	}
	var b strings.Builder
	b.WriteString("Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n    Runtime: python3.11\n    Timeout: 1\n    CodeUri: src/\n")
	if env != "" {
		b.WriteString("    Environment:\n      Variables:\n  " + env + "\n")
	}
	b.WriteString("Resources:\n")
	for _, line := range strings.Split(fns, "\n") {
		name, handler, _ := strings.Cut(line, ": ")
		handler, timeout, _ := strings.Cut(handler, " @")
		fmt.Fprintf(&b, "  %s:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: %s\n", name, handler)
		if timeout != "" {
			fmt.Fprintf(&b, "      Timeout: %s\n", timeout)
		}
	}
	path := filepath.Join(dir, "template.yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

// TestFailedStartCleansUp: a failure after the pipeline began starting (here: no such interpreter) is an error
// naming the function, and what had started is stopped.
func TestFailedStartCleansUp(t *testing.T) {
	_, err := local.Start(context.Background(), local.Options{
		Template: apps.HelloTemplate(), Functions: []string{"HelloFunction"}, Python: "/nonexistent/python3", Port: 0,
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HelloFunction")
}

// TestSandboxDyingMidInvocationIsARuntimeExitError: when an emulated sandbox's runtime (the layer proxy) dies
// during an invocation, the caller gets Lambda's Runtime.ExitError as a function error, once. It used to get
// 500 ServiceException, which the AWS SDKs retry: the handler, already running in the developer's executor, ran
// a second time (found by BenchmarkSoak).
func TestSandboxDyingMidInvocationIsARuntimeExitError(t *testing.T) {
	runs := filepath.Join(t.TempDir(), "runs")
	dir := writeApp(t, map[string]string{"app.py": `
import os, time
def slow(event, context):
    with open(os.environ["RUNS"], "a") as f:
        f.write(context.aws_request_id + "\n")
    time.sleep(1)
    return "done"
`}, "Slow: app.slow @10", "      RUNS: "+runs)
	p := start(t, local.Options{Template: dir})
	client := lambda.New(lambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(p.Endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
	type answer struct {
		out *lambda.InvokeOutput
		err error
	}
	done := make(chan answer, 1)
	go func() {
		out, err := client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("Slow"), Payload: []byte(`{}`)})
		done <- answer{out, err}
	}()
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(runs)
		return len(b) > 0
	}, 20*time.Second, 5*time.Millisecond, "the handler starts")
	killed, busy := local.KillSandbox(p, "Slow")
	require.True(t, killed && busy, "the sandbox running the invocation is killed")

	a := <-done
	require.NoError(t, a.err)
	require.NotNil(t, a.out.FunctionError)
	assert.Equal(t, "Unhandled", *a.out.FunctionError)
	assert.Contains(t, string(a.out.Payload), `"errorType":"Runtime.ExitError"`)
	assert.Contains(t, string(a.out.Payload), "Runtime exited without providing a reason")

	time.Sleep(1500 * time.Millisecond) // a retried invocation would have started by now
	b, err := os.ReadFile(runs)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(b), "\n"), "the handler ran once: %q", b)

	// The function keeps working: the next invocation gets a new sandbox.
	out, err := client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("Slow"), Payload: []byte(`{}`)})
	require.NoError(t, err)
	assert.Nil(t, out.FunctionError)
	assert.Equal(t, `"done"`, string(out.Payload))
}

// TestFunctionConnectionClosedMidInvocation: the gateway closes a sandbox's connection (as API Gateway does at
// its 2-hour cap) while the developer runs the invocation, and the handler returns before the sandbox has
// reconnected. The developer's answer must still reach the caller, once, after the reconnect.
func TestFunctionConnectionClosedMidInvocation(t *testing.T) {
	tmp := t.TempDir()
	runs, release := filepath.Join(tmp, "runs"), filepath.Join(tmp, "release")
	dir := writeApp(t, map[string]string{"app.py": `
import os, time
def slow(event, context):
    with open(os.environ["RUNS"], "a") as f:
        f.write(context.aws_request_id + "\n")
    while not os.path.exists(os.environ["RELEASE"]):
        time.sleep(0.001)
    return "done"
`}, "Slow: app.slow @6", "      RUNS: "+runs+"\n        RELEASE: "+release)
	p := start(t, local.Options{Template: dir})
	done := make(chan httpAnswer, 1)
	go func() { done <- invokeHTTP(t, p, "Slow", []byte(`{}`), nil) }()
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(runs)
		return len(b) > 0
	}, 20*time.Second, 5*time.Millisecond, "the handler starts")
	ids := local.SessionConnections(p, wire.RoleFunction)
	require.Len(t, ids, 1)
	require.NoError(t, local.Gateway(p).DeleteConnection(context.Background(), ids[0]))
	// The answer leaves while the sandbox is still reconnecting (its first attempt waits at least 100 ms).
	require.Eventually(t, func() bool { return len(local.SessionConnections(p, wire.RoleFunction)) == 0 },
		5*time.Second, time.Millisecond, "the gateway has dropped the connection")
	require.NoError(t, os.WriteFile(release, nil, 0o644))

	start := time.Now()
	a := <-done
	assert.Equal(t, http.StatusOK, a.status)
	assert.Empty(t, a.header.Get("X-Amz-Function-Error"), "%s", a.payload)
	assert.Equal(t, `"done"`, string(a.payload))
	assert.Less(t, time.Since(start), 3*time.Second, "the answer came after the reconnect, not at the deadline")
	b, err := os.ReadFile(runs)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(b), "\n"), "the handler ran once: %q", b)
}

// TestDeveloperLinkDiesSilentlyWithAnAnswerOnIt: the developer's connection dies without a word while the answer
// of a running invocation is written to it (the write succeeds locally; nothing arrives), and the link then
// reconnects. The answer must still reach the caller, once, instead of the sandbox giving up on the developer.
func TestDeveloperLinkDiesSilentlyWithAnAnswerOnIt(t *testing.T) {
	tmp := t.TempDir()
	runs, release := filepath.Join(tmp, "runs"), filepath.Join(tmp, "release")
	dir := writeApp(t, map[string]string{"app.py": `
import os, time
def slow(event, context):
    with open(os.environ["RUNS"], "a") as f:
        f.write(context.aws_request_id + "\n")
    while not os.path.exists(os.environ["RELEASE"]):
        time.sleep(0.001)
    return "done"
`}, "Slow: app.slow @20", "      RUNS: "+runs+"\n        RELEASE: "+release)
	cut := newCutter(t)
	opts := local.Options{Template: dir}
	local.SetDeveloperURL(&opts, cut.rewrite)
	p := start(t, opts)
	done := make(chan httpAnswer, 1)
	go func() { done <- invokeHTTP(t, p, "Slow", []byte(`{}`), nil) }()
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(runs)
		return len(b) > 0
	}, 20*time.Second, 5*time.Millisecond, "the handler starts")

	cut.void.Store(true)
	require.NoError(t, os.WriteFile(release, nil, 0o644))
	time.Sleep(300 * time.Millisecond) // the answer goes into the void
	cut.void.Store(false)
	require.Positive(t, cut.cut())

	start := time.Now()
	a := <-done
	assert.Equal(t, http.StatusOK, a.status)
	assert.Empty(t, a.header.Get("X-Amz-Function-Error"), "%s", a.payload)
	assert.Equal(t, `"done"`, string(a.payload))
	assert.Less(t, time.Since(start), 5*time.Second, "the answer came after the reconnect")
	b, err := os.ReadFile(runs)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(b), "\n"), "the handler ran once: %q", b)
}

// TestSandboxesGiveTheDeveloperSideLongerThanLambdasAckTimeout: in Lambda a sandbox waits 3 s for the developer to
// take an invocation and then falls back to the deployed code. plldb local has nothing to fall back to and its
// developer side is in the same process, late only when the machine is saturated; 50 invocations cold-starting
// at once on 2 loaded cores failed with "no acknowledgement from the developer within 3s". The invocation the
// developer side receives says how long its sandbox waits (AckTimeoutMs, which also sets the developer side's
// own ack budget).
func TestSandboxesGiveTheDeveloperSideLongerThanLambdasAckTimeout(t *testing.T) {
	got := make(chan int64, 1)
	opts := local.Options{Template: apps.HelloTemplate(), Functions: []string{"HelloFunction"}}
	opts.BeforeRun = func(_ context.Context, inv *wire.Invoke) {
		select {
		case got <- inv.AckTimeoutMs:
		default:
		}
	}
	p := start(t, opts)
	_, err := p.Invoke(context.Background(), "HelloFunction", local.InvokeRequest{Payload: []byte(`{}`)})
	require.NoError(t, err)
	ms := <-got
	assert.Greater(t, ms, proxy.DefaultAckTimeout.Milliseconds(), "longer than Lambda's default")
	assert.GreaterOrEqual(t, ms, int64(10_000))
}

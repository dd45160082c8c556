package proxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/layer/runtimeapi"
)

type echoed struct {
	Raw       string             `json:"raw"`
	Headers   map[string]string  `json:"headers"`
	RequestID string             `json:"request_id"`
	Env       map[string]*string `json:"env"`
}

func decodeEcho(t *testing.T, r runtimeapi.Response) echoed {
	t.Helper()
	require.False(t, r.Error, "unexpected error answer: %s", r.Payload)
	var e echoed
	require.NoError(t, json.Unmarshal(r.Payload, &e), "payload: %s", r.Payload)
	return e
}

func TestPassThroughKeepsEventBytesAndEveryHeader(t *testing.T) {
	sb := startSandbox(t, sandboxOpts{handler: "echo.handler"})
	event := []byte("{\"b\" :  2, \"a\": \"\u00fc\\u00e9\",\n\"env\": [] }\n")
	deadline := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
	inv := runtimeapi.Invocation{
		RequestID:       "8f0c1d2e-aaaa-4bbb-8ccc-000000000001",
		Deadline:        deadline,
		FunctionARN:     "arn:aws:lambda:eu-west-1:123456789012:function:fn-under-test:live",
		TraceID:         "Root=1-5e1b4151-5ac6c58f3d5b1a4e1bd1e2e3;Parent=53995c3f42cd8ad8;Sampled=1",
		ClientContext:   `{"client":{"installation_id":"i-1","app_title":"t"},"custom":{"k":"v"},"env":{}}`,
		CognitoIdentity: `{"cognitoIdentityId":"us-east-1:abc","cognitoIdentityPoolId":"us-east-1:pool"}`,
		Event:           event,
		Header:          http.Header{"Lambda-Runtime-Something-New": {"future header"}},
	}
	r := sb.invoke(t, inv)
	e := decodeEcho(t, r)
	raw, err := base64.StdEncoding.DecodeString(e.Raw)
	require.NoError(t, err)
	assert.Equal(t, event, raw, "event bytes reach the handler unchanged")
	want := map[string]string{
		"Lambda-Runtime-Aws-Request-Id":       inv.RequestID,
		"Lambda-Runtime-Deadline-Ms":          strconv.FormatInt(deadline.UnixMilli(), 10),
		"Lambda-Runtime-Invoked-Function-Arn": inv.FunctionARN,
		"Lambda-Runtime-Trace-Id":             inv.TraceID,
		"Lambda-Runtime-Client-Context":       inv.ClientContext,
		"Lambda-Runtime-Cognito-Identity":     inv.CognitoIdentity,
		"Lambda-Runtime-Something-New":        "future header",
	}
	for k, v := range want {
		assert.Equal(t, v, e.Headers[k], "header %s", k)
	}
	for k := range e.Headers {
		if strings.HasPrefix(k, "Lambda-Runtime-") {
			assert.Contains(t, want, k, "no extra Lambda-Runtime header")
		}
	}
	assert.Equal(t, "yes", r.Header.Get("X-Echo"), "headers posted by the runtime pass through")
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
}

func TestPassThroughKeepsResponseBytes(t *testing.T) {
	sb := startSandbox(t, sandboxOpts{handler: "raw.handler"})
	for _, payload := range [][]byte{
		[]byte("{\"z\":1,  \"a\" : [ 1.50, \"\\u00e9\" ] }"),
		[]byte("not json at all \x00\x01\xff"),
		[]byte(""),
	} {
		ev, _ := json.Marshal(map[string]string{"b64": base64.StdEncoding.EncodeToString(payload)})
		r := sb.invoke(t, runtimeapi.Invocation{Event: ev})
		require.False(t, r.Error, "%s", r.Payload)
		assert.Equal(t, payload, r.Payload)
	}
}

func TestHandlerErrorComesBackAsErrorWithTypeHeader(t *testing.T) {
	sb := startSandbox(t, sandboxOpts{handler: "fail.handler"})
	r := sb.invoke(t, runtimeapi.Invocation{Event: []byte(`{"why":"testing"}`)})
	require.True(t, r.Error)
	assert.Equal(t, "Unhandled", r.ErrorType)
	assert.Equal(t, runtimeapi.ErrorContentType, r.Header.Get("Content-Type"))
	var doc runtimeapi.ErrorDocument
	require.NoError(t, json.Unmarshal(r.Payload, &doc))
	assert.Equal(t, "ValueError", doc.ErrorType)
	assert.Equal(t, "boom: testing", doc.ErrorMessage)
	assert.NotEmpty(t, doc.StackTrace)

	// The runtime keeps serving after an error.
	r = sb.invoke(t, runtimeapi.Invocation{Event: []byte(`{}`)})
	assert.True(t, r.Error)
}

func TestInitErrorIsForwardedAndExitCodeKept(t *testing.T) {
	sb := startSandbox(t, sandboxOpts{handler: "initfail.handler"})
	select {
	case r := <-sb.api.InitError():
		assert.Equal(t, "Runtime.ImportModuleError", r.ErrorType)
		var doc runtimeapi.ErrorDocument
		require.NoError(t, json.Unmarshal(r.Payload, &doc))
		assert.Contains(t, doc.ErrorMessage, "Unable to import module 'initfail'")
	case <-time.After(30 * time.Second):
		t.Fatalf("no init error\nstderr:\n%s", sb.stderr)
	}
	assert.Equal(t, 1, sb.waitExit(t))
}

func TestChildExitEndsProxyWithItsCode(t *testing.T) {
	sb := startSandbox(t, sandboxOpts{handler: "exiter.handler"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-sb.done
		cancel()
	}()
	_, err := sb.api.Invoke(ctx, runtimeapi.Invocation{Event: []byte(`{"code": 7}`)})
	require.ErrorIs(t, err, context.Canceled, "the proxy never answers for a runtime that died")
	assert.Equal(t, 7, sb.waitExit(t))
}

func TestSIGTERMIsForwardedToTheRuntime(t *testing.T) {
	sb := startSandbox(t, sandboxOpts{handler: "echo.handler"})
	sb.invoke(t, runtimeapi.Invocation{Event: []byte(`{}`)})
	require.NoError(t, sb.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 128+int(syscall.SIGTERM), sb.waitExit(t), "the runtime died of SIGTERM and the proxy reports it")
}

func TestPrevWrapperRunsBeforeTheRuntime(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	sb := startSandbox(t, sandboxOpts{handler: "echo.handler", env: []string{
		"PLLDB_PREV_WRAPPER=" + filepath.Join(fixtures(), "prev_wrapper.sh"),
		"PREV_WRAPPER_MARKER=" + marker,
	}})
	r := sb.invoke(t, runtimeapi.Invocation{Event: []byte(
		`{"env":["PREV_WRAPPER_RAN","AWS_LAMBDA_EXEC_WRAPPER","PLLDB_PREV_WRAPPER","AWS_LAMBDA_RUNTIME_API"]}`)})
	e := decodeEcho(t, r)
	require.NotNil(t, e.Env["PREV_WRAPPER_RAN"])
	assert.Equal(t, "yes", *e.Env["PREV_WRAPPER_RAN"])
	require.NotNil(t, e.Env["AWS_LAMBDA_EXEC_WRAPPER"])
	assert.Equal(t, filepath.Join(fixtures(), "prev_wrapper.sh"), *e.Env["AWS_LAMBDA_EXEC_WRAPPER"],
		"the runtime sees the wrapper the function had before plldb")
	assert.Nil(t, e.Env["PLLDB_PREV_WRAPPER"], "plldb's settings are not the runtime's business")
	require.NotNil(t, e.Env["AWS_LAMBDA_RUNTIME_API"])
	assert.NotEqual(t, sb.api.Addr(), *e.Env["AWS_LAMBDA_RUNTIME_API"], "the runtime talks to the proxy")
	assert.True(t, strings.HasPrefix(*e.Env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:"))
	got, err := os.ReadFile(marker)
	require.NoError(t, err)
	assert.Equal(t, "python3 bootstrap.py\n", string(got), "the previous wrapper got the runtime command")
}

func TestWrapperFoundThroughSymlink(t *testing.T) {
	link := filepath.Join(t.TempDir(), "elsewhere")
	require.NoError(t, os.Symlink(filepath.Join(layerDir, "plldb", "wrapper"), link))
	sb := startSandbox(t, sandboxOpts{handler: "echo.handler", wrapper: link,
		env: []string{"PLLDB_LOG_LEVEL=debug"}})
	r := sb.invoke(t, runtimeapi.Invocation{Event: []byte(`{"env":["AWS_LAMBDA_RUNTIME_API"]}`)})
	e := decodeEcho(t, r)
	assert.NotEqual(t, sb.api.Addr(), *e.Env["AWS_LAMBDA_RUNTIME_API"], "the proxy, not the runtime alone, is running")
	assert.Contains(t, sb.stderr.String(), "runtime started", "the proxy logged at debug level")
}

func TestBrokenSessionSettingsStillPassThrough(t *testing.T) {
	sb := startSandbox(t, sandboxOpts{handler: "echo.handler", env: []string{
		"PLLDB_ENDPOINT=wss://example.invalid/dev",
		"PLLDB_SESSION=s-1",
		"PLLDB_FUNCTION_KEY=c2VjcmV0LWtleS1ub3QtbG9nZ2VkLTEyMzQ1Njc4",
	}})
	r := sb.invoke(t, runtimeapi.Invocation{Event: []byte(`{}`)})
	decodeEcho(t, r)
	assert.Contains(t, sb.stderr.String(), "session disabled")
	assert.NotContains(t, sb.stderr.String(), "c2VjcmV0LWtleS1ub3QtbG9nZ2VkLTEyMzQ1Njc4", "the key is never logged")
}

func TestProxyRefusesToStartWithoutRuntimeAPI(t *testing.T) {
	_, err := Run(context.Background(), Config{Command: []string{"true"}})
	require.ErrorContains(t, err, "no Runtime API address")
	_, err = Run(context.Background(), Config{RuntimeAPI: "127.0.0.1:1"})
	require.ErrorContains(t, err, "no runtime command")
	_, err = Run(context.Background(), Config{RuntimeAPI: "127.0.0.1:1", Command: []string{"true"}, Session: &SessionConfig{}})
	require.ErrorContains(t, err, "without a Dial")
	code, err := Run(context.Background(), Config{RuntimeAPI: "127.0.0.1:1", Command: []string{"/nonexistent/runtime"}})
	require.ErrorContains(t, err, `start runtime "/nonexistent/runtime"`)
	assert.Equal(t, 1, code)
}

func TestAnswerPostedEvenWhenTheRuntimeExitsRightAfter(t *testing.T) {
	sb := startSandbox(t, sandboxOpts{handler: "answer_exit.handler"})
	r := sb.invoke(t, runtimeapi.Invocation{Event: []byte(`{}`)})
	assert.False(t, r.Error)
	assert.JSONEq(t, `{"answered": true}`, string(r.Payload))
	assert.Equal(t, 3, sb.waitExit(t))
}

func TestProxyBinaryExplainsMissingSandbox(t *testing.T) {
	cmd := exec.Command(filepath.Join(layerDir, "plldb", "proxy"), "python3", "bootstrap.py")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	assert.Equal(t, 1, exitErr.ExitCode())
	assert.Contains(t, string(out), "AWS_LAMBDA_RUNTIME_API is not set")
}

// TestInitErrorReachesTheAPIAsTheRuntimeSentIt: the real API gets the runtime's /init/error with the runtime's
// own headers, neither more (no Content-Type or User-Agent of the proxy's) nor fewer.
func TestInitErrorReachesTheAPIAsTheRuntimeSentIt(t *testing.T) {
	got := map[bool]runtimeapi.Response{}
	for _, direct := range []bool{true, false} {
		sb := startSandbox(t, sandboxOpts{handler: "initfail.handler", direct: direct})
		select {
		case r := <-sb.api.InitError():
			got[direct] = r
		case <-time.After(30 * time.Second):
			t.Fatalf("no init error (direct=%v)\nstderr:\n%s", direct, sb.stderr)
		}
		sb.waitExit(t)
	}
	d, p := got[true], got[false]
	assert.Equal(t, d.Payload, p.Payload)
	assert.Equal(t, d.ErrorType, p.ErrorType)
	d.Header.Del("Host") // the address the runtime was given: the API's, or the proxy's
	p.Header.Del("Host")
	assert.Equal(t, d.Header, p.Header, "the same headers, through the proxy or not")
	assert.NotContains(t, p.Header, "User-Agent", "Python's http.client sends none, and the proxy adds none")
}

// TestPassThroughForwardsTheAPIsRefusal: a response over Lambda's limit is refused by the real Runtime API,
// not by the proxy, and the runtime gets the API's 413 as the API wrote it.
func TestPassThroughForwardsTheAPIsRefusal(t *testing.T) {
	sb := startSandbox(t, sandboxOpts{handler: "raw.handler"})
	for _, n := range []int{runtimeapi.MaxResponse, runtimeapi.MaxResponse + 1} {
		payload := strings.Repeat("y", n)
		ev, _ := json.Marshal(map[string]string{"b64": base64.StdEncoding.EncodeToString([]byte(payload))})
		r := sb.invoke(t, runtimeapi.Invocation{Event: ev})
		if n <= runtimeapi.MaxResponse {
			require.False(t, r.Error, "%.300s", r.Payload)
			assert.Len(t, r.Payload, n, "a response of exactly Lambda's limit passes")
			continue
		}
		require.True(t, r.Error)
		assert.Equal(t, runtimeapi.ErrorTypeResponseSizeTooLarge, r.ErrorType)
		assert.Equal(t, string(runtimeapi.OversizeDocument(int64(n), runtimeapi.MaxResponse)), string(r.Payload))
	}
	// The runtime logs the API's answer after the invocation was answered.
	require.Eventually(t, func() bool {
		return strings.Contains(sb.stderr.String(),
			`: 413 b'{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}'`)
	}, 20*time.Second, 10*time.Millisecond, "the runtime got the API's refusal as the API wrote it")
}

package local_test

import (
	"context"
	"fmt"
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
)

// gateCode is the handler of the limit and event tests. Every attempt appends "<request id> <n>" to DIR/runs;
// with "wait" it then holds its slot until DIR/release exists; with "fail" it raises on attempts before the
// fail-th one of its request id (fail: 99 always raises).
const gateCode = `
import os, time
def gate(event, context):
    d = os.environ["DIR"]
    with open(os.path.join(d, "runs"), "a") as f:
        f.write("%s %s\n" % (context.aws_request_id, event.get("n", "-")))
    if event.get("wait"):
        while not os.path.exists(os.path.join(d, "release")):
            time.sleep(0.005)
    if event.get("fail"):
        with open(os.path.join(d, "runs")) as f:
            attempts = sum(1 for line in f if line.startswith(context.aws_request_id + " "))
        if attempts < event["fail"]:
            raise RuntimeError("attempt %d fails" % attempts)
    return "done"
`

// gateApp writes a SAM app whose functions (each "Name" or "Name: extra properties as YAML flow") all run
// gateCode with DIR set to the returned folder.
func gateApp(t testing.TB, fns ...string) (tpl, dir string) {
	t.Helper()
	root := t.TempDir()
	dir = filepath.Join(root, "out")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "src"), 0o755))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "src", "app.py"), []byte(strings.TrimLeft(gateCode, "\n")), 0o644))
	var b strings.Builder
	fmt.Fprintf(&b, "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n    Runtime: python3.11\n    Timeout: 20\n    CodeUri: src/\n    Handler: app.gate\n    Environment:\n      Variables:\n        DIR: %s\nResources:\n", dir)
	for _, fn := range fns {
		name, extra, _ := strings.Cut(fn, ": ")
		fmt.Fprintf(&b, "  %s:\n    Type: AWS::Serverless::Function\n    Properties: {%s}\n", name, extra)
	}
	tpl = filepath.Join(root, "template.yaml")
	require.NoError(t, os.WriteFile(tpl, []byte(b.String()), 0o644))
	return tpl, dir
}

// runs is what the gate handlers appended to DIR/runs: one "<request id> <n>" line per attempt.
func runs(t testing.TB, dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "runs"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func waitRuns(t testing.TB, dir string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(runs(t, dir)) >= n }, 30*time.Second, 5*time.Millisecond,
		"%d handler runs", n)
}

// holder starts synchronous invocations that hold their slot until released, and collects their answers.
type holder struct {
	t   *testing.T
	p   *local.Pipeline
	wg  sync.WaitGroup
	mu  sync.Mutex
	got []httpAnswer
}

func (h *holder) hold(fn string) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		a := invokeHTTP(h.t, h.p, fn, []byte(`{"wait": true}`), nil)
		h.mu.Lock()
		h.got = append(h.got, a)
		h.mu.Unlock()
	}()
}

func (h *holder) releaseAll(dir string) []httpAnswer {
	require.NoError(h.t, os.WriteFile(filepath.Join(dir, "release"), nil, 0o644))
	h.wg.Wait()
	return h.got
}

const (
	functionThrottle = `{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}`
	accountThrottle  = `{"Reason":"ConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}`
)

func assertThrottled(t *testing.T, a httpAnswer, body string) {
	t.Helper()
	assert.Equal(t, http.StatusTooManyRequests, a.status)
	assert.Equal(t, "TooManyRequestsException", a.header.Get("X-Amzn-Errortype"))
	assert.Equal(t, body, string(a.payload), "Lambda's body, byte for byte")
}

// TestConcurrencyLimitsThrottleLikeLambda: a function's limit (--max-concurrency, or its reservation) and the
// account's unreserved pool each throttle a synchronous invocation with Lambda's 429 and reason, and leave
// functions with slots to spare alone.
func TestConcurrencyLimitsThrottleLikeLambda(t *testing.T) {
	tpl, dir := gateApp(t, "Gate", "Other", "Reserved: ReservedConcurrentExecutions: 1", "Off: ReservedConcurrentExecutions: 0")
	// The account's 4 minus Reserved's 1: Gate and Other share a pool of 3, at most 2 each.
	p := start(t, local.Options{Template: tpl, MaxConcurrency: 2, AccountConcurrency: 4})
	for fn, want := range map[string]int{"Gate": 2, "Other": 2, "Reserved": 1, "Off": 0} {
		n, ok := p.Concurrency(fn)
		assert.True(t, ok)
		assert.Equal(t, want, n, fn)
	}
	_, ok := p.Concurrency("Nope")
	assert.False(t, ok)

	h := &holder{t: t, p: p}
	h.hold("Gate")
	h.hold("Gate")
	waitRuns(t, dir, 2)
	assertThrottled(t, invokeHTTP(t, p, "Gate", []byte(`{}`), nil), functionThrottle)
	a := invokeHTTP(t, p, "Other", []byte(`{}`), nil)
	assert.Equal(t, http.StatusOK, a.status, "another function is unaffected: %s", a.payload)

	h.hold("Other") // the pool's third slot
	waitRuns(t, dir, 4)
	assertThrottled(t, invokeHTTP(t, p, "Other", []byte(`{}`), nil), accountThrottle)
	a = invokeHTTP(t, p, "Reserved", []byte(`{}`), nil)
	assert.Equal(t, http.StatusOK, a.status, "a reservation is not the pool's to take: %s", a.payload)

	h.hold("Reserved")
	waitRuns(t, dir, 6)
	assertThrottled(t, invokeHTTP(t, p, "Reserved", []byte(`{}`), nil), functionThrottle)
	assertThrottled(t, invokeHTTP(t, p, "Off", []byte(`{}`), nil), functionThrottle)
	// An event for a function that can never run is refused at once rather than queued for ever.
	assertThrottled(t, invokeHTTP(t, p, "Off", []byte(`{}`), map[string]string{"X-Amz-Invocation-Type": "Event"}), functionThrottle)

	for _, a := range h.releaseAll(dir) {
		assert.Equal(t, http.StatusOK, a.status)
		assert.Equal(t, `"done"`, string(a.payload))
	}
	assert.Len(t, runs(t, dir), 6, "no throttled invocation ran")

	// The SDK reads the answer as Lambda's typed exception, reason included.
	client := lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(p.Endpoint()),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		RetryMaxAttempts: 1,
	})
	_, err := client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("Off"), Payload: []byte(`{}`)})
	var tooMany *lambdatypes.TooManyRequestsException
	require.ErrorAs(t, err, &tooMany)
	assert.Equal(t, lambdatypes.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded, tooMany.Reason)
	assert.Equal(t, "Rate Exceeded.", aws.ToString(tooMany.Message))
	assert.Equal(t, "1", aws.ToString(tooMany.RetryAfterSeconds))
}

func TestConcurrencyDefaultsAndReservationsOverTheAccount(t *testing.T) {
	tpl, _ := gateApp(t, "Gate", "Big: ReservedConcurrentExecutions: 40", "Off: ReservedConcurrentExecutions: 0")
	tmpl, err := template.Load(tpl)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"Gate": local.DefaultMaxConcurrency, "Big": 40, "Off": 0}, local.Concurrencies(tmpl.Functions, local.Options{}))
	assert.Equal(t, map[string]int{"Gate": 3, "Big": 40, "Off": 0}, local.Concurrencies(tmpl.Functions, local.Options{MaxConcurrency: 5, AccountConcurrency: 43}),
		"what the reservations leave of the account")

	_, err = local.Start(context.Background(), local.Options{Template: tpl, AccountConcurrency: 30, Python: "/nonexistent/python3"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "reserve 40 concurrent executions")
	assert.Contains(t, err.Error(), "--account-concurrency")
}

package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResult(t *testing.T) {
	e, _ := start(t, Spec{}, map[string]string{"app.py": "def handler(event, context):\n    return {'doubled': event['n'] * 2, 'text': 'héllo'}\n"})
	out := invoke(t, e, Invocation{RequestID: "r1", Event: []byte(`{"n": 21}`)})
	assert.JSONEq(t, `{"doubled": 42, "text": "héllo"}`, string(out.Payload))
	assert.Positive(t, out.Duration)
	assert.Positive(t, e.PID())
	assert.Zero(t, e.DebugPort())
}

func TestExceptionFormat(t *testing.T) {
	e, sink := start(t, Spec{}, map[string]string{"app.py": "def handler(event, context):\n    helper()\n\ndef helper():\n    raise ValueError('boom')\n"})
	out := invoke(t, e, Invocation{RequestID: "r-err"})
	require.NotNil(t, out.Err)
	assert.Equal(t, "ValueError", out.Err.ErrorType)
	assert.Equal(t, "boom", out.Err.ErrorMessage)
	assert.Equal(t, "r-err", out.Err.RequestID)
	file := filepath.Join(e.spec.CodeDir, "app.py")
	assert.Equal(t, []string{
		fmt.Sprintf("  File \"%s\", line 2, in handler\n    helper()\n", file),
		fmt.Sprintf("  File \"%s\", line 5, in helper\n    raise ValueError('boom')\n", file),
	}, out.Err.StackTrace)
	// awslambdaric's record: one line for Lambda's line-based capture (\r between lines), indented with NBSPs.
	assert.Contains(t, sink.text("r-err", "stdout"), "[ERROR] ValueError: boom\rTraceback (most recent call last):\r\u00a0\u00a0File \"")
	assert.Equal(t, `{"errorMessage": "boom", "errorType": "ValueError", "requestId": "r-err", "stackTrace": [`+
		fmt.Sprintf(`"  File \"%s\", line 2, in handler\n    helper()\n", `, file)+
		fmt.Sprintf(`"  File \"%s\", line 5, in helper\n    raise ValueError('boom')\n"]}`, file),
		string(out.Err.Document), "the document as awslambdaric posts it")
}

func TestMarshalError(t *testing.T) {
	e, _ := start(t, Spec{}, map[string]string{"app.py": "import decimal\ndef handler(event, context):\n    if event.get('dec'):\n        return {'d': decimal.Decimal('1.5'), 'i': decimal.Decimal('3')}\n    if event.get('nan'):\n        return float('nan')\n    return {1, 2}\n"})
	out := invoke(t, e, Invocation{})
	require.NotNil(t, out.Err)
	assert.Equal(t, "Runtime.MarshalError", out.Err.ErrorType)
	assert.Equal(t, "Unable to marshal response: Object of type set is not JSON serializable", out.Err.ErrorMessage)

	assert.Equal(t, `{"errorMessage": "Unable to marshal response: Object of type set is not JSON serializable", `+
		`"errorType": "Runtime.MarshalError", "requestId": "`+out.Err.RequestID+`", "stackTrace": []}`, string(out.Err.Document))

	// awslambdaric's encoder (simplejson, allow_nan) writes NaN, and a Decimal's own digits.
	out = invoke(t, e, Invocation{Event: []byte(`{"nan": true}`)})
	require.Nil(t, out.Err)
	assert.Equal(t, "NaN", string(out.Payload))

	out = invoke(t, e, Invocation{Event: []byte(`{"dec": true}`)})
	assert.Equal(t, `{"d": 1.5, "i": 3}`, string(out.Payload))
	assert.Equal(t, "application/json", out.ContentType)
}

func TestImportErrorThenFixed(t *testing.T) {
	e, _ := start(t, Spec{}, map[string]string{"app.py": "import nosuchmodule\ndef handler(event, context):\n    return 1\n"})
	pid := e.PID()
	out := invoke(t, e, Invocation{})
	require.NotNil(t, out.Err)
	assert.Equal(t, "Runtime.ImportModuleError", out.Err.ErrorType)
	assert.Equal(t, "Unable to import module 'app': No module named 'nosuchmodule'", out.Err.ErrorMessage)

	writeFiles(t, e.spec.CodeDir, map[string]string{"app.py": "def other(event, context):\n    return 1\n"})
	out = invoke(t, e, Invocation{})
	require.NotNil(t, out.Err)
	assert.Equal(t, "Runtime.HandlerNotFound", out.Err.ErrorType)
	assert.Equal(t, "Handler 'handler' missing on module 'app'", out.Err.ErrorMessage)

	writeFiles(t, e.spec.CodeDir, map[string]string{"app.py": "def handler(event, context):\n    return {'fixed': True}\n"})
	assert.Equal(t, map[string]any{"fixed": true}, payload(t, invoke(t, e, Invocation{})))
	assert.Equal(t, pid, e.PID(), "import errors must not restart the executor")
}

func TestSyntaxErrorAndModuleLevelException(t *testing.T) {
	e, _ := start(t, Spec{}, map[string]string{"app.py": "def handler(event, context)\n    return 1\n"})
	out := invoke(t, e, Invocation{})
	require.NotNil(t, out.Err)
	assert.Equal(t, "Runtime.UserCodeSyntaxError", out.Err.ErrorType)
	assert.Contains(t, out.Err.ErrorMessage, "Syntax error in module 'app'")

	writeFiles(t, e.spec.CodeDir, map[string]string{"app.py": "raise KeyError('cfg')\n"})
	out = invoke(t, e, Invocation{})
	require.NotNil(t, out.Err)
	assert.Equal(t, "KeyError", out.Err.ErrorType)
	assert.Equal(t, "'cfg'", out.Err.ErrorMessage)
}

func TestPackageHandler(t *testing.T) {
	e, _ := start(t, Spec{Handler: "pkg.mod.fn"}, map[string]string{
		"pkg/__init__.py": "",
		"pkg/mod.py":      "from . import util\ndef fn(event, context):\n    return {'v': util.VALUE}\n",
		"pkg/util.py":     "VALUE = 7\n",
	})
	assert.Equal(t, map[string]any{"v": 7.0}, payload(t, invoke(t, e, Invocation{})))
}

func TestLayerOnSysPath(t *testing.T) {
	layer1, layer2 := t.TempDir(), t.TempDir()
	writeFiles(t, layer1, map[string]string{"shared.py": "WHO = 'layer1'\n"})
	writeFiles(t, layer2, map[string]string{"shared.py": "WHO = 'layer2'\n", "only2.py": "X = 2\n"})
	e, _ := start(t, Spec{LayerDirs: []string{layer1, layer2}}, map[string]string{"app.py": `import sys, shared, only2
def handler(event, context):
    return {'who': shared.WHO, 'x': only2.X, 'path': sys.path[:3]}
`})
	m := payload(t, invoke(t, e, Invocation{}))
	assert.Equal(t, "layer1", m["who"], "the first layer wins, as on Lambda")
	assert.Equal(t, 2.0, m["x"])
	assert.Equal(t, []any{e.spec.CodeDir, layer1, layer2}, m["path"])
}

func TestEnvAndContext(t *testing.T) {
	spec := Spec{
		LogicalID: "MyFn", FunctionName: "my-fn-123", Runtime: "python3.11", Region: "eu-west-1",
		MemoryMB: 256, TimeoutSec: 30, Env: map[string]string{"TABLE": "t1", "AWS_LAMBDA_LOG_GROUP_NAME": "/custom/group"},
	}
	e, _ := start(t, spec, map[string]string{"app.py": `import os, sys, time
KEYS = ['TABLE', 'AWS_LAMBDA_FUNCTION_NAME', 'AWS_LAMBDA_FUNCTION_VERSION', 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
        'AWS_REGION', 'AWS_DEFAULT_REGION', '_HANDLER', 'LAMBDA_TASK_ROOT', 'AWS_EXECUTION_ENV', 'TZ',
        'AWS_LAMBDA_LOG_GROUP_NAME', 'PYTHONUNBUFFERED', '_X_AMZN_TRACE_ID']
def handler(event, context):
    r1 = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    r2 = context.get_remaining_time_in_millis()
    return {
        'env': {k: os.environ.get(k) for k in KEYS},
        'stream': os.environ.get('AWS_LAMBDA_LOG_STREAM_NAME'),
        'runtimeDir': os.environ.get('LAMBDA_RUNTIME_DIR'),
        'cwd': os.getcwd(),
        'r1': r1, 'r2': r2,
        'ctx': {
            'aws_request_id': context.aws_request_id, 'function_name': context.function_name,
            'function_version': context.function_version, 'invoked_function_arn': context.invoked_function_arn,
            'memory_limit_in_mb': context.memory_limit_in_mb, 'log_group_name': context.log_group_name,
            'log_stream_name': context.log_stream_name,
            'cognito_identity_id': context.identity.cognito_identity_id,
            'cognito_identity_pool_id': context.identity.cognito_identity_pool_id,
            'custom': context.client_context and context.client_context.custom,
            'env': context.client_context and context.client_context.env,
            'app_title': context.client_context and context.client_context.client.app_title,
        },
    }
`})
	deadline := time.Now().Add(20 * time.Second)
	out := invoke(t, e, Invocation{
		RequestID: "req-42", Deadline: deadline, TraceID: "Root=1-abc",
		InvokedARN:      "arn:aws:lambda:eu-west-1:111122223333:function:my-fn-123",
		ClientContext:   `{"client": {"app_title": "app"}, "custom": {"k": "v"}, "env": {"e": "1"}}`,
		CognitoIdentity: `{"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}`,
	})
	m := payload(t, out)
	assert.Equal(t, map[string]any{
		"TABLE": "t1", "AWS_LAMBDA_FUNCTION_NAME": "my-fn-123", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
		"_HANDLER": "app.handler", "LAMBDA_TASK_ROOT": e.spec.CodeDir, "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
		"TZ": ":UTC", "AWS_LAMBDA_LOG_GROUP_NAME": "/custom/group", "PYTHONUNBUFFERED": "1", "_X_AMZN_TRACE_ID": "Root=1-abc",
	}, m["env"])
	assert.Regexp(t, `^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$`, m["stream"])
	assert.NotEmpty(t, m["runtimeDir"])
	assert.Equal(t, e.spec.CodeDir, m["cwd"])
	assert.Equal(t, map[string]any{
		"aws_request_id": "req-42", "function_name": "my-fn-123", "function_version": "$LATEST",
		"invoked_function_arn": "arn:aws:lambda:eu-west-1:111122223333:function:my-fn-123",
		"memory_limit_in_mb":   "256", "log_group_name": "/custom/group", "log_stream_name": m["stream"],
		"cognito_identity_id": "id-1", "cognito_identity_pool_id": "pool-1",
		"custom": map[string]any{"k": "v"}, "env": map[string]any{"e": "1"}, "app_title": "app",
	}, m["ctx"])
	r1, r2 := m["r1"].(float64), m["r2"].(float64)
	assert.Greater(t, r1, r2, "remaining time must decrease")
	assert.LessOrEqual(t, r1, float64(time.Until(deadline).Milliseconds()+20000))
	assert.Greater(t, r1, 10000.0, "remaining time comes from the real deadline")

	// A second invocation with no trace id must not see the first one's.
	m = payload(t, invoke(t, e, Invocation{RequestID: "req-43"}))
	assert.Nil(t, m["env"].(map[string]any)["_X_AMZN_TRACE_ID"])
	assert.Equal(t, "req-43", m["ctx"].(map[string]any)["aws_request_id"])
	assert.Equal(t, "arn:aws:lambda:eu-west-1:012345678912:function:my-fn-123", m["ctx"].(map[string]any)["invoked_function_arn"])
	assert.Nil(t, m["ctx"].(map[string]any)["custom"])
}

func TestConcurrentInvocations(t *testing.T) {
	e, sink := start(t, Spec{}, map[string]string{"app.py": `import time, logging
log = logging.getLogger()
def handler(event, context):
    print('start', event['i'])
    time.sleep(0.2)
    log.warning('mid %s', event['i'])
    print('end', event['i'], end='')
    return {'i': event['i'], 'rid': context.aws_request_id}
`})
	const n = 50
	type res struct {
		i   int
		out Outcome
		err error
	}
	results := make(chan res, n)
	for i := range n {
		go func() {
			out, err := e.Invoke(context.Background(), Invocation{RequestID: fmt.Sprintf("req-%d", i), Event: fmt.Appendf(nil, `{"i": %d}`, i)})
			results <- res{i, out, err}
		}()
	}
	for range n {
		r := <-results
		require.NoError(t, r.err)
		rid := fmt.Sprintf("req-%d", r.i)
		assert.JSONEq(t, fmt.Sprintf(`{"i": %d, "rid": %q}`, r.i, rid), string(r.out.Payload))
		// All of an invocation's output is delivered before its outcome.
		assert.Equal(t, fmt.Sprintf("start %d\nend %d", r.i, r.i), stdoutPrints(sink.text(rid, "stdout")))
		assert.Regexp(t, fmt.Sprintf(`(?m)^\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t%s\tmid %d$`, rid, r.i), sink.text(rid, "stdout"))
	}
}

// stdoutPrints drops logging records, leaving what print wrote.
func stdoutPrints(s string) string {
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, "[") && l != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

func TestOutputCapture(t *testing.T) {
	e, sink := start(t, Spec{}, map[string]string{"app.py": `import sys, threading, _thread, logging
print('imported')
def handler(event, context):
    print('to stdout')
    sys.stderr.write('to stderr\n')
    sys.stdout.buffer.write(b'bytes out\n')
    logging.getLogger('x').error('logged')
    t = threading.Thread(target=lambda: print('from child thread'))
    t.start(); t.join()
    done = threading.Event()
    def orphan():
        print('from a raw thread')
        done.set()
    _thread.start_new_thread(orphan, ())
    done.wait()
    return 'ok'
`})
	out := invoke(t, e, Invocation{RequestID: "r-out"})
	assert.Equal(t, `"ok"`, string(out.Payload))
	assert.Equal(t, "imported\nto stdout\nbytes out\nfrom child thread\n", stdoutPrints(sink.text("r-out", "stdout")))
	assert.Equal(t, "to stderr\n", sink.text("r-out", "stderr"))
	assert.Regexp(t, `^\[ERROR\]\t\S+\tr-out\tlogged\n$`, logLines(sink.text("r-out", "stdout")))
	// A thread the runtime knows nothing about writes outside any invocation: the process's real stderr.
	require.Eventually(t, func() bool { return strings.Contains(sink.text("", "stderr"), "from a raw thread\n") }, 10*time.Second, 10*time.Millisecond)
}

func logLines(s string) string {
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, "[") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

func TestReloadOnEdit(t *testing.T) {
	e, sink := start(t, Spec{}, map[string]string{
		"app.py":    "import helper\ndef handler(event, context):\n    return {'v': 1, 'h': helper.H}\n",
		"helper.py": "H = 'a'\n",
	})
	pid := e.PID()
	assert.Equal(t, map[string]any{"v": 1.0, "h": "a"}, payload(t, invoke(t, e, Invocation{})))
	// Same size, same second: neither the mtime check nor a stale .pyc may hide the edit.
	writeFiles(t, e.spec.CodeDir, map[string]string{"app.py": "import helper\ndef handler(event, context):\n    return {'v': 2, 'h': helper.H}\n"})
	assert.Equal(t, map[string]any{"v": 2.0, "h": "a"}, payload(t, invoke(t, e, Invocation{})))
	writeFiles(t, e.spec.CodeDir, map[string]string{"helper.py": "H = 'b'\n"})
	assert.Equal(t, map[string]any{"v": 2.0, "h": "b"}, payload(t, invoke(t, e, Invocation{})))
	assert.Equal(t, pid, e.PID())
	assert.Contains(t, sink.text("", "stderr"), "reloading app.handler")
}

func TestTimeoutRestarts(t *testing.T) {
	e, sink := start(t, Spec{TimeoutSec: 1, EnforceTimeout: true}, map[string]string{"app.py": `import time
def handler(event, context):
    if event.get('sleep'):
        time.sleep(60)
    return {'ok': True}
`})
	pid := e.PID()
	out := invoke(t, e, Invocation{RequestID: "slow", Event: []byte(`{"sleep": true}`), Deadline: time.Now().Add(time.Second)})
	require.NotNil(t, out.Err)
	assert.Equal(t, &LambdaError{ErrorType: "Sandbox.Timedout", ErrorMessage: "RequestId: slow Error: Task timed out after 1.00 seconds"}, out.Err)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z slow Task timed out after 1\.00 seconds\n$`, sink.text("slow", "stdout"))
	require.Eventually(t, func() bool { p := e.PID(); return p != 0 && p != pid }, 30*time.Second, 10*time.Millisecond, "a fresh process replaces the timed-out one")
	assert.Equal(t, map[string]any{"ok": true}, payload(t, invoke(t, e, Invocation{})))
}

func TestNoTimeoutWhenNotEnforced(t *testing.T) {
	e, _ := start(t, Spec{TimeoutSec: 1}, map[string]string{"app.py": "import time\ndef handler(event, context):\n    time.sleep(0.3)\n    return context.get_remaining_time_in_millis()\n"})
	pid := e.PID()
	out := invoke(t, e, Invocation{Deadline: time.Now().Add(-time.Second)})
	assert.Equal(t, "0", string(out.Payload), "past its deadline, yet answered: a paused developer is not a timeout")
	assert.Equal(t, pid, e.PID())
}

func TestCrashRestarts(t *testing.T) {
	e, sink := start(t, Spec{}, map[string]string{"app.py": `import os, time, ctypes
def handler(event, context):
    if event.get('exit'):
        print('bye')
        os._exit(3)
    if event.get('segv'):
        ctypes.string_at(0)
    if event.get('wait'):
        print('waiting')
        while not os.path.exists(event['wait']):
            time.sleep(0.01)
        return {'pid': os.getpid()}
    return {'ok': True}
`})
	// An invocation in flight when another crashes its own sandbox goes on untouched, in a sandbox of its own.
	release := filepath.Join(t.TempDir(), "go")
	other := make(chan Outcome, 1)
	go func() {
		out, err := e.Invoke(context.Background(), Invocation{RequestID: "bystander", Event: fmt.Appendf(nil, `{"wait": %q}`, release)})
		assert.NoError(t, err)
		other <- out
	}()
	require.Eventually(t, func() bool { return sink.text("bystander", "stdout") == "waiting\n" }, 10*time.Second, 5*time.Millisecond)
	bystander := e.Sandboxes()
	out := invoke(t, e, Invocation{RequestID: "crash", Event: []byte(`{"exit": true}`)})
	require.NotNil(t, out.Err)
	assert.Equal(t, &LambdaError{ErrorType: "Runtime.ExitError", ErrorMessage: "RequestId: crash Error: Runtime exited with error: exit status 3"}, out.Err)
	assert.Equal(t, "bye\nRequestId: crash Error: Runtime exited with error: exit status 3\nRuntime.ExitError\n", sink.text("crash", "stdout"))
	require.NoError(t, os.WriteFile(release, nil, 0o600))
	b := <-other
	require.Nil(t, b.Err, "the crash of another sandbox must not touch this invocation")
	require.Len(t, bystander, 1)
	assert.JSONEq(t, fmt.Sprintf(`{"pid": %d}`, bystander[0].PID), string(b.Payload))

	assert.Equal(t, map[string]any{"ok": true}, payload(t, invoke(t, e, Invocation{})))

	out = invoke(t, e, Invocation{RequestID: "segv", Event: []byte(`{"segv": true}`)})
	require.NotNil(t, out.Err)
	assert.Equal(t, "Runtime.ExitError", out.Err.ErrorType)
	assert.Contains(t, out.Err.ErrorMessage, "RequestId: segv Error: Runtime exited with error: signal: segmentation fault")
	assert.Equal(t, map[string]any{"ok": true}, payload(t, invoke(t, e, Invocation{})))
	for _, sb := range e.Sandboxes() {
		assert.NotEqual(t, bystander[0].ID, 0)
		assert.True(t, sb.ID == bystander[0].ID || sb.ID > 2, "crashed sandboxes are replaced by new ones: %+v", e.Sandboxes())
	}
}

func TestSystemExitEndsProcess(t *testing.T) {
	e, _ := start(t, Spec{}, map[string]string{"app.py": "import sys\ndef handler(event, context):\n    sys.exit(4)\n"})
	out := invoke(t, e, Invocation{RequestID: "x"})
	require.NotNil(t, out.Err)
	assert.Equal(t, "RequestId: x Error: Runtime exited with error: exit status 4", out.Err.ErrorMessage)
}

func TestRestartAndClose(t *testing.T) {
	var starts []int
	e, sink := start(t, Spec{OnStart: func(_ context.Context, sb SandboxInfo) { starts = append(starts, sb.PID) }}, map[string]string{"app.py": sleeper})
	pid := e.PID()
	require.NoError(t, e.Restart(context.Background()))
	assert.NotEqual(t, pid, e.PID())
	assert.Equal(t, []int{pid, e.PID()}, starts)
	assert.Equal(t, "1", string(invoke(t, e, Invocation{}).Payload))

	errc := make(chan error, 1)
	go func() {
		_, err := e.Invoke(context.Background(), Invocation{RequestID: "long", Event: []byte(`{"s": 60}`)})
		errc <- err
	}()
	require.Eventually(t, func() bool { return sink.text("long", "") == "sleeping\n" }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, e.Close())
	assert.ErrorIs(t, <-errc, ErrClosed)
	_, err := e.Invoke(context.Background(), Invocation{})
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, e.Restart(context.Background()), ErrClosed)
	assert.Zero(t, e.PID())
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		spec Spec
		want string
	}{
		"no handler":     {Spec{CodeDir: dir}, "no handler"},
		"handler form":   {Spec{CodeDir: dir, Handler: "handler"}, "not of the form module.function"},
		"relative dir":   {Spec{CodeDir: "src", Handler: "a.b"}, "not an absolute path"},
		"missing dir":    {Spec{CodeDir: filepath.Join(dir, "nope"), Handler: "a.b"}, "no such file"},
		"missing layer":  {Spec{CodeDir: dir, Handler: "a.b", LayerDirs: []string{filepath.Join(dir, "nope")}}, "layer folder"},
		"timeout":        {Spec{CodeDir: dir, Handler: "a.b", TimeoutSec: 901}, "timeout 901"},
		"no interpreter": {Spec{CodeDir: dir, Handler: "a.b", Python: filepath.Join(dir, "nopython")}, "python interpreter"},
		"not a python":   {Spec{CodeDir: dir, Handler: "a.b", Python: "/bin/false"}, "exited during start-up (exit status 1)"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			c.spec.LogicalID = "Fn"
			_, err := Start(context.Background(), c.spec, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}

	e, _ := start(t, Spec{}, map[string]string{"app.py": "def handler(event, context):\n    return event\n"})
	_, err := e.Invoke(context.Background(), Invocation{Event: []byte(`{"a":`)})
	assert.ErrorContains(t, err, "event is not valid JSON")
	_, err = e.Invoke(context.Background(), Invocation{ClientContext: "%%%"})
	assert.ErrorContains(t, err, "client context")
	_, err = e.Invoke(context.Background(), Invocation{CognitoIdentity: "[1]"})
	assert.ErrorContains(t, err, "cognito identity")
	// Base64 client context, as the Invoke API carries it, and an empty event.
	out := invoke(t, e, Invocation{ClientContext: "eyJjdXN0b20iOiB7fX0="})
	assert.JSONEq(t, `{}`, string(out.Payload))
}

func TestRuntimeMismatchWarns(t *testing.T) {
	rec := &recordHandler{}
	start(t, Spec{Runtime: "python3.99", Logger: slogNew(rec)}, map[string]string{"app.py": "def handler(e, c):\n    return 1\n"})
	assert.True(t, rec.has("interpreter does not match the function's runtime"))
}

func TestContextCancel(t *testing.T) {
	e, sink := start(t, Spec{}, map[string]string{"app.py": sleeper})
	pid := e.PID()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := e.Invoke(ctx, Invocation{RequestID: "given-up", Event: []byte(`{"s": 1}`)})
		errc <- err
	}()
	require.Eventually(t, func() bool { return sink.text("given-up", "") == "sleeping\n" }, 10*time.Second, 5*time.Millisecond)
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
	assert.Equal(t, "1", string(invoke(t, e, Invocation{}).Payload))
	assert.Equal(t, pid, e.PID(), "a caller giving up does not restart the executor")
}

// sleeper sleeps event["s"] seconds, saying so first, and returns 1.
const sleeper = `import time
def handler(event, context):
    if event.get('s'):
        print('sleeping')
        time.sleep(event['s'])
    return 1
`

func TestLargePayloads(t *testing.T) {
	e, _ := start(t, Spec{}, map[string]string{"app.py": "def handler(event, context):\n    return {'echo': event['data'], 'n': len(event['data'])}\n"})
	// Mostly plain text, as payloads usually are, with escapes and non-ASCII in it.
	data := "é\n\"\u2028" + strings.Repeat("0123456789abcdef", 6<<20/16-64)
	ev, err := json.Marshal(map[string]string{"data": data})
	require.NoError(t, err)
	out := invoke(t, e, Invocation{Event: ev})
	var m struct {
		Echo string `json:"echo"`
		N    int    `json:"n"`
	}
	require.NoError(t, json.Unmarshal(out.Payload, &m))
	assert.Equal(t, len([]rune(data)), m.N)
	assert.True(t, m.Echo == data, "6 MB must pass both ways unchanged")
}

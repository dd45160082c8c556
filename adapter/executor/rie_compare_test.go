package executor

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/rie"
)

// The executor's side of the comparison with AWS's runtime: a function run by Start and Invoke, as plldb
// local's developer side runs it, observed as rie.Observe observes RIE.

func parityDir() string { return rie.ParityDir() }

// executorWay runs a function through the executor with what the emulator harness gives its runtime (name,
// memory, region, runtime, the function's variables).
func executorWay() rie.Way {
	return rie.Way{Name: "executor", Start: func(t testing.TB, fn rie.Function) rie.Instance {
		env := map[string]string{}
		runtime := "python3.12" // rie.Start's AWS_EXECUTION_ENV
		for _, kv := range fn.Env {
			k, v, _ := strings.Cut(kv, "=")
			if k == "AWS_EXECUTION_ENV" {
				runtime = strings.TrimPrefix(v, "AWS_Lambda_")
				continue
			}
			env[k] = v
		}
		timeout := fn.Timeout
		if timeout == 0 {
			timeout = 30
		}
		inst := &execInstance{}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e, err := Start(ctx, Spec{
			LogicalID: "Parity", FunctionName: "plldb-rie-test", Handler: fn.Handler, Runtime: runtime,
			Region: "eu-west-1", Version: "$LATEST", CodeDir: fn.Dir, Env: env, MemoryMB: 256, TimeoutSec: timeout,
			Python: rie.Python(t), EnforceTimeout: true, // as plldb local runs it without a debugger
		}, inst.add)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, e.Close()) })
		inst.e = e
		return inst
	}}
}

type execInstance struct {
	e    *Executor
	mu   sync.Mutex
	logs strings.Builder
}

// add keeps what the function wrote during its invocations; the executor's own output (RequestID "") is not
// the function's, as RIE's own lines are not (rie's Logs leaves those out).
func (i *execInstance) add(l LogLine) {
	if l.RequestID == "" {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.logs.WriteString(l.Text)
}

func (i *execInstance) Logs() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.logs.String()
}

// Invoke answers as the emulator's Invoke API does with what the executor gave: the payload, or the error
// document as awslambdaric posted it, with status 502 for an init error (a document without a request id)
// and 200 otherwise. Headers are the Invoke API's business (adapter/local), not the executor's: not compared.
func (i *execInstance) Invoke(ctx context.Context, ev rie.Event) (rie.Reply, error) {
	out, err := i.e.Invoke(ctx, Invocation{Event: ev.Body, ClientContext: ev.Header.Get("X-Amz-Client-Context"), TenantID: ev.Header.Get("X-Amz-Tenant-Id")})
	if err != nil {
		return rie.Reply{}, err
	}
	switch {
	case out.Err == nil:
		return rie.Reply{Status: http.StatusOK, Body: out.Payload}, nil
	case out.Err.Document == nil:
		// An error of the executor's own making (a timeout, a crash), as Go marshals it for the caller.
		b, err := json.Marshal(out.Err)
		return rie.Reply{Status: http.StatusOK, Body: b}, err
	case out.Err.RequestID == "":
		return rie.Reply{Status: http.StatusBadGateway, Body: out.Err.Document}, nil
	default:
		return rie.Reply{Status: http.StatusOK, Body: out.Err.Document}, nil
	}
}

// TestExecutorMatchesAWSRuntime runs each case under RIE with awslambdaric 4.2.2 (the reference) and through
// the executor, and fails on any difference in what the caller got or the function logged beyond the
// allow-list above.
func TestExecutorMatchesAWSRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the emulator; not in -short")
	}
	for _, c := range rie.ParityCases() {
		t.Run(c.Name, func(t *testing.T) {
			want := rie.Observe(t, rie.Direct(), c)
			got := rie.Observe(t, executorWay(), c)
			rie.Compare(t, c, want, got, rie.ParityNormalizer)
			pinReference(t, c, want)
			if t.Failed() {
				t.Logf("rie logs:\n%s\nexecutor logs:\n%s", want.Logs, got.Logs)
			}
		})
	}
}

// The caller's X-Ray trace id reaches the handler unchanged, and only for its own invocation. (RIE does not
// pass one on, so this is not part of the comparison: awslambdaric sets _X_AMZN_TRACE_ID to the Runtime API's
// Lambda-Runtime-Trace-Id header as it is, and deletes it when an invocation has none.)
func TestTraceIDPassedUnchanged(t *testing.T) {
	e, _ := start(t, Spec{CodeDir: parityDir(), Handler: "parity.handler"}, nil)
	id := "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5"
	out := invoke(t, e, Invocation{Event: []byte(`{"case":"context"}`), TraceID: id})
	assert.Equal(t, id, payload(t, out)["trace_id"])
	out = invoke(t, e, Invocation{Event: []byte(`{"case":"context"}`)})
	assert.Nil(t, payload(t, out)["trace_id"])
}

// referencePins are facts about the reference that the comparison relies on, so that it cannot pass by both
// sides going wrong the same way (say, the JSON log format not reaching either runtime): case → event (""
// for the logs) → text its reply body or the logs must contain.
var referencePins = map[string]map[string][]string{
	"text": {
		"result/decimal":    {`{"d": 1.10, "e": 1E+3, "z": -0.000, "n": NaN}`},
		"result/nan":        {`{"nan": NaN, "inf": Infinity, "-inf": -Infinity}`},
		"result/namedtuple": {`{"p": {"x": 1, "y": {"x": 2, "y": 3}}, "l": [{"x": "a", "y": "b"}]}`},
		"result/bytes":      {"\x00\xffraw bytes\n"},
		"result/datetime":   {`{"errorMessage": "Unable to marshal response: Object of type datetime is not JSON serializable", "errorType": "Runtime.MarshalError", "requestId": "`, `"stackTrace": []}`},
		"fail/value":        {`"stackTrace": ["  File \"`, `    raise ValueError(\"boom\")\n"]}`},
		"context/client":    {`"w3c": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "x=1"}`, "tenant_id=None])"},
		"":                  {"[ERROR] ValueError: boom\rTraceback (most recent call last):\r\u00a0\u00a0File", "[WARNING]\t<time>\t\tparity: init warning\n"},
	},
	"json-logs":  {"": {`"level": "DEBUG", "message": "logging: debug", "logger": "root", "requestId": "<uuid>"}`, `{"timestamp": "<time>", "level": "ERROR", "errorMessage": "wrapped"`}},
	"tenant":     {"context": {"tenant_id=tenant-ü-1])"}, "": {`"requestId": "<uuid>", "tenantId": "tenant-2"`}},
	"python3.11": {"result/unicode": {`"\u00fc\u00e9 \u2713 \ud83d\ude80`}},
	"init-error": {
		"":      {"LAMBDA_WARNING: Unhandled exception.", "[ERROR] RuntimeError: init failed\rTraceback"},
		"first": {`{"errorMessage": "init failed", "errorType": "RuntimeError", "requestId": "", "stackTrace": [`},
	},
	"handler-not-found": {"first": {`{"errorMessage": "Handler 'missing' missing on module 'parity'", "errorType": "Runtime.HandlerNotFound", "requestId": "", "stackTrace": []}`}},
}

func pinReference(t *testing.T, c rie.Case, want rie.Observation) {
	t.Helper()
	for ev, texts := range referencePins[c.Name] {
		have := string(rie.Common([]byte(want.Logs)))
		for i, e := range c.Events {
			if e.Name == ev {
				have = string(rie.Common(want.Replies[i].Body))
				if c.Name == "init-error" || c.Name == "handler-not-found" {
					assert.Equal(t, http.StatusBadGateway, want.Replies[i].Status, "RIE answers an init error with 502")
				}
			}
		}
		for _, text := range texts {
			assert.Contains(t, have, text, "%s/%s: the reference", c.Name, ev)
		}
	}
}

// The result encoder against awslambdaric's own marshaller (simplejson) on values no handler fixture needs to
// return one by one: subclasses, _asdict objects, odd keys, shared and circular containers, lone surrogates.
func TestMarshalAgreesWithAWSLambdaRIC(t *testing.T) {
	py := rie.Python(t)
	script, err := writeScript()
	require.NoError(t, err)
	for _, runtime := range []string{"python3.12", "python3.11"} {
		t.Run(runtime, func(t *testing.T) {
			cmd := exec.Command(py, filepath.Join("testdata", "marshal_parity.py"), script)
			cmd.Env = append(os.Environ(), "AWS_EXECUTION_ENV=AWS_Lambda_"+runtime)
			out, err := cmd.Output()
			require.NoError(t, err, "%s", out)
			var res struct {
				Checked int
				Diffs   []map[string]any
			}
			require.NoError(t, json.Unmarshal(out, &res), "%s", out)
			assert.Greater(t, res.Checked, 70)
			for _, d := range res.Diffs {
				t.Errorf("%v:\n awslambdaric %q\n executor     %q", d["value"], d["awslambdaric"], d["executor"])
			}
		})
	}
}

package rie

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/plldb/plldb/testfixtures/pyenv"
)

// The parity cases: every handler of testfixtures/rie/parity with the events to send it, and the allow-list of
// differences from awslambdaric under RIE that every way of running them (the executor alone, and plldb local
// end to end) is held to. "the executor" below is plldb's Python executor, which runs the handler in both.

// ParityDir is the folder of the parity handlers.
func ParityDir() string { return filepath.Join(pyenv.RepoRoot(), "testfixtures", "rie", "parity") }

// The allow-list: every difference between awslambdaric under RIE and the executor that the comparison
// accepts, besides request ids and clock values (Common).
var (
	// The function ARN: RIE makes one up in us-east-1, the executor one in the function's region. Both are
	// placeholders for the caller's real ARN.
	arnRE = regexp.MustCompile(`arn:aws:lambda:[a-z0-9-]+:\d{12}:function:[\w-]+`)
	// The log group and stream: RIE's are fixed placeholders ("/aws/lambda/Functions", "$LATEST"), the
	// executor's have Lambda's form ("/aws/lambda/<name>", "YYYY/MM/DD/[$LATEST]<hex>").
	logGroupRE  = regexp.MustCompile(`/aws/lambda/[\w.-]+`)
	logStreamRE = regexp.MustCompile(`(log_stream_name(?:=|": "))[^,"]*`)
	// A frame of the runtime's own code inside the handler's stack (the handler called into the runtime, say a
	// logging call that fails in its log handler): awslambdaric's file and line, or the executor's. The function
	// name and the frames around it are compared.
	runtimeFrameRE = regexp.MustCompile(`File \\?"[^"]*?(?:/awslambdaric/\w+\.py|/executor-[0-9a-f]+\.py)\\?", line \d+`)
	// Paths of the interpreter's standard library differ in nothing but are machine-specific: the same
	// interpreter runs both ways, so they are compared as they are.

	// Environment variables whose values are the harness's or placeholders (see envNormalized).
	envPlaceholders = []string{
		"AWS_LAMBDA_RUNTIME_API",                                  // RIE's Runtime API; the executor has none
		"AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", // as above
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", // RIE's are empty; the executor passes the developer's
		"PATH", "HOME", "LANG", // the harness sets RIE's; the executor keeps the developer's
		"AWS_LAMBDA_FUNCTION_TIMEOUT", "LOG_LEVEL", // RIE's own configuration, not Lambda's
		// Each sandbox's own folder for tempfile, standing in for the /tmp each Lambda sandbox has to itself
		// (RIE's sandbox is the machine, whose /tmp every run shares).
		"TMPDIR",
	}
	// Variables Lambda sets that RIE does not; the executor sets them as Lambda does.
	envLambdaOnly = []string{"AWS_LAMBDA_INITIALIZATION_TYPE", "LAMBDA_RUNTIME_DIR", "TZ", "PYTHONUNBUFFERED"}

	// Not compared at all:
	// - a handler without a module ("app"). Lambda accepts it and awslambdaric answers
	//   Runtime.MalformedHandlerName at init; plldb refuses it when the function is loaded, with a clear error,
	//   before anything runs (Start's validation);
	// - a body that is not JSON. RIE hands it to awslambdaric (Runtime.UnmarshalError); Lambda's Invoke API
	//   refuses it before any runtime sees it, and so does Invoke (and plldb local's Invoke API);
	// - an init error whose message is not Latin-1: awslambdaric 4.2.2 fails to post it (http.client encodes
	//   the body as Latin-1), exits, and RIE answers 502 with an empty body; the executor answers the document;
	// - headers (see execInstance.Invoke) and the caller's trace id (RIE drops it; TestTraceIDPassedUnchanged).
)

// envNormalized drops from a handler's environment dump the allowed differences: placeholders, variables only
// Lambda (and the executor) set, and the developer's own environment, which the executor passes on on purpose
// (credentials, PATH) and which a variable only counts as when its value is the test process's.
func envNormalized(body []byte) []byte {
	var env map[string]string
	if json.Unmarshal(body, &env) != nil {
		return body
	}
	for k, v := range env {
		if own, ok := os.LookupEnv(k); slices.Contains(envPlaceholders, k) || slices.Contains(envLambdaOnly, k) || (ok && own == v) {
			delete(env, k)
		}
	}
	out, _ := json.Marshal(env) // sorted keys
	return out
}

// ParityNormalizer holds the allow-list above for Compare.
var ParityNormalizer = Normalizer{
	Body: func(ev Event, body []byte) []byte {
		switch ev.Name {
		case "env":
			return envNormalized(body)
		case "process":
			return JSONPaths(body, processAllowed)
		}
		body = runtimeFrameRE.ReplaceAll(body, []byte("File <runtime>"))
		body = arnRE.ReplaceAll(body, []byte("<function-arn>"))
		body = logGroupRE.ReplaceAll(body, []byte("<log-group>"))
		return logStreamRE.ReplaceAll(body, []byte("${1}<log-stream>"))
	},
	// Status and body are the executor's; headers are the Invoke API's (see execInstance.Invoke).
	IgnoreHeaders: []string{"Content-Type", "Content-Length"},
	// A timeout and a crash are answered by the platform, not the runtime: RIE in its own way (a plain-text
	// body for a timeout, 502 for a crash), Lambda and the executor with Sandbox.Timedout and Runtime.ExitError
	// documents (checked in executor_test.go). What the function does next is compared.
	SkipReply: func(ev Event) bool { return ev.Name == "sleep" || ev.Name == "crash" },
	Logs: func(l string) string {
		return platformLineRE.ReplaceAllString(runtimeFrameRE.ReplaceAllString(l, "File <runtime>"), "")
	},
}

// processAllowed are the allowed differences in what the handler sees of its process: how the runtime was
// started (awslambdaric as `python -m awslambdaric <handler>`, the executor as a script), the threads it runs
// (the executor runs each invocation on a thread of its own, named for the debug adapter's thread model), and
// the runtime's own modules (awslambdaric, simplejson), which the executor does without.
var processAllowed = map[string]func(v any) bool{
	"probe.argv": func(v any) bool {
		l, _ := v.([]any)
		return len(l) == 2 && l[1] == "parity.handler"
	},
	"probe.main": func(v any) bool { return v == nil || v == "awslambdaric.__main__" },
	"probe.thread": func(v any) bool {
		s, _ := v.(string)
		return s == "MainThread" || strings.HasPrefix(s, "plldb-invoke ")
	},
	"probe.threads": func(v any) bool {
		l, _ := v.([]any)
		for _, n := range l {
			if s, _ := n.(string); s != "MainThread" && !strings.HasPrefix(s, "plldb-") {
				return false
			}
		}
		return true
	},
	"probe.modules": func(v any) bool {
		l, _ := v.([]any)
		for _, m := range l {
			s, _ := m.(string)
			if top, _, _ := strings.Cut(s, "."); top != "awslambdaric" && top != "simplejson" && top != "runtime_client" {
				return false
			}
		}
		return true
	},
}

// platformLineRE matches the lines Lambda's platform (not the runtime) writes to a function's log on a timeout
// or a crash, which the executor writes as Lambda does and RIE only to its own log (left out of rie's Logs).
var platformLineRE = regexp.MustCompile(`(?m)^<time> <uuid> Task timed out after [\d.]+ seconds\n|^RequestId: <uuid> Error: Runtime exited with error: .*\nRuntime\.ExitError\n`)

func pev(name, body string) Event { return Event{Name: name, Body: []byte(body)} }

// ParityCases are the parity handlers and the events each is sent, in order.
func ParityCases() []Case {
	fn := func(handler string, env ...string) Function {
		return Function{Dir: ParityDir(), Handler: handler, Env: append([]string{"MY_SETTING=value with spaces ü", "EMPTY_SETTING="}, env...)}
	}
	cc := func(s string) http.Header {
		return http.Header{"X-Amz-Client-Context": {base64.StdEncoding.EncodeToString([]byte(s))}}
	}
	var results, failures []Event
	for _, v := range []string{"none", "str", "unicode", "int", "bigint", "float", "bool", "list", "nested", "empty", "tuple",
		"namedtuple", "bytes", "bytes_empty", "bytes_nested", "bytes_nested_bad", "decimal", "decimal_inf", "nan", "nan_top",
		"keys", "bad_key", "datetime", "set", "set_nested", "object", "circular", "intenum", "strenum", "subclasses", "toobig_int", "big_str", "big_bytes", "big_nan"} {
		results = append(results, pev("result/"+v, `{"case":"result","value":"`+v+`"}`))
	}
	for _, k := range []string{"value", "multiline", "empty", "key", "unicode", "chained", "zero", "assert", "logformat", "custom"} {
		failures = append(failures, pev("fail/"+k, `{"case":"fail","kind":"`+k+`"}`))
	}
	main := []Event{
		{Name: "context", Body: []byte(`{"case":"context"}`)},
		{Name: "context/client", Body: []byte(`{"case":"context"}`), Header: cc(`{"custom":{"a":1,"u":"ü"},"env":{"locale":"en"},` +
			`"client":{"installation_id":"i","app_title":"t","app_version_name":"n","app_version_code":"c","app_package_name":"p"},` +
			`"w3c":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"x=1","baggage":7,"other":"dropped"}}`)},
		{Name: "context/client-minimal", Body: []byte(`{"case":"context"}`), Header: cc(`{"custom":{"only":"custom"}}`)},
		pev("env", `{"case":"env"}`),
		pev("process", `{"case":"process"}`),
		pev("logs", `{"case":"logs"}`),
		pev("event/string", `"just a string"`),
		pev("event/number", `12.50`),
		pev("event/list", `[1, "two", {"three": 3.0}]`),
		pev("event/null", `null`),
		pev("event/no-case", `{"no":"case","u":"\u00fc ü","big":12345678901234567890,"f":1e400}`),
		pev("event/duplicate-keys", `{"k":1,"k":2}`),
		pev("event/big", `"`+strings.Repeat("ü", 1<<20)+`"`),
		// JSON that Python cannot decode: awslambdaric answers Runtime.UnmarshalError.
		pev("event/invalid-utf8", "{\"s\":\"\xff\"}"),
		pev("event/deep", strings.Repeat("[", 5000)+strings.Repeat("]", 5000)), // past Python's recursion limit, within Go's check
		pev("event/deep-object", strings.Repeat(`{"a":`, 5000)+"1"+strings.Repeat("}", 5000)),
		pev("event/huge-int", `{"n":`+strings.Repeat("7", 5000)+`}`),
	}
	main = append(append(main, results...), failures...)
	twice := func(name, handler string) Case {
		return Case{Name: name, Function: fn(handler), Events: []Event{pev("first", `{}`), pev("second", `{}`)}}
	}
	return []Case{
		{Name: "text", Function: fn("parity.handler"), Events: main},
		// LoggingConfig {LogFormat: JSON, ApplicationLogLevel: DEBUG}, as Lambda passes it to the runtime.
		{Name: "json-logs", Function: fn("parity.handler", "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=DEBUG"),
			Events: []Event{pev("logs", `{"case":"logs"}`), pev("process", `{"case":"process"}`), pev("fail/chained", `{"case":"fail","kind":"chained"}`),
				pev("result/datetime", `{"case":"result","value":"datetime"}`)}},
		// A function in tenant isolation mode: the caller's tenant in the context and in JSON records.
		{Name: "tenant", Function: fn("parity.handler", "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=INFO"),
			Events: []Event{
				{Name: "context", Body: []byte(`{"case":"context"}`), Header: http.Header{"X-Amz-Tenant-Id": {"tenant-ü-1"}}},
				{Name: "logs", Body: []byte(`{"case":"logs"}`), Header: http.Header{"X-Amz-Tenant-Id": {"tenant-2"}}},
				{Name: "fail", Body: []byte(`{"case":"fail","kind":"value"}`), Header: http.Header{"X-Amz-Tenant-Id": {"tenant-3"}}},
				pev("none", `{"case":"context"}`),
			}},
		{Name: "level-error", Function: fn("parity.handler", "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=ERROR"),
			Events: []Event{pev("logs", `{"case":"logs"}`), pev("process", `{"case":"process"}`)}},
		{Name: "level-trace-text", Function: fn("parity.handler", "AWS_LAMBDA_LOG_LEVEL=TRACE"),
			Events: []Event{pev("logs", `{"case":"logs"}`), pev("process", `{"case":"process"}`)}},
		// Runtimes before python3.12 escape non-ASCII in results and error documents.
		{Name: "python3.11", Function: fn("parity.handler", "AWS_EXECUTION_ENV=AWS_Lambda_python3.11"),
			Events: []Event{pev("result/unicode", `{"case":"result","value":"unicode"}`), pev("fail/unicode", `{"case":"fail","kind":"unicode"}`),
				pev("result/nested", `{"case":"result","value":"nested"}`)}},
		// A preview runtime: awslambdaric warns at init.
		{Name: "python3.15", Function: fn("parity.handler", "AWS_EXECUTION_ENV=AWS_Lambda_python3.15"),
			Events: []Event{pev("first", `"first"`), pev("second", `"second"`)}},
		{Name: "init-error-json", Function: fn("parity_initerror.handler", "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=INFO"),
			Events: []Event{pev("first", `{}`)}},
		{Name: "handler-not-found-json", Function: fn("parity.missing", "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=INFO"),
			Events: []Event{pev("first", `{}`)}},
		{Name: "timeout", Function: Function{Dir: ParityDir(), Handler: "parity.handler", Timeout: 1},
			Events: []Event{pev("sleep", `{"case":"sleep","seconds":3}`), pev("after", `"after"`)}},
		{Name: "crash", Function: fn("parity.handler"),
			Events: []Event{pev("crash", `{"case":"crash","code":3}`), pev("after", `"after"`)}},
		twice("init-error", "parity_initerror.handler"),
		twice("import-error", "parity_importerror.handler"),
		twice("syntax-error", "parity_syntaxerror.handler"),
		twice("handler-not-found", "parity.missing"),
		twice("builtin-conflict", "sys.handler"),
	}
}

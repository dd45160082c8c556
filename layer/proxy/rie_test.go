package proxy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/plldb/plldb/testfixtures/pyenv"
	"github.com/plldb/plldb/testfixtures/rie"
)

// The layer is transparent: the same handlers run under AWS's Runtime Interface Emulator with awslambdaric
// alone (the reference), and with the layer built by layerzip in front of awslambdaric, started through
// AWS_LAMBDA_EXEC_WRAPPER as a managed runtime's bootstrap starts it. What the handler saw (its JSON dumps and
// its logs) and what the caller got (status, headers, body bytes) must be the same, except for what is on the
// allow-list in passThroughNormalizer.

func rieHandlers() string { return filepath.Join(pyenv.RepoRoot(), "testfixtures", "rie", "handlers") }

// layerWay is the plldb layer, attached with no session. attach also sets PLLDB_* settings; with no session
// these are PLLDB_LOGICAL_ID and the log level, and the proxy withholds all PLLDB_* from the runtime.
func layerWay() rie.Way {
	return rie.Wrapped("rie+layer", filepath.Join(layerDir, "plldb", "wrapper"), "PLLDB_LOGICAL_ID=CasesFunction", "PLLDB_LOG_LEVEL=info")
}

// fallbackWay is the layer attached with a session whose relay cannot be reached: every invocation falls back
// to the runtime, through the proxy's HTTP forwarder (the session path) instead of the byte relay. The first
// invocation after each (re)start is held for DefaultConnectWait first, as in Lambda's init phase.
func fallbackWay() rie.Way {
	return rie.Wrapped("rie+layer(fallback)", filepath.Join(layerDir, "plldb", "wrapper"),
		"PLLDB_LOGICAL_ID=CasesFunction", "PLLDB_ENDPOINT=ws://127.0.0.1:9/nobody-listens", "PLLDB_SESSION=s-rie",
		"PLLDB_FUNCTION_KEY=cGxsZGItcmllLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmM=")
}

// proxyLogLine is one of the proxy's own log lines (slog text on stderr, which Lambda sends to CloudWatch).
var proxyLogLine = regexp.MustCompile(`(?m)^time=\S+ level=\w+ msg=.*component=plldb-proxy.*\n?`)

// loopbackAddr is what the handler sees as AWS_LAMBDA_RUNTIME_API: the emulator's, or the proxy's own.
var loopbackAddr = regexp.MustCompile(`^127\.0\.0\.1:[0-9]+$`)

// passThroughNormalizer is the allow-list: the only differences a no-session pass-through may show.
var passThroughNormalizer = rie.Normalizer{
	// Request ids, timestamps (rie.Common) and the Date header differ between any two runs.
	Body: func(ev rie.Event, body []byte) []byte {
		return rie.JSONPaths(body, map[string]func(any) bool{
			// The runtime talks to the proxy's Runtime API, not the sandbox's: that is how the layer works.
			"env.AWS_LAMBDA_RUNTIME_API": func(v any) bool { s, _ := v.(string); return loopbackAddr.MatchString(s) },
			// The runtime's parent process is the proxy, not the sandbox's init (checked in the test).
			"process.parent": func(v any) bool { return v == "aws-lambda-rie" || v == "proxy" },
		})
	},
	// The proxy's own warnings (a relay it cannot reach) are not the function's; with no session it has none.
	Logs: func(l string) string { return proxyLogLine.ReplaceAllString(l, "") },
}

func json64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func ev(name, body string) rie.Event { return rie.Event{Name: name, Body: []byte(body)} }

func rieCases() []rie.Case {
	dir := rieHandlers()
	fn := func(handler string) rie.Function {
		return rie.Function{Dir: dir, Handler: handler, Env: []string{"MY_SETTING=value with spaces ü", "EMPTY_SETTING="}}
	}
	main := rie.Case{Name: "cases", Function: fn("cases.handler"), Events: []rie.Event{
		ev("dump", `{"case":"dump","nested":{"a":[1,2.5,"x",null,true]}}`),
		{Name: "dump-client-context", Body: []byte(`{"case":"dump"}`), Header: http.Header{
			"X-Amz-Client-Context": {json64(`{"client":{"installation_id":"i-1","app_title":"t","app_version_name":"1","app_version_code":"2","app_package_name":"p"},"custom":{"k":"v"},"env":{"platform":"x"}}`)},
		}},
		ev("logs", `{"case":"logs"}`),
		ev("exception", `{"case":"fail","why":"testing"}`),
		ev("exception-unicode", `{"case":"fail_unicode"}`),
		ev("exception-chained", `{"case":"fail_custom"}`),
		ev("result-null", `{"case":"result","value":null}`),
		ev("result-true", `{"case":"result","value":true}`),
		ev("result-false", `{"case":"result","value":false}`),
		ev("result-int", `{"case":"result","value":-42}`),
		ev("result-bigint", `{"case":"result","value":123456789012345678901234567890}`),
		ev("result-float", `{"case":"result","value":1.5e300}`),
		ev("result-string", `{"case":"result","value":"h\u00e9llo \"quoted\" \n \ud83d\ude80"}`),
		ev("result-array", `{"case":"result","value":[1,"two",[3],{"four":4}]}`),
		ev("result-object", `{"case":"result","value":{"z":1,"a":{"b":[]}}}`),
		ev("result-empty-string", `{"case":"result","value":""}`),
		ev("event-not-json", `this is not json`),
		ev("event-empty", ``),
		ev("event-array", `[1,2,3]`),
		ev("event-string", `"just a string"`),
		ev("event-number", `12.50`),
		ev("event-null", `null`),
		ev("event-bad-utf8", "{\"case\":\"result\",\"value\":\"\xff\xfe\"}"),
		// A large event (Lambda's request limit is 6 MB too) echoed back as a large response.
		ev("event-6MB-echoed", `{"case":"result","value":"`+strings.Repeat("e", 6_000_000)+`"}`),
		ev("size-6291500", `{"case":"big","n":6291500}`),
		ev("size-6291556-limit", `{"case":"big","n":6291556}`),
		ev("size-6291557-over", `{"case":"big","n":6291557}`),
		ev("after-oversize", `{"case":"result","value":"still serving"}`),
		ev("size-7MB", `{"case":"big","n":7000002}`),
		ev("after-7MB", `{"case":"result","value":"still serving"}`),
		ev("exit", `{"case":"exit","code":3}`),
		ev("after-exit", `{"case":"result","value":"back"}`),
	}}
	timeout := rie.Case{Name: "timeout", Function: fn("cases.handler"), Events: []rie.Event{
		ev("sleep-past-deadline", `{"case":"sleep","seconds":3}`),
		ev("after-timeout", `{"case":"result","value":"after timeout"}`),
	}}
	timeout.Function.Timeout = 1
	twice := func(name, handler string) rie.Case {
		return rie.Case{Name: name, Function: fn(handler), Events: []rie.Event{ev("first", `{}`), ev("second", `{}`)}}
	}
	return []rie.Case{
		main,
		timeout,
		twice("init-error", "initerror.handler"),
		twice("import-error", "importerror.handler"),
		twice("syntax-error", "syntaxerror.handler"),
		twice("handler-not-found", "cases.no_such_handler"),
		twice("module-not-found", "no_such_module.handler"),
	}
}

// TestLayerIsTransparentUnderRIE compares RIE + awslambdaric alone with RIE + the layer + awslambdaric: with no
// session, attached selectively (no knock in any event), and with a session whose relay cannot be reached.
func TestLayerIsTransparentUnderRIE(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the emulator; not in -short")
	}
	// The selective way is attached selectively with a relay where nobody listens: none of these events carries
	// a knock, so it must be as transparent as pass-through (and never try the relay).
	ways := []rie.Way{rie.Direct(), layerWay(), selectiveWay("127.0.0.1:9"), fallbackWay()}
	for _, c := range rieCases() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			ways := ways
			if c.Function.Timeout == 1 {
				// The fallback way holds the first invocation after each start for the relay (ConnectWait, 3 s,
				// within Lambda's 10 s init phase); RIE counts that against a 1 s function timeout.
				ways = ways[:3]
			}
			obs := make([]rie.Observation, len(ways))
			for i, w := range ways {
				obs[i] = rie.Observe(t, w, c)
			}
			for _, o := range obs[1:] {
				rie.Compare(t, c, obs[0], o, passThroughNormalizer)
			}
			if c.Name == "cases" {
				// The dump shows each way really ran as labelled: the layer's proxy is the runtime's parent.
				for i, want := range []string{"aws-lambda-rie", "proxy", "proxy", "proxy"} {
					var dump struct {
						Process struct{ Parent string } `json:"process"`
					}
					if err := json.Unmarshal(obs[i].Replies[0].Body, &dump); err != nil || dump.Process.Parent != want {
						t.Errorf("%s: the runtime's parent is %q (%v), want %q: %.2000s", obs[i].Way, dump.Process.Parent, err, want, obs[i].Replies[0].Body)
					}
				}
			}
			if t.Failed() {
				for _, o := range obs {
					t.Logf("%s logs:\n%s", o.Way, o.Logs)
				}
			}
		})
	}
}

// TestRIEReferenceBehaviour pins what the reference does in the cases the layer used to get wrong, so that
// the comparison above cannot pass by both sides going wrong the same way.
func TestRIEReferenceBehaviour(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the emulator; not in -short")
	}
	c := rie.Case{Name: "limits", Function: rie.Function{Dir: rieHandlers(), Handler: "cases.handler"}, Events: []rie.Event{
		ev("limit", `{"case":"big","n":6291556}`),
		ev("over", `{"case":"big","n":7000002}`),
	}}
	for _, w := range []rie.Way{rie.Direct(), layerWay()} {
		o := rie.Observe(t, w, c)
		if o.Replies[0].Status != http.StatusOK || len(o.Replies[0].Body) != 6291556 {
			t.Errorf("%s: a response of exactly 6,291,556 bytes: status %d, %d bytes", w.Name, o.Replies[0].Status, len(o.Replies[0].Body))
		}
		want := fmt.Sprintf(`{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size (%d bytes) exceeded maximum allowed payload size (6291556 bytes)."}`, 7000002)
		if o.Replies[1].Status != http.StatusBadGateway || strings.TrimSpace(string(o.Replies[1].Body)) != want {
			t.Errorf("%s: a 7 MB response: status %d, body %.300s", w.Name, o.Replies[1].Status, o.Replies[1].Body)
		}
	}
}

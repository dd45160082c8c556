package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/testfixtures/rie"
)

// The third way of the comparison with AWS's runtime (the executor alone is the second, in adapter/executor):
// `plldb local` end to end. Each parity handler is served from a template by local.Start, and called through
// its Invoke API, so what the caller gets has crossed the developer side, the wire envelope, the embedded relay,
// the layer proxy and the emulated Runtime API. Compared: status, X-Amz-Function-Error and the body, byte for
// byte. Not Content-Type: RIE's Invoke API sets none, and Go's server sniffs one from the body
// (application/octet-stream for bytes, text/plain for JSON); plldb local answers with the runtime's
// (application/unknown for bytes, as awslambdaric posts it), checked in layer/proxy's tests. The function's logs are compared in the executor's comparison, which runs the same Python code.

// localWay runs a function as `plldb local` serves it, from a template written for it: the rie harness's
// environment as the template's properties (AWS_EXECUTION_ENV as Runtime, the log variables as LoggingConfig,
// as Lambda derives them) and the rest as its variables.
func localWay() rie.Way {
	return rie.Way{Name: "plldb-local", Start: func(t testing.TB, fn rie.Function) rie.Instance {
		runtime, env, logging := "python3.12", map[string]string{}, map[string]string{}
		jsonLogs := slices.Contains(fn.Env, "AWS_LAMBDA_LOG_FORMAT=JSON")
		for _, kv := range fn.Env {
			k, v, _ := strings.Cut(kv, "=")
			switch {
			case k == "AWS_EXECUTION_ENV":
				runtime = strings.TrimPrefix(v, "AWS_Lambda_")
			case k == "AWS_LAMBDA_LOG_FORMAT":
				logging["LogFormat"] = v
			case k == "AWS_LAMBDA_LOG_LEVEL" && jsonLogs:
				// Lambda takes an application log level with the JSON format only; with text, the case is about
				// the variable set by hand, which stays a variable.
				logging["ApplicationLogLevel"] = v
			default:
				env[k] = v
			}
		}
		timeout := fn.Timeout
		if timeout == 0 {
			timeout = 30
		}
		q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // JSON strings are YAML
		var b strings.Builder
		fmt.Fprintf(&b, "Transform: AWS::Serverless-2016-10-31\nResources:\n  Parity:\n    Type: AWS::Serverless::Function\n    Properties:\n")
		fmt.Fprintf(&b, "      FunctionName: plldb-rie-test\n      Handler: %s\n      Runtime: %s\n      CodeUri: %s\n      MemorySize: 256\n      Timeout: %d\n",
			q(fn.Handler), runtime, q(fn.Dir), timeout)
		if len(env) > 0 {
			b.WriteString("      Environment:\n        Variables:\n")
			for _, k := range slices.Sorted(func(yield func(string) bool) {
				for k := range env {
					if !yield(k) {
						return
					}
				}
			}) {
				fmt.Fprintf(&b, "          %s: %s\n", k, q(env[k]))
			}
		}
		if len(logging) > 0 {
			b.WriteString("      LoggingConfig:\n")
			for k, v := range logging {
				fmt.Fprintf(&b, "        %s: %s\n", k, v)
			}
		}
		path := filepath.Join(t.TempDir(), "template.yaml")
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
		p := start(t, local.Options{Template: path, Region: "eu-west-1", Python: rie.Python(t)})
		return &localInstance{p: p}
	}}
}

type localInstance struct{ p *local.Pipeline }

func (i *localInstance) Invoke(ctx context.Context, ev rie.Event) (rie.Reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.p.Endpoint()+"/2015-03-31/functions/Parity/invocations", bytes.NewReader(ev.Body))
	if err != nil {
		return rie.Reply{}, err
	}
	for k, v := range ev.Header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rie.Reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return rie.Reply{Status: resp.StatusCode, Header: resp.Header, Body: body}, err
}

// Logs are compared in adapter/executor's comparison (see above).
func (i *localInstance) Logs() string { return "" }

// callerView keeps of a way's replies what the comparison looks at: the status, X-Amz-Function-Error and the
// body. The other headers are the Invoke API's (Lambda's are not RIE's either: x-amzn-RequestId,
// X-Amz-Executed-Version, ...), checked by the Invoke API's own tests.
func callerView(w rie.Way, reference bool) rie.Way {
	return rie.Way{Name: w.Name, Start: func(t testing.TB, fn rie.Function) rie.Instance {
		return viewInstance{w.Start(t, fn), reference}
	}}
}

type viewInstance struct {
	rie.Instance
	reference bool
}

func (v viewInstance) Invoke(ctx context.Context, ev rie.Event) (rie.Reply, error) {
	r, err := v.Instance.Invoke(ctx, ev)
	if err != nil {
		return r, err
	}
	h := http.Header{}
	if fe := r.Header.Get("X-Amz-Function-Error"); fe != "" {
		h.Set("X-Amz-Function-Error", fe)
	}
	if v.reference && isErrorDocument(r.Body) {
		// Allowed: RIE never sets X-Amz-Function-Error, and answers an init error (a document with an empty
		// requestId, as awslambdaric posts it to /runtime/init/error) with 502. Lambda's Invoke API answers every
		// function error, init errors included, 200 with X-Amz-Function-Error: Unhandled, as plldb local does.
		// A function error is recognised by its body: awslambdaric's document, its four keys in its order (no
		// parity handler returns such a value). The body itself is compared as it is.
		if r.Status == http.StatusBadGateway {
			r.Status = http.StatusOK
		}
		h.Set("X-Amz-Function-Error", "Unhandled")
	}
	r.Header = h
	return r, nil
}

// errorDocumentRE is awslambdaric's error document: errorMessage, errorType, requestId and stackTrace, in order.
var errorDocumentRE = regexp.MustCompile(`^\{"errorMessage": ".*", "errorType": ".*", "requestId": "[^"]*", "stackTrace": \[.*\]\}$`)

func isErrorDocument(b []byte) bool {
	var doc map[string]json.RawMessage
	return json.Unmarshal(b, &doc) == nil && len(doc) == 4 && errorDocumentRE.Match(b)
}

var (
	traceEnvRE     = regexp.MustCompile(`,"_X_AMZN_TRACE_ID":"Root=[^"]*"`)
	traceContextRE = regexp.MustCompile(`"trace_id": "Root=[^"]*"`)
)

// localNormalizer is the executor's allow-list (rie.ParityNormalizer) and what differs only in plldb local:
var localNormalizer = func() rie.Normalizer {
	n := rie.ParityNormalizer
	skip := n.SkipReply
	n.SkipReply = func(ev rie.Event) bool {
		// A body that is not valid UTF-8: RIE hands it to awslambdaric (Runtime.UnmarshalError); Lambda's Invoke
		// API refuses it with 400 before any runtime sees it, and so does plldb local's (TestInvokeAPIEdges).
		return skip(ev) || ev.Name == "event/invalid-utf8"
	}
	n.Logs = func(string) string { return "" } // compared in adapter/executor
	body := n.Body
	n.Body = func(ev rie.Event, b []byte) []byte {
		// Lambda gives every invocation an X-Ray trace id (Lambda-Runtime-Trace-Id, which awslambdaric puts in
		// _X_AMZN_TRACE_ID and the context), and so does plldb local; RIE gives none.
		b = traceEnvRE.ReplaceAll(body(ev, b), nil)
		return traceContextRE.ReplaceAll(b, []byte(`"trace_id": null`))
	}
	return n
}()

// TestLocalMatchesAWSRuntime runs every parity case under RIE with awslambdaric 4.2.2 (the reference) and through
// `plldb local`, and fails on any difference in what the caller got beyond the allow-lists.
func TestLocalMatchesAWSRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the emulator; not in -short")
	}
	for _, c := range rie.ParityCases() {
		t.Run(c.Name, func(t *testing.T) {
			want := rie.Observe(t, callerView(rie.Direct(), true), c)
			got := rie.Observe(t, callerView(localWay(), false), c)
			rie.Compare(t, c, want, got, localNormalizer)
		})
	}
}

// What the comparison cannot check against RIE: a handler's bytes reach the caller with the content type
// awslambdaric posts them with, and the caller's tenant reaches the handler, through the whole pipeline.
func TestContentTypeAndTenantCrossThePipeline(t *testing.T) {
	tpl := writeApp(t, map[string]string{"app.py": `
def raw(event, context):
    return b"\x00\xffraw"

def tenant(event, context):
    return {"tenant": context.tenant_id}
`}, "Raw: app.raw\nTenant: app.tenant", "")
	p := start(t, local.Options{Template: tpl})

	a := invokeHTTP(t, p, "Raw", []byte(`{}`), nil)
	require.Equal(t, http.StatusOK, a.status)
	require.Equal(t, "application/unknown", a.header.Get("Content-Type"))
	require.Equal(t, "\x00\xffraw", string(a.payload))

	a = invokeHTTP(t, p, "Tenant", []byte(`{}`), map[string]string{"X-Amz-Tenant-Id": "tenant-7"})
	require.Equal(t, "application/json", a.header.Get("Content-Type"))
	require.JSONEq(t, `{"tenant":"tenant-7"}`, string(a.payload))
	a = invokeHTTP(t, p, "Tenant", []byte(`{}`), nil)
	require.JSONEq(t, `{"tenant":null}`, string(a.payload))
}

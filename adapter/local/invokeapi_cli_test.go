package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// These tests hold the Invoke API to what AWS's own clients expect of Lambda: the AWS CLI v1 and boto3, run
// from the project's virtualenv against a running pipeline.

// clientApp is a template with what the clients are pointed at: a function with a deployed name and aliases
// (SAM's AutoPublishAlias and an AWS::Lambda::Alias), a plain one, and a Node.js function plldb does not serve.
const clientApp = `Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    CodeUri: src/
    Timeout: 5
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: echo-dev
      Handler: app.echo
      Description: echoes what it is given
      MemorySize: 512
      AutoPublishAlias: live
      Environment:
        Variables:
          STAGE: dev
  EchoCanary:
    Type: AWS::Lambda::Alias
    Properties:
      FunctionName: !Ref Echo
      FunctionVersion: "1"
      Name: canary
  Plain:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.echo
  NodeFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: index.handler
      Runtime: nodejs20.x
`

const clientAppCode = `
def echo(event, context):
    cc = context.client_context
    return {"arn": context.invoked_function_arn, "event": event, "custom": cc.custom if cc else None}
`

// requestIDRE is a whole request id: a UUID, as Lambda's.
var requestIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func startClientApp(t *testing.T) *local.Pipeline {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "src", "app.py"), []byte(clientAppCode), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "template.yaml"), []byte(clientApp), 0o644))
	return start(t, local.Options{Template: dir})
}

// clientPython is the test interpreter once it has module (awscli or boto3). Without it the test skips on a
// developer's machine and fails in CI, where requirements-dev.txt is always installed.
func clientPython(t *testing.T, module string) string {
	t.Helper()
	py := pyenv.Python(t)
	if out, err := exec.Command(py, "-c", "import "+module).CombinedOutput(); err != nil {
		what := module + " in " + py + " (" + strings.TrimSpace(string(out)) + ")"
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and this test cannot run without %s", what)
		}
		t.Skipf("skipped: needs %s; `make venv` installs it from requirements-dev.txt", what)
	}
	return py
}

// clientEnv is an environment for AWS clients with dummy credentials and nothing of the developer's own AWS
// configuration. Retries are the clients' defaults, as a developer has them; none of the answers tested is
// one they retry.
func clientEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	none := filepath.Join(t.TempDir(), "none")
	return append(env,
		"AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=")
}

type cliResult struct {
	code           int
	stdout, stderr string
}

// awsCLI runs `aws <args> --endpoint-url <the pipeline>` with the AWS CLI v1 of the virtualenv.
func awsCLI(t *testing.T, p *local.Pipeline, args ...string) cliResult {
	t.Helper()
	py := clientPython(t, "awscli")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{"-m", "awscli", "--endpoint-url", p.Endpoint(), "--output", "json"}, args...)...)
	cmd.Env = clientEnv(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err, "run aws %v", args)
	}
	return cliResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

func TestInvokeAPIWithTheAWSCLI(t *testing.T) {
	p := startClientApp(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.json")
	arn := "arn:aws:lambda:us-east-1:123456789012:function:echo-dev"

	invoked := func(t *testing.T, args ...string) string {
		t.Helper()
		r := awsCLI(t, p, append([]string{"lambda", "invoke"}, append(args, out)...)...)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		var meta struct {
			StatusCode      int
			ExecutedVersion string
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &meta), r.stdout)
		assert.Equal(t, 200, meta.StatusCode)
		assert.Equal(t, "$LATEST", meta.ExecutedVersion)
		var res struct{ Arn string }
		body, err := os.ReadFile(out)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(body, &res), string(body))
		return res.Arn
	}
	notFound := func(t *testing.T, wantARN string, args ...string) {
		t.Helper()
		r := awsCLI(t, p, append([]string{"lambda", "invoke"}, append(args, out)...)...)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "An error occurred (ResourceNotFoundException) when calling the Invoke operation: Function not found: "+wantARN)
	}

	t.Run("qualifiers that exist run the local code", func(t *testing.T) {
		assert.Equal(t, arn, invoked(t, "--function-name", "Echo", "--payload", `{"n":1}`))
		assert.Equal(t, arn, invoked(t, "--function-name", "echo-dev"))
		assert.Equal(t, arn+":$LATEST", invoked(t, "--function-name", "echo-dev:$LATEST"))
		assert.Equal(t, arn+":live", invoked(t, "--function-name", "Echo:live"), "the function sees the alias it was invoked through")
		assert.Equal(t, arn+":canary", invoked(t, "--function-name", "echo-dev", "--qualifier", "canary"))
		assert.Equal(t, arn+":live", invoked(t, "--function-name", arn+":live"))
		assert.Equal(t, arn, invoked(t, "--function-name", "123456789012:function:echo-dev"))
	})
	t.Run("unknown qualifiers are 404 as in Lambda", func(t *testing.T) {
		notFound(t, arn+":7", "--function-name", "Echo", "--qualifier", "7")
		notFound(t, arn+":nosuchalias", "--function-name", "echo-dev:nosuchalias")
		notFound(t, arn+":bogus", "--function-name", arn+":bogus")
		notFound(t, "arn:aws:lambda:us-east-1:123456789012:function:Plain:live", "--function-name", "Plain:live")
		notFound(t, "arn:aws:lambda:us-east-1:123456789012:function:Nope", "--function-name", "Nope")
	})
	t.Run("conflicting qualifiers are refused", func(t *testing.T) {
		r := awsCLI(t, p, "lambda", "invoke", "--function-name", "Echo:live", "--qualifier", "canary", out)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "(InvalidParameterValueException)")
		assert.Contains(t, r.stderr, "The derived qualifier from the function name does not match the specified qualifier.")
	})
	t.Run("a function plldb does not serve says why", func(t *testing.T) {
		r := awsCLI(t, p, "lambda", "invoke", "--function-name", "NodeFunction", out)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "(ResourceNotFoundException)")
		assert.Contains(t, r.stderr, `runtime "nodejs20.x" is not supported yet`)
	})
	t.Run("client context that is not base64 of a JSON object is 400", func(t *testing.T) {
		for _, cc := range []string{"bm90IGpzb24=" /* not json */, "WzEsMl0=" /* [1,2] */, "%%%"} {
			r := awsCLI(t, p, "lambda", "invoke", "--function-name", "Echo", "--client-context", cc, out)
			assert.NotEqual(t, 0, r.code, cc)
			assert.Contains(t, r.stderr, "An error occurred (InvalidRequestContentException) when calling the Invoke operation: Client context must be a valid Base64-encoded JSON object.", cc)
		}
		// eyJjdXN0b20iOnsiayI6InYifX0= is {"custom":{"k":"v"}}
		r := awsCLI(t, p, "lambda", "invoke", "--function-name", "Echo", "--client-context", "eyJjdXN0b20iOnsiayI6InYifX0=", out)
		require.Equal(t, 0, r.code, r.stderr)
		body, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Contains(t, string(body), `"custom": {"k": "v"}`)
	})
	t.Run("invalid UTF-8 is 400 at once", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.json")
		require.NoError(t, os.WriteFile(bad, []byte("{\"name\": \"\xff\"}"), 0o644))
		began := time.Now()
		r := awsCLI(t, p, "lambda", "invoke", "--function-name", "Echo", "--payload", "fileb://"+bad, out)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "(InvalidRequestContentException)")
		assert.Less(t, time.Since(began), 30*time.Second, "not left to the function's timeout")
	})
	t.Run("Event payloads are limited to 1 MB", func(t *testing.T) {
		at := filepath.Join(dir, "at.json")
		require.NoError(t, os.WriteFile(at, jsonString(local.MaxEventPayload), 0o644))
		r := awsCLI(t, p, "lambda", "invoke", "--function-name", "Echo", "--invocation-type", "Event", "--payload", "fileb://"+at, out)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, `"StatusCode": 202`)

		over := filepath.Join(dir, "over.json")
		require.NoError(t, os.WriteFile(over, jsonString(local.MaxEventPayload+1), 0o644))
		r = awsCLI(t, p, "lambda", "invoke", "--function-name", "Echo", "--invocation-type", "Event", "--payload", "fileb://"+over, out)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "An error occurred (RequestEntityTooLargeException) when calling the Invoke operation: 1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)")

		// The same payload is well within a synchronous invocation's limit.
		r = awsCLI(t, p, "lambda", "invoke", "--function-name", "Echo", "--payload", "fileb://"+over, out)
		require.Equal(t, 0, r.code, r.stderr)
	})
	t.Run("list-functions lists the served functions", func(t *testing.T) {
		r := awsCLI(t, p, "lambda", "list-functions")
		require.Equal(t, 0, r.code, r.stderr)
		var list struct {
			Functions []struct{ FunctionName, FunctionArn, Runtime, Handler string }
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &list), r.stdout)
		var names []string
		for _, f := range list.Functions {
			names = append(names, f.FunctionName)
			assert.Equal(t, "python3.12", f.Runtime)
			assert.Equal(t, "app.echo", f.Handler)
		}
		assert.ElementsMatch(t, []string{"echo-dev", "Plain"}, names, "deployed names; NodeFunction is not served")
	})
	t.Run("get-function and get-function-configuration", func(t *testing.T) {
		r := awsCLI(t, p, "lambda", "get-function-configuration", "--function-name", "Echo")
		require.Equal(t, 0, r.code, r.stderr)
		var cfg struct {
			FunctionName, FunctionArn, Runtime, Handler, Description, Version, PackageType, State, Role string
			Timeout, MemorySize                                                                         int
			Architectures                                                                               []string
			Environment                                                                                 struct{ Variables map[string]string }
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &cfg), r.stdout)
		assert.Equal(t, "echo-dev", cfg.FunctionName)
		assert.Equal(t, arn, cfg.FunctionArn)
		assert.Equal(t, "echoes what it is given", cfg.Description)
		assert.Equal(t, "$LATEST", cfg.Version)
		assert.Equal(t, "Zip", cfg.PackageType)
		assert.Equal(t, "Active", cfg.State)
		assert.Equal(t, 5, cfg.Timeout)
		assert.Equal(t, 512, cfg.MemorySize)
		assert.Equal(t, []string{"x86_64"}, cfg.Architectures)
		assert.Equal(t, "dev", cfg.Environment.Variables["STAGE"])
		assert.NotEmpty(t, cfg.Role)

		r = awsCLI(t, p, "lambda", "get-function", "--function-name", "echo-dev:live")
		require.Equal(t, 0, r.code, r.stderr)
		var fn struct {
			Configuration struct{ FunctionName, FunctionArn string }
			Code          struct{ RepositoryType, Location string }
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &fn), r.stdout)
		assert.Equal(t, "echo-dev", fn.Configuration.FunctionName)
		assert.Equal(t, arn+":live", fn.Configuration.FunctionArn)
		assert.True(t, strings.HasPrefix(fn.Code.Location, "file://"), fn.Code.Location)

		r = awsCLI(t, p, "lambda", "get-function", "--function-name", "NodeFunction")
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "An error occurred (ResourceNotFoundException) when calling the GetFunction operation: Function not found: arn:aws:lambda:us-east-1:123456789012:function:NodeFunction")
		assert.Contains(t, r.stderr, "nodejs20.x")
	})
}

// jsonString is a JSON string document of exactly n bytes.
func jsonString(n int) []byte {
	b := bytes.Repeat([]byte("a"), n)
	b[0], b[n-1] = '"', '"'
	return b
}

// botoScript makes each call with boto3 and prints, per case, what the caller sees: the status, the request id,
// and the error code and message.
const botoScript = `
import base64, json, sys
import boto3
from botocore.exceptions import ClientError

client = boto3.client("lambda", endpoint_url=sys.argv[1])

def call(op, **kw):
    try:
        r = getattr(client, op)(**kw)
    except ClientError as e:
        md = e.response["ResponseMetadata"]
        return {"status": md["HTTPStatusCode"], "request_id": md.get("RequestId", ""),
                "code": e.response["Error"]["Code"], "message": e.response["Error"].get("Message", "")}
    md = r.pop("ResponseMetadata")
    out = {"status": md["HTTPStatusCode"], "request_id": md.get("RequestId", "")}
    if "Payload" in r:
        out["payload"] = r.pop("Payload").read().decode()
    out["result"] = r
    return out

def b64(s):
    return base64.b64encode(s.encode()).decode()

def jstr(n):
    return ('"' + "a" * (n - 2) + '"').encode()

cases = {
    "ok": call("invoke", FunctionName="Echo", Payload=b'{"n": 1}'),
    "alias": call("invoke", FunctionName="echo-dev", Qualifier="live", Payload=b"{}"),
    "latest": call("invoke", FunctionName="Echo:$LATEST"),
    "unknown_alias": call("invoke", FunctionName="Echo", Qualifier="nosuchalias"),
    "version": call("invoke", FunctionName="arn:aws:lambda:us-east-1:123456789012:function:echo-dev:7"),
    "unknown_function": call("invoke", FunctionName="Nope"),
    "unknown_function_again": call("invoke", FunctionName="Nope"),
    "conflict": call("invoke", FunctionName="Echo:live", Qualifier="canary"),
    "not_served": call("invoke", FunctionName="NodeFunction"),
    "client_context_not_json": call("invoke", FunctionName="Echo", ClientContext=b64("not json")),
    "client_context_not_object": call("invoke", FunctionName="Echo", ClientContext=b64("[1, 2]")),
    "client_context": call("invoke", FunctionName="Echo", ClientContext=b64('{"custom": {"k": "v"}}')),
    "invalid_utf8": call("invoke", FunctionName="Echo", Payload=b'{"name": "\xff"}'),
    "event_at_limit": call("invoke", FunctionName="Echo", InvocationType="Event", Payload=jstr(1048576)),
    "event_over_limit": call("invoke", FunctionName="Echo", InvocationType="Event", Payload=jstr(1048577)),
    "sync_over_limit": call("invoke", FunctionName="Echo", Payload=jstr(6291457)),
    "dry_run": call("invoke", FunctionName="Echo", InvocationType="DryRun"),
    "list": call("list_functions"),
    "get": call("get_function", FunctionName="Echo"),
    "get_not_served": call("get_function", FunctionName="NodeFunction"),
    "configuration": call("get_function_configuration", FunctionName="echo-dev", Qualifier="canary"),
    "configuration_unknown_alias": call("get_function_configuration", FunctionName="echo-dev", Qualifier="blue"),
}
json.dump(cases, sys.stdout, default=str)
`

type botoCase struct {
	Status    int             `json:"status"`
	RequestID string          `json:"request_id"`
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	Payload   string          `json:"payload"`
	Result    json.RawMessage `json:"result"`
}

func TestInvokeAPIWithBoto3(t *testing.T) {
	py := clientPython(t, "boto3")
	p := startClientApp(t)
	script := filepath.Join(t.TempDir(), "cases.py")
	require.NoError(t, os.WriteFile(script, []byte(botoScript), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, script, p.Endpoint())
	cmd.Env = clientEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	require.NoError(t, err, "stderr: %s", stderr.String())
	var cases map[string]botoCase
	require.NoError(t, json.Unmarshal(stdout, &cases), string(stdout))

	arn := "arn:aws:lambda:us-east-1:123456789012:function:echo-dev"
	ids := map[string]string{}
	for name, c := range cases {
		assert.Regexp(t, requestIDRE, c.RequestID, "%s: every answer carries x-amzn-RequestId", name)
		if prev, dup := ids[c.RequestID]; dup {
			t.Errorf("%s and %s answered with the same request id %s", prev, name, c.RequestID)
		}
		ids[c.RequestID] = name
	}
	ok := func(name string, status int) botoCase {
		t.Helper()
		c := cases[name]
		assert.Equal(t, status, c.Status, "%s: %+v", name, c)
		assert.Empty(t, c.Code, name)
		return c
	}
	failed := func(name string, status int, code, message string) {
		t.Helper()
		c := cases[name]
		assert.Equal(t, status, c.Status, "%s: %+v", name, c)
		assert.Equal(t, code, c.Code, name)
		assert.Contains(t, c.Message, message, name)
	}

	assert.Contains(t, ok("ok", 200).Payload, `"arn": "`+arn+`"`)
	assert.Contains(t, ok("alias", 200).Payload, `"arn": "`+arn+`:live"`)
	assert.Contains(t, ok("latest", 200).Payload, `"arn": "`+arn+`:$LATEST"`)
	assert.Contains(t, ok("client_context", 200).Payload, `"custom": {"k": "v"}`)
	ok("event_at_limit", 202)
	ok("dry_run", 204)

	failed("unknown_alias", 404, "ResourceNotFoundException", "Function not found: "+arn+":nosuchalias")
	failed("version", 404, "ResourceNotFoundException", "Function not found: "+arn+":7")
	failed("unknown_function", 404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:Nope")
	failed("unknown_function_again", 404, "ResourceNotFoundException", "Function not found:")
	failed("conflict", 400, "InvalidParameterValueException", "The derived qualifier from the function name does not match the specified qualifier.")
	failed("not_served", 404, "ResourceNotFoundException", `runtime "nodejs20.x" is not supported yet`)
	failed("client_context_not_json", 400, "InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object.")
	failed("client_context_not_object", 400, "InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object.")
	failed("invalid_utf8", 400, "InvalidRequestContentException", "Could not parse request body into json")
	failed("event_over_limit", 413, "RequestEntityTooLargeException", "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)")
	failed("sync_over_limit", 413, "RequestTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
	failed("get_not_served", 404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:NodeFunction")
	failed("configuration_unknown_alias", 404, "ResourceNotFoundException", "Function not found: "+arn+":blue")

	var list struct {
		Functions []struct{ FunctionName string }
	}
	require.NoError(t, json.Unmarshal(ok("list", 200).Result, &list))
	require.Len(t, list.Functions, 2)
	assert.Equal(t, "echo-dev", list.Functions[0].FunctionName)
	assert.Equal(t, "Plain", list.Functions[1].FunctionName)

	var got struct {
		Configuration struct {
			FunctionName, LastModified, Version string
			Layers                              []any
		}
		Tags map[string]string
	}
	require.NoError(t, json.Unmarshal(ok("get", 200).Result, &got))
	assert.Equal(t, "echo-dev", got.Configuration.FunctionName)
	assert.Equal(t, "$LATEST", got.Configuration.Version)
	_, err = time.Parse("2006-01-02T15:04:05.000-0700", got.Configuration.LastModified)
	assert.NoError(t, err, "LastModified in Lambda's format")

	var cfg struct{ FunctionArn string }
	require.NoError(t, json.Unmarshal(ok("configuration", 200).Result, &cfg))
	assert.Equal(t, arn+":canary", cfg.FunctionArn)
}

func TestInvokeAPIEveryAnswerHasARequestID(t *testing.T) {
	p := start(t, local.Options{Template: apps.HelloTemplate(), Functions: []string{"HelloFunction"}})
	get := func(path string, hdr map[string]string) httpAnswer {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, p.Endpoint()+path, nil)
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
	answers := map[string]httpAnswer{
		"ok":                invokeHTTP(t, p, "HelloFunction", []byte(`{}`), nil),
		"event":             invokeHTTP(t, p, "HelloFunction", []byte(`{}`), map[string]string{"X-Amz-Invocation-Type": "Event"}),
		"not found":         invokeHTTP(t, p, "Nope", []byte(`{}`), nil),
		"malformed name":    invokeHTTP(t, p, "no%20such", []byte(`{}`), nil),
		"not selected":      invokeHTTP(t, p, "FailingFunction", []byte(`{}`), nil),
		"browser":           invokeHTTP(t, p, "HelloFunction", []byte(`{}`), map[string]string{"Origin": "https://example.com"}),
		"unknown operation": get("/2015-03-31/functions/HelloFunction/invocations", nil),
		"list":              get("/2015-03-31/functions/", nil),
	}
	seen := map[string]string{}
	for name, a := range answers {
		id := a.header.Get("X-Amzn-Requestid")
		assert.Regexp(t, requestIDRE, id, name)
		if prev, dup := seen[id]; dup {
			t.Errorf("%s and %s answered with the same request id", prev, name)
		}
		seen[id] = name
	}
	assert.Equal(t, http.StatusOK, answers["ok"].status)
	assert.Equal(t, http.StatusAccepted, answers["event"].status)
	assert.Equal(t, http.StatusNotFound, answers["not found"].status)
	assert.Equal(t, http.StatusBadRequest, answers["malformed name"].status)
	assert.Equal(t, "ValidationException", answers["malformed name"].header.Get("X-Amzn-Errortype"))
	assert.Equal(t, http.StatusForbidden, answers["browser"].status)
	assert.Equal(t, http.StatusNotFound, answers["unknown operation"].status)
	assert.Equal(t, "UnknownOperationException", answers["unknown operation"].header.Get("X-Amzn-Errortype"))
	assert.Equal(t, http.StatusOK, answers["list"].status)

	// A Python function the template has but this pipeline was not asked to serve says so.
	nf := answers["not selected"]
	assert.Equal(t, http.StatusNotFound, nf.status)
	assert.Contains(t, string(nf.payload), "Function not found: arn:aws:lambda:us-east-1:123456789012:function:FailingFunction")
	assert.Contains(t, string(nf.payload), "not among the functions this plldb local was started to serve (HelloFunction)")
}

func TestEventInvocationRunsUnderTheRequestIDItsCallerGot(t *testing.T) {
	outDir := t.TempDir()
	dir := writeApp(t, map[string]string{"app.py": `
import os
def record(event, context):
    with open(os.path.join(os.environ["OUT_DIR"], "id"), "w") as f:
        f.write(context.aws_request_id)
`}, "Record: app.record", "      OUT_DIR: "+outDir)
	p := start(t, local.Options{Template: dir})
	a := invokeHTTP(t, p, "Record", []byte(`{}`), map[string]string{"X-Amz-Invocation-Type": "Event"})
	require.Equal(t, http.StatusAccepted, a.status)
	var seen []byte
	require.Eventually(t, func() bool {
		var err error
		seen, err = os.ReadFile(filepath.Join(outDir, "id"))
		return err == nil && len(seen) > 0
	}, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, a.header.Get("X-Amzn-Requestid"), string(seen), "the id to look for in the logs")
}

package local

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/runtimeapi"
)

// MaxPayload is Lambda's limit for a synchronous (RequestResponse) invocation's request payload: 6 MB, 6,291,456
// bytes. The response's limit is the Runtime API's, runtimeapi.MaxResponse (100 bytes more).
const MaxPayload = 6 * 1024 * 1024

// MaxEventPayload is Lambda's limit for an Event (asynchronous) invocation's payload: 1 MB, 1,048,576 bytes.
const MaxEventPayload = 1024 * 1024

// logTailBytes is how much log X-Amz-Log-Type: Tail returns, as Lambda does.
const logTailBytes = 4096

// apiVersion is the Lambda API version in every path of the Invoke API.
const apiVersion = "2015-03-31"

// requestIDHeader carries the id of every answer, errors included, as Lambda's x-amzn-RequestId does.
const requestIDHeader = "X-Amzn-Requestid"

// InvokeRequest is one call of the Invoke API.
type InvokeRequest struct {
	Payload       []byte
	ClientContext string // base64 JSON, as the X-Amz-Client-Context header carries it
	Async         bool   // X-Amz-Invocation-Type: Event
	// Qualifier is the version or alias the caller named ("" for none): the function sees it at the end of its
	// invoked function ARN, as in Lambda.
	Qualifier string
	// RequestID is the invocation's id; "" gives it a fresh one. The Invoke API passes the id it already answers
	// with, so an Event caller's x-amzn-RequestId is the id the handler and its logs see.
	RequestID string
	// Tail: the caller asked for the log's tail (X-Amz-Log-Type: Tail), the only place plldb local's REPORT line
	// goes, so the only time its Max Memory Used is worth reading.
	Tail bool
	// TraceID is the caller's X-Amzn-Trace-Id, which Lambda passes on to the function (_X_AMZN_TRACE_ID); ""
	// gives the invocation a fresh root.
	TraceID string
	// TenantID is the caller's tenant (X-Amz-Tenant-Id) for a function in tenant isolation mode.
	TenantID string
}

// InvokeResponse is what the function answered.
type InvokeResponse struct {
	RequestID string
	Payload   []byte
	// FunctionError is "Unhandled" when Payload is an error document, as X-Amz-Function-Error says.
	FunctionError string
	// ContentType is the payload's as the runtime posted it ("" → application/json): "application/unknown" for a
	// handler that returned bytes.
	ContentType string
	Log         []byte
}

// backend is what the Invoke API needs from the pipeline.
type backend interface {
	// find maps a function name (logical id or deployed name) to a served function. When the template has the
	// function but it is not served, fn is nil and why says why not.
	find(name string) (fn *servedFunction, why string)
	// served lists the served functions, in logical id order.
	served() []*servedFunction
	// functionARN is the unqualified ARN of a function of this name.
	functionARN(name string) string
	// configuration is a served function's configuration as Lambda's GetFunctionConfiguration answers it.
	configuration(fn *servedFunction) functionConfiguration
	invoke(ctx context.Context, fn *servedFunction, req InvokeRequest) (InvokeResponse, error)
	// enqueue accepts an Event invocation, to run once the function has a free slot, and returns its request id.
	enqueue(fn *servedFunction, req InvokeRequest) (string, error)
}

// invokeAPI serves the part of Lambda's API that callers of a function use, so that `aws lambda invoke
// --endpoint-url`, `aws lambda list-functions` and the SDKs work against plldb local: Invoke, ListFunctions,
// GetFunction and GetFunctionConfiguration, for the served functions.
type invokeAPI struct {
	b     backend
	log   *slog.Logger
	guard guard
	mux   *http.ServeMux
}

func newInvokeAPI(b backend, log *slog.Logger, g guard) *invokeAPI {
	a := &invokeAPI{b: b, log: log, guard: g}
	a.mux = a.routes()
	return a
}

// routes is the API's whole route table. Anything else answers UnknownOperationException, as Lambda does.
func (a *invokeAPI) routes() *http.ServeMux {
	const functions = "/" + apiVersion + "/functions"
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+functions, a.listFunctions) // botocore's path; the Go SDK adds the slash
	mux.HandleFunc("GET "+functions+"/{$}", a.listFunctions)
	mux.HandleFunc("GET "+functions+"/{name}", a.getFunction)
	mux.HandleFunc("GET "+functions+"/{name}/configuration", a.getFunctionConfiguration)
	mux.HandleFunc("POST "+functions+"/{name}/invocations", a.invoke)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		lambdaError(w, http.StatusNotFound, "UnknownOperationException",
			"Unknown operation "+r.Method+" "+r.URL.Path+": plldb local serves Invoke, ListFunctions, GetFunction and GetFunctionConfiguration")
	})
	return mux
}

func (a *invokeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every answer carries a request id, errors too, as Lambda's do: the SDKs report it with an error.
	w.Header().Set(requestIDHeader, runtimeapi.NewRequestID())
	if why := a.guard.check(r); why != "" {
		a.log.Warn("Invoke API refused a request", "source", r.RemoteAddr, "reason", why)
		lambdaError(w, http.StatusForbidden, "AccessDeniedException", why)
		return
	}
	a.mux.ServeHTTP(w, r)
}

func (a *invokeAPI) invoke(w http.ResponseWriter, r *http.Request) {
	fn, ref, aerr := resolveRef(a.b, r.PathValue("name"), r.URL.Query()["Qualifier"])
	if aerr != nil {
		aerr.write(w)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayload+1))
	if err != nil {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "could not read the request body: "+err.Error())
		return
	}
	if len(body) > MaxPayload {
		lambdaError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException",
			fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", MaxPayload))
		return
	}
	// Lambda answers an Event payload over its limit with this code and message (not the modelled
	// RequestTooLargeException of a synchronous one).
	if r.Header.Get("X-Amz-Invocation-Type") == "Event" && len(body) > MaxEventPayload {
		lambdaError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException",
			fmt.Sprintf("%d byte payload is too large for the Event invocation type (limit %d bytes)", len(body), MaxEventPayload))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if !wire.Valid(body) {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException",
			"Could not parse request body into json: the payload is not valid JSON")
		return
	}
	// JSON is UTF-8 (RFC 8259), and Lambda refuses other bytes; Python's json cannot read them either.
	if !utf8.Valid(body) {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException",
			"Could not parse request body into json: the payload is not valid UTF-8")
		return
	}
	req := InvokeRequest{
		Payload:       body,
		ClientContext: r.Header.Get("X-Amz-Client-Context"),
		Qualifier:     ref.qualifier,
		RequestID:     w.Header().Get(requestIDHeader),
		TraceID:       r.Header.Get("X-Amzn-Trace-Id"),
		TenantID:      r.Header.Get("X-Amz-Tenant-Id"),
	}
	if req.ClientContext != "" && !validClientContext(req.ClientContext) {
		// Lambda's own words. Passed on, the runtime would fail to read it and answer a function error instead.
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException",
			"Client context must be a valid Base64-encoded JSON object.")
		return
	}
	switch typ := r.Header.Get("X-Amz-Invocation-Type"); typ {
	case "", "RequestResponse":
	case "Event":
		req.Async = true
		id, err := a.b.enqueue(fn, req)
		if err != nil {
			var te *throttleError
			if errors.As(err, &te) {
				a.throttled(w, fn, te)
				return
			}
			lambdaError(w, http.StatusServiceUnavailable, "ServiceException", err.Error())
			return
		}
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		w.Header().Set("X-Amzn-Requestid", id)
		w.WriteHeader(http.StatusAccepted)
		return
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		lambdaError(w, http.StatusBadRequest, "InvalidParameterValueException",
			fmt.Sprintf("X-Amz-Invocation-Type %q is not one of RequestResponse, Event, DryRun", typ))
		return
	}
	tail := false
	switch lt := r.Header.Get("X-Amz-Log-Type"); lt {
	case "", "None":
	case "Tail":
		tail = true
		req.Tail = true
	default:
		lambdaError(w, http.StatusBadRequest, "InvalidParameterValueException",
			fmt.Sprintf("X-Amz-Log-Type %q is not one of None, Tail", lt))
		return
	}

	resp, err := a.b.invoke(r.Context(), fn, req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return // the caller went away
		}
		var te *throttleError
		if errors.As(err, &te) {
			a.throttled(w, fn, te)
			return
		}
		lambdaError(w, http.StatusInternalServerError, "ServiceException", err.Error())
		return
	}
	// The Runtime API already cuts a larger response down to this error; this guards the other paths here.
	if len(resp.Payload) > runtimeapi.MaxResponse {
		resp.FunctionError = "Unhandled"
		resp.Payload = runtimeapi.OversizeDocument(int64(len(resp.Payload)), runtimeapi.MaxResponse)
	}
	h := w.Header()
	if resp.ContentType != "" && resp.FunctionError == "" {
		h.Set("Content-Type", resp.ContentType)
	} else {
		h.Set("Content-Type", "application/json")
	}
	h.Set("X-Amz-Executed-Version", "$LATEST")
	h.Set(requestIDHeader, resp.RequestID)
	if resp.FunctionError != "" {
		h.Set("X-Amz-Function-Error", resp.FunctionError)
	}
	if tail {
		logs := resp.Log
		if len(logs) > logTailBytes {
			logs = logs[len(logs)-logTailBytes:]
		}
		h.Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString(logs))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp.Payload)
}

// validClientContext tells whether an X-Amz-Client-Context header is what Lambda takes: base64 of a JSON object.
func validClientContext(b64 string) bool {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !utf8.Valid(raw) {
		return false
	}
	var obj map[string]json.RawMessage
	return json.Unmarshal(raw, &obj) == nil && obj != nil
}

func (a *invokeAPI) listFunctions(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Functions []functionConfiguration
	}{Functions: []functionConfiguration{}}
	for _, fn := range a.b.served() {
		out.Functions = append(out.Functions, a.b.configuration(fn))
	}
	writeJSON(w, out)
}

func (a *invokeAPI) getFunction(w http.ResponseWriter, r *http.Request) {
	fn, ref, aerr := resolveRef(a.b, r.PathValue("name"), r.URL.Query()["Qualifier"])
	if aerr != nil {
		aerr.write(w)
		return
	}
	cfg := a.qualifiedConfiguration(fn, ref)
	writeJSON(w, struct {
		Configuration functionConfiguration
		Code          functionCode
		Tags          map[string]string
	}{cfg, functionCode{RepositoryType: "S3", Location: codeLocation(fn)}, map[string]string{}})
}

func (a *invokeAPI) getFunctionConfiguration(w http.ResponseWriter, r *http.Request) {
	fn, ref, aerr := resolveRef(a.b, r.PathValue("name"), r.URL.Query()["Qualifier"])
	if aerr != nil {
		aerr.write(w)
		return
	}
	writeJSON(w, a.qualifiedConfiguration(fn, ref))
}

// qualifiedConfiguration is fn's configuration as asked for: Lambda qualifies the ARN with the version or alias
// the caller named. The version is always $LATEST, since what runs is the local code.
func (a *invokeAPI) qualifiedConfiguration(fn *servedFunction, ref functionRef) functionConfiguration {
	cfg := a.b.configuration(fn)
	if ref.qualifier != "" {
		cfg.FunctionArn += ":" + ref.qualifier
	}
	return cfg
}

// functionConfiguration is Lambda's FunctionConfiguration, with the fields the CLI and SDKs read.
type functionConfiguration struct {
	FunctionName     string
	FunctionArn      string
	Runtime          string
	Role             string
	Handler          string
	CodeSize         int64
	Description      string
	Timeout          int
	MemorySize       int
	LastModified     string
	Version          string
	Environment      functionEnvironment
	Layers           []functionLayer `json:",omitempty"`
	TracingConfig    struct{ Mode string }
	Architectures    []string
	PackageType      string
	State            string
	LastUpdateStatus string
	EphemeralStorage struct{ Size int }
	LoggingConfig    struct{ LogFormat, LogGroup string }
}

type functionEnvironment struct{ Variables map[string]string }

type functionLayer struct {
	Arn      string
	CodeSize int64
}

type functionCode struct{ RepositoryType, Location string }

// codeLocation is where GetFunction says the code is: the local folder plldb runs it from.
func codeLocation(fn *servedFunction) string {
	return "file://" + fn.CodeDir
}

// functionNameRE is the Invoke API's FunctionName pattern (botocore's model of Lambda, NamespacedFunctionName):
// a name, a partial ARN (account:function:name) or an ARN, each with an optional :qualifier.
var functionNameRE = regexp.MustCompile(`^(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?(?P<name>[a-zA-Z0-9-_\.]+)(:(?P<qualifier>\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?$`)

// qualifierRE is the Qualifier query parameter's pattern.
var qualifierRE = regexp.MustCompile(`^[a-zA-Z0-9$_-]+$`)

// functionRef is a FunctionName taken apart.
type functionRef struct {
	name      string // function name or logical id
	qualifier string // version or alias, "" for none
}

// resolveRef finds the served function a FunctionName (and Qualifier query parameter, if any) names, or the
// error Lambda answers: 400 for a malformed name or conflicting qualifiers, 404 for a function or qualifier that
// does not exist here. The qualifiers that exist are $LATEST and the function's declared aliases: what runs is
// the local code, which no published version number stands for.
func resolveRef(b backend, raw string, query []string) (*servedFunction, functionRef, *apiError) {
	m := functionNameRE.FindStringSubmatch(raw)
	if m == nil || len(raw) > 256 {
		return nil, functionRef{}, &apiError{http.StatusBadRequest, "ValidationException",
			fmt.Sprintf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: %s",
				raw, strings.Trim(functionNameRE.String(), "^$"))}
	}
	ref := functionRef{name: m[functionNameRE.SubexpIndex("name")], qualifier: m[functionNameRE.SubexpIndex("qualifier")]}
	if len(query) > 0 && query[0] != "" {
		q := query[0]
		if !qualifierRE.MatchString(q) || len(q) > 128 {
			return nil, ref, &apiError{http.StatusBadRequest, "ValidationException",
				fmt.Sprintf("1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)", q)}
		}
		if ref.qualifier != "" && ref.qualifier != q {
			return nil, ref, &apiError{http.StatusBadRequest, "InvalidParameterValueException",
				"The derived qualifier from the function name does not match the specified qualifier."}
		}
		ref.qualifier = q
	}
	notFound := func(name, why string) *apiError {
		arn := b.functionARN(name)
		if ref.qualifier != "" {
			arn += ":" + ref.qualifier
		}
		msg := "Function not found: " + arn
		if why != "" {
			msg += " (plldb local does not serve it: " + why + ")"
		}
		return &apiError{http.StatusNotFound, "ResourceNotFoundException", msg}
	}
	fn, why := b.find(ref.name)
	if fn == nil {
		return nil, ref, notFound(ref.name, why)
	}
	if ref.qualifier != "" && ref.qualifier != "$LATEST" && !fn.HasAlias(ref.qualifier) {
		why := ""
		if strings.Trim(ref.qualifier, "0123456789") == "" {
			why = "it runs the local code as $LATEST; published versions are not served"
		}
		return nil, ref, notFound(fn.Name, why)
	}
	return fn, ref, nil
}

// apiError is an error answer of the API.
type apiError struct {
	status   int
	typ, msg string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func (e *apiError) write(w http.ResponseWriter) { lambdaError(w, e.status, e.typ, e.msg) }

// lambdaError answers in the shape the AWS SDKs parse for Lambda's REST-JSON protocol.
func lambdaError(w http.ResponseWriter, status int, typ, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": msg, "__type": typ})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

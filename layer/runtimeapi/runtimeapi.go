// Package runtimeapi implements both sides of the AWS Lambda Runtime API (version 2018-06-01): a Server that
// plays the Lambda service for a runtime process, fed by Go calls, and a Client that a runtime (or the plldb
// proxy) uses to poll for invocations and post answers.
//
// The same Server is the proxy's face towards the original runtime, the "real" Runtime API of the sandbox that
// `plldb local` and the tests emulate, so it follows the published API closely: one invocation at a time,
// Lambda-Runtime-* headers passed through exactly, 202 on success and Lambda's error documents otherwise.
package runtimeapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// APIVersion is the path prefix of every Runtime API route.
const APIVersion = "2018-06-01"

// MaxResponse is Lambda's limit for a synchronous response payload: 6 MiB + 100 bytes (6,291,556), the
// Runtime API's MaxPayloadSize (aws-lambda-runtime-interface-emulator, internal/lambda/interop/model.go).
const MaxResponse = 6*1024*1024 + 100

// The Lambda-Runtime-* headers of GET /runtime/invocation/next and of error posts.
const (
	HeaderRequestID       = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadline        = "Lambda-Runtime-Deadline-Ms"
	HeaderFunctionARN     = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID         = "Lambda-Runtime-Trace-Id"
	HeaderClientContext   = "Lambda-Runtime-Client-Context"
	HeaderCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	HeaderErrorType       = "Lambda-Runtime-Function-Error-Type"
	// HeaderTenantID carries the caller's tenant for a function in tenant isolation mode.
	HeaderTenantID = "Lambda-Runtime-Aws-Tenant-Id"
	headerPrefix   = "Lambda-Runtime-"
)

// ErrorContentType is the content type Lambda's runtimes use for error documents.
const ErrorContentType = "application/vnd.aws.lambda.error+json"

// Invocation is one event handed to the runtime by GET /runtime/invocation/next.
type Invocation struct {
	RequestID       string
	Deadline        time.Time
	FunctionARN     string
	TraceID         string
	ClientContext   string
	CognitoIdentity string
	TenantID        string // the caller's tenant, for a function in tenant isolation mode
	Event           []byte
	// Header holds every Lambda-Runtime-* header as received. The Server writes these first, so headers the
	// fields do not model (and the exact spelling of those they do) survive a proxy unchanged.
	Header http.Header
}

// Response is what the runtime posted for an invocation: a result, or an error document.
type Response struct {
	Payload   []byte
	Error     bool   // posted to /error (or synthesized by the Server, e.g. for an oversize response)
	ErrorType string // the Lambda-Runtime-Function-Error-Type header
	Header    http.Header
}

// ErrMalformed marks an invocation whose headers could not be parsed.
var ErrMalformed = errors.New("malformed invocation")

// ParseInvocation reads an invocation from the /next answer's headers and body. It keeps going past a malformed
// optional header so that a caller passing the invocation through unchanged still can; the error then wraps
// ErrMalformed.
func ParseInvocation(h http.Header, body []byte) (Invocation, error) {
	inv := Invocation{
		RequestID:       h.Get(HeaderRequestID),
		FunctionARN:     h.Get(HeaderFunctionARN),
		TraceID:         h.Get(HeaderTraceID),
		ClientContext:   h.Get(HeaderClientContext),
		CognitoIdentity: h.Get(HeaderCognitoIdentity),
		TenantID:        h.Get(HeaderTenantID),
		Event:           body,
		Header:          LambdaHeaders(h),
	}
	var errs []error
	if inv.RequestID == "" {
		errs = append(errs, fmt.Errorf("%w: no %s header", ErrMalformed, HeaderRequestID))
	}
	if d := h.Get(HeaderDeadline); d != "" {
		ms, err := strconv.ParseInt(strings.TrimSpace(d), 10, 64)
		if err != nil || ms <= 0 {
			errs = append(errs, fmt.Errorf("%w: %s %q is not a positive integer of milliseconds", ErrMalformed, HeaderDeadline, d))
		} else {
			inv.Deadline = time.UnixMilli(ms)
		}
	}
	return inv, errors.Join(errs...)
}

// LambdaHeaders copies the Lambda-Runtime-* headers of h.
func LambdaHeaders(h http.Header) http.Header {
	out := make(http.Header, 8)
	for k, v := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), headerPrefix) {
			out[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
		}
	}
	return out
}

// ErrorDocument is Lambda's error format, the body of /error and /init/error posts.
type ErrorDocument struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace,omitempty"`
}

// APIError is a non-success answer of the Runtime API.
type APIError struct {
	Op        string // e.g. "POST /runtime/invocation/{id}/response"
	Status    int
	ErrorType string
	Message   string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.ErrorType != "" {
		return fmt.Sprintf("runtime api %s: %d %s: %s", e.Op, e.Status, e.ErrorType, msg)
	}
	return fmt.Sprintf("runtime api %s: %d: %s", e.Op, e.Status, msg)
}

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
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/plldb/plldb/bridge/wire"
)

// MaxPayload is Lambda's synchronous invocation payload limit, both ways.
const MaxPayload = 6 * 1024 * 1024

// logTailBytes is how much log X-Amz-Log-Type: Tail returns, as Lambda does.
const logTailBytes = 4096

// InvokeRequest is one call of the Invoke API.
type InvokeRequest struct {
	Payload       []byte
	ClientContext string // base64 JSON, as the X-Amz-Client-Context header carries it
	Async         bool   // X-Amz-Invocation-Type: Event
}

// InvokeResponse is what the function answered.
type InvokeResponse struct {
	RequestID string
	Payload   []byte
	// FunctionError is "Unhandled" when Payload is an error document, as X-Amz-Function-Error says.
	FunctionError string
	Log           []byte
}

// backend is what the Invoke API needs from the pipeline.
type backend interface {
	// resolve maps a FunctionName path segment (logical id, function name, or ARN) to a served function.
	resolve(name string) (*servedFunction, bool)
	arn(fn *servedFunction) string
	invoke(ctx context.Context, fn *servedFunction, req InvokeRequest) (InvokeResponse, error)
	// enqueue accepts an Event invocation, to run once the function has a free slot, and returns its request id.
	enqueue(fn *servedFunction, req InvokeRequest) (string, error)
}

// invokeAPI serves Lambda's Invoke operation (POST /2015-03-31/functions/{FunctionName}/invocations) so that
// `aws lambda invoke --endpoint-url` and the SDKs work against plldb local.
type invokeAPI struct {
	b     backend
	log   *slog.Logger
	guard guard
}

func (a *invokeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if why := a.guard.check(r); why != "" {
		a.log.Warn("Invoke API refused a request", "source", r.RemoteAddr, "reason", why)
		lambdaError(w, http.StatusForbidden, "AccessDeniedException", why)
		return
	}
	const prefix = "/2015-03-31/functions/"
	if !strings.HasPrefix(r.URL.Path, prefix) || !strings.HasSuffix(r.URL.Path, "/invocations") {
		lambdaError(w, http.StatusNotFound, "UnknownOperationException", "Unknown operation "+r.Method+" "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		lambdaError(w, http.StatusMethodNotAllowed, "UnknownOperationException", "Invoke takes POST")
		return
	}
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), prefix), "/invocations")
	if unescaped, err := url.PathUnescape(name); err == nil {
		name = unescaped
	}
	fn, ok := a.b.resolve(name)
	if !ok {
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException",
			fmt.Sprintf("Function not found: %s", name))
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
	req := InvokeRequest{Payload: body, ClientContext: r.Header.Get("X-Amz-Client-Context")}
	if req.ClientContext != "" {
		if cc, err := base64.StdEncoding.DecodeString(req.ClientContext); err != nil || !utf8.Valid(cc) {
			lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException",
				"X-Amz-Client-Context must be base64-encoded JSON")
			return
		}
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
	if len(resp.Payload) > MaxPayload {
		resp.FunctionError = "Unhandled"
		resp.Payload, _ = json.Marshal(map[string]string{
			"errorMessage": fmt.Sprintf("Response payload size (%d bytes) exceeded maximum allowed payload size (%d bytes).", len(resp.Payload), MaxPayload),
			"errorType":    "Function.ResponseSizeTooLarge",
		})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amz-Executed-Version", "$LATEST")
	h.Set("X-Amzn-Requestid", resp.RequestID)
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

// lambdaError answers in the shape the AWS SDKs parse for Lambda's REST-JSON protocol.
func lambdaError(w http.ResponseWriter, status int, typ, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": msg, "__type": typ})
}

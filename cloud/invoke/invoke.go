// Package invoke sends one invocation to a Lambda function, deployed or served by plldb local, and reports what
// Lambda answered: the payload, the function error, the executed version, the request id and the decoded log
// tail. `plldb invoke` is its user. The request is checked against Lambda's limits before any call, so that a
// bad event is a clear local error, not a round trip and a service exception.
package invoke

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Lambda's limits on what a caller sends.
const (
	// MaxPayload is a synchronous (RequestResponse) invocation's request payload: 6 MB.
	MaxPayload = 6 * 1024 * 1024
	// MaxEventPayload is an asynchronous (Event) invocation's payload: 1 MB.
	MaxEventPayload = 1024 * 1024
	// MaxClientContext is the X-Amz-Client-Context header, base64 included: 3,583 bytes.
	MaxClientContext = 3583
)

// Request is one invocation.
type Request struct {
	Function  string // name, ARN or partial ARN, as Lambda's FunctionName takes it
	Qualifier string // version or alias; "" for none
	Payload   []byte // the event, JSON; nil or blank sends {}
	Async     bool   // InvocationType Event: Lambda queues it and answers 202
	Tail      bool   // ask for the last 4 KB of the invocation's log (synchronous only)
	// ClientContext is the client context object the handler sees as context.client_context (keys "client",
	// "custom", "env"); nil sends none.
	ClientContext map[string]any
	// Headers are extra HTTP headers sent with the call as they are. With ClientContext's "custom" (SetCustom),
	// they are where a caller adds what rides next to the event without being part of it, such as a knock.
	Headers map[string]string
}

// SetCustom sets one key of the client context's "custom" map, creating the client context if there is none.
func (r *Request) SetCustom(key, value string) {
	if r.ClientContext == nil {
		r.ClientContext = map[string]any{}
	}
	custom, _ := r.ClientContext["custom"].(map[string]any)
	if custom == nil {
		custom = map[string]any{}
		r.ClientContext["custom"] = custom
	}
	custom[key] = value
}

// ParseClientContext reads a client context given as JSON: an object, as Lambda requires. Its error does not say
// "client context": the caller names where the value came from (plldb invoke: "--client-context: …").
func ParseClientContext(s string) (map[string]any, error) {
	var cc map[string]any
	if err := json.Unmarshal([]byte(s), &cc); err != nil || cc == nil {
		return nil, errors.New("not a JSON object: want one such as {\"custom\": {\"key\": \"value\"}}")
	}
	return cc, nil
}

// input checks r and turns it into Lambda's input.
func (r Request) input() (*lambda.InvokeInput, error) {
	if strings.TrimSpace(r.Function) == "" {
		return nil, errors.New("no function named")
	}
	payload := r.Payload
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}")
	}
	if err := CheckEvent(payload, r.Async); err != nil {
		return nil, err
	}
	in := &lambda.InvokeInput{FunctionName: aws.String(r.Function), Payload: payload}
	if r.Qualifier != "" {
		in.Qualifier = aws.String(r.Qualifier)
	}
	if r.Async {
		in.InvocationType = types.InvocationTypeEvent
	} else if r.Tail {
		// Lambda gives a log tail to synchronous invocations only.
		in.LogType = types.LogTypeTail
	}
	if r.ClientContext != nil {
		raw, err := json.Marshal(r.ClientContext)
		if err != nil {
			return nil, fmt.Errorf("client context: %w", err)
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		if len(enc) > MaxClientContext {
			return nil, fmt.Errorf("client context is %d bytes in base64: Lambda takes at most %d", len(enc), MaxClientContext)
		}
		in.ClientContext = aws.String(enc)
	}
	return in, nil
}

// CheckEvent tells whether Lambda takes payload as the event of a synchronous (or, async, an Event) invocation:
// JSON, UTF-8, and within the size limit.
func CheckEvent(payload []byte, async bool) error {
	if async && len(payload) > MaxEventPayload {
		return fmt.Errorf("event is %d bytes: an asynchronous invocation takes at most %d (1 MB)", len(payload), MaxEventPayload)
	}
	if len(payload) > MaxPayload {
		return fmt.Errorf("event is %d bytes: a synchronous invocation takes at most %d (6 MB)", len(payload), MaxPayload)
	}
	if !utf8.Valid(payload) {
		return errors.New("event is not valid UTF-8, which Lambda refuses")
	}
	return validJSON(payload)
}

// validJSON says where payload stops being JSON, so that the developer can find the mistake in their file.
func validJSON(payload []byte) error {
	if json.Valid(payload) {
		return nil
	}
	var v any
	err := json.Unmarshal(payload, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(payload, se.Offset)
		return fmt.Errorf("event is not valid JSON: %v (line %d, column %d)", se, line, col)
	}
	return fmt.Errorf("event is not valid JSON: %v", err)
}

func position(b []byte, offset int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < offset-1 && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// Check tells whether r can be sent, without sending it.
func Check(r Request) error {
	_, err := r.input()
	return err
}

// API is the part of the Lambda client Invoke uses.
type API interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Result is what Lambda answered.
type Result struct {
	StatusCode      int    // 200 synchronous, 202 accepted (Event)
	RequestID       string // x-amzn-RequestId
	ExecutedVersion string // X-Amz-Executed-Version
	Payload         []byte
	// FunctionError is "Unhandled" (or "Handled") when Payload is an error document; ErrorType and ErrorMessage
	// are that document's, when it has them.
	FunctionError           string
	ErrorType, ErrorMessage string
	Log                     string // the decoded log tail, when asked for
}

// Invoke sends the request once. An error is a failure to invoke (the function did not run, or its answer was
// lost); a function that failed is a Result with FunctionError set.
func Invoke(ctx context.Context, api API, r Request) (Result, error) {
	in, err := r.input()
	if err != nil {
		return Result{}, err
	}
	opts := []func(*lambda.Options){func(o *lambda.Options) {
		// Never retried: a retry after a lost answer runs the function a second time, and one call is what the
		// developer asked for.
		o.RetryMaxAttempts = 1
	}}
	for k, v := range r.Headers {
		opts = append(opts, lambda.WithAPIOptions(smithyhttp.SetHeaderValue(k, v)))
	}
	out, err := api.Invoke(ctx, in, opts...)
	if err != nil {
		return Result{}, describe(err)
	}
	res := Result{
		StatusCode:      int(out.StatusCode),
		ExecutedVersion: aws.ToString(out.ExecutedVersion),
		Payload:         out.Payload,
		FunctionError:   aws.ToString(out.FunctionError),
	}
	res.RequestID, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if res.FunctionError != "" {
		var doc struct{ ErrorType, ErrorMessage string }
		if json.Unmarshal(out.Payload, &doc) == nil {
			res.ErrorType, res.ErrorMessage = doc.ErrorType, doc.ErrorMessage
		}
	}
	if lr := aws.ToString(out.LogResult); lr != "" {
		logs, err := base64.StdEncoding.DecodeString(lr)
		if err != nil {
			return res, fmt.Errorf("the log tail is not base64: %w", err)
		}
		res.Log = string(logs)
	}
	return res, nil
}

// Error is a failure to invoke that Lambda (or plldb local) answered with an error.
type Error struct {
	Code, Message, RequestID string
	StatusCode               int
	Err                      error
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// NotFound tells whether Lambda said there is no such function (or version or alias).
func (e *Error) NotFound() bool { return e.Code == "ResourceNotFoundException" }

// UnreachableError is a failure to reach the endpoint at all: Err is the dial (or read) error.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return "endpoint unreachable: " + e.Err.Error() }

func (e *UnreachableError) Unwrap() error { return e.Err }

// describe turns the SDK's error, which names the operation, the status and the request id in one long line,
// into an *Error that says what Lambda said, or an *UnreachableError for a connection failure.
func describe(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e := &Error{Code: ae.ErrorCode(), Message: ae.ErrorMessage(), Err: err}
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) {
			e.StatusCode = re.HTTPStatusCode()
		}
		var rid interface{ ServiceRequestID() string }
		if errors.As(err, &rid) {
			e.RequestID = rid.ServiceRequestID()
		}
		return e
	}
	// The SDK's own words around a refused connection name the operation, the attempts and an empty request id;
	// the dial error alone says what happened.
	var oe *net.OpError
	if errors.As(err, &oe) {
		return &UnreachableError{Err: oe}
	}
	return err
}

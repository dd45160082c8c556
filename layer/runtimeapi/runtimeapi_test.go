package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func startServer(t *testing.T, opts ServerOptions) (*Server, *Client) {
	t.Helper()
	s := NewServer(opts)
	require.NoError(t, s.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, NewClient(s.Addr(), nil)
}

type invokeResult struct {
	resp Response
	err  error
}

func invokeAsync(ctx context.Context, s *Server, inv Invocation) <-chan invokeResult {
	ch := make(chan invokeResult, 1)
	go func() {
		r, err := s.Invoke(ctx, inv)
		ch <- invokeResult{r, err}
	}()
	return ch
}

func TestRoundTripHeadersAndBodiesPassUnchanged(t *testing.T) {
	s, c := startServer(t, ServerOptions{})
	deadline := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
	event := []byte("{\"k\": \"v\" ,\n \"\u00e9\": [1,2]}  ")
	inv := Invocation{
		RequestID:       "req-1",
		Deadline:        deadline,
		FunctionARN:     "arn:aws:lambda:eu-west-1:123456789012:function:f",
		TraceID:         "Root=1-5e1b4151-5ac6c58f3d5b1a4e1bd1e2e3;Parent=1;Sampled=1",
		ClientContext:   `{"client":{"installation_id":"x"}}`,
		CognitoIdentity: `{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}`,
		TenantID:        "tenant-1",
		Event:           event,
		Header:          http.Header{"Lambda-Runtime-Extra-Thing": {"kept"}},
	}
	got := invokeAsync(t.Context(), s, inv)

	in, err := c.Next(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "req-1", in.RequestID)
	assert.True(t, deadline.Equal(in.Deadline))
	assert.Equal(t, inv.FunctionARN, in.FunctionARN)
	assert.Equal(t, inv.TraceID, in.TraceID)
	assert.Equal(t, inv.ClientContext, in.ClientContext)
	assert.Equal(t, inv.CognitoIdentity, in.CognitoIdentity)
	assert.Equal(t, "tenant-1", in.TenantID)
	assert.Equal(t, "tenant-1", in.Header.Get("Lambda-Runtime-Aws-Tenant-Id"))
	assert.Equal(t, event, in.Event)
	assert.Equal(t, "kept", in.Header.Get("Lambda-Runtime-Extra-Thing"))
	assert.Len(t, in.Header, 8, "every Lambda-Runtime-* header, nothing else: %v", in.Header)

	payload := []byte(`{"ok" : true}`)
	require.NoError(t, c.Respond(t.Context(), in.RequestID, payload, http.Header{"Content-Type": {"application/json"}, "X-Custom": {"1"}}))
	r := <-got
	require.NoError(t, r.err)
	assert.False(t, r.resp.Error)
	assert.Equal(t, payload, r.resp.Payload)
	assert.Equal(t, "1", r.resp.Header.Get("X-Custom"))
}

func TestHeaderWinsOverFieldsAndRequestIDIsGenerated(t *testing.T) {
	s, c := startServer(t, ServerOptions{})
	got := invokeAsync(t.Context(), s, Invocation{
		TraceID: "from-field",
		Header:  http.Header{HeaderTraceID: {"from-header"}, HeaderDeadline: {"1700000000000"}},
	})
	in, err := c.Next(t.Context())
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, in.RequestID)
	assert.Equal(t, "from-header", in.TraceID)
	assert.Equal(t, "1700000000000", in.Header.Get(HeaderDeadline))
	require.NoError(t, c.Respond(t.Context(), in.RequestID, nil, nil))
	require.NoError(t, (<-got).err)

	_, err = s.Invoke(t.Context(), Invocation{RequestID: "a", Header: http.Header{HeaderRequestID: {"b"}}})
	require.ErrorContains(t, err, `RequestID "a" disagrees`)
}

func TestErrorAnswerCarriesTypeHeaderAndBody(t *testing.T) {
	s, c := startServer(t, ServerOptions{})
	got := invokeAsync(t.Context(), s, Invocation{RequestID: "e1", Event: []byte(`{}`)})
	in, err := c.Next(t.Context())
	require.NoError(t, err)
	doc := []byte(`{"errorMessage":"boom","errorType":"ValueError","stackTrace":["a"]}`)
	require.NoError(t, c.Error(t.Context(), in.RequestID, doc, "Unhandled", nil))
	r := <-got
	require.NoError(t, r.err)
	assert.True(t, r.resp.Error)
	assert.Equal(t, "Unhandled", r.resp.ErrorType)
	assert.Equal(t, doc, r.resp.Payload)
	assert.Equal(t, ErrorContentType, r.resp.Header.Get("Content-Type"))
}

func TestOneInvocationAtATime(t *testing.T) {
	s, c := startServer(t, ServerOptions{})
	first := invokeAsync(t.Context(), s, Invocation{RequestID: "one"})
	second := invokeAsync(t.Context(), s, Invocation{RequestID: "two"})
	in, err := c.Next(t.Context())
	require.NoError(t, err)

	_, err = c.Next(t.Context())
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusForbidden, apiErr.Status)
	assert.Equal(t, "InvalidStateTransition", apiErr.ErrorType)
	assert.Contains(t, apiErr.Message, in.RequestID)

	require.NoError(t, c.Respond(t.Context(), in.RequestID, []byte(in.RequestID), nil))
	in2, err := c.Next(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, in.RequestID, in2.RequestID)
	require.NoError(t, c.Respond(t.Context(), in2.RequestID, []byte(in2.RequestID), nil))
	r1, r2 := <-first, <-second
	require.NoError(t, r1.err)
	require.NoError(t, r2.err)
	assert.Equal(t, "one", string(r1.resp.Payload))
	assert.Equal(t, "two", string(r2.resp.Payload))
}

func TestUnknownAndAnsweredRequestIDs(t *testing.T) {
	s, c := startServer(t, ServerOptions{})
	var apiErr *APIError
	err := c.Respond(t.Context(), "nope", nil, nil)
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusNotFound, apiErr.Status)
	assert.Equal(t, "InvalidRequestID", apiErr.ErrorType)

	got := invokeAsync(t.Context(), s, Invocation{RequestID: "x/y"})
	in, err := c.Next(t.Context())
	require.NoError(t, err)
	require.NoError(t, c.Respond(t.Context(), in.RequestID, []byte("1"), nil))
	require.NoError(t, (<-got).err)
	err = c.Error(t.Context(), in.RequestID, []byte("{}"), "X", nil)
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusBadRequest, apiErr.Status)
	assert.Contains(t, apiErr.Error(), "already answered")
}

func TestOversizeResponseIs413AndAnswersTheInvocation(t *testing.T) {
	s, c := startServer(t, ServerOptions{MaxResponse: 1024})
	got := invokeAsync(t.Context(), s, Invocation{RequestID: "big"})
	in, err := c.Next(t.Context())
	require.NoError(t, err)
	err = c.Respond(t.Context(), in.RequestID, bytes.Repeat([]byte("a"), 1025), nil)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusRequestEntityTooLarge, apiErr.Status)
	r := <-got
	require.NoError(t, r.err)
	assert.True(t, r.resp.Error)
	assert.Equal(t, "Function.ResponseSizeTooLarge", r.resp.ErrorType)
	var doc ErrorDocument
	require.NoError(t, json.Unmarshal(r.resp.Payload, &doc))
	assert.Equal(t, "Response payload size (1025 bytes) exceeded maximum allowed payload size (1024 bytes).", doc.ErrorMessage)
}

func TestFullSizeResponsePasses(t *testing.T) {
	s, c := startServer(t, ServerOptions{})
	got := invokeAsync(t.Context(), s, Invocation{RequestID: "six"})
	in, err := c.Next(t.Context())
	require.NoError(t, err)
	payload := bytes.Repeat([]byte("z"), MaxResponse)
	require.NoError(t, c.Respond(t.Context(), in.RequestID, payload, nil))
	r := <-got
	require.NoError(t, r.err)
	assert.Len(t, r.resp.Payload, MaxResponse)
}

func TestInitErrorAndReady(t *testing.T) {
	s, c := startServer(t, ServerOptions{})
	select {
	case <-s.Ready():
		t.Fatal("ready before the first /next")
	default:
	}
	doc := []byte(`{"errorMessage":"Unable to import module 'x'","errorType":"Runtime.ImportModuleError"}`)
	require.NoError(t, c.InitError(t.Context(), doc, "Runtime.ImportModuleError"))
	r := <-s.InitError()
	assert.Equal(t, doc, r.Payload)
	assert.Equal(t, "Runtime.ImportModuleError", r.ErrorType)

	got := invokeAsync(t.Context(), s, Invocation{RequestID: "after"})
	in, err := c.Next(t.Context())
	require.NoError(t, err)
	<-s.Ready()
	require.NoError(t, c.Respond(t.Context(), in.RequestID, nil, nil))
	require.NoError(t, (<-got).err)

	var apiErr *APIError
	require.ErrorAs(t, c.InitError(t.Context(), doc, "Late"), &apiErr)
	assert.Equal(t, http.StatusForbidden, apiErr.Status)
}

func TestInvokeWithdrawnWhenContextEnds(t *testing.T) {
	s, c := startServer(t, ServerOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	got := invokeAsync(ctx, s, Invocation{RequestID: "withdrawn"})
	cancel()
	r := <-got
	require.ErrorIs(t, r.err, context.Canceled)

	later := invokeAsync(t.Context(), s, Invocation{RequestID: "served"})
	in, err := c.Next(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "served", in.RequestID, "a withdrawn invocation is never handed out")
	require.NoError(t, c.Respond(t.Context(), in.RequestID, nil, nil))
	require.NoError(t, (<-later).err)
}

func TestCloseReleasesInvokeAndNext(t *testing.T) {
	s := NewServer(ServerOptions{})
	require.NoError(t, s.Start(t.Context()))
	c := NewClient(s.Addr(), nil)
	got := invokeAsync(t.Context(), s, Invocation{RequestID: "pending"})
	in, err := c.Next(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "pending", in.RequestID)

	require.NoError(t, s.Close())
	require.ErrorIs(t, (<-got).err, ErrServerClosed)
	_, err = s.Invoke(t.Context(), Invocation{})
	require.ErrorIs(t, err, ErrServerClosed)
	_, err = c.Next(t.Context())
	require.Error(t, err)
}

func TestStartFailsOnBadAddress(t *testing.T) {
	s := NewServer(ServerOptions{Addr: "127.0.0.1:notaport"})
	err := s.Start(t.Context())
	require.ErrorContains(t, err, "runtime api listen on 127.0.0.1:notaport")
}

func TestUnknownRouteIs404(t *testing.T) {
	s, _ := startServer(t, ServerOptions{})
	resp, err := http.Get("http://" + s.Addr() + "/2018-06-01/runtime/whatever")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Contains(t, string(body), "NotFound")
}

func TestNextReportsMalformedHeaders(t *testing.T) {
	s, c := startServer(t, ServerOptions{})
	got := invokeAsync(t.Context(), s, Invocation{RequestID: "m", Header: http.Header{HeaderDeadline: {"soon"}}})
	in, err := c.Next(t.Context())
	require.ErrorIs(t, err, ErrMalformed)
	assert.Contains(t, err.Error(), `Lambda-Runtime-Deadline-Ms "soon"`)
	assert.Equal(t, "m", in.RequestID, "the invocation is returned for pass-through")
	assert.True(t, in.Deadline.IsZero())
	require.NoError(t, c.Respond(t.Context(), in.RequestID, nil, nil))
	require.NoError(t, (<-got).err)
}

func TestClientReportsUnreachableServer(t *testing.T) {
	s := NewServer(ServerOptions{})
	require.NoError(t, s.Start(t.Context()))
	addr := s.Addr()
	require.NoError(t, s.Close())
	_, err := NewClient(addr, nil).Next(t.Context())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "runtime api GET /runtime/invocation/next"), err.Error())
	assert.False(t, errors.Is(err, ErrMalformed))
}

func FuzzParseInvocation(f *testing.F) {
	f.Add("id-1", "1700000000000", "arn", "Root=1", []byte(`{"a":1}`))
	f.Add("", "", "", "", []byte(nil))
	f.Add("x", "-5", "", "", []byte("not json"))
	f.Add("x", "99999999999999999999999", "", "", []byte("{}"))
	f.Fuzz(func(t *testing.T, id, deadline, arn, trace string, body []byte) {
		h := http.Header{}
		h.Set(HeaderRequestID, id)
		h.Set(HeaderDeadline, deadline)
		h.Set(HeaderFunctionARN, arn)
		h.Set(HeaderTraceID, trace)
		h.Set("Content-Type", "application/json")
		inv, err := ParseInvocation(h, body)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error not marked malformed: %v", err)
		}
		if id == "" && err == nil {
			t.Fatal("missing request id accepted")
		}
		if inv.RequestID != h.Get(HeaderRequestID) || !bytes.Equal(inv.Event, body) {
			t.Fatal("request id or event altered")
		}
		if inv.Header.Get("Content-Type") != "" {
			t.Fatal("non Lambda-Runtime header kept")
		}
		if err == nil && deadline != "" && inv.Deadline.IsZero() {
			t.Fatal("deadline accepted but not set")
		}
	})
}

// TestMain fails the package if a test leaves a goroutine running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/runtimeapi"
)

type asyncResult struct {
	resp runtimeapi.Response
	err  error
	at   time.Time
}

func (ip *inproc) invokeAsync(inv runtimeapi.Invocation) <-chan asyncResult {
	ch := make(chan asyncResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		r, err := ip.api.Invoke(ctx, inv)
		ch <- asyncResult{r, err, time.Now()}
	}()
	return ch
}

func await(t *testing.T, ch <-chan asyncResult) asyncResult {
	t.Helper()
	select {
	case r := <-ch:
		require.NoError(t, r.err)
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("invocation not answered")
		return asyncResult{}
	}
}

func errorDoc(t *testing.T, r runtimeapi.Response) runtimeapi.ErrorDocument {
	t.Helper()
	require.True(t, r.Error, "expected an error answer, got %s", r.Payload)
	var doc runtimeapi.ErrorDocument
	require.NoError(t, json.Unmarshal(r.Payload, &doc))
	assert.Equal(t, doc.ErrorType, r.ErrorType, "type header matches the document")
	return doc
}

func decodeInvoke(t *testing.T, e *wire.Envelope) wire.Invoke {
	t.Helper()
	require.Equal(t, wire.TypeInvoke, e.T)
	require.Equal(t, wire.Version, e.V)
	var inv wire.Invoke
	require.NoError(t, json.Unmarshal(e.Body, &inv))
	assert.Equal(t, e.ID, inv.RequestID, "envelope id is the request id")
	return inv
}

// newConnectedLink is a link that is up from the start; startInProc waits until the proxy has dialed it.
func newConnectedLink() *memLink { return newMemLink(true) }

func TestDeveloperAnswersWithResultAndLogs(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{AckTimeout: 10 * time.Second},
		"AWS_SECRET_ACCESS_KEY=very-secret", "AWS_ACCESS_KEY_ID=AKIA...", "AWS_SESSION_TOKEN=sess-tok-9f8e",
		"PLLDB_FUNCTION_KEY=a2V5", "MY_DB_PASSWORD=hunter2", "MY_DB_HOST=db.local", "PLLDB_REDACT=*_PASSWORD, OTHER")
	deadline := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
	got := ip.invokeAsync(runtimeapi.Invocation{
		RequestID: "req-dev-1", Deadline: deadline, FunctionARN: "arn:aws:lambda:eu-west-1:1:function:fn-under-test",
		TraceID: "Root=1-abc", ClientContext: `{"c":1}`, CognitoIdentity: `{"i":2}`, Event: []byte(`{"x": 1}`),
	})

	inv := decodeInvoke(t, link.expectSent(t))
	assert.Equal(t, "req-dev-1", inv.RequestID)
	assert.True(t, deadline.Equal(inv.Deadline))
	assert.Equal(t, "Root=1-abc", inv.TraceID)
	assert.Equal(t, `{"c":1}`, inv.ClientContext)
	assert.Equal(t, `{"i":2}`, inv.CognitoIdentity)
	assert.Equal(t, []byte(`{"x": 1}`), inv.Event)
	assert.Equal(t, "fn-under-test", inv.Function.Name)
	assert.Equal(t, "arn:aws:lambda:eu-west-1:1:function:fn-under-test", inv.Function.ARN)
	assert.Equal(t, "db.local", inv.Env["MY_DB_HOST"])
	assert.Equal(t, []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MY_DB_PASSWORD", "PLLDB_FUNCTION_KEY"}, inv.Redacted)
	for _, k := range inv.Redacted {
		assert.NotContains(t, inv.Env, k)
	}
	assert.NotContains(t, string(link.sentRaw(t, inv)), "hunter2")

	link.deliver(t, wire.TypeAck, "req-dev-1", wire.Ack{RequestID: "req-dev-1"})
	link.deliver(t, wire.TypeLog, "req-dev-1", wire.Log{RequestID: "req-dev-1", Text: "first line"})
	link.deliver(t, wire.TypeLog, "req-dev-1", wire.Log{RequestID: "req-dev-1", Text: "second line\n"})
	link.deliver(t, wire.TypeResult, "req-dev-1", wire.Result{RequestID: "req-dev-1", Payload: []byte(`{"from":"developer"}`)})

	r := await(t, got)
	assert.False(t, r.resp.Error)
	assert.Equal(t, []byte(`{"from":"developer"}`), r.resp.Payload)
	assert.Equal(t, []string{"first line", "second line"}, lines(ip.stdout.String()), "logs printed before the answer")
	for _, secret := range []string{"very-secret", "hunter2", "sess-tok-9f8e"} {
		assert.NotContains(t, ip.logs.String(), secret, "no secret in the proxy's log")
	}
}

// sentRaw re-encodes the invoke body the proxy sent, to check no redacted value leaked anywhere in it.
func (l *memLink) sentRaw(t *testing.T, inv wire.Invoke) []byte {
	b, err := json.Marshal(inv)
	require.NoError(t, err)
	return b
}

func TestDeveloperErrorIsPostedAsLambdaError(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-err", Event: []byte(`{}`)})
	link.expectSent(t)
	link.deliver(t, wire.TypeAck, "req-err", wire.Ack{RequestID: "req-err"})
	link.deliver(t, wire.TypeError, "req-err", wire.Error{RequestID: "req-err", ErrorMessage: "bad", ErrorType: "KeyError", StackTrace: []string{"  File x"}})
	doc := errorDoc(t, await(t, got).resp)
	assert.Equal(t, "KeyError", doc.ErrorType)
	assert.Equal(t, "bad", doc.ErrorMessage)
	assert.Equal(t, []string{"  File x"}, doc.StackTrace)
}

// The runtime's own error document reaches the Runtime API byte for byte, posted as awslambdaric posts it; the
// tenant id of /next reaches the developer; a result keeps its content type.
func TestDeveloperAnswersKeepTheirBytesAndTenant(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{AckTimeout: 10 * time.Second})
	doc := []byte(`{"errorMessage": "bad <&>", "errorType": "KeyError", "requestId": "", "stackTrace": []}`)
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-doc", Event: []byte(`{}`), TenantID: "tenant-ü"})
	assert.Equal(t, "tenant-ü", decodeInvoke(t, link.expectSent(t)).TenantID)
	link.deliver(t, wire.TypeAck, "req-doc", wire.Ack{RequestID: "req-doc"})
	link.deliver(t, wire.TypeError, "req-doc", wire.Error{RequestID: "req-doc", ErrorMessage: "bad <&>", ErrorType: "KeyError", Document: doc})
	r := await(t, got).resp
	assert.True(t, r.Error)
	assert.Equal(t, string(doc), string(r.Payload))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Empty(t, r.Header.Get(runtimeapi.HeaderErrorType), "awslambdaric sends no error type with an invocation error")

	got = ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-bytes", Event: []byte(`{}`)})
	assert.Empty(t, decodeInvoke(t, link.expectSent(t)).TenantID)
	link.deliver(t, wire.TypeAck, "req-bytes", wire.Ack{RequestID: "req-bytes"})
	link.deliver(t, wire.TypeResult, "req-bytes", wire.Result{RequestID: "req-bytes", Payload: []byte{0, 0xff}, ContentType: "application/unknown"})
	r = await(t, got).resp
	assert.False(t, r.Error)
	assert.Equal(t, []byte{0, 0xff}, r.Payload)
	assert.Equal(t, "application/unknown", r.Header.Get("Content-Type"))
}

// What the developer side sends is outside input to the sandbox: a document that is not a JSON object, or a
// content type that is not one, is answered with a clear error instead of being posted.
func TestUnusableDeveloperAnswersAreRefused(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{AckTimeout: 10 * time.Second})
	for i, bad := range []any{
		wire.Error{ErrorType: "E", Document: []byte(`["not", "an", "object"]`)},
		wire.Error{ErrorType: "E", Document: []byte(`{"truncated": `)},
		wire.Result{Payload: []byte(`1`), ContentType: "text/plain\r\nX-Injected: 1"},
	} {
		id := fmt.Sprintf("req-bad-%d", i)
		got := ip.invokeAsync(runtimeapi.Invocation{RequestID: id, Event: []byte(`{}`)})
		link.expectSent(t)
		link.deliver(t, wire.TypeAck, id, wire.Ack{RequestID: id})
		typ := wire.TypeError
		if _, ok := bad.(wire.Result); ok {
			typ = wire.TypeResult
		}
		link.deliver(t, typ, id, bad)
		doc := errorDoc(t, await(t, got).resp)
		assert.Equal(t, "Plldb.InvalidAnswer", doc.ErrorType, "%d", i)
		assert.Contains(t, doc.ErrorMessage, "the developer's", "%d", i)
	}
}

func TestNoConnectionFallsBackToTheRuntime(t *testing.T) {
	link := newMemLink(false)
	ip := startInProc(t, "echo.handler", link, SessionConfig{})
	r := await(t, ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-fb", Event: []byte(`{"env":[]}`)}))
	var e echoed
	require.NoError(t, json.Unmarshal(r.resp.Payload, &e))
	assert.Equal(t, "req-fb", e.RequestID, "the original runtime answered")
	assert.Empty(t, link.sent, "nothing was sent to the developer")
}

func TestNoAckWithinTimeoutFallsBack(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{AckTimeout: 300 * time.Millisecond})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-noack", Event: []byte(`{}`)})
	decodeInvoke(t, link.expectSent(t))
	r := await(t, got)
	var e echoed
	require.NoError(t, json.Unmarshal(r.resp.Payload, &e))
	assert.Equal(t, "req-noack", e.RequestID, "the original runtime answered")

	// A late ack and result for the fallen-back invocation change nothing; the next one is relayed again.
	link.deliver(t, wire.TypeAck, "req-noack", wire.Ack{RequestID: "req-noack"})
	link.deliver(t, wire.TypeResult, "req-noack", wire.Result{RequestID: "req-noack", Payload: []byte(`"late"`)})
	got = ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-next", Event: []byte(`{}`)})
	assert.Equal(t, "req-next", decodeInvoke(t, link.expectSent(t)).RequestID)
	link.deliver(t, wire.TypeAck, "req-next", wire.Ack{RequestID: "req-next"})
	link.deliver(t, wire.TypeResult, "req-next", wire.Result{RequestID: "req-next", Payload: []byte(`"fresh"`)})
	assert.Equal(t, []byte(`"fresh"`), await(t, got).resp.Payload)
}

func TestNackFallsBack(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{AckTimeout: time.Minute})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-nack", Event: []byte(`{}`)})
	link.expectSent(t)
	link.deliver(t, wire.TypeNack, "", wire.Nack{Ref: "req-nack", T: wire.TypeInvoke, Reason: "no developer connected"})
	r := await(t, got)
	var e echoed
	require.NoError(t, json.Unmarshal(r.resp.Payload, &e))
	assert.Equal(t, "req-nack", e.RequestID, "the original runtime answered")
}

func TestStrictModeAnswersNoDeveloper(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{Strict: true, AckTimeout: 200 * time.Millisecond})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-strict", Event: []byte(`{}`)})
	link.expectSent(t)
	doc := errorDoc(t, await(t, got).resp)
	assert.Equal(t, ErrorTypeNoDeveloper, doc.ErrorType)
	assert.Contains(t, doc.ErrorMessage, "no acknowledgement")

	link.connected.Store(false)
	doc = errorDoc(t, await(t, ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-strict-2", Event: []byte(`{}`)})).resp)
	assert.Equal(t, ErrorTypeNoDeveloper, doc.ErrorType)
	assert.Contains(t, doc.ErrorMessage, "no connection")
}

// In strict mode an invocation that arrives while the link is reconnecting waits for it (up to the ack timeout)
// instead of failing at once: there is no runtime to fall back to (found by the soak in adapter/local, where
// every invocation a sandbox took while its gateway connection was being replaced failed).
func TestStrictModeWaitsForAReconnectingLink(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{Strict: true, AckTimeout: 5 * time.Second})
	link.connected.Store(false)
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-back", Event: []byte(`{}`)})
	time.Sleep(150 * time.Millisecond)
	link.connected.Store(true)
	assert.Equal(t, "req-back", decodeInvoke(t, link.expectSent(t)).RequestID)
	link.deliver(t, wire.TypeAck, "req-back", wire.Ack{RequestID: "req-back"})
	link.deliver(t, wire.TypeResult, "req-back", wire.Result{RequestID: "req-back", Payload: []byte(`"developer"`)})
	r := await(t, got)
	assert.False(t, r.resp.Error)
	assert.Equal(t, []byte(`"developer"`), r.resp.Payload)
}

func TestPausedDeveloperGetsTimeoutBeforeDeadline(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{DeadlineMargin: 500 * time.Millisecond})
	deadline := time.Now().Add(2 * time.Second)
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-slow", Deadline: deadline, Event: []byte(`{}`)})
	link.expectSent(t)
	link.deliver(t, wire.TypeAck, "req-slow", wire.Ack{RequestID: "req-slow"})
	r := await(t, got)
	doc := errorDoc(t, r.resp)
	assert.Equal(t, ErrorTypeTimeout, doc.ErrorType)
	assert.Contains(t, doc.ErrorMessage, "paused in the debugger")
	assert.Regexp(t, `function timeout about [0-9]+s`, doc.ErrorMessage)
	assert.True(t, r.at.Before(deadline), "answered at %s, deadline %s", r.at, deadline)
}

func TestByeAfterAckAnswersDeveloperDisconnected(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{DisconnectGrace: 300 * time.Millisecond})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-bye", Event: []byte(`{}`)})
	link.expectSent(t)
	link.deliver(t, wire.TypeAck, "req-bye", wire.Ack{RequestID: "req-bye"})
	link.deliver(t, wire.TypeBye, "", wire.Bye{Reason: "developer disconnected"})
	doc := errorDoc(t, await(t, got).resp)
	assert.Equal(t, ErrorTypeDeveloperDisconnected, doc.ErrorType)
	assert.Contains(t, doc.ErrorMessage, "not run again")
}

func TestLostLinkAfterAckAnswersDeveloperDisconnected(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{DisconnectGrace: 300 * time.Millisecond})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-lost", Event: []byte(`{}`)})
	link.expectSent(t)
	link.deliver(t, wire.TypeAck, "req-lost", wire.Ack{RequestID: "req-lost"})
	link.connected.Store(false)
	doc := errorDoc(t, await(t, got).resp)
	assert.Equal(t, ErrorTypeDeveloperDisconnected, doc.ErrorType)
}

func TestResultWithinGraceAfterByeIsPosted(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{DisconnectGrace: time.Minute})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-back", Event: []byte(`{}`)})
	link.expectSent(t)
	link.deliver(t, wire.TypeAck, "req-back", wire.Ack{RequestID: "req-back"})
	link.deliver(t, wire.TypeBye, "", wire.Bye{Reason: "developer disconnected"})
	link.deliver(t, wire.TypeResult, "req-back", wire.Result{RequestID: "req-back", Payload: []byte(`"back"`)})
	r := await(t, got)
	assert.False(t, r.resp.Error)
	assert.Equal(t, []byte(`"back"`), r.resp.Payload)
}

// A bye before the ack falls back only when the ack timeout passes: the invocation may already be with the
// developer, who acks it once reconnected, and falling back at the bye ran it a second time (found by the soak
// in adapter/local).
func TestByeBeforeAckFallsBackAtTheAckTimeout(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{AckTimeout: 500 * time.Millisecond})
	sent := time.Now()
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-bye0", Event: []byte(`{}`)})
	link.expectSent(t)
	link.deliver(t, wire.TypeBye, "", wire.Bye{Reason: "developer disconnected"})
	r := await(t, got)
	var e echoed
	require.NoError(t, json.Unmarshal(r.resp.Payload, &e))
	assert.Equal(t, "req-bye0", e.RequestID, "the original runtime answered")
	assert.GreaterOrEqual(t, r.at.Sub(sent), 500*time.Millisecond, "not before the ack timeout")
}

func TestAckAfterByeIsTheDevelopersInvocation(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{AckTimeout: time.Minute})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-bye1", Event: []byte(`{}`)})
	link.expectSent(t)
	link.deliver(t, wire.TypeBye, "", wire.Bye{Reason: "developer disconnected"})
	link.deliver(t, wire.TypeAck, "req-bye1", wire.Ack{RequestID: "req-bye1"})
	link.deliver(t, wire.TypeResult, "req-bye1", wire.Result{RequestID: "req-bye1", Payload: []byte(`"ran once"`)})
	r := await(t, got)
	assert.False(t, r.resp.Error)
	assert.Equal(t, []byte(`"ran once"`), r.resp.Payload)
}

// The relay's nack of the hello a reconnecting proxy sends (no developer connected at that moment) is not a nack
// of the invocation in flight: taken for one, it made an invocation the developer had received fall back, and so
// run twice (found by the soak in adapter/local).
func TestNackOfHelloIsNotTheInvocations(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{AckTimeout: time.Minute})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-hello", Event: []byte(`{}`)})
	assert.Equal(t, time.Minute.Milliseconds(), decodeInvoke(t, link.expectSent(t)).AckTimeoutMs, "the invocation says how long the ack is awaited")
	link.deliver(t, wire.TypeNack, "", wire.Nack{T: wire.TypeHello, Reason: "no developer connected"})
	link.deliver(t, wire.TypeNack, "", wire.Nack{Ref: "ping-3", T: wire.TypePing, Reason: "no developer connected"})
	link.deliver(t, wire.TypeAck, "req-hello", wire.Ack{RequestID: "req-hello"})
	link.deliver(t, wire.TypeResult, "req-hello", wire.Result{RequestID: "req-hello", Payload: []byte(`"developer"`)})
	r := await(t, got)
	assert.False(t, r.resp.Error)
	assert.Equal(t, []byte(`"developer"`), r.resp.Payload)
}

func TestMalformedDeveloperResultIsAnsweredWithAnError(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-bad", Event: []byte(`{}`)})
	link.expectSent(t)
	link.deliver(t, wire.TypeAck, "req-bad", wire.Ack{RequestID: "req-bad"})
	link.recv <- &wire.Envelope{V: wire.Version, T: wire.TypeResult, ID: "req-bad", Body: json.RawMessage(`{"payload": 12}`)}
	doc := errorDoc(t, await(t, got).resp)
	assert.Equal(t, "Plldb.InvalidAnswer", doc.ErrorType)
}

func TestEnvelopesOfAnotherVersionAreDropped(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-v", Event: []byte(`{}`)})
	link.expectSent(t)
	link.deliver(t, wire.TypeAck, "req-v", wire.Ack{RequestID: "req-v"})
	link.recv <- &wire.Envelope{V: 2, T: wire.TypeResult, ID: "req-v", Body: json.RawMessage(`{"payload":"djI="}`)}
	link.deliver(t, wire.TypeResult, "req-v", wire.Result{RequestID: "req-v", Payload: []byte(`"v1"`)})
	assert.Equal(t, []byte(`"v1"`), await(t, got).resp.Payload)
}

func TestHelloEnvelopeNamesTheFunction(t *testing.T) {
	e := HelloEnvelope(&SessionConfig{Peer: "fn-1", Function: wire.FunctionIdentity{Name: "f", LogicalID: "Fn"}})
	assert.Equal(t, wire.TypeHello, e.T)
	var h wire.Hello
	require.NoError(t, json.Unmarshal(e.Body, &h))
	assert.Equal(t, wire.RoleFunction, h.Role)
	assert.Equal(t, "fn-1", h.Peer)
	require.NotNil(t, h.Function)
	assert.Equal(t, "Fn", h.Function.LogicalID)
}

func TestLinkBackWithinGraceKeepsWaitingForTheDeveloper(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{DisconnectGrace: 400 * time.Millisecond})
	got := ip.invokeAsync(runtimeapi.Invocation{RequestID: "req-flap", Event: []byte(`{}`)})
	link.expectSent(t)
	link.deliver(t, wire.TypeAck, "req-flap", wire.Ack{RequestID: "req-flap"})
	link.connected.Store(false)
	require.Eventually(t, func() bool { return strings.Contains(ip.logs.String(), "relay connection lost") },
		20*time.Second, 10*time.Millisecond)
	link.connected.Store(true)
	require.Eventually(t, func() bool { return strings.Contains(ip.logs.String(), "relay connection back") },
		20*time.Second, 10*time.Millisecond)
	// Well past the grace: had it not been cancelled, the invocation would be answered DeveloperDisconnected.
	select {
	case r := <-got:
		t.Fatalf("answered while the developer was still there: %s", r.resp.Payload)
	case <-time.After(time.Second):
	}
	link.deliver(t, wire.TypeResult, "req-flap", wire.Result{RequestID: "req-flap", Payload: []byte(`"still here"`)})
	r := await(t, got)
	assert.False(t, r.resp.Error)
	assert.Equal(t, []byte(`"still here"`), r.resp.Payload)
}

func FuzzDeveloperEnvelope(f *testing.F) {
	f.Add("result", "req-1", []byte(`{"requestId":"req-1","payload":"eyJhIjoxfQ=="}`))
	f.Add("nack", "", []byte(`{"ref":"req-1","t":"invoke","reason":"no developer"}`))
	f.Add("error", "", []byte(`{"requestId":"req-1","errorMessage":"x","errorType":"E","stackTrace":["a"]}`))
	f.Add("bye", "x", []byte(`null`))
	f.Add("log", "req-1", []byte(`{"text":1}`))
	f.Add("log", "req-1", []byte(`{"text":"a [INFO]\tx\n","frame":2774138895,"record":"[INFO]\tx\n","lead":2}`))
	f.Fuzz(func(t *testing.T, typ, id string, body []byte) {
		e := &wire.Envelope{V: wire.Version, T: wire.Type(typ), ID: id, Body: body}
		fl := &inflight{id: "req-1"}
		owned := fl.owns(e)
		if e.T == wire.TypeBye && !owned {
			t.Fatal("a bye concerns the current invocation")
		}
		if id != "" && id != "req-1" && owned && e.T != wire.TypeBye && e.T != wire.TypeNack {
			t.Fatalf("envelope for %q routed to req-1", id)
		}
		_ = nackReason(e)
		_ = byeReason(e)
		var r wire.Result
		var we wire.Error
		var l wire.Log
		_ = json.Unmarshal(body, &r)
		_ = json.Unmarshal(body, &we)
		if json.Unmarshal(body, &l) == nil {
			_ = l.CheckFrame()
		}
	})
}

// TestDeveloperResultSizeIsLambdasLimit: the proxy relays the developer's result to the real Runtime API
// without a limit of its own, so a result of Lambda's 6,291,556 bytes passes and a larger one gets the API's
// own Function.ResponseSizeTooLarge, with the same document a runtime's oversize response gets.
func TestDeveloperResultSizeIsLambdasLimit(t *testing.T) {
	link := newConnectedLink()
	ip := startInProc(t, "echo.handler", link, SessionConfig{AckTimeout: 10 * time.Second})
	for i, n := range []int{runtimeapi.MaxResponse, runtimeapi.MaxResponse + 1, 7_000_002} {
		id := fmt.Sprintf("req-size-%d", i)
		got := ip.invokeAsync(runtimeapi.Invocation{RequestID: id, Event: []byte(`{}`)})
		link.expectSent(t)
		link.deliver(t, wire.TypeAck, id, wire.Ack{RequestID: id})
		link.deliver(t, wire.TypeResult, id, wire.Result{RequestID: id, Payload: bytes.Repeat([]byte("r"), n)})
		r := await(t, got).resp
		if n <= runtimeapi.MaxResponse {
			require.False(t, r.Error, "%.300s", r.Payload)
			assert.Len(t, r.Payload, n)
			continue
		}
		require.True(t, r.Error)
		assert.Equal(t, runtimeapi.ErrorTypeResponseSizeTooLarge, r.ErrorType)
		assert.Equal(t, string(runtimeapi.OversizeDocument(int64(n), runtimeapi.MaxResponse)), string(r.Payload))
	}
}

package executor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnmarshalError sends events that pass Go's JSON check but that Python's json cannot decode. Each must be
// answered promptly with Runtime.UnmarshalError, as Lambda's runtime (awslambdaric) answers them, for that
// invocation only: the process lives on, the next invocation is answered, and one in flight meanwhile is not
// disturbed. (Before, a too-deep event inside the request line killed executor.py's main loop, and the others
// were refused without an id, leaving the caller to wait for the function's timeout.)
func TestUnmarshalError(t *testing.T) {
	e, sink := start(t, Spec{}, map[string]string{"app.py": sleeper})
	pid := e.PID()

	inFlight := make(chan Outcome, 1)
	go func() {
		out, err := e.Invoke(context.Background(), Invocation{RequestID: "in-flight", Event: []byte(`{"s": 2}`)})
		assert.NoError(t, err)
		inFlight <- out
	}()
	require.Eventually(t, func() bool { return sink.text("in-flight", "") == "sleeping\n" }, 10*time.Second, 5*time.Millisecond)

	py := pythonJSON(t)
	for name, event := range map[string]string{
		"integer of 4,301 digits": `{"n": ` + strings.Repeat("7", 4301) + `}`,
		"nesting 1,000 deep":      strings.Repeat("[", 1000) + strings.Repeat("]", 1000),
		"invalid UTF-8 in string": "{\"name\": \"\xc3(\"}",
		"over the inline size":    `{"pad": "` + strings.Repeat("x", 40<<10) + `", "n": ` + strings.Repeat("7", 4301) + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			// What Python's json says of the event, from the same interpreter: the message to expect.
			pyErr := py.parse(t, "data", []byte(event))
			if pyErr == "" {
				t.Skipf("this Python decodes the event (int_max_str_digits came with 3.11)")
			}
			_, msg, _ := strings.Cut(pyErr, ": ")
			msg = simplejsonWording(msg)
			rid := "bad-" + strings.ReplaceAll(name, " ", "-")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			begin := time.Now()
			out, err := e.Invoke(ctx, Invocation{RequestID: rid, Event: []byte(event)})
			require.NoError(t, err)
			assert.Less(t, time.Since(begin), 5*time.Second, "answered promptly")
			require.NotNil(t, out.Err, "payload %s", out.Payload)
			assert.Equal(t, "Runtime.UnmarshalError", out.Err.ErrorType)
			assert.True(t, strings.HasPrefix(out.Err.ErrorMessage, "Unable to unmarshal input: "+msg), "message %q, Python says %q", out.Err.ErrorMessage, pyErr)
			assert.Equal(t, rid, out.Err.RequestID)
			assert.Empty(t, out.Err.StackTrace)
			assert.Contains(t, sink.text(rid, "stdout"), "[ERROR] Runtime.UnmarshalError: Unable to unmarshal input: ")

			assert.Equal(t, "1", string(invoke(t, e, Invocation{Event: []byte(`{}`)}).Payload), "the next invocation is answered")
			assert.Equal(t, pid, e.PID(), "the executor was not restarted")
		})
	}

	select {
	case out := <-inFlight:
		require.Nil(t, out.Err, "the invocation in flight failed: %+v", out.Err)
		assert.Equal(t, "1", string(out.Payload))
	case <-time.After(30 * time.Second):
		t.Fatal("the invocation in flight was never answered")
	}
	assert.Equal(t, pid, e.PID())
	assert.Empty(t, sink.text("", "stderr"), "the executor complained")
}

// TestContextUnmarshalError: a client context or Cognito identity Python's json cannot decode (nesting past its
// recursion limit fits in the Invoke API's 3,583 bytes of client context) is answered as awslambdaric answers
// it, Runtime.LambdaContextUnmarshalError, for that invocation only; invalid UTF-8 in one is refused before it
// reaches Python, where it could only arrive mended.
func TestContextUnmarshalError(t *testing.T) {
	e, _ := start(t, Spec{}, map[string]string{"app.py": sleeper})
	pid := e.PID()
	deep := `{"custom": {"k": ` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}}`
	py := pythonJSON(t)
	pyErr := py.parse(t, "data", []byte(deep))
	require.NotEmpty(t, pyErr)
	_, msg, _ := strings.Cut(pyErr, ": ")
	for _, c := range []struct {
		inv  Invocation
		name string
	}{
		{Invocation{ClientContext: deep}, "Client Context"},
		{Invocation{ClientContext: base64.StdEncoding.EncodeToString([]byte(deep))}, "Client Context"},
		{Invocation{CognitoIdentity: deep}, "Cognito Identity"},
	} {
		out := invoke(t, e, c.inv)
		require.NotNil(t, out.Err, "payload %s", out.Payload)
		assert.Equal(t, "Runtime.LambdaContextUnmarshalError", out.Err.ErrorType)
		assert.True(t, strings.HasPrefix(out.Err.ErrorMessage, "Unable to parse "+c.name+" JSON: "+msg), "message %q", out.Err.ErrorMessage)
	}
	for _, inv := range []Invocation{
		{ClientContext: "{\"custom\": {\"k\": \"\xc3(\"}}"},
		{ClientContext: base64.StdEncoding.EncodeToString([]byte("{\"custom\": {\"k\": \"\xc3(\"}}"))},
		{CognitoIdentity: "{\"cognitoIdentityId\": \"\xc3(\"}"},
	} {
		_, err := e.Invoke(context.Background(), inv)
		assert.Error(t, err)
	}
	assert.Equal(t, "1", string(invoke(t, e, Invocation{ClientContext: `{"custom": {"k": "é"}}`}).Payload))
	assert.Equal(t, pid, e.PID(), "the executor was not restarted")
}

// TestEventFramesVerbatim: an event reaches the handler as the bytes the caller sent, whatever they hold that
// could confuse the framing (newlines, a leading digit like a frame header, a line of its own that looks like
// a JSON-RPC message), on either path (with the request, or on the data pipe), also many at once.
func TestEventFramesVerbatim(t *testing.T) {
	e, _ := start(t, Spec{}, map[string]string{"app.py": "def handler(event, context):\n    return event\n"})
	events := []string{
		"7", " \n42\n ", "12\n", "[1,\n2]\n", "[\n9\n,\n9]\n", "\"\\n3 4\\n\"",
		"{\"a\":\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"shutdown\"}\n}",
		"{\"big\": \"" + strings.Repeat("1 2\\n", 12<<10) + "\"}", // over inlineMax
	}
	errs := make(chan error, len(events)*5)
	for range 5 {
		for _, ev := range events {
			go func() {
				out, err := e.Invoke(context.Background(), Invocation{Event: []byte(ev)})
				switch {
				case err != nil:
					errs <- err
				case out.Err != nil:
					errs <- out.Err
				default:
					var want, got any
					_ = json.Unmarshal([]byte(ev), &want)
					if err := json.Unmarshal(out.Payload, &got); err != nil || !assert.Equal(t, want, got) {
						errs <- fmt.Errorf("event %q came back as %q", ev, out.Payload)
						return
					}
					errs <- nil
				}
			}()
		}
	}
	for range len(events) * 5 {
		assert.NoError(t, <-errs)
	}
}

// simplejsonWording is Python's json message for an event as awslambdaric's simplejson words it (executor.py
// follows it): its scanner decodes "from a string", never "from a unicode string".
func simplejsonWording(msg string) string {
	return strings.Replace(msg, " from a unicode string", " from a string", 1)
}

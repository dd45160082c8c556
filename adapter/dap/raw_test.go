package dap

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
)

func plus1000(kind idKind, id int) (int, bool) { return id + 1000*(int(kind)+1), true }

func TestRemapRewritesOnlyIDs(t *testing.T) {
	in := `{"stackFrames":[{"id":4,"name":"handler","line":8,"source":{"path":"/a.py","sourceReference":0},"x-unknown":{"threadId":1}}],` +
		`"totalFrames":1,"threadId":3,"hitBreakpointIds":[7],"variablesReference":0,"breakpoints":[{"id":2,"verified":true}],` +
		`"threads":[{"id":9,"name":"t"}],"custom":{"deep":[{"variablesReference":5,"keep":"me"}]}}`
	out := remap(json.RawMessage(in), plus1000)
	var got map[string]any
	require.NoError(t, json.Unmarshal(out, &got))
	frame := got["stackFrames"].([]any)[0].(map[string]any)
	assert.Equal(t, float64(2004), frame["id"], "frame ids")
	assert.Equal(t, float64(8), frame["line"], "lines are not ids")
	assert.Equal(t, float64(0), frame["source"].(map[string]any)["sourceReference"], "0 means no reference")
	assert.Equal(t, float64(1001), frame["x-unknown"].(map[string]any)["threadId"], "unknown objects are walked too")
	assert.Equal(t, float64(1003), got["threadId"])
	assert.Equal(t, []any{float64(5007)}, got["hitBreakpointIds"])
	assert.Equal(t, float64(0), got["variablesReference"])
	assert.Equal(t, float64(5002), got["breakpoints"].([]any)[0].(map[string]any)["id"])
	assert.Equal(t, float64(1009), got["threads"].([]any)[0].(map[string]any)["id"])
	deep := got["custom"].(map[string]any)["deep"].([]any)[0].(map[string]any)
	assert.Equal(t, float64(3005), deep["variablesReference"])
	assert.Equal(t, "me", deep["keep"])
	assert.Equal(t, float64(1), got["totalFrames"])

	untouched := json.RawMessage(`{"a": [1, 2, {"b": "c"}], "line": 3}`)
	assert.Equal(t, string(untouched), string(remap(untouched, plus1000)), "nothing to remap: the bytes pass through as they are")
}

func TestHandles(t *testing.T) {
	h := newHandles[ref]()
	d1, d2 := &debuggee{fn: "A"}, &debuggee{fn: "B"}
	a := h.get(ref{d1, 1})
	b := h.get(ref{d2, 1})
	assert.NotEqual(t, a, b, "the same debuggee id in two debuggees gets two adapter ids")
	assert.Equal(t, a, h.get(ref{d1, 1}), "stable")
	r, ok := h.lookup(b)
	require.True(t, ok)
	assert.Equal(t, ref{d2, 1}, r)
	h.drop(func(r ref) bool { return r.d == d1 })
	_, ok = h.lookup(a)
	assert.False(t, ok)
	assert.NotEqual(t, a, h.get(ref{d1, 1}), "ids are never reused")
}

func TestThreadName(t *testing.T) {
	assert.Equal(t, "HelloFunction 1a2b3c4d", threadName("HelloFunction", "plldb-invoke 1a2b3c4d-0000-4000-8000-000000000000"))
	assert.Equal(t, "HelloFunction 1234-abcd", threadName("HelloFunction", "plldb-invoke 1234-abcd"), "a request id that is not a UUID is shown whole")
	assert.Equal(t, "HelloFunction worker", threadName("HelloFunction", "worker"), "a thread the handler started")
	for _, name := range []string{"MainThread", "plldb-data", "plldb-idle"} {
		assert.True(t, hiddenThread(name), name)
	}
	for _, name := range []string{"plldb-invoke 1a2b3c4d", "worker", "Thread-1 (work)"} {
		assert.False(t, hiddenThread(name), name)
	}
}

// TestGarbageFromIDE: bytes that are not DAP end the session cleanly, never a panic or a hang; a frame that is
// not a JSON object is reported and skipped.
func TestGarbageFromIDE(t *testing.T) {
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), a, Options{Logger: testLogger(t)}) }()
	c := daptest.New(b)
	require.NoError(t, c.SendRaw([]byte(`[1, 2]`)))
	c.ExpectOutputEventContaining(t, "not a JSON object")
	c.ExpectInitializeResponse(t)
	_, err := b.Write([]byte("Content-Length: nope\r\n\r\n{}"))
	require.NoError(t, err)
	err = <-done
	require.Error(t, err, "a broken frame ends the session with an error")
	assert.Contains(t, err.Error(), "Content-Length")
	<-c.Done()
}

func FuzzParseLaunch(f *testing.F) {
	f.Add([]byte(`{"mode": "local", "template": "template.yaml", "invokePort": 3001}`))
	f.Add([]byte(`{"mode": "aws", "stackName": "s"}`))
	f.Add([]byte(`{"functions": "x", "env": {"A": 1}, "pathMappings": [{}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseLaunch(data)
		if err == nil && cfg.Mode != "local" && cfg.Mode != "aws" {
			t.Fatalf("accepted mode %q", cfg.Mode)
		}
		if err == nil && cfg.Mode == "aws" && cfg.StackName == "" {
			t.Fatal(`accepted "mode": "aws" without a stack name`)
		}
		if err == nil && cfg.Mode == "local" && cfg.Template == "" {
			t.Fatal(`accepted "mode": "local" without a template`)
		}
	})
}

func FuzzRemap(f *testing.F) {
	f.Add([]byte(`{"threadId": 1, "stackFrames": [{"id": 2, "source": {"sourceReference": 3}}]}`))
	f.Add([]byte(`{"breakpoints": [{"id": 1}], "hitBreakpointIds": [1, 2], "threadIds": [4]}`))
	f.Add([]byte(`[{"variablesReference": 1e400}]`))
	f.Add([]byte(`{"threadId": "x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := remap(data, plus1000)
		if json.Valid(data) && !json.Valid(out) {
			t.Fatalf("valid %q became invalid %q", data, out)
		}
		if !json.Valid(data) && !bytes.Equal(data, out) {
			t.Fatalf("invalid input was changed")
		}
	})
}

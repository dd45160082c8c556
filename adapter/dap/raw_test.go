package dap

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"reflect"
	"strconv"
	"strings"
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
	assert.Equal(t, "HelloFunction 1a2b3c4d", threadName("HelloFunction", 1, "plldb-invoke 1a2b3c4d-0000-4000-8000-000000000000"))
	assert.Equal(t, "HelloFunction 1234-abcd", threadName("HelloFunction", 1, "plldb-invoke 1234-abcd"), "a request id that is not a UUID is shown whole")
	assert.Equal(t, "HelloFunction worker", threadName("HelloFunction", 1, "worker"), "a thread the handler started")
	assert.Equal(t, "HelloFunction 1a2b3c4d (sandbox 3)", threadName("HelloFunction", 3, "plldb-invoke 1a2b3c4d-0000-4000-8000-000000000000"), "sandboxes after the first say which")
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

// sameJSON reports whether two JSON texts mean the same (numbers compared as written).
func sameJSON(a, b []byte) bool {
	decode := func(x []byte) (any, error) {
		d := json.NewDecoder(bytes.NewReader(x))
		d.UseNumber()
		var v any
		err := d.Decode(&v)
		return v, err
	}
	va, ea := decode(a)
	vb, eb := decode(b)
	return ea == nil && eb == nil && reflect.DeepEqual(va, vb)
}

func FuzzRemap(f *testing.F) {
	f.Add([]byte(`{"threadId": 1, "stackFrames": [{"id": 2, "source": {"sourceReference": 3}}]}`))
	f.Add([]byte(`{"breakpoints": [{"id": 1}], "hitBreakpointIds": [1, 2], "threadIds": [4]}`))
	f.Add([]byte(`[{"variablesReference": 1e400}]`))
	f.Add([]byte(`{"threadId": "x"}`))
	f.Add([]byte(`{"id": 1, "stackFrames": {"id": 2}, "threadIds": [1, "x"], "hitBreakpointIds": [1, 2.5], "breakpoint": {"id": 3}}`))
	f.Add([]byte(`{"threadId": {"threadId": 1}, "id": {"frameId": 2}, "\u0074hreadId": 5, "x": [[{"threadId": -0}]]}`))
	f.Add([]byte(`{"threads": [[{"id": 1}]], "variablesReference": 0, "sourceReference": 12345678901234567890}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := remap(data, plus1000)
		if json.Valid(data) && !json.Valid(out) {
			t.Fatalf("valid %q became invalid %q", data, out)
		}
		if !json.Valid(data) && !bytes.Equal(data, out) {
			t.Fatalf("invalid input was changed")
		}
		if want := remapByDecoding(data, plus1000); json.Valid(data) && !sameJSON(want, out) {
			t.Fatalf("remap of %s\n  got  %s\n  want %s (the decoding remap)", data, out, want)
		}
	})
}

// remapByDecoding is the previous remap, kept as the oracle remap must agree with: it walks a JSON value and rewrites the ids the adapter remaps, re-encoding only the objects and arrays
// that hold one. Which field is which id follows the DAP schema: threadId/frameId/variablesReference/
// sourceReference anywhere, and the "id" of stack frames, threads and breakpoints by the array they sit in.
func remapByDecoding(raw json.RawMessage, m mapper) json.RawMessage {
	if !hasIDKey(raw) {
		return raw
	}
	out, _ := walk(raw, m, -1)
	return out
}

func walk(raw json.RawMessage, m mapper, idKindHere idKind) (json.RawMessage, bool) {
	i := 0
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\n' || raw[i] == '\t' || raw[i] == '\r') {
		i++
	}
	if i == len(raw) {
		return raw, false
	}
	if !hasIDKey(raw) {
		return raw, false
	}
	switch raw[i] {
	case '{':
		var o obj
		if json.Unmarshal(raw, &o) != nil {
			return raw, false
		}
		changed := false
		for k, v := range o {
			var nv json.RawMessage
			var c bool
			switch k {
			case "threadId":
				nv, c = mapNum(v, m, kindThread, false)
			case "frameId":
				nv, c = mapNum(v, m, kindFrame, false)
			case "variablesReference":
				nv, c = mapNum(v, m, kindVar, true)
			case "sourceReference":
				nv, c = mapNum(v, m, kindSource, true)
			case "id":
				if idKindHere >= 0 {
					nv, c = mapNum(v, m, idKindHere, false)
				}
			case "threadIds":
				nv, c = mapNums(v, m, kindThread)
			case "hitBreakpointIds":
				nv, c = mapNums(v, m, kindBreakpoint)
			case "stackFrames":
				nv, c = walk(v, m, kindFrame)
			case "threads":
				nv, c = walk(v, m, kindThread)
			case "breakpoints":
				nv, c = walk(v, m, kindBreakpoint)
			case "breakpoint":
				nv, c = walk(v, m, kindBreakpoint)
			default:
				if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
					nv, c = walk(v, m, -1)
				}
			}
			if c {
				o[k] = nv
				changed = true
			}
		}
		if !changed {
			return raw, false
		}
		return o.bytes(), true
	case '[':
		var a []json.RawMessage
		if json.Unmarshal(raw, &a) != nil {
			return raw, false
		}
		changed := false
		for j, v := range a {
			if nv, c := walk(v, m, idKindHere); c {
				a[j] = nv
				changed = true
			}
		}
		if !changed {
			return raw, false
		}
		return appendArray(a), true
	}
	return raw, false
}

func mapNum(v json.RawMessage, m mapper, kind idKind, zeroIsNone bool) (json.RawMessage, bool) {
	var n int
	if json.Unmarshal(v, &n) != nil || (zeroIsNone && n == 0) {
		return v, false
	}
	nn, ok := m(kind, n)
	if !ok || nn == n {
		return v, false
	}
	b, _ := json.Marshal(nn)
	return b, true
}

func mapNums(v json.RawMessage, m mapper, kind idKind) (json.RawMessage, bool) {
	var ns []int
	if json.Unmarshal(v, &ns) != nil {
		return v, false
	}
	changed := false
	for i, n := range ns {
		if nn, ok := m(kind, n); ok && nn != n {
			ns[i] = nn
			changed = true
		}
	}
	if !changed {
		return v, false
	}
	b, _ := json.Marshal(ns)
	return b, true
}

// BenchmarkRemap compares remap with the decoding remap it replaced on a stackTrace answer of eight frames.
func BenchmarkRemap(b *testing.B) {
	var frames []string
	for i := range 8 {
		frames = append(frames, `{"id": `+strconv.Itoa(i+3)+`, "name": "handler", "line": 8, "column": 1, `+
			`"source": {"path": "/home/dev/app/src/app.py", "sourceReference": 0}, "presentationHint": "normal"}`)
	}
	body := json.RawMessage(`{"stackFrames": [` + strings.Join(frames, ", ") + `], "totalFrames": 8}`)
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			remap(body, plus1000)
		}
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			remapByDecoding(body, plus1000)
		}
	})
}

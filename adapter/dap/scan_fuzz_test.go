package dap

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	godap "github.com/google/go-dap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parseObjByDecoding is the previous parseObj, kept as the oracle parseObj must agree with.
func parseObjByDecoding(b []byte) (obj, error) {
	var o obj
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return o, nil
}

func strByDecoding(o obj, k string) string {
	var s string
	_ = json.Unmarshal(o[k], &s)
	return s
}

func numByDecoding(o obj, k string) (int, bool) {
	raw, ok := o[k]
	if !ok {
		return 0, false
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, false
	}
	return n, true
}

func boolByDecoding(o obj, k string) bool {
	var b bool
	_ = json.Unmarshal(o[k], &b)
	return b
}

// FuzzParseObj checks the scanning parseObj, and the obj accessors' fast paths, against encoding/json: the same
// inputs accepted, the same members with the same bytes, the same strings, numbers and booleans read from them,
// and the same bytes written by set and appendTo.
func FuzzParseObj(f *testing.F) {
	for _, s := range []string{
		`{"seq":3,"type":"response","request_seq":7,"success":true,"command":"stackTrace","body":{"stackFrames":[{"id":1}]}}`,
		`{"seq": 1, "type": "request", "command": "evaluate", "arguments": {"expression": "x<y", "frameId": 4}}`,
		` { "a" : [ 1 , 2 ] , "a" : null } `, `{}`, `null`, `[1]`, `"s"`, `{"a":1,}`, `{"a" 1}`, `{"a":1}x`,
		`{"\u0074ype":"event","t\\y":"\u00e9\n","k":"\ud800"}`, "{\"\xff\":\"\xfe\"}", `{"n":-0,"m":01,"o":1e3,"p":1.0,"q":-12345678901234567890}`,
		`{"b":true,"c":false,"d":"true","e":tru}`, `{"x":"<&>\u2028"}`, `{"n":99999999999999999999999}`, `{"n":-1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := parseObj(data)
		want, werr := parseObjByDecoding(data)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("parseObj(%q): error %v, encoding/json: %v", data, gerr, werr)
		}
		if gerr != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("parseObj(%q): %d members, encoding/json %d", data, len(got), len(want))
		}
		for k, w := range want {
			g, ok := got[k]
			if !ok || !bytes.Equal(g, w) {
				t.Fatalf("parseObj(%q)[%q] = %q, encoding/json %q", data, k, g, w)
			}
			if gs, ws := got.str(k), strByDecoding(want, k); gs != ws {
				t.Fatalf("str(%q) of %q = %q, encoding/json %q", k, data, gs, ws)
			}
			gn, gok := got.num(k)
			wn, wok := numByDecoding(want, k)
			if gn != wn || gok != wok {
				t.Fatalf("num(%q) of %q = %d %v, encoding/json %d %v", k, data, gn, gok, wn, wok)
			}
			if gb, wb := got.boolean(k), boolByDecoding(want, k); gb != wb {
				t.Fatalf("boolean(%q) of %q = %v, encoding/json %v", k, data, gb, wb)
			}
			// set writes what json.Marshal writes, for the member's string value and for the key as a string.
			for _, v := range []any{got.str(k), k} {
				o := obj{}
				o.set("v", v)
				m, _ := json.Marshal(v)
				if !bytes.Equal(o["v"], m) {
					t.Fatalf("set(%q) = %s, json.Marshal %s", v, o["v"], m)
				}
			}
		}
		// appendTo with a first member writes the object with that member replaced.
		enc := got.appendTo(nil, "seq", []byte("42"))
		back, err := parseObjByDecoding(enc)
		require.NoError(t, err, "%s", enc)
		want["seq"] = json.RawMessage("42")
		for k := range want {
			if len(want[k]) == 0 {
				want[k] = json.RawMessage("null")
			}
		}
		if !sameJSON(mustJSON(back), mustJSON(want)) {
			t.Fatalf("appendTo of %q = %s", data, enc)
		}
	})
}

func TestParseObjDepth(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(`{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
	}
	for _, n := range []int{maxDepth, maxDepth + 1} {
		_, gerr := parseObj(nest(n))
		_, werr := parseObjByDecoding(nest(n))
		assert.Equal(t, werr == nil, gerr == nil, "depth %d: encoding/json says %v", n, werr)
	}
	_, err := parseObj(nest(maxDepth + 1))
	assert.Error(t, err, "nesting deeper than encoding/json allows is refused")
}

// readAll reads frames until the first error, with read (readFrame or go-dap's ReadBaseMessage).
func readAll(data []byte, read func(*bufio.Reader) ([]byte, error)) ([][]byte, error) {
	br := bufio.NewReaderSize(bytes.NewReader(data), 16) // small, so that long headers span buffers
	var out [][]byte
	for {
		m, err := read(br)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// FuzzReadFrame checks readFrame against go-dap's ReadBaseMessage: the same messages, then the same error.
func FuzzReadFrame(f *testing.F) {
	for _, s := range []string{
		"Content-Length: 2\r\n\r\n{}Content-Length: 7\r\n\r\n{\"a\":1}",
		"Content-Length: 10\r\n\r\n{}", "Content-Length: 4194305\r\n\r\n{}", "Content-Length: 4194304\r\n\r\n",
		"Content-Length: 99999999999999999999\r\n\r\n", "Content-Length: 9223372036854775807\r\n\r\n",
		"Content-Length: 9223372036854775808\r\n\r\n", "Content-Length: -1\r\n\r\n", "Content-Length: \r\n\r\n",
		"Content-Length: 2\r\n\r\r\n{}", "Content-Type: json\r\nContent-Length: 2\r\n\r\n{}", "content-length: 2\r\n\r\n{}",
		"Content-Length: 2\n\r\n\r\n{}", "Content-Length: 02\r\n\r\n{}", "Content-Length:  2\r\n\r\n{}",
		"\r\n\r\n", "\r", "\r\n", "no header at all", strings.Repeat("x", 100) + "\r\n\r\n", "Content-Length: 2\r\n\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := readAll(data, readFrame)
		want, werr := readAll(data, godap.ReadBaseMessage)
		if len(got) != len(want) {
			t.Fatalf("%q: %d messages, go-dap %d", data, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%q: message %d = %q, go-dap %q", data, i, got[i], want[i])
			}
		}
		if gerr.Error() != werr.Error() || errors.Is(gerr, io.EOF) != errors.Is(werr, io.EOF) ||
			errors.Is(gerr, io.ErrUnexpectedEOF) != errors.Is(werr, io.ErrUnexpectedEOF) {
			t.Fatalf("%q: error %v, go-dap %v", data, gerr, werr)
		}
		var gb, wb *godap.BaseProtocolError
		if errors.As(gerr, &gb) != errors.As(werr, &wb) {
			t.Fatalf("%q: error %T, go-dap %T", data, gerr, werr)
		}
	})
}

// FuzzRequestFrame checks the request debuggees are sent against the obj it replaced.
func FuzzRequestFrame(f *testing.F) {
	f.Add(1, "stackTrace", []byte(`{"threadId":1}`))
	f.Add(12345, "evaluate", []byte(`{"expression":"a<b","frameId":2}`))
	f.Add(7, "wéird\"<>", []byte(nil))
	f.Fuzz(func(t *testing.T, seq int, command string, args []byte) {
		if len(args) > 0 && !json.Valid(args) {
			return // requests carry arguments that are JSON
		}
		d := &debuggee{log: slog.New(slog.DiscardHandler)}
		fr := d.requestFrame(seq, command, args)
		msg := obj{}
		msg.set("seq", seq)
		msg.set("type", "request")
		msg.set("command", command)
		if len(args) > 0 {
			msg["arguments"] = args
		}
		wantBody := msg.bytes()
		content, err := readFrame(bufio.NewReader(bytes.NewReader(fr)))
		require.NoError(t, err)
		if !sameJSON(content, wantBody) {
			t.Fatalf("requestFrame = %s, want %s", content, wantBody)
		}
	})
}

func TestOutFrameReusesItsBuffer(t *testing.T) {
	var f outFrame
	f.start()
	f.b = append(f.b, `{"a":1}`...)
	assert.Equal(t, "Content-Length: 7\r\n\r\n{\"a\":1}", string(f.finish()))
	f.start()
	f.b = append(f.b, strings.Repeat("x", 12345)...)
	out := f.finish()
	assert.Equal(t, "Content-Length: 12345\r\n\r\n", string(out[:25]))
	assert.Equal(t, 12345+25, len(out))
	allocs := testing.AllocsPerRun(100, func() {
		f.start()
		f.b = append(f.b, `{"a":1}`...)
		f.finish()
	})
	assert.Zero(t, allocs, "a frame reuses the buffer of the one before")
}

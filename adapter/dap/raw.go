package dap

import (
	"encoding/json"
	"fmt"
)

// obj is a DAP message or one of its objects, kept as raw JSON per field so that fields the adapter does not
// know travel through untouched.
type obj map[string]json.RawMessage

func parseObj(b []byte) (obj, error) {
	var o obj
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return o, nil
}

func (o obj) str(k string) string {
	var s string
	_ = json.Unmarshal(o[k], &s)
	return s
}

func (o obj) num(k string) (int, bool) {
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

func (o obj) boolean(k string) bool {
	var b bool
	_ = json.Unmarshal(o[k], &b)
	return b
}

func (o obj) set(k string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %s: %v", k, err)) // only ever called with plain values
	}
	o[k] = b
}

func (o obj) sub(k string) (obj, bool) {
	raw, ok := o[k]
	if !ok {
		return nil, false
	}
	s, err := parseObj(raw)
	return s, err == nil
}

func (o obj) bytes() []byte {
	b, _ := json.Marshal(map[string]json.RawMessage(o))
	return b
}

// idKind names an id space that differs between debuggees and must be remapped.
type idKind int

const (
	kindThread idKind = iota
	kindFrame
	kindVar
	kindSource
	kindBreakpoint
)

// mapper turns one id of a kind into another; ok=false leaves the value untouched.
type mapper func(kind idKind, id int) (int, bool)

// remap walks a JSON value and rewrites the ids the adapter remaps, re-encoding only the objects and arrays
// that hold one. Which field is which id follows the DAP schema: threadId/frameId/variablesReference/
// sourceReference anywhere, and the "id" of stack frames, threads and breakpoints by the array they sit in.
func remap(raw json.RawMessage, m mapper) json.RawMessage {
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
		b, _ := json.Marshal(a)
		return b, true
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

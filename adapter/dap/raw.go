package dap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
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

// bytes encodes the object. The values are already JSON (decoded from a message, or marshalled by set), so they
// are copied as they are: json.Marshal would re-validate and compact every one of them on every message.
func (o obj) bytes() []byte {
	n := 2
	for k, v := range o {
		n += len(k) + len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	first := true
	for k, v := range o {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendKey(b, k)
		b = append(b, ':')
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		b = append(b, v...)
	}
	return append(b, '}')
}

func appendKey(b []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(k)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"')
}

func appendArray(items []json.RawMessage) []byte {
	n := 2
	for _, v := range items {
		n += len(v) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, v := range items {
		if i > 0 {
			b = append(b, ',')
		}
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		b = append(b, v...)
	}
	return append(b, ']')
}

// idKeys are the field names remap rewrites; a value holding none of them is passed on without decoding.
var idKeys = [][]byte{[]byte(`"threadId"`), []byte(`"frameId"`), []byte(`"variablesReference"`), []byte(`"sourceReference"`),
	[]byte(`"id"`), []byte(`"threadIds"`), []byte(`"hitBreakpointIds"`)}

func hasIDKey(raw []byte) bool {
	for _, k := range idKeys {
		if bytes.Contains(raw, k) {
			return true
		}
	}
	return false
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

// remap rewrites the ids the adapter remaps in a JSON value. Which field is which id follows the DAP schema:
// threadId/frameId/variablesReference/sourceReference anywhere, threadIds and hitBreakpointIds, and the "id" of
// stack frames, threads and breakpoints by the array (or "breakpoint" object) they sit in. It scans the bytes once
// and splices the new numbers in, leaving every other byte as it was: every proxied response passes through here,
// and decoding each nested object into a map to re-encode it cost most of the adapter's time per request. Input
// that is not valid JSON is returned unchanged.
func remap(raw json.RawMessage, m mapper) json.RawMessage {
	if !hasIDKey(raw) {
		return raw
	}
	sc := idScanner{b: raw, m: m}
	sc.ws()
	if !sc.value(-1) {
		return raw
	}
	sc.ws()
	if sc.i != len(sc.b) || len(sc.edits) == 0 {
		return raw
	}
	n := len(raw)
	for _, e := range sc.edits {
		n += len(e.repl) - (e.end - e.start)
	}
	out := make([]byte, 0, n)
	last := 0
	for _, e := range sc.edits {
		out = append(out, raw[last:e.start]...)
		out = append(out, e.repl...)
		last = e.end
	}
	return append(out, raw[last:]...)
}

// idScanner is remap's single pass over a JSON value: a validating recursive-descent scanner that records the
// numbers to replace. Its methods return false on invalid JSON.
type idScanner struct {
	b     []byte
	i     int
	m     mapper
	edits []idEdit
}

type idEdit struct {
	start, end int
	repl       []byte
}

func (s *idScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans any value; an object scanned here maps its "id" as kind (-1: none), and so do the objects of an
// array scanned here.
func (s *idScanner) value(kind idKind) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(kind)
	case c == '[':
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return true
		}
		for {
			s.ws()
			if !s.value(kind) {
				return false
			}
			s.ws()
			if s.i >= len(s.b) {
				return false
			}
			if s.b[s.i] == ']' {
				s.i++
				return true
			}
			if s.b[s.i] != ',' {
				return false
			}
			s.i++
		}
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		_, ok := s.number()
		return ok
	default:
		return s.literal()
	}
}

func (s *idScanner) object(kind idKind) bool {
	s.i++ // {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		ks, ke, ok := s.str()
		if !ok {
			return false
		}
		key := s.b[ks+1 : ke-1]
		if bytes.IndexByte(key, '\\') >= 0 { // an escaped key: compare what it means
			var k string
			if json.Unmarshal(s.b[ks:ke], &k) != nil {
				return false
			}
			key = []byte(k)
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if !s.member(string(key), kind) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		if s.b[s.i] == '}' {
			s.i++
			return true
		}
		if s.b[s.i] != ',' {
			return false
		}
		s.i++
	}
}

// member scans the value of key in an object whose "id" is of kind.
func (s *idScanner) member(key string, kind idKind) bool {
	switch key {
	case "threadId":
		return s.idNumber(kindThread, false)
	case "frameId":
		return s.idNumber(kindFrame, false)
	case "variablesReference":
		return s.idNumber(kindVar, true)
	case "sourceReference":
		return s.idNumber(kindSource, true)
	case "id":
		if kind < 0 {
			return s.skip()
		}
		return s.idNumber(kind, false)
	case "threadIds":
		return s.idNumbers(kindThread)
	case "hitBreakpointIds":
		return s.idNumbers(kindBreakpoint)
	case "stackFrames":
		return s.nested(kindFrame)
	case "threads":
		return s.nested(kindThread)
	case "breakpoints", "breakpoint":
		return s.nested(kindBreakpoint)
	}
	return s.nested(-1)
}

// nested scans a value whose objects and arrays may hold ids; a scalar there holds none.
func (s *idScanner) nested(kind idKind) bool {
	if s.i < len(s.b) && (s.b[s.i] == '{' || s.b[s.i] == '[') {
		return s.value(kind)
	}
	return s.skip()
}

// skip scans a value whose ids, if any, are not the adapter's to map.
func (s *idScanner) skip() bool {
	saved := s.m
	s.m = func(idKind, int) (int, bool) { return 0, false }
	ok := s.value(-1)
	s.m = saved
	return ok
}

// idNumber maps the value if it is an integer (0 means "none" where zeroIsNone); any other value is left alone.
func (s *idScanner) idNumber(kind idKind, zeroIsNone bool) bool {
	if s.i >= len(s.b) || !(s.b[s.i] == '-' || s.b[s.i] >= '0' && s.b[s.i] <= '9') {
		return s.skip()
	}
	start, ok := s.number()
	if !ok {
		return false
	}
	s.mapAt(start, kind, zeroIsNone)
	return true
}

func (s *idScanner) mapAt(start int, kind idKind, zeroIsNone bool) {
	n, err := strconv.Atoi(string(s.b[start:s.i]))
	if err != nil || zeroIsNone && n == 0 {
		return
	}
	if nn, ok := s.m(kind, n); ok && nn != n {
		s.edits = append(s.edits, idEdit{start, s.i, strconv.AppendInt(nil, int64(nn), 10)})
	}
}

// idNumbers maps an array of integers, all or none: an array holding anything else is left alone.
func (s *idScanner) idNumbers(kind idKind) bool {
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return s.skip()
	}
	mark, from := len(s.edits), s.i
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		if c := s.b[s.i]; c == '-' || c >= '0' && c <= '9' {
			start, ok := s.number()
			if !ok {
				return false
			}
			if _, err := strconv.Atoi(string(s.b[start:s.i])); err != nil {
				s.edits = s.edits[:mark]
				s.i = from
				return s.skip()
			}
			s.mapAt(start, kind, false)
		} else {
			s.edits = s.edits[:mark]
			s.i = from
			return s.skip()
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		if s.b[s.i] == ']' {
			s.i++
			return true
		}
		if s.b[s.i] != ',' {
			return false
		}
		s.i++
	}
}

// str scans a string and returns its span, quotes included.
func (s *idScanner) str() (start, end int, ok bool) {
	start = s.i
	s.i++ // "
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return start, s.i, true
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return 0, 0, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return 0, 0, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return 0, 0, false
					}
				}
				s.i += 6
			default:
				return 0, 0, false
			}
		case c < 0x20:
			return 0, 0, false
		default:
			s.i++
		}
	}
	return 0, 0, false
}

// number scans a JSON number and returns where it started.
func (s *idScanner) number() (start int, ok bool) {
	start = s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return 0, false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return 0, false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	return start, true
}

func (s *idScanner) literal() bool {
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
			s.i += len(lit)
			return true
		}
	}
	return false
}

// writeFrame writes one Content-Length framed message with a single write: go-dap's WriteBaseMessage writes
// the header and the body separately, which costs a second syscall and often a second wakeup of the reader.
func writeFrame(w io.Writer, content []byte) error {
	buf := make([]byte, 0, len(content)+32)
	buf = append(buf, "Content-Length: "...)
	buf = strconv.AppendInt(buf, int64(len(content)), 10)
	buf = append(buf, "\r\n\r\n"...)
	buf = append(buf, content...)
	_, err := w.Write(buf)
	return err
}

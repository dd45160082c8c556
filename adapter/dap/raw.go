package dap

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"

	godap "github.com/google/go-dap"
)

// obj is a DAP message or one of its objects, kept as raw JSON per field so that fields the adapter does not
// know travel through untouched.
type obj map[string]json.RawMessage

// parseObj splits a JSON object into its members without decoding them: each value is the slice of b it was
// written as (b must not change afterwards). It accepts and rejects exactly what json.Unmarshal into an obj
// does, and yields the same members (FuzzParseObj): every message to and from the adapter passes through here,
// and encoding/json's validation, reflection and copies of every value were a fifth of the adapter's time per
// proxied request.
func parseObj(b []byte) (obj, error) {
	sc := idScanner{b: b, m: noMap, plain: true}
	sc.ws()
	if sc.i >= len(b) || b[sc.i] != '{' {
		return nil, errNotObject
	}
	sc.i++
	sc.depth = 1
	o := make(obj, 8)
	sc.ws()
	if sc.i < len(b) && b[sc.i] == '}' {
		sc.i++
	} else {
		for {
			sc.ws()
			if sc.i >= len(b) || b[sc.i] != '"' {
				return nil, errNotObject
			}
			ks, ke, ok := sc.str()
			if !ok {
				return nil, errNotObject
			}
			key, ok := objKey(b[ks:ke])
			if !ok {
				return nil, errNotObject
			}
			sc.ws()
			if sc.i >= len(b) || b[sc.i] != ':' {
				return nil, errNotObject
			}
			sc.i++
			sc.ws()
			vs := sc.i
			if !sc.value(-1) {
				return nil, errNotObject
			}
			o[key] = json.RawMessage(b[vs:sc.i:sc.i])
			sc.ws()
			if sc.i >= len(b) {
				return nil, errNotObject
			}
			if b[sc.i] == '}' {
				sc.i++
				break
			}
			if b[sc.i] != ',' {
				return nil, errNotObject
			}
			sc.i++
		}
	}
	sc.ws()
	if sc.i != len(b) {
		return nil, errNotObject
	}
	return o, nil
}

var errNotObject = errors.New("not a JSON object")

// objKey returns what a quoted key means.
func objKey(q []byte) (string, bool) {
	if k := q[1 : len(q)-1]; bytes.IndexByte(k, '\\') < 0 && utf8.Valid(k) {
		return intern(k), true
	}
	var key string // escapes or invalid UTF-8: what they decode to
	err := json.Unmarshal(q, &key)
	return key, err == nil
}

// intern returns k as a string, without allocating for the keys and values every DAP message has.
func intern(k []byte) string {
	switch string(k) {
	case "response":
		return "response"
	case "request":
		return "request"
	case "seq":
		return "seq"
	case "type":
		return "type"
	case "command":
		return "command"
	case "request_seq":
		return "request_seq"
	case "success":
		return "success"
	case "message":
		return "message"
	case "body":
		return "body"
	case "event":
		return "event"
	case "arguments":
		return "arguments"
	}
	return string(k)
}

// noMap maps nothing: the scanner only validates.
func noMap(idKind, int) (int, bool) { return 0, false }

func (o obj) str(k string) string {
	v := o[k]
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		if in := v[1 : len(v)-1]; plainString(in) {
			return intern(in)
		}
	}
	var s string
	_ = json.Unmarshal(v, &s)
	return s
}

// plainString reports whether b, the inside of a JSON string, means itself: printable ASCII without quotes,
// backslashes or the characters encoding/json escapes for HTML.
func plainString(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func (o obj) num(k string) (int, bool) {
	raw, ok := o[k]
	if !ok {
		return 0, false
	}
	if n, ok := smallInt(raw); ok {
		return n, true
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, false
	}
	return n, true
}

// smallInt parses a JSON integer of at most 18 digits, the ids and sequence numbers of DAP; anything else is
// left to encoding/json.
func smallInt(b []byte) (int, bool) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	if len(d) == 0 || len(d) > 18 || len(d) > 1 && d[0] == '0' {
		return 0, false
	}
	n := 0
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func (o obj) boolean(k string) bool {
	switch v := o[k]; string(v) {
	case "true":
		return true
	case "false":
		return false
	default:
		var b bool
		_ = json.Unmarshal(v, &b)
		return b
	}
}

func (o obj) set(k string, v any) {
	// The values the adapter sets on every message, without encoding/json's reflection; the bytes are the
	// same as json.Marshal's.
	switch x := v.(type) {
	case int:
		o[k] = strconv.AppendInt(nil, int64(x), 10)
		return
	case string:
		if plainString([]byte(x)) {
			b := make([]byte, 0, len(x)+2)
			b = append(b, '"')
			b = append(b, x...)
			o[k] = append(b, '"')
			return
		}
	case bool:
		o[k] = json.RawMessage(strconv.FormatBool(x))
		return
	}
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
	return o.appendTo(nil, "", nil)
}

// appendTo appends the object's encoding to b; when first is not empty, that member comes first with the value
// firstVal, in place of the object's own (send numbers a message this way without changing it).
func (o obj) appendTo(b []byte, first string, firstVal []byte) []byte {
	b = append(b, '{')
	n := 0
	if first != "" {
		b = appendKey(b, first)
		b = append(b, ':')
		b = append(b, firstVal...)
		n++
	}
	for k, v := range o {
		if first != "" && k == first {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
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

// idKeys are the field names remap rewrites; a value holding none of them is passed on without decoding. Each
// key missing costs a pass over the value, so the ones answers hold most often come first: "id" (stack frames,
// threads, breakpoints) and variablesReference (evaluate, scopes, variables).
var idKeys = [][]byte{[]byte(`"id"`), []byte(`"variablesReference"`), []byte(`"threadId"`), []byte(`"frameId"`),
	[]byte(`"sourceReference"`), []byte(`"threadIds"`), []byte(`"hitBreakpointIds"`)}

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
	sc := idScanner{b: raw, m: m, edits: make([]idEdit, 0, 16)}
	sc.ws()
	if !sc.value(-1) {
		return raw
	}
	sc.ws()
	if sc.i != len(sc.b) || len(sc.edits) == 0 {
		return raw
	}
	n := len(raw) + 20*len(sc.edits)
	out := make([]byte, 0, n)
	last := 0
	for _, e := range sc.edits {
		out = append(out, raw[last:e.start]...)
		out = strconv.AppendInt(out, int64(e.repl), 10)
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
	depth int  // objects and arrays open
	plain bool // only validate: map nothing
}

// maxDepth is how deeply encoding/json lets objects and arrays nest.
const maxDepth = 10000

type idEdit struct {
	start, end int
	repl       int
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
		if s.depth++; s.depth > maxDepth {
			return false
		}
		ok := s.object(kind)
		s.depth--
		return ok
	case c == '[':
		if s.depth++; s.depth > maxDepth {
			return false
		}
		ok := s.array(kind)
		s.depth--
		return ok
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

func (s *idScanner) array(kind idKind) bool {
	s.i++ // [
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
		if s.plain {
			if !s.value(-1) {
				return false
			}
		} else if !s.member(key, kind) {
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
func (s *idScanner) member(key []byte, kind idKind) bool {
	switch string(key) {
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
	if s.plain {
		return s.value(-1)
	}
	s.plain = true
	ok := s.value(-1)
	s.plain = false
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
		s.edits = append(s.edits, idEdit{start, s.i, nn})
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
		if !strSpecial[c] {
			s.i++
			continue
		}
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
		default: // a control character
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// strSpecial marks the bytes that end a run of plain characters in a JSON string.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

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
	var f outFrame
	f.start()
	f.b = append(f.b, content...)
	_, err := w.Write(f.finish())
	return err
}

// frameRoom is the room left before a frame's body for its header ("Content-Length: " + up to 10 digits +
// CRLFCRLF).
const frameRoom = 32

// outFrame builds one framed message in a buffer kept between messages (under the writer's lock): the body is
// appended after room for the header, which finish writes in front of it, so header and body go out in one
// write with no copy of the body.
type outFrame struct{ b []byte }

func (f *outFrame) start() {
	if cap(f.b) > 1<<20 {
		f.b = nil // do not keep a large message's buffer for the small ones
	}
	f.b = append(f.b[:0], make([]byte, frameRoom)...)
}

// Write appends p to the body (json.Encoder writes there).
func (f *outFrame) Write(p []byte) (int, error) {
	f.b = append(f.b, p...)
	return len(p), nil
}

func (f *outFrame) finish() []byte {
	var h [frameRoom]byte
	hb := append(h[:0], "Content-Length: "...)
	hb = strconv.AppendInt(hb, int64(len(f.b)-frameRoom), 10)
	hb = append(hb, "\r\n\r\n"...)
	at := frameRoom - len(hb)
	copy(f.b[at:], hb)
	return f.b[at:]
}

// readFrame reads one Content-Length framed message: go-dap's ReadBaseMessage, which it matches in what it
// accepts, returns and fails with (FuzzReadFrame), without its per-message allocations and regular expression.
func readFrame(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\r')
	if err == bufio.ErrBufferFull {
		// A header longer than the buffer cannot be a Content-Length header, but go-dap reads on to the CR.
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = r.ReadSlice('\r')
			long = append(long, line...)
		}
		line = long
	}
	if err != nil {
		return nil, err
	}
	n, ok := contentLength(line[:len(line)-1])
	var rest [3]byte
	if _, err := io.ReadFull(r, rest[:]); err != nil {
		return nil, err
	}
	if string(rest[:]) != "\n\r\n" {
		return nil, godap.ErrHeaderDelimiterNotCrLfCrLf
	}
	if !ok {
		if n < 0 {
			return nil, &strconv.NumError{Func: "ParseInt", Num: string(line[len("Content-Length: ") : len(line)-1]), Err: strconv.ErrRange}
		}
		return nil, godap.ErrHeaderNotContentLength
	}
	if n > maxContentLength {
		return nil, godap.ErrHeaderContentTooLong
	}
	content := make([]byte, n)
	if _, err := io.ReadFull(r, content); err != nil {
		return nil, err
	}
	return content, nil
}

// maxContentLength is go-dap's limit on a message's size.
const maxContentLength = 4 * 1024 * 1024

// contentLength parses "Content-Length: <digits>"; n is -1 when the digits overflow an int64.
func contentLength(h []byte) (n int64, ok bool) {
	const prefix = "Content-Length: "
	if len(h) <= len(prefix) || string(h[:len(prefix)]) != prefix {
		return 0, false
	}
	overflow := false
	for _, c := range h[len(prefix):] {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			overflow = true
		}
		n = n*10 + d
	}
	if overflow {
		return -1, false
	}
	return n, true
}

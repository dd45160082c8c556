package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Header is the part of an envelope the relay routes by.
type Header struct {
	V    int
	T    Type
	ID   string
	To   string
	From string
}

// PeekHeader reads the header fields of msg without decoding or validating the body, so the relay can route
// a 128 KB chunk without copying it. The header is validated like Unmarshal validates it (version, type, id and
// peer lengths). On a validation error the header read so far is returned with the error, so the caller can
// still name the message (its id) in a nack or a log line.
//
// Keys are matched the way encoding/json matches them (case-insensitively, escapes decoded, the last duplicate
// wins), so the relay and the receiving peer always see the same header.
func PeekHeader(msg []byte) (Header, error) {
	members, err := scanObject(msg, false)
	if err != nil {
		return Header{}, fmt.Errorf("peek header: %w", err)
	}
	h, err := headerFromMembers(msg, members)
	if err != nil {
		return h, fmt.Errorf("peek header: %w", err)
	}
	if err := validateHeader(h); err != nil {
		return h, fmt.Errorf("peek header: %w", err)
	}
	return h, nil
}

// Restamp returns msg with "from" set to from. Every member whose key encoding/json would read as "from" is
// removed first, so a sender cannot smuggle its own value past the relay. All other members, the body
// included, are copied byte for byte. It fails on a message PeekHeader rejects and on an empty or over-long
// peer id. The sender's own "from", which is discarded, is not length-checked.
func Restamp(msg []byte, from string) ([]byte, error) {
	if from == "" {
		return nil, errors.New("restamp: empty peer id")
	}
	if len(from) > MaxPeerLen {
		return nil, fmt.Errorf("restamp: peer id is %d bytes, longer than %d", len(from), MaxPeerLen)
	}
	if !utf8.ValidString(from) {
		return nil, errors.New("restamp: peer id is not valid UTF-8")
	}
	members, err := scanObject(msg, false)
	if err != nil {
		return nil, fmt.Errorf("restamp: %w", err)
	}
	h, err := headerFromMembers(msg, members)
	if err != nil {
		return nil, fmt.Errorf("restamp: %w", err)
	}
	h.From = from
	if err := validateHeader(h); err != nil {
		return nil, fmt.Errorf("restamp: %w", err)
	}
	fromJSON, err := json.Marshal(from)
	if err != nil {
		return nil, fmt.Errorf("restamp: encode peer id: %w", err)
	}

	out := make([]byte, 0, len(msg)+len(fromJSON)+len(`,"from":`))
	out = append(out, '{')
	n := 0
	put := func(b ...[]byte) {
		if n > 0 {
			out = append(out, ',')
		}
		for _, p := range b {
			out = append(out, p...)
		}
		n++
	}
	stamped := false
	for _, m := range members {
		switch {
		case strings.EqualFold(m.key, "from"):
			continue
		case !stamped && strings.EqualFold(m.key, "body"):
			// Keep the canonical field order (…, from, body) that Marshal writes.
			put([]byte(`"from":`), fromJSON)
			stamped = true
		}
		put(msg[m.start:m.end])
	}
	if !stamped {
		put([]byte(`"from":`), fromJSON)
	}
	return append(out, '}'), nil
}

// headerFromMembers decodes the header fields with encoding/json semantics.
func headerFromMembers(msg []byte, members []member) (Header, error) {
	var h Header
	for _, m := range members {
		var dst any
		switch {
		case strings.EqualFold(m.key, "v"):
			dst = &h.V
		case strings.EqualFold(m.key, "t"):
			dst = &h.T
		case strings.EqualFold(m.key, "id"):
			dst = &h.ID
		case strings.EqualFold(m.key, "to"):
			dst = &h.To
		case strings.EqualFold(m.key, "from"):
			dst = &h.From
		default:
			continue
		}
		if err := json.Unmarshal(msg[m.valStart:m.end], dst); err != nil {
			return h, fmt.Errorf("field %q: %w", m.key, err)
		}
	}
	return h, nil
}

// member is one `"key": value` of the top-level object: msg[start:end] is the whole member and
// msg[valStart:end] the value.
type member struct {
	start, valStart, end int
	key                  string
}

// maxDepth matches encoding/json's nesting limit.
const maxDepth = 10000

// scanObject splits a top-level JSON object into its members. With validate, the whole message is checked to
// be valid JSON (what json.Valid accepts). Without it, member values are only skipped: strings and brackets are
// tracked just far enough to find where each value ends, so a message that is not valid JSON may pass, but it
// is rejected by Unmarshal at the receiving peer; on valid JSON the members found are exactly the ones
// encoding/json sees.
func scanObject(msg []byte, validate bool) ([]member, error) {
	i := skipWS(msg, 0)
	if i >= len(msg) {
		return nil, errors.New("empty message")
	}
	if msg[i] != '{' {
		return nil, errors.New("not a JSON object")
	}
	i = skipWS(msg, i+1)
	members := make([]member, 0, 8)
	if i < len(msg) && msg[i] == '}' {
		i++
	} else {
		for {
			if i >= len(msg) {
				return nil, errors.New("unexpected end of message in object")
			}
			if msg[i] != '"' {
				return nil, fmt.Errorf("offset %d: expected a string key", i)
			}
			scanStr := scanString
			if validate {
				scanStr = validString
			}
			keyEnd, err := scanStr(msg, i)
			if err != nil {
				return nil, err
			}
			key, err := decodeKey(msg[i:keyEnd])
			if err != nil {
				return nil, fmt.Errorf("offset %d: key: %w", i, err)
			}
			j := skipWS(msg, keyEnd)
			if j >= len(msg) || msg[j] != ':' {
				return nil, fmt.Errorf("offset %d: expected ':' after key %q", j, key)
			}
			j = skipWS(msg, j+1)
			var end int
			if validate {
				end, err = validValue(msg, j, 1)
			} else {
				end, err = skipValue(msg, j)
			}
			if err != nil {
				return nil, fmt.Errorf("value of %q: %w", key, err)
			}
			members = append(members, member{start: i, valStart: j, end: end, key: key})
			i = skipWS(msg, end)
			if i >= len(msg) {
				return nil, errors.New("unexpected end of message in object")
			}
			if msg[i] == '}' {
				i++
				break
			}
			if msg[i] != ',' {
				return nil, fmt.Errorf("offset %d: expected ',' or '}' after value of %q", i, key)
			}
			i = skipWS(msg, i+1)
		}
	}
	if skipWS(msg, i) != len(msg) {
		return nil, fmt.Errorf("offset %d: data after the top-level object", i)
	}
	return members, nil
}

// scanString returns the offset just past the string starting at msg[i] == '"'.
func scanString(msg []byte, i int) (int, error) {
	for j := plainRun(msg, i+1); j < len(msg); j = plainRun(msg, j+1) {
		switch c := msg[j]; {
		case c == '\\':
			j++
		case c == '"':
			return j + 1, nil
		case c < 0x20:
			return 0, fmt.Errorf("offset %d: control character in string", j)
		}
	}
	return 0, fmt.Errorf("offset %d: unterminated string", i)
}

// skipValue returns the offset just past the value starting at msg[i].
func skipValue(msg []byte, i int) (int, error) {
	if i >= len(msg) {
		return 0, errors.New("unexpected end of message, expected a value")
	}
	switch msg[i] {
	case '"':
		return scanString(msg, i)
	case '{', '[':
		return skipNested(msg, i)
	}
	j := i
	for j < len(msg) {
		c := msg[j]
		if c == ',' || c == '}' || c == ']' || c == ':' || c == '{' || c == '[' || c == '"' ||
			c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
		j++
	}
	if j == i {
		return 0, fmt.Errorf("offset %d: expected a value", i)
	}
	return j, nil
}

// skipNested skips an object or array, checking only that brackets pair up.
func skipNested(msg []byte, i int) (int, error) {
	stack := make([]byte, 0, 16)
	for j := i; j < len(msg); j++ {
		switch c := msg[j]; c {
		case '"':
			end, err := scanString(msg, j)
			if err != nil {
				return 0, err
			}
			j = end - 1
		case '{', '[':
			if len(stack) >= maxDepth {
				return 0, fmt.Errorf("offset %d: nested deeper than %d", j, maxDepth)
			}
			stack = append(stack, c)
		case '}', ']':
			open := byte('{')
			if c == ']' {
				open = '['
			}
			if stack[len(stack)-1] != open {
				return 0, fmt.Errorf("offset %d: mismatched %q", j, c)
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("offset %d: unterminated %q", i, msg[i])
}

// decodeKey unquotes a key exactly as encoding/json would (escapes decoded, invalid UTF-8 replaced).
func decodeKey(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

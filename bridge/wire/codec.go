package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Size limits. API Gateway closes a connection (1009) on a frame over MaxFrameBytes or a message over
// MaxMessageBytes, so everything a peer writes is kept under them.
const (
	MaxFrameBytes   = 32 * 1024  // API Gateway frame limit
	MaxMessageBytes = 128 * 1024 // API Gateway message limit
	// RestampHeadroom is what Split leaves free in every message so the relay can add "from" without pushing
	// the message over MaxMessageBytes: `,"from":` plus a MaxPeerLen id even if every byte needs a \u00XX escape.
	RestampHeadroom = 1024
	MaxPeerLen      = 128 // longest peer id in "to" and "from"
	// MaxEnvelopeBytes is the largest envelope after decompression: a 6 MB Lambda payload, base64 encoded in
	// the body, plus the other fields.
	MaxEnvelopeBytes = 10 << 20

	MaxIDLen   = 256 // longest envelope "id" and chunk "msg"
	MaxTypeLen = 64  // longest "t"
)

// NewEnvelope builds an envelope of the current Version whose body is the JSON of body. A nil body leaves the
// body absent. The body must encode to a JSON object, because receivers reject anything else.
func NewEnvelope(t Type, id string, body any) (*Envelope, error) {
	e := &Envelope{V: Version, T: t, ID: id}
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s body: %w", t, err)
		}
		if !isObjectOrNull(raw) {
			return nil, fmt.Errorf("encode %s body: %T does not encode to a JSON object", t, body)
		}
		if !bytes.Equal(raw, jsonNull) {
			e.Body = raw
		}
	}
	return e, nil
}

// DecodeBody decodes the body into v. An absent body decodes like an empty object, so bodies whose fields are
// all optional (bye, ping) need not be sent. Unknown fields are ignored: a newer peer may add some.
func (e *Envelope) DecodeBody(v any) error {
	if len(e.Body) == 0 {
		return nil
	}
	if done, err := decodeFast(e.Body, v); done {
		if err != nil {
			return fmt.Errorf("decode %s body (envelope %q): %w", e.T, e.ID, err)
		}
		return nil
	}
	if err := json.Unmarshal(e.Body, v); err != nil {
		return fmt.Errorf("decode %s body (envelope %q): %w", e.T, e.ID, err)
	}
	return nil
}

// Marshal encodes e. It refuses an envelope that Unmarshal on the other side would reject, so a bad envelope
// fails where it was made rather than at the peer. The body is validated and copied as it is (not re-encoded):
// bodies are often megabytes of base64, and one validation pass is the only work they need here.
func Marshal(e *Envelope) ([]byte, error) {
	if e == nil {
		return nil, errors.New("marshal envelope: nil envelope")
	}
	if err := validateHeader(headerOf(e)); err != nil {
		return nil, fmt.Errorf("marshal envelope: %w", err)
	}
	if len(e.Body) > 0 {
		if !isObjectOrNull(e.Body) {
			return nil, fmt.Errorf("marshal %s envelope: body is not a JSON object", e.T)
		}
		if err := validJSON(e.Body); err != nil {
			return nil, fmt.Errorf("marshal %s envelope: body is not valid JSON: %w", e.T, err)
		}
	}
	return appendEnvelope(make([]byte, 0, envelopeLen(e)), e), nil
}

// envelopeLen is the usual length of e's encoding (exact unless a string needs escapes), for sizing buffers.
func envelopeLen(e *Envelope) int {
	return len(`{"v":,"t":"","id":"","to":"","from":"","body":}`) + 20 +
		len(e.T) + len(e.ID) + len(e.To) + len(e.From) + len(e.Body)
}

// appendEnvelope writes e in Envelope's field order with its omitempty rules, as encoding/json would, except
// that the body is copied verbatim instead of being compacted.
func appendEnvelope(b []byte, e *Envelope) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	b = append(b, `,"t":`...)
	b = appendString(b, string(e.T))
	if e.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, e.ID)
	}
	if e.To != "" {
		b = append(b, `,"to":`...)
		b = appendString(b, e.To)
	}
	if e.From != "" {
		b = append(b, `,"from":`...)
		b = appendString(b, e.From)
	}
	if len(e.Body) > 0 {
		b = append(b, `,"body":`...)
		b = append(b, e.Body...)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string, byte for byte what encoding/json writes.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // never fails for a string
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Unmarshal decodes and validates one envelope: msg must be a JSON object no larger than MaxEnvelopeBytes,
// with v == Version, a non-empty t, id/to/from within their length limits, and a body that is absent, null or
// a JSON object. The returned envelope does not share memory with msg.
func Unmarshal(msg []byte) (*Envelope, error) {
	return unmarshalLimit(msg, MaxEnvelopeBytes, false)
}

// unmarshalLimit is Unmarshal with another size limit. With own, the caller hands msg over and the body may
// alias it, which saves copying a reassembled envelope of megabytes.
func unmarshalLimit(msg []byte, limit int, own bool) (*Envelope, error) {
	if len(msg) > limit {
		return nil, fmt.Errorf("unmarshal envelope: %d bytes exceeds the %d-byte limit", len(msg), limit)
	}
	members, err := scanObject(msg, true)
	if err != nil {
		return nil, fmt.Errorf("unmarshal envelope: %w", err)
	}
	// The header is decoded by the same code as PeekHeader's, so the relay and the peers cannot disagree
	// about it; the result is what encoding/json would decode into an Envelope.
	h, err := headerFromMembers(msg, members)
	if err != nil {
		return nil, fmt.Errorf("unmarshal envelope: %w", err)
	}
	if err := validateHeader(h); err != nil {
		return nil, fmt.Errorf("unmarshal envelope: %w", err)
	}
	e := &Envelope{V: h.V, T: h.T, ID: h.ID, To: h.To, From: h.From}
	var body []byte
	for _, m := range members {
		if strings.EqualFold(m.key, "body") {
			body = msg[m.valStart:m.end] // the last one wins, as in encoding/json
		}
	}
	if body != nil {
		if !isObjectOrNull(body) {
			return nil, fmt.Errorf("unmarshal %s envelope: body is not a JSON object", e.T)
		}
		switch {
		case bytes.Equal(body, jsonNull):
		case own:
			e.Body = body[:len(body):len(body)]
		default:
			e.Body = bytes.Clone(body)
		}
	}
	return e, nil
}

var jsonNull = []byte("null")

func headerOf(e *Envelope) Header {
	return Header{V: e.V, T: e.T, ID: e.ID, To: e.To, From: e.From}
}

// validateHeader checks what every envelope must satisfy. It is shared by Marshal, Unmarshal, PeekHeader and
// Restamp so the relay and the peers agree on what is valid.
func validateHeader(h Header) error {
	switch {
	case h.V != Version:
		return fmt.Errorf("unsupported protocol version %d (want %d)", h.V, Version)
	case h.T == "":
		return errors.New(`missing message type "t"`)
	case len(h.T) > MaxTypeLen:
		return fmt.Errorf(`message type "t" is %d bytes, longer than %d`, len(h.T), MaxTypeLen)
	case len(h.ID) > MaxIDLen:
		return fmt.Errorf(`message id "id" is %d bytes, longer than %d`, len(h.ID), MaxIDLen)
	case len(h.To) > MaxPeerLen:
		return fmt.Errorf(`peer id "to" is %d bytes, longer than %d`, len(h.To), MaxPeerLen)
	case len(h.From) > MaxPeerLen:
		return fmt.Errorf(`peer id "from" is %d bytes, longer than %d`, len(h.From), MaxPeerLen)
	case !utf8.ValidString(string(h.T)) || !utf8.ValidString(h.ID) || !utf8.ValidString(h.To) ||
		!utf8.ValidString(h.From):
		// JSON would silently turn the invalid bytes into U+FFFD, and the peer would see another id.
		return errors.New("header field is not valid UTF-8")
	}
	return nil
}

// isObjectOrNull reports whether raw (assumed to be one JSON value) is an object or the literal null.
func isObjectOrNull(raw []byte) bool {
	i := skipWS(raw, 0)
	if i >= len(raw) {
		return false
	}
	if raw[i] == '{' {
		return true
	}
	return bytes.Equal(bytes.TrimSpace(raw), jsonNull)
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

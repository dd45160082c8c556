package wire

import (
	"encoding/base64"
)

// decodeChunkBody decodes a chunk body. Chunks written by SplitWith take a direct path that reads each field
// once; anything else (escapes, unknown or repeated keys, other spellings of the keys, null) goes through
// encoding/json, which stays the definition of what a body means.
func decodeChunkBody(e *Envelope) (Chunk, error) {
	if c, ok := fastChunk(e.Body); ok {
		return c, nil
	}
	var c Chunk
	if err := e.DecodeBody(&c); err != nil {
		return Chunk{}, err
	}
	return c, nil
}

// fastChunk decodes body if every member is one of Chunk's keys, spelled exactly, once, with a value in its
// plainest form. Because every member is checked, a body it accepts is valid JSON that encoding/json decodes
// to the same Chunk.
func fastChunk(body []byte) (Chunk, bool) {
	var c Chunk
	members, err := scanObject(body, false)
	if err != nil {
		return c, false
	}
	var seen uint8
	for _, m := range members {
		v := body[m.valStart:m.end]
		var bit uint8
		ok := true
		switch m.key {
		case "msg":
			bit = 1 << 0
			c.Msg, ok = plainString(v)
		case "seq":
			bit = 1 << 1
			c.Seq, ok = plainInt(v)
		case "count":
			bit = 1 << 2
			c.Count, ok = plainInt(v)
		case "size":
			bit = 1 << 3
			c.Size, ok = plainInt(v)
		case "sum":
			bit = 1 << 4
			c.Sum, ok = plainString(v)
		case "enc":
			bit = 1 << 5
			c.Enc, ok = plainString(v)
		case "data":
			bit = 1 << 6
			c.Data, ok = plainBase64(v)
		default:
			return c, false
		}
		if !ok || seen&bit != 0 {
			return c, false
		}
		seen |= bit
	}
	return c, true
}

// plainString accepts a JSON string of printable ASCII without escapes.
func plainString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	return string(v[1 : len(v)-1]), true
}

// plainInt accepts a JSON integer without exponent or fraction, small enough not to overflow.
func plainInt(v []byte) (int, bool) {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 15 || (v[0] == '0' && len(v) > 1) {
		return 0, false
	}
	n := 0
	for _, c := range v {
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

// plainBase64 decodes a JSON string of standard base64, as encoding/json decodes a []byte.
func plainBase64(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	s := v[1 : len(v)-1]
	// Base64 has no quotes, escapes or control characters; anything else is left to encoding/json, and so are
	// bytes ≥ 0x80, which the decoder below rejects.
	if plainRun(s, 0) != len(s) {
		return nil, false
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, s)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

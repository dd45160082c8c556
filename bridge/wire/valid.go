package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// validJSON reports whether b is exactly one JSON value (with optional surrounding whitespace), accepting
// exactly what json.Valid accepts. It exists because envelopes are validated on every hop and their bodies
// are mostly long base64 strings, which encoding/json's byte-at-a-time state machine walks several times
// slower than the tight string loop here. FuzzValidJSON checks it against json.Valid.
func validJSON(b []byte) error {
	i := skipWS(b, 0)
	end, err := validValue(b, i, 0)
	if err != nil {
		return err
	}
	if j := skipWS(b, end); j != len(b) {
		return fmt.Errorf("offset %d: data after the JSON value", j)
	}
	return nil
}

// validValue validates the value starting at b[i] and returns the offset just past it.
func validValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("unexpected end of input, expected a value")
	}
	switch c := b[i]; {
	case c == '"':
		return validString(b, i)
	case c == '{':
		return validObject(b, i, depth+1)
	case c == '[':
		return validArray(b, i, depth+1)
	case c == '-' || ('0' <= c && c <= '9'):
		return validNumber(b, i)
	case c == 't':
		return validLiteral(b, i, "true")
	case c == 'f':
		return validLiteral(b, i, "false")
	case c == 'n':
		return validLiteral(b, i, "null")
	default:
		return 0, fmt.Errorf("offset %d: invalid character %q looking for a value", i, c)
	}
}

func validLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, fmt.Errorf("offset %d: invalid literal, expected %s", i, lit)
	}
	return i + len(lit), nil
}

// validString validates the string starting at b[i] == '"' and returns the offset just past it.
func validString(b []byte, i int) (int, error) {
	j := i + 1
	for {
		// The common case: a run of ordinary characters (base64 data is nothing else).
		j = plainRun(b, j)
		if j >= len(b) {
			return 0, fmt.Errorf("offset %d: unterminated string", i)
		}
		switch b[j] {
		case '"':
			return j + 1, nil
		case '\\':
			if j+1 >= len(b) {
				return 0, fmt.Errorf("offset %d: unterminated string", i)
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if len(b)-j < 6 || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) || !isHex(b[j+5]) {
					return 0, fmt.Errorf("offset %d: invalid \\u escape", j)
				}
				j += 6
			default:
				return 0, fmt.Errorf("offset %d: invalid escape \\%c", j, b[j+1])
			}
		default:
			return 0, fmt.Errorf("offset %d: control character in string", j)
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte, i int) (int, error) {
	j := i
	if b[j] == '-' {
		j++
	}
	digits := func() int {
		k := j
		for k < len(b) && '0' <= b[k] && b[k] <= '9' {
			k++
		}
		return k - j
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case digits() > 0:
		j += digits()
	default:
		return 0, fmt.Errorf("offset %d: invalid number", i)
	}
	if j < len(b) && b[j] == '.' {
		j++
		n := digits()
		if n == 0 {
			return 0, fmt.Errorf("offset %d: invalid number", i)
		}
		j += n
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		n := digits()
		if n == 0 {
			return 0, fmt.Errorf("offset %d: invalid number", i)
		}
		j += n
	}
	return j, nil
}

func validObject(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("offset %d: nested deeper than %d", i, maxDepth)
	}
	j := skipWS(b, i+1)
	if j < len(b) && b[j] == '}' {
		return j + 1, nil
	}
	for {
		if j >= len(b) || b[j] != '"' {
			return 0, fmt.Errorf("offset %d: expected a string key", j)
		}
		end, err := validString(b, j)
		if err != nil {
			return 0, err
		}
		j = skipWS(b, end)
		if j >= len(b) || b[j] != ':' {
			return 0, fmt.Errorf("offset %d: expected ':' after key", j)
		}
		if j, err = validValue(b, skipWS(b, j+1), depth); err != nil {
			return 0, err
		}
		j = skipWS(b, j)
		if j >= len(b) {
			return 0, errors.New("unexpected end of input in object")
		}
		switch b[j] {
		case '}':
			return j + 1, nil
		case ',':
			j = skipWS(b, j+1)
		default:
			return 0, fmt.Errorf("offset %d: expected ',' or '}' in object", j)
		}
	}
}

func validArray(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("offset %d: nested deeper than %d", i, maxDepth)
	}
	j := skipWS(b, i+1)
	if j < len(b) && b[j] == ']' {
		return j + 1, nil
	}
	for {
		var err error
		if j, err = validValue(b, j, depth); err != nil {
			return 0, err
		}
		j = skipWS(b, j)
		if j >= len(b) {
			return 0, errors.New("unexpected end of input in array")
		}
		switch b[j] {
		case ']':
			return j + 1, nil
		case ',':
			j = skipWS(b, j+1)
		default:
			return 0, fmt.Errorf("offset %d: expected ',' or ']' in array", j)
		}
	}
}

// plainRun returns the index of the first byte at or after j that is '"', '\\' or a control character, or
// len(b). Strings on the wire are mostly megabytes of base64, so it looks at eight bytes at a time.
func plainRun(b []byte, j int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; j+8 <= len(b); j += 8 {
		w := binary.LittleEndian.Uint64(b[j:])
		quote := w ^ (ones * '"')
		slash := w ^ (ones * '\\')
		special := ((w - ones*0x20) & ^w) | ((quote - ones) & ^quote) | ((slash - ones) & ^slash)
		if special&highs != 0 {
			break
		}
	}
	for j < len(b) && b[j] >= 0x20 && b[j] != '"' && b[j] != '\\' {
		j++
	}
	return j
}

// Valid reports whether b is one valid JSON value, exactly as json.Valid does, several times faster on the
// long strings Lambda payloads are made of.
func Valid(b []byte) bool { return validJSON(b) == nil }

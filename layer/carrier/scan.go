package carrier

import (
	"encoding/json"
	"strings"
)

// The scanner below walks JSON that json.Valid has accepted, recording where members and values start and end so
// that a knock can be cut out without re-encoding anything. It does not validate: on valid input each step is
// unambiguous.

// member is one member of an object: its key [k0, k1) with the quotes, its value [v0, v1).
type member struct{ k0, k1, v0, v1 int }

// key returns the member's key as it is spelled, without the quotes and without decoding escapes.
func (m member) key(b []byte) []byte { return b[m.k0+1 : m.k1-1] }

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default: // number, true, false, null
		for i < len(b) && !strings.ContainsRune(",}] \t\n\r", rune(b[i])) {
			i++
		}
		return i
	}
}

// members lists the members of the object starting at b[i] == '{' and returns the index after it.
func members(b []byte, i int) ([]member, int) {
	var ms []member
	i = skipWS(b, i+1)
	if b[i] == '}' {
		return ms, i + 1
	}
	for {
		var m member
		m.k0 = i
		m.k1 = skipString(b, i)
		i = skipWS(b, m.k1)
		i = skipWS(b, i+1) // ':'
		m.v0 = i
		m.v1 = skipValue(b, i)
		ms = append(ms, m)
		i = skipWS(b, m.v1)
		if b[i] == '}' {
			return ms, i + 1
		}
		i = skipWS(b, i+1) // ','
	}
}

// elements lists where the values of the array starting at b[i] == '[' start.
func elements(b []byte, i int) []int {
	var es []int
	i = skipWS(b, i+1)
	if b[i] == ']' {
		return es
	}
	for {
		es = append(es, i)
		i = skipWS(b, skipValue(b, i))
		if b[i] == ']' {
			return es
		}
		i = skipWS(b, i+1)
	}
}

// field finds the member named name (exactly) of the object that is m's value.
func field(b []byte, m member, name string) (member, bool) {
	if b[m.v0] != '{' {
		return member{}, false
	}
	ms, _ := members(b, m.v0)
	for _, f := range ms {
		if string(f.key(b)) == name {
			return f, true
		}
	}
	return member{}, false
}

// stringValue returns m's value if it is a string, decoded; "" otherwise.
func stringValue(b []byte, m member) string {
	v := b[m.v0:m.v1]
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	if !strings.ContainsRune(string(v), '\\') {
		return string(v[1 : len(v)-1])
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// cutMembers appends to cuts the spans that remove the members marked in drop from their object, keeping the rest
// valid JSON: a dropped member followed by a kept one goes with the comma and whitespace after it; a run of dropped
// members at the end goes with the comma before it; if all go, the object keeps only its braces and the whitespace
// before the first member.
func cutMembers(ms []member, drop []bool, cuts []span) []span {
	n := len(ms)
	t := n // the first of the trailing run of dropped members
	for t > 0 && drop[t-1] {
		t--
	}
	for i := 0; i < t; i++ {
		if drop[i] {
			cuts = append(cuts, span{ms[i].k0, ms[i+1].k0})
		}
	}
	switch {
	case t == n:
	case t > 0:
		cuts = append(cuts, span{ms[t-1].v1, ms[n-1].v1})
	default:
		cuts = append(cuts, span{ms[0].k0, ms[n-1].v1})
	}
	return cuts
}

// cut returns a copy of b without the spans (which do not overlap), or b itself when there are none.
func cut(b []byte, cuts []span) []byte {
	if len(cuts) == 0 {
		return b
	}
	sortSpans(cuts)
	out := make([]byte, 0, len(b))
	at := 0
	for _, c := range cuts {
		if c.from < at { // overlapping spans cannot happen; never copy anything twice if they did
			c.from = at
		}
		if c.to <= at {
			continue
		}
		out = append(out, b[at:c.from]...)
		at = c.to
	}
	return append(out, b[at:]...)
}

func sortSpans(s []span) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].from < s[j-1].from; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

package knock

import (
	"fmt"
	"strings"
)

// Route is a parsed route pattern, "METHOD /path/glob": the method is an upper-case HTTP method, or "*" or "ANY"
// for every method; in the path, "*" matches any run of characters within one segment (no '/') and "**" any run
// across segments, everything else matches itself. So "POST /orders/*" matches POST /orders/42 but not
// /orders/42/items, and "GET /static/**" matches everything under /static/. Patterns are matched against the raw
// path the event carries (still percent-encoded).
type Route struct {
	Method string // "" for any method
	parts  []part
}

type part struct {
	lit  string // when star == 0
	star int    // 1 for "*", 2 for "**"
}

// MaxMatchPathLen is the longest request path a Route matches.
const MaxMatchPathLen = 16 * 1024

// ParseRoute parses a route pattern. Errors wrap ErrMalformed.
func ParseRoute(s string) (Route, error) {
	if len(s) > MaxRouteLen {
		return Route{}, fmt.Errorf("%w: route longer than %d bytes", ErrMalformed, MaxRouteLen)
	}
	m, p, ok := strings.Cut(s, " ")
	if !ok {
		return Route{}, fmt.Errorf("%w: route is not \"METHOD /path\"", ErrMalformed)
	}
	var r Route
	switch {
	case m == "*" || m == "ANY":
	case validMethod(m):
		r.Method = m
	default:
		return Route{}, fmt.Errorf("%w: route method is not an HTTP method", ErrMalformed)
	}
	if !validPath(p) {
		return Route{}, fmt.Errorf("%w: route path is not an absolute path", ErrMalformed)
	}
	for p != "" {
		i := strings.IndexByte(p, '*')
		if i < 0 {
			r.parts = append(r.parts, part{lit: p})
			break
		}
		if i > 0 {
			r.parts = append(r.parts, part{lit: p[:i]})
		}
		n := 1
		for i+n < len(p) && p[i+n] == '*' {
			n++
		}
		if n > 2 {
			return Route{}, fmt.Errorf("%w: route path has more than two stars in a row", ErrMalformed)
		}
		r.parts = append(r.parts, part{star: n})
		p = p[i+n:]
	}
	return r, nil
}

// Match tells whether a request with this method and raw path matches the route. It runs in time proportional to
// the pattern's parts times the path's length, whatever the path: the path comes from the caller.
func (r Route) Match(method, path string) bool {
	if r.Method != "" && r.Method != method {
		return false
	}
	// No HTTP front door of AWS passes a URL this long; refusing it keeps the matcher's memory small whatever a
	// hand-made event says.
	if len(path) > MaxMatchPathLen {
		return false
	}
	// at[j]: the parts so far can match path[:j].
	at := make([]bool, len(path)+1)
	next := make([]bool, len(path)+1)
	at[0] = true
	for _, pt := range r.parts {
		clear(next)
		switch pt.star {
		case 0:
			for j := 0; j+len(pt.lit) <= len(path); j++ {
				if at[j] && path[j:j+len(pt.lit)] == pt.lit {
					next[j+len(pt.lit)] = true
				}
			}
		default:
			reach := false
			for j := 0; j <= len(path); j++ {
				if pt.star == 1 && j > 0 && path[j-1] == '/' {
					reach = false // a single star does not cross a '/'
				}
				reach = reach || at[j]
				next[j] = reach
			}
		}
		at, next = next, at
	}
	return at[len(path)]
}

package dap

import (
	"encoding/json"
	"fmt"
	"strings"
)

func (s *session) handlesFor(kind idKind) *handles[ref] {
	switch kind {
	case kindThread:
		return s.threads
	case kindFrame:
		return s.frames
	case kindVar:
		return s.vars
	case kindSource:
		return s.sources
	}
	return nil
}

// toIDE rewrites a debuggee's ids into the adapter's.
func (s *session) toIDE(d *debuggee, body json.RawMessage) json.RawMessage {
	return remap(body, func(kind idKind, id int) (int, bool) {
		if kind == kindBreakpoint {
			return s.bpRemote.peek(ref{d, id})
		}
		return s.handlesFor(kind).get(ref{d, id}), true
	})
}

// fromIDE rewrites the adapter's ids in request arguments into one debuggee's, which it picks from them. A nil
// debuggee means the arguments name none.
func (s *session) fromIDE(args json.RawMessage) (*debuggee, json.RawMessage, error) {
	var target *debuggee
	var bad error
	out := remap(args, func(kind idKind, id int) (int, bool) {
		h := s.handlesFor(kind)
		if h == nil {
			return 0, false
		}
		r, ok := h.lookup(id)
		if !ok {
			if bad == nil {
				bad = fmt.Errorf("unknown %s %d", kindName(kind), id)
			}
			return 0, false
		}
		if target == nil {
			target = r.d
		} else if target != r.d && bad == nil {
			bad = fmt.Errorf("%s %d belongs to another function", kindName(kind), id)
		}
		return r.id, true
	})
	return target, out, bad
}

func kindName(k idKind) string {
	switch k {
	case kindThread:
		return "threadId"
	case kindFrame:
		return "frameId"
	case kindVar:
		return "variablesReference"
	case kindSource:
		return "sourceReference"
	}
	return "breakpoint id"
}

// nameThreads names each thread "<FunctionLogicalId> <request id>" (invocation threads) or
// "<FunctionLogicalId> <thread name>".
func (s *session) nameThreads(d *debuggee, body json.RawMessage) json.RawMessage {
	b, err := parseObj(body)
	if err != nil {
		return body
	}
	var threads []obj
	if json.Unmarshal(b["threads"], &threads) != nil {
		return body
	}
	for _, t := range threads {
		t.set("name", threadName(d.fn, t.str("name")))
	}
	b.set("threads", threads)
	return b.bytes()
}

func threadName(fn, name string) string {
	if rid, ok := strings.CutPrefix(name, "plldb-invoke "); ok {
		return fn + " " + rid
	}
	return fn + " " + name
}

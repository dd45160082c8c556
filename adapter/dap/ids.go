package dap

import (
	"encoding/json"
	"fmt"
)

// mapToIDE turns one of a debuggee's ids into the adapter's. New frame and variable ids belong to owner, the IDE
// thread whose stop they describe (0: none), so that they are reset with it.
func (s *session) mapToIDE(d *debuggee, kind idKind, id, owner int) (int, bool) {
	switch kind {
	case kindBreakpoint:
		return s.bpRemote.peek(ref{d, id})
	case kindThread:
		t, ok := s.threads.current(d, id)
		return t.id, ok
	case kindFrame:
		return s.frames.getOwned(ref{d, id}, owner), true
	case kindVar:
		return s.vars.getOwned(ref{d, id}, owner), true
	case kindSource:
		return s.sources.get(ref{d, id}), true
	}
	return 0, false
}

// toIDE rewrites a debuggee's ids into the adapter's (see mapToIDE for owner).
func (s *session) toIDE(d *debuggee, body json.RawMessage, owner int) json.RawMessage {
	return remap(body, func(kind idKind, id int) (int, bool) { return s.mapToIDE(d, kind, id, owner) })
}

// target is what a request's ids name: the debuggee they belong to (nil: none), and the IDE thread whose stop
// they belong to (0: none).
type target struct {
	d      *debuggee
	thread int
}

// fromIDE rewrites the adapter's ids in request arguments into one debuggee's, which it picks from them.
func (s *session) fromIDE(args json.RawMessage) (target, json.RawMessage, error) {
	var tg target
	var bad error
	out := remap(args, func(kind idKind, id int) (int, bool) {
		var d *debuggee
		var rid, owner int
		switch kind {
		case kindThread:
			t, ok := s.threads.lookup(id)
			if !ok {
				break
			}
			d, rid, owner = t.d, t.tid, t.id
		case kindFrame, kindVar, kindSource:
			h := s.frames
			switch kind {
			case kindVar:
				h = s.vars
			case kindSource:
				h = s.sources
			}
			r, ok := h.lookup(id)
			if !ok {
				break
			}
			d, rid, owner = r.d, r.id, h.ownerOf(id)
		default:
			return 0, false
		}
		if d == nil {
			if bad == nil {
				bad = fmt.Errorf("unknown %s %d", kindName(kind), id)
			}
			return 0, false
		}
		if tg.d == nil {
			tg.d = d
		} else if tg.d != d && bad == nil {
			bad = fmt.Errorf("%s %d belongs to another function", kindName(kind), id)
		}
		if tg.thread == 0 {
			tg.thread = owner
		}
		return rid, true
	})
	return tg, out, bad
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

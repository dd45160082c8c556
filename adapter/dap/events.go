package dap

import (
	"context"
	"encoding/json"
	"sort"
	"time"
)

func (s *session) onDebuggeeEvent(d *debuggee, m obj) {
	event := m.str("event")
	switch event {
	case "terminated", "exited", "process", "debugpyWaitingForServer":
		return // the adapter's session outlives any one executor
	case "breakpoint":
		body, ok := m.sub("body")
		if !ok {
			return
		}
		bp, ok := body.sub("breakpoint")
		if !ok {
			return
		}
		rid, _ := bp.num("id")
		id, ok := s.bpRemote.peek(ref{d, rid})
		if !ok {
			return
		}
		bp.set("id", id)
		if src, ok := bp["source"]; ok {
			bp["source"] = s.toIDE(d, src)
		}
		s.breakpointChanged(bp)
		return
	}
	if body, ok := m["body"]; ok {
		m["body"] = s.toIDE(d, body)
	}
	switch event {
	case "stopped":
		body, _ := m.sub("body")
		tid, _ := body.num("threadId")
		s.mu.Lock()
		s.stopped[tid] = true
		s.lastStop = d
		s.mu.Unlock()
		if body.boolean("allThreadsStopped") {
			body.set("allThreadsStopped", false)
			m["body"] = body.bytes()
			s.send(m)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.stopOthers(d, tid, body.str("reason"))
			}()
			return
		}
	case "continued":
		body, _ := m.sub("body")
		tid, _ := body.num("threadId")
		all := body.boolean("allThreadsContinued")
		others := s.resumed(d, tid, all)
		if all {
			body.set("allThreadsContinued", false)
			m["body"] = body.bytes()
			s.send(m)
			s.sendContinued(others)
			return
		}
	case "thread":
		body, _ := m.sub("body")
		if body.str("reason") == "exited" {
			tid, _ := body.num("threadId")
			s.mu.Lock()
			delete(s.stopped, tid)
			s.mu.Unlock()
		}
	}
	s.send(m)
}

// stopOthers tells the IDE about the other threads of a debuggee that stopped all its threads, without
// stealing focus, so that the IDE's view matches debugpy's while other functions keep running.
func (s *session) stopOthers(d *debuggee, tid int, reason string) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	resp, err := d.request(ctx, "threads", nil)
	if err != nil || !resp.boolean("success") {
		return
	}
	var b struct {
		Threads []struct {
			ID int `json:"id"`
		} `json:"threads"`
	}
	if json.Unmarshal(s.toIDE(d, resp["body"]), &b) != nil {
		return
	}
	for _, t := range b.Threads {
		s.mu.Lock()
		if !s.stopped[tid] { // continued meanwhile: the others were released with it
			s.mu.Unlock()
			return
		}
		already := t.ID == tid || s.stopped[t.ID]
		if !already {
			s.stopped[t.ID] = true
		}
		s.mu.Unlock()
		if !already {
			s.sendEvent("stopped", map[string]any{"reason": reason, "threadId": t.ID, "allThreadsStopped": false, "preserveFocusHint": true})
		}
	}
}

// resumed records that thread tid (an adapter id) of d runs again, and with all every other thread of d the IDE
// believes stopped. It returns those others, for sendContinued: a continue, or a continued event, that says all
// threads continued would make the IDE release the stopped threads of other functions as well.
func (s *session) resumed(d *debuggee, tid int, all bool) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.stopped, tid)
	if !all {
		return nil
	}
	return s.takeStopped(d)
}

// takeStopped removes d's threads from the ones the IDE believes stopped and returns their adapter ids, sorted.
// The caller holds s.mu.
func (s *session) takeStopped(d *debuggee) []int {
	var ids []int
	for id := range s.stopped {
		if r, ok := s.threads.lookup(id); ok && r.d == d {
			ids = append(ids, id)
			delete(s.stopped, id)
		}
	}
	sort.Ints(ids)
	return ids
}

// sendContinued tells the IDE that each of threads continued, one at a time (allThreadsContinued false).
func (s *session) sendContinued(threads []int) {
	for _, id := range threads {
		s.sendEvent("continued", map[string]any{"threadId": id, "allThreadsContinued": false})
	}
}

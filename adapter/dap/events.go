package dap

import (
	"context"
	"encoding/json"
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
		var others []int
		s.mu.Lock()
		delete(s.stopped, tid)
		if body.boolean("allThreadsContinued") {
			for id := range s.stopped {
				if r, ok := s.threads.lookup(id); ok && r.d == d {
					others = append(others, id)
					delete(s.stopped, id)
				}
			}
		}
		s.mu.Unlock()
		if body.boolean("allThreadsContinued") {
			body.set("allThreadsContinued", false)
			m["body"] = body.bytes()
			s.send(m)
			for _, id := range others {
				s.sendEvent("continued", map[string]any{"threadId": id, "allThreadsContinued": false})
			}
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

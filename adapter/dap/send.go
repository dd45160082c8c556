package dap

import "fmt"

func (s *session) send(m obj) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.seq++
	m.set("seq", s.seq)
	if err := writeFrame(s.rw, m.bytes()); err != nil {
		s.log.Debug("write to IDE", "err", err)
	}
}

func (s *session) sendEvent(event string, body any) {
	m := obj{}
	m.set("type", "event")
	m.set("event", event)
	if body != nil {
		m.set("body", body)
	}
	s.send(m)
}

func (s *session) respond(req request, body any) {
	m := obj{}
	m.set("type", "response")
	m.set("request_seq", req.seq)
	m.set("command", req.command)
	m.set("success", true)
	if o, ok := body.(obj); ok {
		m["body"] = o.bytes()
	} else if body != nil {
		m.set("body", body)
	}
	s.send(m)
}

func (s *session) respondErr(req request, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	m := obj{}
	m.set("type", "response")
	m.set("request_seq", req.seq)
	m.set("command", req.command)
	m.set("success", false)
	m.set("message", msg)
	m.set("body", map[string]any{"error": map[string]any{"id": 1, "format": msg, "showUser": true}})
	s.send(m)
}

// relay answers the IDE with a debuggee's response, ids translated and request_seq rewritten.
func (s *session) relay(req request, d *debuggee, resp obj) {
	resp.set("request_seq", req.seq)
	resp.set("command", req.command)
	if body, ok := resp["body"]; ok {
		resp["body"] = s.toIDE(d, body)
		if req.command == "threads" {
			resp["body"] = s.nameThreads(d, resp["body"])
		}
	}
	s.send(resp)
}

func (s *session) output(category, text string) {
	s.sendEvent("output", map[string]any{"category": category, "output": text})
}

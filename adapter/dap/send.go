package dap

import (
	"encoding/json"
	"fmt"
	"strconv"

	godap "github.com/google/go-dap"
)

// Every write to the IDE goes through the two senders below, which number the messages under wmu. The messages
// the adapter builds itself are go-dap's types (sendMsg); the ones it proxies from debugpy stay raw JSON (send),
// so fields and events this adapter does not know reach the IDE unchanged.

// send writes a proxied message, numbering it (its own "seq" is left as it was).
func (s *session) send(m obj) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.seq++
	var seq [20]byte
	s.out.start()
	s.out.b = m.appendTo(s.out.b, "seq", strconv.AppendInt(seq[:0], int64(s.seq), 10))
	if _, err := s.rw.Write(s.out.finish()); err != nil {
		s.log.Debug("write to IDE", "err", err)
	}
}

// sendMsg writes a message the adapter built, numbering it.
func (s *session) sendMsg(m godap.Message) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.seq++
	switch v := m.(type) {
	case godap.ResponseMessage:
		v.GetResponse().Seq = s.seq
	case godap.EventMessage:
		v.GetEvent().Seq = s.seq
	}
	s.out.start()
	enc := json.NewEncoder(&s.out)
	if err := enc.Encode(m); err != nil {
		s.log.Error("encode a message for the IDE", "err", err) // only go-dap types of plain values: a bug
		return
	}
	s.out.b = s.out.b[:len(s.out.b)-1] // Encode's newline
	if _, err := s.rw.Write(s.out.finish()); err != nil {
		s.log.Debug("write to IDE", "err", err)
	}
}

func (s *session) newEvent(event string) godap.Event {
	return godap.Event{ProtocolMessage: godap.ProtocolMessage{Type: "event"}, Event: event}
}

func (s *session) newResponse(req request) godap.Response {
	return godap.Response{ProtocolMessage: godap.ProtocolMessage{Type: "response"}, Command: req.command, RequestSeq: req.seq, Success: true}
}

// ack answers a request whose response has no body.
func (s *session) ack(req request) {
	r := s.newResponse(req)
	s.sendMsg(&r)
}

func (s *session) respondErr(req request, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r := &godap.ErrorResponse{Response: s.newResponse(req)}
	r.Success = false
	r.Message = msg
	r.Body.Error = &godap.ErrorMessage{Id: 1, Format: msg, ShowUser: true}
	s.sendMsg(r)
}

// relay answers the IDE with a debuggee's response, ids translated (new frame and variable ids owned by IDE
// thread owner) and request_seq rewritten.
func (s *session) relay(req request, d *debuggee, resp obj, owner int) {
	resp.set("request_seq", req.seq)
	resp.set("command", req.command)
	if body, ok := resp["body"]; ok {
		resp["body"] = s.toIDE(d, body, owner)
	}
	s.send(resp)
}

func (s *session) output(category, text string) {
	s.sendMsg(&godap.OutputEvent{Event: s.newEvent("output"), Body: godap.OutputEventBody{Category: category, Output: text}})
}

package dap

import (
	"encoding/json"

	godap "github.com/google/go-dap"
)

// onDebuggeeEvent handles an event from a debuggee, on that debuggee's reader. Events of one debuggee reach the
// IDE in the order debugpy sent them: while a stop waits for its thread's name (resolveStop), later events of
// the same debuggee wait behind it in d.held.
func (s *session) onDebuggeeEvent(d *debuggee, m obj) {
	if d.resolving {
		d.held = append(d.held, m)
		return
	}
	s.debuggeeEvent(d, m)
}

// releaseHeld handles the events that waited behind a stop, until one of them is a stop that waits in turn.
func (s *session) releaseHeld(d *debuggee) {
	for len(d.held) > 0 && !d.resolving {
		m := d.held[0]
		d.held = d.held[1:]
		s.debuggeeEvent(d, m)
	}
}

func (s *session) debuggeeEvent(d *debuggee, m obj) {
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
			bp["source"] = s.toIDE(d, src, 0)
		}
		s.breakpointChanged(bp)
		return
	case "stopped":
		s.stopped(d, m)
		return
	case "continued":
		body, _ := m.sub("body")
		tid, _ := body.num("threadId")
		t, ok := s.threads.current(d, tid)
		if !ok {
			return // one of the executor's own threads, or one the IDE never saw
		}
		s.resetHandles(t.id)
		// DAP wants continued only for resumes no request implied: a continue or step the IDE sent already
		// marked the thread running.
		if was, _ := s.threads.setStopped(t.id, false); !was {
			return
		}
		ev := &godap.ContinuedEvent{Event: s.newEvent("continued"), Body: godap.ContinuedEventBody{ThreadId: t.id, AllThreadsContinued: false}}
		s.sendMsg(ev)
		return
	case "thread":
		body, _ := m.sub("body")
		if body.str("reason") != "exited" {
			// A started thread has no name yet the IDE could see (the executor's own threads start as
			// plldb-idle); the IDE learns threads from the threads request, which every stop prompts.
			return
		}
		tid, _ := body.num("threadId")
		if t, ok := s.threads.current(d, tid); ok {
			s.threadGone(t)
		}
		return
	}
	if body, ok := m["body"]; ok {
		m["body"] = s.toIDE(d, body, 0)
	}
	s.send(m)
}

// stopped handles debugpy's stopped event for one of its threads. Which threads run handler code changes with
// every invocation (pool threads are renamed), so the stop first asks debugpy for the thread's name: a stop of
// one of the executor's own threads is resumed and never shown; a handler thread's stop reaches the IDE as the
// one stopped event for that thread, with the reason debugpy gave and allThreadsStopped false.
func (s *session) stopped(d *debuggee, m obj) {
	body, _ := m.sub("body")
	tid, ok := body.num("threadId")
	if !ok {
		s.log.Warn("debugpy sent a stopped event without a threadId; dropping it", "function", d.fn)
		return
	}
	d.resolving = true
	err := d.startFunc("threads", nil, func(resp obj, ok bool) {
		d.resolving = false
		if ok {
			s.resolveStop(d, m, body, tid, resp)
		}
		s.releaseHeld(d)
	})
	if err != nil {
		d.resolving = false
		s.log.Debug("ask debugpy for the stopped thread's name", "function", d.fn, "err", err)
	}
}

func (s *session) resolveStop(d *debuggee, m, body obj, tid int, resp obj) {
	name, found := "", false
	if resp.boolean("success") {
		for _, t := range debugpyThreads(resp) {
			if t.ID == tid {
				name, found = t.Name, true
				break
			}
		}
	}
	if found && hiddenThread(name) {
		// Only a pause of every thread could stop the executor's own threads; the IDE never asked for that and
		// could not resume them, and a paused main thread would hold up every later invocation.
		s.log.Debug("resuming one of the executor's own threads", "function", d.fn, "thread", name)
		args := mustJSON(map[string]any{"threadId": tid, "singleThread": true})
		if err := d.startFunc("continue", args, func(obj, bool) {}); err != nil {
			s.log.Debug("resume executor thread", "function", d.fn, "err", err)
		}
		return
	}
	if !found {
		// Never hide a stop the adapter cannot place: the invocation would stay paused with nobody to see it.
		name = "thread " + string(body["threadId"])
	}
	t := s.markStopped(d, tid, name)
	if b, err := parseObj(s.toIDE(d, m["body"], t.id)); err == nil {
		body = b
	}
	body.set("threadId", t.id)
	body.set("allThreadsStopped", false)
	m["body"] = body.bytes()
	s.send(m)
}

// debugpyThread is a thread in debugpy's threads response.
type debugpyThread struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

func debugpyThreads(resp obj) []debugpyThread {
	var b struct {
		Threads []debugpyThread `json:"threads"`
	}
	_ = json.Unmarshal(resp["body"], &b)
	return b.Threads
}

// bindThread gives debugpy thread tid of d its IDE thread, telling the IDE that the thread it replaces (the
// same pool thread in an invocation that has finished) exited.
func (s *session) bindThread(d *debuggee, tid int, name string) *ideThread {
	t, replaced := s.threads.bind(d, tid, name)
	if replaced != nil {
		s.threadGone(*replaced)
	}
	return t
}

// markStopped records that debugpy thread tid of d stopped: its IDE thread is bound, its frame and variable ids
// from an earlier stop are forgotten, and d becomes the debuggee requests without a thread go to.
func (s *session) markStopped(d *debuggee, tid int, name string) *ideThread {
	t := s.bindThread(d, tid, name)
	s.resetHandles(t.id)
	s.threads.setStopped(t.id, true)
	s.mu.Lock()
	s.lastStop = d
	s.mu.Unlock()
	return t
}

// resetHandles forgets the frame and variable ids of IDE thread id, which stopped anew or resumed: Delve's reset
// at every stop, limited to the thread whose debugpy ids changed (see handles).
func (s *session) resetHandles(id int) {
	s.frames.dropOwner(id)
	s.vars.dropOwner(id)
}

// threadGone tells the IDE that thread t exited (its invocation finished, or its executor went away) and forgets
// it.
func (s *session) threadGone(t ideThread) {
	s.threads.remove(t.id)
	s.resetHandles(t.id)
	s.sendMsg(&godap.ThreadEvent{Event: s.newEvent("thread"), Body: godap.ThreadEventBody{Reason: "exited", ThreadId: t.id}})
}

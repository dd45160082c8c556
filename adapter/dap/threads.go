package dap

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// The thread model. Each sandbox of a function (a debuggee of its own) runs one invocation at a time on its main
// thread, as awslambdaric does, which it names "plldb-invoke <request id>" while the handler runs and "plldb-idle"
// between invocations ("MainThread" before the first); its other threads (plldb-control reads requests,
// plldb-data reads bulk bodies) never run handler code.
// debugpy hides its own threads. The IDE sees only the threads that run handler code: one per invocation in
// flight, named "<FunctionLogicalId> <short request id>", plus any thread a handler starts, named
// "<FunctionLogicalId> <its name>".
//
// An IDE thread is one debugpy thread while it runs one invocation: when the sandbox's main thread takes the next
// invocation it becomes a new IDE thread with a new id, so an id the IDE kept from a finished invocation can
// never step or stop the next one.
//
// Every executor is attached with stopAllThreadsOnSuspend and steppingResumesAllThreads false: a breakpoint
// suspends only the thread that hit it, debugpy reports it with its own stopped event, the executor's main
// thread keeps taking invocations, and the adapter resumes one thread at a time (continue with singleThread).
// So a stop, continue or step of one invocation never touches another, even when both run in the same
// executor process. That is also why debugpy's "continue resumes every thread of the process" never applies
// here: a continue that released the other paused invocations of the same function would make them run on
// while the IDE still shows them paused (the nvim-dap bug this model fixes), and telling the IDE they
// continued would release breakpoints the developer is looking at.
//
// So when several handler threads of one executor are paused and the IDE continues one of them, only that one
// runs; the others stay paused, each with its own stop in the IDE, and the continue answers allThreadsContinued
// false (true only when no thread at all is left paused). DAP allows this without the
// supportsSingleThreadExecutionRequests capability: a continue may resume fewer threads than all if its answer
// says so. The capability is not advertised because it would change nothing: every continue already names and
// resumes one thread. pause, next, stepIn and stepOut act on the one thread as well (pydevd suspends only the
// named thread, and steppingResumesAllThreads is off).

// hiddenThread reports whether a debugpy thread name is one of the executor's own threads, which the IDE never
// sees. Names starting with "plldb-" are the executor's: a handler thread given such a name would be hidden, and
// a stop in it resumed at once.
func hiddenThread(name string) bool {
	if name == "MainThread" {
		return true
	}
	if strings.HasPrefix(name, invokeThreadPrefix) {
		return false
	}
	return strings.HasPrefix(name, "plldb-")
}

// invokeThreadPrefix starts the name the executor gives the thread running an invocation (executor.py, _invoke).
const invokeThreadPrefix = "plldb-invoke "

// threadName is the IDE's name for a debugpy thread of function fn: "<fn> <request id>" for an invocation
// (request ids are UUIDs, whose first 8 hex digits tell the invocations in flight apart and match the start of
// the id in the "→ fn <request id> started" line), "<fn> <name>" for a thread the handler started.
//
// Each concurrent invocation runs in a sandbox of its own, each a debuggee; the first sandbox's threads carry no
// more than that, and the others' say which sandbox they run in ("<fn> <request id> (sandbox 2)"), so two
// invocations of one function can be told apart at a glance and a developer sees that they share no state.
func threadName(fn string, sandbox int, name string) string {
	suffix := ""
	if sandbox > 1 {
		suffix = fmt.Sprintf(" (sandbox %d)", sandbox)
	}
	if rid, ok := strings.CutPrefix(name, invokeThreadPrefix); ok {
		if head, _, found := strings.Cut(rid, "-"); found && len(head) >= 8 {
			rid = head
		}
		return fn + " " + rid + suffix
	}
	return fn + " " + name + suffix
}

// sandboxKey names a sandbox's debuggee in session.debuggees.
func sandboxKey(fn string, sandbox int) string { return fmt.Sprintf("%s#%d", fn, sandbox) }

// ideThread is one thread as the IDE sees it.
type ideThread struct {
	id      int       // the IDE's id, never reused
	d       *debuggee // the debuggee it runs in
	tid     int       // debugpy's id for it
	name    string    // debugpy's name for it
	stopped bool      // the IDE has been told it stopped and not that it resumed
}

// threadTable maps debugpy threads to IDE threads and keeps which ones the IDE believes stopped.
type threadTable struct {
	mu   sync.Mutex
	next int
	byID map[int]*ideThread
	cur  map[ref]*ideThread // a debugpy thread → the IDE thread it currently is
}

func newThreadTable() *threadTable {
	return &threadTable{next: 1, byID: map[int]*ideThread{}, cur: map[ref]*ideThread{}}
}

// bind returns the IDE thread for debugpy thread tid of d named name, creating it when the debugpy thread is new
// or now runs something else (its name changed). replaced is the IDE thread it was before, now gone.
func (tt *threadTable) bind(d *debuggee, tid int, name string) (t, replaced *ideThread) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	r := ref{d, tid}
	if old, ok := tt.cur[r]; ok {
		if old.name == name {
			return old, nil
		}
		delete(tt.byID, old.id)
		replaced = old
	}
	t = &ideThread{id: tt.next, d: d, tid: tid, name: name}
	tt.next++
	tt.byID[t.id] = t
	tt.cur[r] = t
	return t, replaced
}

// lookup returns the IDE thread with IDE id id.
func (tt *threadTable) lookup(id int) (ideThread, bool) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	t, ok := tt.byID[id]
	if !ok {
		return ideThread{}, false
	}
	return *t, true
}

// current returns the IDE thread debugpy thread tid of d is now, if the IDE has one for it.
func (tt *threadTable) current(d *debuggee, tid int) (ideThread, bool) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	t, ok := tt.cur[ref{d, tid}]
	if !ok {
		return ideThread{}, false
	}
	return *t, true
}

// setStopped records whether the IDE believes thread id stopped and returns what it believed before.
func (tt *threadTable) setStopped(id int, stopped bool) (was bool, ok bool) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	t, ok := tt.byID[id]
	if !ok {
		return false, false
	}
	was = t.stopped
	t.stopped = stopped
	return was, true
}

// anyStopped reports whether the IDE believes any thread stopped.
func (tt *threadTable) anyStopped() bool {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	for _, t := range tt.byID {
		if t.stopped {
			return true
		}
	}
	return false
}

// remove forgets IDE thread id (its thread exited or went on to another invocation).
func (tt *threadTable) remove(id int) (ideThread, bool) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	t, ok := tt.byID[id]
	if !ok {
		return ideThread{}, false
	}
	delete(tt.byID, id)
	if tt.cur[ref{t.d, t.tid}] == t {
		delete(tt.cur, ref{t.d, t.tid})
	}
	return *t, true
}

// removeWhere forgets every IDE thread for which del is true and returns them, by IDE id.
func (tt *threadTable) removeWhere(del func(ideThread) bool) []ideThread {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	var out []ideThread
	for id, t := range tt.byID {
		if del(*t) {
			out = append(out, *t)
			delete(tt.byID, id)
			if tt.cur[ref{t.d, t.tid}] == t {
				delete(tt.cur, ref{t.d, t.tid})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

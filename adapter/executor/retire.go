package executor

// retire stops handing p out to new invocations and starts its replacement. Invoke calls it just before it
// kills a process for a timeout: until the kill is reaped (and exited runs) current would otherwise still return
// p, and an invocation arriving in that window was sent to a process about to die and answered
// Runtime.ExitError. The replacement starts at once, as exited would start it, so that the next invocation
// does not wait for a whole cold start (Lambda, too, runs it in a fresh sandbox).
func (e *Executor) retire(p *process) {
	e.mu.Lock()
	wasCurrent := e.proc == p
	if wasCurrent {
		e.proc = nil
	}
	closed := e.closed
	e.mu.Unlock()
	if !wasCurrent || closed {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if _, err := e.current(e.life); err != nil && e.life.Err() == nil {
			e.log.Error("restart executor", "err", err)
		}
	}()
}

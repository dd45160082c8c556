package dap

import (
	"context"
	"fmt"
	"time"

	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/bridge/wire"
)

// observer turns the backend's invocations into output events.
type observer struct{ s *session }

func (o observer) Started(inv *wire.Invoke) {
	fn := inv.Function.LogicalID
	if fn == "" {
		fn = inv.Function.Name
	}
	o.s.mu.Lock()
	o.s.invokes[inv.RequestID] = invokeState{fn: fn, start: time.Now()}
	o.s.mu.Unlock()
	o.s.output("console", fmt.Sprintf("→ %s %s started\n", fn, inv.RequestID))
}

func (o observer) Finished(inv *wire.Invoke, out executor.Outcome, err error) {
	o.s.mu.Lock()
	st := o.s.invokes[inv.RequestID]
	delete(o.s.invokes, inv.RequestID)
	o.s.mu.Unlock()
	status := "ok"
	switch {
	case err != nil:
		status = "failed: " + err.Error()
	case out.Err != nil:
		status = "error " + out.Err.ErrorType + ": " + out.Err.ErrorMessage
	}
	// The invocation's thread is gone from the IDE's view: the executor renamed it plldb-idle, and the next
	// invocation it runs is a new IDE thread.
	name := invokeThreadPrefix + inv.RequestID
	for _, t := range o.s.threads.removeWhere(func(t ideThread) bool { return t.name == name }) {
		o.s.threadGone(t)
	}
	if st.start.IsZero() { // it started before this session attached
		fn := inv.Function.LogicalID
		if fn == "" {
			fn = inv.Function.Name
		}
		o.s.output("console", fmt.Sprintf("← %s %s %s\n", fn, inv.RequestID, status))
		return
	}
	o.s.output("console", fmt.Sprintf("← %s %s %s in %s\n", st.fn, inv.RequestID, status, time.Since(st.start).Round(100*time.Microsecond)))
}

// configHoldMax is how long an invocation waits for the IDE's configurationDone at most: an IDE that never
// sends it (a client that ignores the capability) must not leave callers waiting forever.
const configHoldMax = 30 * time.Second

// configured lets held and future invocations run.
func (s *session) configured() {
	s.configOnce.Do(func() { close(s.configDone) })
}

// holdUntilConfigured keeps an invocation from running until the IDE has finished configuring, as debugpy
// starts a launched program only after configurationDone: an invocation that arrived while VS Code was still
// sending breakpoints would otherwise run straight past them. It returns when the IDE is done, the invocation
// or the session ends, or configHold passes.
func (s *session) holdUntilConfigured(ctx context.Context, inv *wire.Invoke) {
	select {
	case <-s.configDone:
		return
	default:
	}
	fn := inv.Function.LogicalID
	if fn == "" {
		fn = inv.Function.Name
	}
	s.log.Debug("holding an invocation until configurationDone", "function", fn, "request", inv.RequestID)
	s.output("console", fmt.Sprintf("plldb: %s %s waits until the IDE has sent its breakpoints (configurationDone)\n", fn, inv.RequestID))
	timer := time.NewTimer(s.opts.configHold)
	defer timer.Stop()
	select {
	case <-s.configDone:
	case <-ctx.Done():
	case <-s.ctx.Done():
	case <-timer.C:
		s.log.Warn("the IDE sent no configurationDone; running the invocation without waiting", "function", fn, "request", inv.RequestID, "waited", s.opts.configHold)
		s.output("important", fmt.Sprintf("plldb: the IDE has not finished configuring (no configurationDone) after %s; running %s %s without waiting\n", s.opts.configHold, fn, inv.RequestID))
	}
}

// onMirror shows a mirrored invocation's two results side by side in the Debug Console.
func (s *session) onMirror(r devside.MirrorReport) {
	s.output("console", devside.FormatMirror(r))
}

func (s *session) onLog(line executor.LogLine) {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	if cfg != nil && !cfg.RedirectOutput {
		return
	}
	category := "stdout"
	if line.Stream == "stderr" {
		category = "stderr"
	}
	s.output(category, line.Text)
}

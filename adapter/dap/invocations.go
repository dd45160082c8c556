package dap

import (
	"fmt"
	"time"

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
	o.s.output("console", fmt.Sprintf("← %s %s %s in %s\n", st.fn, inv.RequestID, status, time.Since(st.start).Round(100*time.Microsecond)))
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

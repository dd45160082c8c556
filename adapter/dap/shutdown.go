package dap

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// shutdown detaches from every debugpy (which resumes paused threads, so their invocations finish) and closes
// the backend, which answers whatever is still in flight. It runs once; later calls wait for the first.
// terminate (a terminate request rather than disconnect) changes nothing yet: the executors belong to the
// backend, which stops them either way.
func (s *session) shutdown(terminate bool) {
	s.shutOnce.Do(func() {
		defer close(s.shutDone)
		s.mu.Lock()
		s.closing = true
		p := s.pipeline
		ds := make([]*debuggee, 0, len(s.debuggees))
		for _, d := range s.debuggees {
			ds = append(ds, d)
		}
		s.debuggees = map[string]*debuggee{}
		s.pipeline, s.shared = nil, nil
		s.mu.Unlock()
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				_, _ = d.request(ctx, "disconnect", mustJSON(map[string]any{"terminateDebuggee": false}))
				d.close()
			}()
		}
		wg.Wait()
		// Invocations still held for configurationDone run now, without a debugger, and are answered.
		s.configured()
		if p != nil {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
			if err := p.close(ctx); err != nil {
				s.log.Warn("close the launch", "err", err)
				s.output("stderr", fmt.Sprintf("plldb: %v\n", err))
			}
			cancel()
		}
		// An attached session leaves the host's backend running, now with no debugger; the next IDE may attach.
		if h := s.opts.Host; h != nil {
			h.release(s)
		}
		_ = terminate
	})
	<-s.shutDone
}

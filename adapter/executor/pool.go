package executor

// The sandbox pool. Lambda runs each concurrent invocation of a function in its own execution environment: its own
// process, environment, module state and /tmp, reused warm for the next invocation and reaped when idle. A shared
// process cannot give a handler that: a global counter, a cached client or os.environ["_X_AMZN_TRACE_ID"] would be
// seen by a concurrent invocation, and a timeout or a crash would take every sibling down with it. So an Executor
// keeps a pool of sandboxes, each one Python process serving one invocation at a time:
//   - the first starts with the Executor (no cold start on the first invocation), more start on demand up to
//     Spec.MaxConcurrency, and those idle for Spec.IdleTimeout are stopped, down to one;
//   - an idle sandbox is taken most-recently-used first, as Lambda keeps its warmest environment busy;
//   - a sandbox whose process ends (a crash, os._exit, a timeout plldb enforced) is dropped and replaced in the
//     background; the others are not touched;
//   - Spec.OnStart runs for every new sandbox before it takes its first invocation, so a debugger can attach and
//     set its breakpoints first.

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

const (
	defaultMaxConcurrency = 10
	defaultIdleTimeout    = 10 * time.Minute
)

// SandboxInfo identifies one sandbox of a function.
type SandboxInfo struct {
	Function string // the function's logical id
	// ID numbers the function's sandboxes from 1 in the order they started; it is never reused, so a debugger
	// can tell a replacement from the sandbox it replaced, and a developer can tell two invocations apart.
	ID        int
	PID       int
	DebugPort int // 0 unless Spec.Debug
}

// sandbox is one Python process of the pool, serving one invocation at a time.
type sandbox struct {
	id   int
	proc *process
	tmp  string // its own TMPDIR, as each Lambda sandbox has its own /tmp

	initDur time.Duration // process start until ready: Lambda's Init Duration, reported with the first invocation

	// Under Executor.mu:
	served    int       // invocations it has run
	busy      bool      // running an invocation
	gone      bool      // its process ended or is being stopped; it takes no more invocations
	reaped    bool      // stopped by the pool (idle, Restart, Close): not replaced
	idleSince time.Time // when it last finished an invocation
}

// usable reports whether sb may take an invocation. Its process may have ended before exited has run: its
// control connection ends as soon as the process does (EOF on the pipe), well before its exit has been reaped and
// its output drained (p.done). Under mu.
func (sb *sandbox) usable() bool {
	if sb.gone {
		return false
	}
	select {
	case <-sb.proc.done:
		return false
	case <-sb.proc.conn.DisconnectNotify():
		return false
	default:
		return true
	}
}

func (sb *sandbox) info(fn string) SandboxInfo {
	return SandboxInfo{Function: fn, ID: sb.id, PID: sb.proc.pid, DebugPort: sb.proc.debugPort}
}

// acquire returns an idle sandbox, starting one if every sandbox is busy and the pool may grow, or waits for one
// to be released.
func (e *Executor) acquire(ctx context.Context) (*sandbox, error) {
	e.mu.Lock()
	for {
		if e.closed {
			e.mu.Unlock()
			return nil, ErrClosed
		}
		for len(e.idle) > 0 {
			sb := e.idle[len(e.idle)-1]
			e.idle = e.idle[:len(e.idle)-1]
			if !sb.usable() {
				continue
			}
			sb.busy = true
			e.mu.Unlock()
			return sb, nil
		}
		if len(e.live)+e.starting < e.spec.MaxConcurrency {
			e.starting++
			e.mu.Unlock()
			sb, err := e.startSandbox(ctx)
			e.mu.Lock()
			e.starting--
			if err != nil {
				e.wake()
				e.mu.Unlock()
				return nil, err
			}
			if e.closed {
				e.mu.Unlock()
				e.stopSandbox(sb, "executor closed", 0)
				return nil, ErrClosed
			}
			if !sb.usable() { // it died before it took anything
				continue
			}
			e.live[sb] = struct{}{}
			sb.busy = true
			e.mu.Unlock()
			return sb, nil
		}
		freed := e.freed
		e.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a free sandbox (all %d busy): %w", e.spec.MaxConcurrency, ctx.Err())
		}
		e.mu.Lock()
	}
}

// wake tells the callers waiting in acquire that a sandbox was freed or a slot opened. Under mu.
func (e *Executor) wake() {
	close(e.freed)
	e.freed = make(chan struct{})
}

// release returns a sandbox to the pool after an invocation.
func (e *Executor) release(sb *sandbox) {
	e.mu.Lock()
	sb.served++
	e.mu.Unlock()
	e.putBack(sb)
}

// putBack makes a sandbox idle again, unless it died or the pool closed, and wakes whoever waits for one.
func (e *Executor) putBack(sb *sandbox) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sb.busy = false
	if sb.usable() && !e.closed {
		sb.idleSince = time.Now()
		e.idle = append(e.idle, sb)
	}
	e.wake()
}

// startSandbox starts a process and, once it is ready, runs Spec.OnStart for it.
func (e *Executor) startSandbox(ctx context.Context) (*sandbox, error) {
	e.mu.Lock()
	e.nextID++
	id := e.nextID
	e.mu.Unlock()
	tmp, err := os.MkdirTemp("", "plldb-"+safeName(e.spec.LogicalID)+"-"+fmt.Sprint(id)+"-")
	if err != nil {
		return nil, fmt.Errorf("function %s: sandbox %d: create its TMPDIR: %w", e.spec.LogicalID, id, err)
	}
	sb := &sandbox{id: id, tmp: tmp}
	env := append(e.env[:len(e.env):len(e.env)],
		"TMPDIR="+tmp,
		// Each sandbox writes its own log stream, as Lambda names them.
		"AWS_LAMBDA_LOG_STREAM_NAME="+time.Now().UTC().Format("2006/01/02")+"/["+e.spec.Version+"]"+randomHex(16),
	)
	begin := time.Now()
	p, err := e.spawn(ctx, sb, env)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	sb.proc = p
	sb.initDur = time.Since(begin)
	if e.spec.OnStart != nil {
		// Not ctx: the invocation that asked for this sandbox may give up, but the sandbox stays in the pool and
		// must be fully set up (a debugger attached) before anything else runs in it.
		e.spec.OnStart(e.life, sb.info(e.spec.LogicalID))
	}
	return sb, nil
}

// exited runs when a sandbox's process has ended. One that ended on its own (a crash, os._exit) or was stopped
// for a timeout is replaced at once, so the next invocation does not pay the cold start; one the pool stopped is
// not.
func (e *Executor) exited(sb *sandbox) {
	_ = os.RemoveAll(sb.tmp)
	e.mu.Lock()
	sb.gone = true
	_, wasLive := e.live[sb]
	delete(e.live, sb)
	for i, x := range e.idle {
		if x == sb {
			e.idle = append(e.idle[:i], e.idle[i+1:]...)
			break
		}
	}
	e.wake()
	replace := wasLive && !sb.reaped && !e.closed && len(e.live)+e.starting < e.spec.MaxConcurrency
	if replace {
		e.starting++
	}
	e.mu.Unlock()
	if e.spec.OnExit != nil && sb.proc != nil {
		e.spec.OnExit(sb.info(e.spec.LogicalID))
	}
	if !replace {
		return
	}
	e.log.Warn("sandbox exited; starting a replacement", "sandbox", sb.id, "pid", sb.proc.pid, "status", sb.proc.exitDescription())
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		nsb, err := e.startSandbox(e.life)
		e.mu.Lock()
		e.starting--
		if err == nil && !e.closed {
			e.live[nsb] = struct{}{}
			nsb.idleSince = time.Now()
			e.idle = append(e.idle, nsb)
		}
		closed := e.closed
		e.wake()
		e.mu.Unlock()
		switch {
		case err != nil && e.life.Err() == nil:
			e.log.Error("start a replacement sandbox", "err", err)
		case err == nil && closed:
			e.stopSandbox(nsb, "executor closed", 0)
		}
	}()
}

// stopSandbox stops a sandbox the pool no longer wants and waits for its process to end.
func (e *Executor) stopSandbox(sb *sandbox, reason string, grace time.Duration) {
	e.mu.Lock()
	sb.reaped = true
	sb.gone = true
	e.mu.Unlock()
	sb.proc.stop(reason, grace)
	<-sb.proc.done
}

// reap stops the sandboxes idle for longer than Spec.IdleTimeout, keeping at least one, until the Executor closes.
func (e *Executor) reap() {
	defer e.wg.Done()
	every := e.spec.IdleTimeout / 4
	if every < 10*time.Millisecond {
		every = 10 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-e.life.Done():
			return
		case <-t.C:
		}
		var stale []*sandbox
		e.mu.Lock()
		cutoff := time.Now().Add(-e.spec.IdleTimeout)
		// idle is least recently used first, so the warmest stays.
		for len(e.idle) > 0 && len(e.live)-len(stale) > 1 && e.idle[0].idleSince.Before(cutoff) {
			sb := e.idle[0]
			e.idle = e.idle[1:]
			sb.reaped, sb.gone = true, true
			stale = append(stale, sb)
		}
		e.mu.Unlock()
		for _, sb := range stale {
			e.log.Debug("stopping an idle sandbox", "sandbox", sb.id, "pid", sb.proc.pid)
			sb.proc.stop("idle", stopGrace)
		}
	}
}

// Sandboxes lists the function's running sandboxes, oldest first.
func (e *Executor) Sandboxes() []SandboxInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]SandboxInfo, 0, len(e.live))
	for sb := range e.live {
		if !sb.gone {
			out = append(out, sb.info(e.spec.LogicalID))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// MaxConcurrency is how many sandboxes the function may run at once.
func (e *Executor) MaxConcurrency() int { return e.spec.MaxConcurrency }

// DebugPort is the port the oldest sandbox's debugpy listens on (127.0.0.1); 0 unless Debug or while no sandbox
// runs. Sandboxes lists every one.
func (e *Executor) DebugPort() int {
	if s := e.Sandboxes(); len(s) > 0 {
		return s[0].DebugPort
	}
	return 0
}

// PID is the oldest sandbox's process id, 0 while none runs.
func (e *Executor) PID() int {
	if s := e.Sandboxes(); len(s) > 0 {
		return s[0].PID
	}
	return 0
}

// Restart replaces every sandbox with one fresh sandbox; invocations running in the old ones end with
// Runtime.ExitError.
func (e *Executor) Restart(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	old := make([]*sandbox, 0, len(e.live))
	for sb := range e.live {
		sb.reaped, sb.gone = true, true
		old = append(old, sb)
	}
	e.idle = nil
	e.mu.Unlock()
	for _, sb := range old {
		sb.proc.stop("restart requested", stopGrace)
	}
	for _, sb := range old {
		if err := sb.proc.waitExit(ctx); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
	}
	if err := e.warm(ctx); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

// warm starts one sandbox and leaves it idle.
func (e *Executor) warm(ctx context.Context) error {
	sb, err := e.acquire(ctx)
	if err != nil {
		return err
	}
	e.putBack(sb)
	return nil
}

// Close stops every sandbox (SIGTERM, then SIGKILL after a grace period) and answers invocations still running
// with ErrClosed. It waits for every goroutine the executor started.
func (e *Executor) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	all := make([]*sandbox, 0, len(e.live))
	for sb := range e.live {
		sb.reaped, sb.gone = true, true
		all = append(all, sb)
	}
	e.live = map[*sandbox]struct{}{}
	e.idle = nil
	e.wake()
	e.mu.Unlock()
	e.cancel()
	for _, sb := range all {
		sb.proc.stop("executor closed", stopGrace)
	}
	e.wg.Wait()
	return nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

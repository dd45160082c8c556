package devside

// Mirror mode (docs/knock.md, "Mirror mode"): the deployed code answers the caller, and a copy of each knocked
// invocation (wire.Invoke.Mirror) runs here for the developer alone. A copy is never acked and nothing about it
// goes back over the relay, so a breakpoint in it holds nobody. What the deployed code answered arrives in a
// separate `deployed` envelope with the same request id, usually long before the copy finishes (the developer is
// looking at it), sometimes after, sometimes never (the sandbox died, the link dropped). Once both are known, or
// the deployed answer has not come within its bound, Hooks.OnMirror hears the two side by side.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/bridge/wire"
)

// MirrorReport is one mirrored invocation's two results.
type MirrorReport struct {
	Function  wire.FunctionIdentity
	RequestID string
	// Local is what the copy answered here, LocalErr why plldb could not run it (the session ended, the sandbox
	// crashed); LocalDuration is the copy's wall time, pauses at breakpoints included.
	Local         executor.Outcome
	LocalErr      error
	LocalDuration time.Duration
	// Deployed is what the deployed code answered the caller, as its runtime posted it; nil when it did not
	// arrive within the bound (DefaultMirrorGrace after the invocation's deadline, counted from when the copy
	// finished).
	Deployed *wire.Deployed
}

// DefaultMirrorGrace is how long past the invocation's deadline a finished copy waits for the deployed answer
// (the deployed code has answered or timed out by its deadline; the sandbox then sends the answer at once). The
// wait is at least this long, and at most maxMirrorWait.
const DefaultMirrorGrace = 30 * time.Second

// maxMirrorWait bounds the wait whatever the deadline says: Lambda's longest timeout plus the grace.
const maxMirrorWait = 15*time.Minute + DefaultMirrorGrace

// mirrorState is a mirrored invocation the dispatcher knows: registered when its invoke arrives, gone once
// reported.
type mirrorState struct {
	peer     string // the sandbox that sent the copy: only it may send the deployed answer
	fn       wire.FunctionIdentity
	deadline time.Time
	deployed *wire.Deployed
	done     bool // the copy has finished; local, localErr and took are set
	local    executor.Outcome
	localErr error
	took     time.Duration
	timer    *time.Timer // the bound on waiting for the deployed answer, once done
}

// registerMirror notes a copy as it arrives, before its goroutine starts, so a deployed answer right behind it
// finds it. It refuses a request id already mirrored.
func (d *dispatcher) registerMirror(peer string, inv *wire.Invoke) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.mirrors[inv.RequestID]; dup {
		return false
	}
	d.mirrors[inv.RequestID] = &mirrorState{peer: peer, fn: inv.Function, deadline: inv.Deadline}
	return true
}

func (d *dispatcher) dropMirror(id string) {
	d.mu.Lock()
	if m, ok := d.mirrors[id]; ok && m.timer != nil {
		m.timer.Stop()
	}
	delete(d.mirrors, id)
	d.mu.Unlock()
}

// mirror runs a copy: checked as any invocation (admit: the sender's function, this session's knock, one this side
// serves), never acked, its log lines not sent back, and with no deadline of its own beyond the executor's (which
// a debugging executor does not enforce): the handler's context still counts its remaining time down from the
// function's timeout.
func (d *dispatcher) mirror(ctx context.Context, peer string, inv *wire.Invoke) {
	sent := inv.Credentials
	inv.Credentials = nil
	id := inv.RequestID
	log := d.log.With("request", id, "function", functionLabel(inv.Function), "mirror", true)
	_, tgt, ok := d.admit(peer, inv, log)
	if !ok {
		d.dropMirror(id)
		return
	}
	if d.cfg.BeforeRun != nil {
		d.cfg.BeforeRun(ctx, inv)
	}
	if d.cfg.Observer != nil {
		d.cfg.Observer.Started(inv)
	}
	start := time.Now()
	// The copy starts now, whenever the original started: its handler gets the function's whole budget, as the
	// deployed one did. The sandbox's deadline only applies when the function's timeout is unknown.
	deadline := inv.Deadline
	if tgt.Timeout > 0 {
		deadline = start.Add(tgt.Timeout)
	}
	out, runErr := d.run(ctx, tgt, inv, sent, deadline)
	took := time.Since(start)
	if d.cfg.Observer != nil {
		d.cfg.Observer.Finished(inv, out, runErr)
	}
	if ctx.Err() != nil { // the session is ending: the copy was cut short, and nobody is left to tell
		d.dropMirror(id)
		return
	}
	d.mirrorDone(id, out, runErr, took)
}

// mirrorDone records the copy's outcome and reports it if the deployed answer is already here; otherwise it
// waits for that answer, bounded.
func (d *dispatcher) mirrorDone(id string, out executor.Outcome, runErr error, took time.Duration) {
	d.mu.Lock()
	m, ok := d.mirrors[id]
	if !ok {
		d.mu.Unlock()
		return
	}
	// (Once the dispatcher has stopped, stopMirrors has emptied the map and the lookup above failed.)
	m.done, m.local, m.localErr, m.took = true, out, runErr, took
	if m.deployed != nil {
		delete(d.mirrors, id)
		d.mu.Unlock()
		d.reportMirror(id, m)
		return
	}
	wait := d.mirrorGrace()
	if !m.deadline.IsZero() {
		wait += time.Until(m.deadline)
	}
	wait = min(max(wait, d.mirrorGrace()), maxMirrorWait)
	m.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		cur, ok := d.mirrors[id]
		if !ok || cur != m || m.deployed != nil {
			d.mu.Unlock()
			return
		}
		delete(d.mirrors, id)
		d.mu.Unlock()
		d.log.Debug("the deployed answer of a mirrored invocation did not arrive; reporting the local one alone", "request", id, "waited", wait)
		d.reportMirror(id, m)
	})
	d.mu.Unlock()
}

func (d *dispatcher) mirrorGrace() time.Duration {
	if d.cfg.MirrorGrace > 0 {
		return d.cfg.MirrorGrace
	}
	return DefaultMirrorGrace
}

// deployed takes what the deployed code answered a mirrored invocation.
func (d *dispatcher) deployed(env *wire.Envelope) {
	var dep wire.Deployed
	if err := env.DecodeBody(&dep); err != nil {
		d.log.Warn("bad deployed envelope", "from", env.From, "err", err)
		return
	}
	if err := dep.Check(env.ID); err != nil {
		d.log.Warn("refusing a deployed answer", "from", env.From, "err", err)
		return
	}
	d.mu.Lock()
	m, ok := d.mirrors[dep.RequestID]
	switch {
	case !ok:
		d.mu.Unlock()
		d.log.Debug("deployed answer for no mirrored invocation in flight; ignoring it", "request", dep.RequestID, "from", env.From)
		return
	case m.peer != env.From:
		d.mu.Unlock()
		d.log.Warn("refusing a deployed answer from another sandbox than the one that sent the copy", "request", dep.RequestID, "from", env.From)
		return
	case m.deployed != nil:
		d.mu.Unlock()
		d.log.Debug("second deployed answer for a mirrored invocation; keeping the first", "request", dep.RequestID)
		return
	}
	m.deployed = &dep
	if !m.done {
		d.mu.Unlock()
		return
	}
	if m.timer != nil {
		m.timer.Stop()
	}
	delete(d.mirrors, dep.RequestID)
	d.mu.Unlock()
	d.reportMirror(dep.RequestID, m)
}

func (d *dispatcher) reportMirror(id string, m *mirrorState) {
	if d.cfg.OnMirror == nil {
		return
	}
	d.cfg.OnMirror(MirrorReport{Function: m.fn, RequestID: id, Local: m.local, LocalErr: m.localErr,
		LocalDuration: m.took, Deployed: m.deployed})
}

// stopMirrors forgets every mirrored invocation when the dispatcher stops: their bounds' timers are stopped and
// nothing more is reported.
func (d *dispatcher) stopMirrors() {
	d.mu.Lock()
	for id, m := range d.mirrors {
		if m.timer != nil {
			m.timer.Stop()
		}
		delete(d.mirrors, id)
	}
	d.mu.Unlock()
}

// mirrorPayloadMax is how much of a payload FormatMirror shows.
const mirrorPayloadMax = 200

// FormatMirror is the line plldb shows for a mirrored invocation, in the debug console and in plldb local's
// output: both results side by side, each clipped, errors by their type.
//
//	plldb: mirror HelloFunction 1a2b3c4d — deployed: {"statusCode": 200, …} (12 ms) · local: ValueError: boom (3.2 s)
func FormatMirror(r MirrorReport) string {
	fn := functionLabel(r.Function)
	deployed := "no answer received"
	if d := r.Deployed; d != nil {
		if d.Error {
			deployed = errorSummary(d.ErrorType, d.Payload)
		} else {
			deployed = payloadSummary(d.Payload, d.ContentType)
		}
		deployed += fmt.Sprintf(" (%s)", formatDuration(time.Duration(d.DurationMs)*time.Millisecond))
	}
	var local string
	switch {
	case r.LocalErr != nil:
		local = "not run to the end: " + clipText(r.LocalErr.Error(), mirrorPayloadMax)
	case r.Local.Err != nil:
		local = errorSummary(r.Local.Err.ErrorType, r.Local.Err.Document)
		if len(r.Local.Err.Document) == 0 && r.Local.Err.ErrorMessage != "" {
			local = clipText(r.Local.Err.ErrorType+": "+r.Local.Err.ErrorMessage, mirrorPayloadMax)
		}
	default:
		local = payloadSummary(r.Local.Payload, r.Local.ContentType)
	}
	local += fmt.Sprintf(" (%s)", formatDuration(r.LocalDuration))
	return fmt.Sprintf("plldb: mirror %s %s — deployed: %s · local: %s\n", fn, r.RequestID, deployed, local)
}

// errorSummary is "Type: message" from an error document, or the type alone.
func errorSummary(typ string, doc []byte) string {
	var e struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	_ = json.Unmarshal(doc, &e)
	if typ == "" {
		typ = e.ErrorType
	}
	if typ == "" {
		typ = "error"
	}
	if e.ErrorMessage == "" {
		return clipText(typ, mirrorPayloadMax)
	}
	return clipText(typ+": "+e.ErrorMessage, mirrorPayloadMax)
}

// payloadSummary shows a JSON payload as it is (one line, clipped) and a binary one by its size.
func payloadSummary(p []byte, contentType string) string {
	if contentType == "application/unknown" || !utf8.Valid(p) {
		return fmt.Sprintf("%d bytes of %s", len(p), orDefault(contentType, "binary"))
	}
	if len(p) == 0 {
		return "(empty)"
	}
	return clipText(string(p), mirrorPayloadMax)
}

// clipText puts s on one line (control characters become spaces: a payload must not move the console's
// cursor) and shortens it to about n bytes, without splitting a character.
func clipText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	return clipUTF8(s, n) + "…"
}

func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

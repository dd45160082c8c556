// Package instrument attaches plldb to deployed Lambda functions and puts them back exactly as they were.
//
// ListFunctions finds a stack's functions, nested stacks included. Instrumenter.Instrument snapshots each
// function's configuration into a claim store before changing anything, then adds the plldb layer, the exec
// wrapper and the session variables and raises the timeout, guarded by the function's RevisionId so that a
// concurrent deploy is never overwritten. Instrumenter.Restore and Instrumenter.Recover put the snapshot back
// (environment, layers, timeout); if someone else changed the function since, they take out only plldb's own
// changes and keep theirs (Merged), or, when the two cannot be told apart, leave the function and keep the
// claim for a later detach (Conflict). Selective sessions share a function: each adds its entries to the
// function's PLLDB_KNOCK_KEYS and PLLDB_SESSIONS, leaving takes out only its own (Left), and the last one out
// puts the first session's snapshot back.
// Everything a restore needs is in the claim store, so detach, session expiry and crash recovery all work from
// the store alone.
package instrument

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/cloud/store"
)

// Defaults of Instrumenter's knobs.
const (
	// DefaultConcurrency bounds the calls in flight. Lambda's control plane throttles at a few requests per
	// second per API; the SDK retries throttled calls, so a moderate bound is faster than a large one.
	DefaultConcurrency  = 10
	DefaultPollInterval = 250 * time.Millisecond
	DefaultWaitTimeout  = 3 * time.Minute
	maxPollInterval     = 2 * time.Second
	// DefaultReleaseWait bounds how long Instrument waits for functions that a detaching session (a plain one,
	// or the last selective session to leave them) is putting back. That restore is one guarded update and
	// Lambda applying it, usually a few seconds; 30 s covers a slow one, while a restore that stopped (a
	// conflict keeps the claim until that session detaches again or ends) does not keep a developer waiting
	// for long before hearing why.
	DefaultReleaseWait = 30 * time.Second
)

// LayerARNs are the plldb layer versions, one per architecture.
type LayerARNs struct {
	X86_64, Arm64 string
}

// For picks the layer for a function's architectures: arm64 for [arm64], x86_64 otherwise.
func (l LayerARNs) For(architectures []string) string {
	if len(architectures) == 1 && architectures[0] == string(types.ArchitectureArm64) {
		return l.Arm64
	}
	return l.X86_64
}

// Session is the debug session functions are attached to.
type Session struct {
	ID       string
	Owner    string // who attaches, for "held by" messages; never a secret
	Endpoint string // the relay's WebSocket URL (PLLDB_ENDPOINT)
	Audience string // the ticket audience (PLLDB_AUDIENCE); "" leaves it to the layer (the endpoint's host)
	// Strict sets PLLDB_STRICT: an invocation no developer takes is answered Plldb.NoDeveloper instead of
	// running the deployed code.
	Strict bool
	// FunctionCredentials sets PLLDB_CREDENTIALS=function: the layer sends the function's execution-role
	// credentials with each invocation, for the developer's handler to run with. Off, they never leave the sandbox.
	FunctionCredentials bool
	// Selective instruments for selective mode (docs/knock.md): the layer sends only invocations that carry a
	// valid knock of KnockKey to the developer and runs every other one as the deployed code. Selective sessions
	// share the functions (any number at once): each adds its entry to PLLDB_KNOCK_KEYS (ID=KnockKey: the layer
	// takes a knock's issuer as the session that routes it) and to PLLDB_SESSIONS (ID=its function key, with
	// its options), and PLLDB_SELECTIVE and PLLDB_KNOCK_STACK=KnockStack are set; PLLDB_SESSION,
	// PLLDB_FUNCTION_KEY and PLLDB_CREDENTIALS are not (bridge/selenv).
	Selective  bool
	KnockKey   ed25519.PublicKey // the session's knock verification key; public, but still not logged
	KnockStack string            // the stack name knocks are bound to (their audience)
	// Mirror (selective only): this session's knocked invocations are copies; the deployed code answers the
	// caller (the "mirror" option of the session's PLLDB_SESSIONS entry).
	Mirror bool
}

// link is the session's PLLDB_SESSIONS entry for a target.
func (s Session) link(t Target) selenv.Link {
	return selenv.Link{Session: s.ID, FunctionKey: t.Key, Credentials: s.FunctionCredentials, Mirror: s.Mirror}
}

// Target is a function to instrument with its ticket key.
type Target struct {
	StackFunction
	// Key is PLLDB_FUNCTION_KEY, written base64-encoded; never logged. Each function's own
	// (ticket.FunctionKey): Instrument refuses two targets with one key.
	Key []byte
}

// Attached is a function Instrument changed.
type Attached struct {
	StackFunction
	Layer    string // the plldb layer version it got
	Revision string // the revision plldb's update left
}

// Attachment is what Instrument did.
type Attachment struct {
	Functions []Attached
	// Recovered are functions that sessions which are no longer live had left instrumented, put back before
	// attaching.
	Recovered []Result
}

// Refusal is one reason Instrument would not start.
type Refusal struct {
	Function StackFunction
	Reason   string
	Held     *HeldError // set when another live session holds the function
}

// RefusedError is Instrument's answer when any function cannot be instrumented; no function was changed.
type RefusedError struct{ Refusals []Refusal }

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plldb will not attach (nothing was changed): %d function(s) refused", len(e.Refusals))
	for _, r := range e.Refusals {
		fmt.Fprintf(&b, "\n  %s (%s): %s", r.Function.LogicalID, r.Function.Name, r.Reason)
	}
	return b.String()
}

// Instrumenter attaches and detaches functions.
type Instrumenter struct {
	Lambda LambdaAPI
	Claims Claims
	Layers LayerARNs
	// Concurrency bounds the functions handled at once; default DefaultConcurrency.
	Concurrency int
	// PollInterval is the first wait between checks of an update's status; it doubles up to 2 s.
	PollInterval time.Duration
	// WaitTimeout bounds the wait for one function's update to finish; default DefaultWaitTimeout.
	WaitTimeout time.Duration
	// ReleaseWait bounds how long Instrument waits for functions being put back by a detaching session (a
	// plain one, or the last selective session to leave them) before it refuses; default DefaultReleaseWait.
	ReleaseWait time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
}

func (in *Instrumenter) logger() *slog.Logger {
	if in.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return in.Logger
}

func (in *Instrumenter) now() time.Time {
	if in.Now == nil {
		return time.Now().UTC()
	}
	return in.Now()
}

// each runs fn for 0..n-1 with at most Concurrency running at once and returns when all have returned.
func (in *Instrumenter) each(n int, fn func(i int)) {
	limit := in.Concurrency
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

// plan is what Instrument will do to one function.
type plan struct {
	target  Target
	cur     fnConfig
	snap    Snapshot // what to claim (Shared for a selective session)
	reclaim bool     // this session already holds the function: its first snapshot stands
	// holders are a shared claim's holders as this session's Join left them, for join to know whose entries
	// the function may carry without reading the claim again.
	holders []Holder
	env     map[string]string
	layers  []string
	layer   string
}

// Instrument attaches the session to the targets. It first puts back functions that ended sessions left
// instrumented, then checks every target and refuses with a *RefusedError, changing nothing, if any target
// has 5 layers already, would exceed Lambda's environment limit, runs on a runtime without exec wrappers, or is
// held by another live session. Otherwise it claims every function with its snapshot and updates them in
// parallel. If an update fails, the functions this call changed are put back and the error says why.
// Attaching a function the session already holds again is allowed and keeps the first snapshot. A selective
// session (Session.Selective) shares its functions with the other selective sessions: it joins their claim and
// adds its entries to the function's lists (shared.go), and is refused only by a live non-selective session.
//
// When the only refusals are functions that a detaching session is putting back (HeldError.Releasing: a plain
// session's detach, or the last selective session to leave them), the function is about to be free:
// Instrument gives up what it claimed (releaseClaimed), waits with a growing pause and starts again from
// reading the functions, so that one put back meanwhile is snapshotted afresh from its restored
// configuration; after ReleaseWait it refuses as for any held function, saying how long it waited. A
// selective and an exclusive attach wait alike.
func (in *Instrumenter) Instrument(ctx context.Context, s Session, targets []Target) (*Attachment, error) {
	if err := in.check(s, targets); err != nil {
		return nil, err
	}
	bound := in.ReleaseWait
	if bound <= 0 {
		bound = DefaultReleaseWait
	}
	delay := in.PollInterval
	if delay <= 0 {
		delay = DefaultPollInterval
	}
	var recovered []Result
	var since time.Time // when the first attempt was refused for functions being put back
	for {
		att, err := in.attempt(ctx, s, targets)
		att.Recovered = append(recovered, att.Recovered...)
		releasing := onlyReleasing(err)
		if releasing == nil {
			return att, err
		}
		if since.IsZero() {
			since = time.Now()
			in.logger().Info("waiting for detaching sessions to put functions back before attaching",
				"functions", refusedNames(releasing), "for_at_most", bound)
		}
		left := bound - time.Since(since)
		if left <= 0 {
			for i := range releasing.Refusals {
				releasing.Refusals[i].Reason += fmt.Sprintf("; plldb waited %s for it to finish, and if that session's restore stopped (on a conflict or a failure) the function stays held until that session detaches again", bound)
			}
			return att, releasing
		}
		timer := time.NewTimer(min(delay, left))
		select {
		case <-ctx.Done():
			timer.Stop()
			return att, fmt.Errorf("attach: stopped waiting for %s to be put back by the session detaching from it: %w", refusedNames(releasing), ctx.Err())
		case <-timer.C:
		}
		delay = min(delay*2, maxPollInterval)
		recovered = att.Recovered
		in.logger().Debug("attaching again after waiting for functions being put back", "functions", refusedNames(releasing))
	}
}

// onlyReleasing returns err's refusals when every one of them is a function being put back by a detaching
// session, and nil otherwise.
func onlyReleasing(err error) *RefusedError {
	var refused *RefusedError
	if !errors.As(err, &refused) || len(refused.Refusals) == 0 {
		return nil
	}
	for _, r := range refused.Refusals {
		if r.Held == nil || !r.Held.Releasing {
			return nil
		}
	}
	return refused
}

func refusedNames(r *RefusedError) string {
	names := make([]string, len(r.Refusals))
	for i, x := range r.Refusals {
		names[i] = x.Function.Name
	}
	return strings.Join(names, ", ")
}

// attempt is one try of Instrument: inspect, claim, apply. A refusal leaves nothing claimed by this attempt.
func (in *Instrumenter) attempt(ctx context.Context, s Session, targets []Target) (*Attachment, error) {
	// Every function asks the store whether the same few sessions are live (this one, the ones sharing it):
	// one read each per attempt, and a waiting attach's next attempt reads them afresh.
	ctx = store.WithSessionCache(ctx)
	att := &Attachment{}
	plans := make([]*plan, len(targets))
	refusals := make([]*Refusal, len(targets))
	errs := make([]error, len(targets))
	recovered := make([]*Result, len(targets))
	// The claims first, all in one read (a BatchGetItem per 100 functions rather than a GetItem each), then each
	// function: inspect reads a function after its claim, as it always has.
	claims, err := in.readClaims(ctx, targets)
	if err != nil {
		return att, fmt.Errorf("attach: %w", err)
	}
	in.each(len(targets), func(i int) {
		stored, found := claims[targets[i].ARN]
		plans[i], recovered[i], refusals[i], errs[i] = in.inspect(ctx, s, targets[i], stored, found)
	})
	for _, r := range recovered {
		if r != nil {
			att.Recovered = append(att.Recovered, *r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return att, fmt.Errorf("attach: %w", err)
	}
	if r := collect(refusals); r != nil {
		return att, r
	}

	// Claim everything before touching anything, so that a second developer racing us is refused cleanly.
	claimed := make([]bool, len(plans))
	in.each(len(plans), func(i int) {
		p := plans[i]
		var err error
		if p.snap.Shared {
			p.holders, err = in.Claims.Join(ctx, p.snap, s.Owner)
		} else {
			err = in.Claims.Claim(ctx, p.snap, s.Owner)
		}
		var held *HeldError
		switch {
		case errors.As(err, &held):
			refusals[i] = &Refusal{Function: p.target.StackFunction, Held: held, Reason: held.Error()}
		case err != nil:
			errs[i] = fmt.Errorf("claim %s: %w", p.target.Name, err)
		default:
			claimed[i] = !p.reclaim
		}
	})
	if r, err := collect(refusals), errors.Join(errs...); r != nil || err != nil {
		in.releaseClaimed(s.ID, plans, claimed)
		if err != nil {
			return att, fmt.Errorf("attach: %w", err)
		}
		return att, r
	}

	attached := make([]*Attached, len(plans))
	updated := make([]bool, len(plans))
	in.each(len(plans), func(i int) {
		attached[i], updated[i], errs[i] = in.apply(ctx, s, plans[i])
	})
	if err := errors.Join(errs...); err != nil {
		if stuck := in.rollback(s, plans, claimed, updated); len(stuck) > 0 {
			err = fmt.Errorf("%w\nand could not put back %s; the snapshots stay in the store for plldb detach", err, strings.Join(stuck, ", "))
		}
		return att, fmt.Errorf("attach: %w", err)
	}
	for _, a := range attached {
		att.Functions = append(att.Functions, *a)
	}
	return att, nil
}

func (in *Instrumenter) check(s Session, targets []Target) error {
	switch {
	case in.Lambda == nil || in.Claims == nil:
		return errors.New("attach: the instrumenter needs a Lambda client and a claim store")
	case s.ID == "":
		return errors.New("attach: empty session id")
	case s.Endpoint == "":
		return errors.New("attach: empty relay endpoint")
	case s.Selective && len(s.KnockKey) != ed25519.PublicKeySize:
		return fmt.Errorf("attach: selective mode needs the session's %d-byte Ed25519 knock key", ed25519.PublicKeySize)
	case s.Selective && s.KnockStack == "":
		return errors.New("attach: selective mode needs the stack name knocks are bound to")
	case s.Selective && !selenv.ValidSessionID(s.ID):
		return fmt.Errorf("attach: selective mode: session id %q is not a valid knock issuer", s.ID)
	case s.Mirror && !s.Selective:
		return errors.New("attach: mirror mode needs selective mode")
	case in.Layers.X86_64 == "" || in.Layers.Arm64 == "":
		return errors.New("attach: the plldb layer ARNs for x86_64 and arm64 are both needed (is the helper stack installed?)")
	}
	seen, keys := map[string]bool{}, map[string]bool{}
	for _, t := range targets {
		switch {
		case t.ARN == "" || t.Name == "":
			return fmt.Errorf("attach: function %q has no name or ARN", t.LogicalID)
		case len(t.Key) < ticket.KeyLen:
			// The layer would refuse a shorter key and run the function without plldb.
			return fmt.Errorf("attach: the ticket key of function %s has %d bytes; at least %d are needed", t.Name, len(t.Key), ticket.KeyLen)
		case seen[t.ARN]:
			return fmt.Errorf("attach: function %s is listed twice", t.Name)
		case keys[string(t.Key)]:
			// Anyone who can read one function's configuration could connect as the other.
			return fmt.Errorf("attach: function %s has the ticket key of another function; each function needs its own", t.Name)
		}
		seen[t.ARN], keys[string(t.Key)] = true, true
	}
	return nil
}

func collect(rs []*Refusal) *RefusedError {
	var out []Refusal
	for _, r := range rs {
		if r != nil {
			out = append(out, *r)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &RefusedError{Refusals: out}
}

// readClaims reads the claims on the targets, by ARN.
func (in *Instrumenter) readClaims(ctx context.Context, targets []Target) (map[string]Snapshot, error) {
	arns := make([]string, len(targets))
	for i, t := range targets {
		arns[i] = t.ARN
	}
	snaps, err := in.Claims.StackSnapshots(ctx, arns)
	if err != nil {
		return nil, fmt.Errorf("read the claims on the functions: %w", err)
	}
	out := make(map[string]Snapshot, len(snaps))
	for _, snap := range snaps {
		out[snap.FunctionARN] = snap
	}
	return out, nil
}

// inspect decides what to do with one target, given its claim (stored, if found), changing nothing but
// leftovers of ended sessions.
func (in *Instrumenter) inspect(ctx context.Context, s Session, t Target, stored Snapshot, found bool) (*plan, *Result, *Refusal, error) {
	var recovered *Result
	refuse := func(format string, args ...any) (*plan, *Result, *Refusal, error) {
		return nil, recovered, &Refusal{Function: t.StackFunction, Reason: fmt.Sprintf(format, args...)}, nil
	}
	if found && stored.Shared && s.Selective {
		return in.inspectJoin(ctx, s, t, stored)
	}
	if found && !stored.Shared && stored.Session == s.ID && s.Selective {
		return refuse("this session holds it exclusively already; detach first, then attach with --selective")
	}
	if found && (stored.Shared || stored.Session != s.ID) {
		r, held := in.takeOver(ctx, s.ID, s.Owner, stored)
		if held != nil {
			reason := held.Error()
			if s.Selective && held.Holders == nil && !held.Releasing {
				reason += ", attached without --selective, which takes functions exclusively: detach it first"
			}
			return nil, nil, &Refusal{Function: t.StackFunction, Held: held, Reason: reason}, nil
		}
		recovered, found = &r, false
		if r.Outcome == Failed {
			return nil, recovered, nil, fmt.Errorf("put back %s, left instrumented by ended session %s: %w", t.Name, stored.Session, r.Err)
		}
	}
	raw, cur, err := in.getSettled(ctx, t.ARN)
	if err != nil {
		return nil, recovered, nil, err
	}
	p := &plan{target: t, cur: cur}
	if found {
		// This session attached the function before: build on the configuration it saved then, not on the
		// instrumented one it sees now, unless someone else changed the function since.
		if in.state(stored, &cur) == changedByOthers {
			return refuse("%s; detach first, then attach again", ConflictMessage)
		}
		p.reclaim = true
		p.snap = stored
	} else {
		p.snap = snapshotOf(t, s.ID, raw, &cur, in.now())
		if recovered != nil && recovered.Outcome == Conflict {
			return refuse("ended session %s left it instrumented and someone else changed it since, so plldb did not put it back: %s", stored.Session, recovered.Message)
		}
		if v := cur.vars(); v[EnvExecWrapper] == WrapperPath || v[EnvSession] != "" || v[EnvSessions] != "" {
			return refuse("it already carries plldb's instrumentation (%s) but the claim store has no snapshot to restore it from; remove the PLLDB_* variables, %s and the plldb layer by hand", instrumentedBy(v), EnvExecWrapper)
		}
		p.snap.Shared = s.Selective
	}
	if problem := runtimeProblem(&cur); problem != "" {
		return refuse("%s", problem)
	}
	p.layer = in.Layers.For(cur.Architectures)
	if p.layers, err = withLayer(p.snap.Layers, p.layer); err != nil {
		return refuse("%s", err)
	}
	if !p.reclaim && !slices.Contains(p.snap.Layers, p.layer) {
		p.snap.PlldbLayer = p.layer
	}
	p.env = sessionEnvironment(p.snap.Environment, s, t)
	if problem := environmentProblem(p.env, p.snap.Environment); problem != "" {
		return refuse("%s", problem)
	}
	return p, recovered, nil, nil
}

func snapshotOf(t Target, session string, raw []byte, c *fnConfig, now time.Time) Snapshot {
	snap := Snapshot{
		FunctionARN: t.ARN, FunctionName: t.Name, Session: session, Config: raw,
		Layers: c.layerARNs(), Timeout: c.timeout(), TakenAt: now,
	}
	if c.Environment != nil {
		snap.HasEnvironment = true
		snap.Environment = maps.Clone(c.Environment.Variables)
		snap.ExecWrapper = snap.Environment[EnvExecWrapper]
	}
	return snap
}

// sessionEnvironment is the function's own variables plus plldb's for one session. A wrapper the function
// already had moves to PLLDB_PREV_WRAPPER, from where the plldb proxy still runs it.
func sessionEnvironment(own map[string]string, s Session, t Target) map[string]string {
	env := make(map[string]string, len(own)+8)
	maps.Copy(env, own)
	if w := own[EnvExecWrapper]; w != "" && w != WrapperPath {
		env[EnvPrevWrapper] = w
	}
	sharedVariables(env, s, t)
	if s.Selective {
		env[EnvKnockKeys] = selenv.FormatKnockKeys(map[string]ed25519.PublicKey{s.ID: s.KnockKey})
		env[EnvSessions] = selenv.FormatSessions([]selenv.Link{s.link(t)})
		return env
	}
	env[EnvSession] = s.ID
	env[EnvFunctionKey] = base64.StdEncoding.EncodeToString(t.Key)
	if s.FunctionCredentials {
		env[EnvCredentials] = "function"
	}
	return env
}

// sharedVariables sets the variables that do not depend on which session an invocation goes to: the same for
// every selective session sharing a function.
func sharedVariables(env map[string]string, s Session, t Target) {
	env[EnvExecWrapper] = WrapperPath
	env[EnvEndpoint] = s.Endpoint
	if s.Audience != "" {
		env[EnvAudience] = s.Audience
	}
	if t.LogicalID != "" {
		env[EnvLogicalID] = t.LogicalID
	}
	if s.Strict {
		env[EnvStrict] = "true"
	}
	if s.Selective {
		env[EnvSelective] = "true"
		env[EnvKnockStack] = s.KnockStack
	}
}

// apply updates one function; updated reports whether Lambda accepted the change.
func (in *Instrumenter) apply(ctx context.Context, s Session, p *plan) (*Attached, bool, error) {
	if s.Selective {
		return in.join(ctx, s, p)
	}
	t := p.target
	// The relay role may restore only functions that carry their session's tag, so the tag goes on before the
	// change it will have to undo.
	if err := in.tagSession(ctx, t, s.ID); err != nil {
		return nil, false, err
	}
	in2 := &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(t.ARN),
		Environment:  &types.Environment{Variables: p.env},
		Layers:       p.layers,
		Timeout:      aws.Int32(DebugTimeout),
	}
	c, stale, err := in.updateGuarded(ctx, &p.cur, in2)
	switch {
	case stale:
		return nil, false, fmt.Errorf("%s (%s) changed while plldb was attaching (someone else updated it); nothing of theirs was overwritten, attach again", t.LogicalID, t.Name)
	case err != nil:
		// Lambda quotes the variables back in some refusals ("String measured: {...}"): keep the key out.
		return nil, false, fmt.Errorf("update %s: %w", t.Name, redact(err, p.env[EnvFunctionKey]))
	}
	rev, err := in.settle(ctx, t, s.ID, c)
	if err != nil {
		return nil, true, err
	}
	in.logger().Debug("instrumented", "function", t.Name, "logical_id", t.LogicalID, "layer", p.layer)
	return &Attached{StackFunction: t.StackFunction, Layer: p.layer, Revision: rev}, true, nil
}

// tagSession puts SessionTag on the function: the relay role may restore only functions that carry it.
func (in *Instrumenter) tagSession(ctx context.Context, t Target, session string) error {
	if _, err := in.Lambda.TagResource(ctx, &lambda.TagResourceInput{
		Resource: aws.String(t.ARN), Tags: map[string]string{SessionTag: session},
	}); err != nil {
		return fmt.Errorf("tag %s with its session: %w", t.Name, err)
	}
	return nil
}

// rollback undoes a failed Instrument: functions this call claimed go back to their snapshots, and their
// claims are released. Functions the session held before the call keep their claims for the caller's detach.
// It returns "name (why)" for the functions it could not put back.
func (in *Instrumenter) rollback(s Session, plans []*plan, claimed, updated []bool) []string {
	var mu sync.Mutex
	var stuck []string
	// The caller's context may be what failed; putting functions back must not depend on it.
	ctx, cancel := context.WithTimeout(context.Background(), DefaultWaitTimeout)
	defer cancel()
	in.each(len(plans), func(i int) {
		if !claimed[i] {
			return
		}
		p := plans[i]
		if p.snap.Shared {
			// Other sessions may share the function: take out only this session's entries.
			if r := in.leave(ctx, Snapshot{FunctionARN: p.target.ARN}, s.ID); r.Outcome == Failed || r.Outcome == Conflict {
				in.logger().Warn("roll back a failed attach", "function", p.target.Name, "outcome", r.Outcome, "message", r.Message)
				mu.Lock()
				stuck = append(stuck, fmt.Sprintf("%s (%s)", p.target.Name, r.Message))
				mu.Unlock()
			}
			return
		}
		if !updated[i] {
			in.untag(ctx, p.target.ARN, p.target.Name)
			if err := in.Claims.Release(ctx, p.target.ARN, s.ID); err != nil {
				in.logger().Warn("release claim after a failed attach", "function", p.target.Name, "err", err)
			}
			return
		}
		snap, ok, err := in.Claims.GetSnapshot(ctx, p.target.ARN)
		if err != nil || !ok {
			in.logger().Warn("no snapshot to roll back", "function", p.target.Name, "err", err)
			mu.Lock()
			stuck = append(stuck, fmt.Sprintf("%s (its snapshot could not be read)", p.target.Name))
			mu.Unlock()
			return
		}
		if r := in.restoreOne(ctx, snap); r.Outcome != Restored && r.Outcome != Merged {
			in.logger().Warn("roll back a failed attach", "function", p.target.Name, "outcome", r.Outcome, "message", r.Message)
			mu.Lock()
			stuck = append(stuck, fmt.Sprintf("%s (%s)", p.target.Name, r.Message))
			mu.Unlock()
		}
	})
	sort.Strings(stuck)
	return stuck
}

// releaseClaimed gives up the claims a refused attach made, before it changed any function.
func (in *Instrumenter) releaseClaimed(session string, plans []*plan, claimed []bool) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultWaitTimeout)
	defer cancel()
	for i, p := range plans {
		if !claimed[i] {
			continue
		}
		if p.snap.Shared {
			in.leaveUnwritten(ctx, p.target, session)
			continue
		}
		if err := in.Claims.Release(ctx, p.target.ARN, session); err != nil {
			in.logger().Warn("release claim after a refused attach", "function", p.target.Name, "err", err)
		}
	}
}

// leaveUnwritten takes session out of a shared claim it joined without writing its entries to the function.
// Not Release, which deletes the claim with its last holder: the sessions sharing the function when it joined
// may all have left since, each taking only its own entries out because this session still held it, which
// makes this session the last one out, so it puts the snapshot back (the function is still instrumented, and
// without the claim nothing could restore it). Otherwise there is nothing of its own on the function to take out.
func (in *Instrumenter) leaveUnwritten(ctx context.Context, t Target, session string) {
	claim, last, err := in.Claims.Leave(ctx, Snapshot{FunctionARN: t.ARN}, session)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return
	case err != nil:
		in.logger().Warn("leave a shared claim after a refused attach", "function", t.Name, "err", err)
		return
	case !last:
		return
	}
	if r := in.restoreSnapshot(ctx, claim, true); r.Outcome != Restored && r.Outcome != Merged && r.Outcome != Gone {
		in.logger().Warn("put back a function this refused attach was the last to hold", "function", t.Name,
			"outcome", r.Outcome, "message", r.Message)
	}
}

// getSettled reads a function's configuration once no update is in progress, with the raw answer.
func (in *Instrumenter) getSettled(ctx context.Context, fn string) ([]byte, fnConfig, error) {
	raw, c, err := in.get(ctx, fn)
	if err != nil {
		return nil, fnConfig{}, err
	}
	if c.LastUpdateStatus != string(types.LastUpdateStatusInProgress) && c.State != string(types.StatePending) {
		return raw, c, nil
	}
	if _, err := in.waitUpdated(ctx, fn, c); err != nil {
		return nil, fnConfig{}, err
	}
	return in.get(ctx, fn)
}

func (in *Instrumenter) get(ctx context.Context, fn string) ([]byte, fnConfig, error) {
	var raw []byte
	out, err := in.Lambda.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(fn)}, captureBody(&raw))
	if err != nil {
		return nil, fnConfig{}, fmt.Errorf("read configuration of %s: %w", fn, err)
	}
	c := fromGet(out)
	if len(raw) == 0 {
		// A client without an HTTP transport (a test double): keep the SDK's reading instead.
		raw = mustJSON(c)
	}
	return raw, c, nil
}

// updateGuarded sends up guarded by the RevisionId cur was read with. stale reports that Lambda refused it
// because the function changed since: the caller reads it again and recomputes its change, or gives up.
func (in *Instrumenter) updateGuarded(ctx context.Context, cur *fnConfig, up *lambda.UpdateFunctionConfigurationInput) (c fnConfig, stale bool, err error) {
	if cur.RevisionId != "" {
		up.RevisionId = aws.String(cur.RevisionId)
	}
	out, err := in.Lambda.UpdateFunctionConfiguration(ctx, up)
	var pf *types.PreconditionFailedException
	switch {
	case errors.As(err, &pf):
		return fnConfig{}, true, nil
	case err != nil:
		return fnConfig{}, false, err
	}
	return fromUpdate(out), false, nil
}

// settle waits for plldb's update of t to finish and records the revision it left in t's claim, so that a
// restore can tell later changes by others from plldb's own.
func (in *Instrumenter) settle(ctx context.Context, t Target, session string, c fnConfig) (string, error) {
	after, err := in.waitUpdated(ctx, t.ARN, c)
	if err != nil {
		return "", err
	}
	rev := after.revision()
	if err := in.Claims.SetRevisionAfter(ctx, t.ARN, session, rev); err != nil {
		return "", fmt.Errorf("record the revision of %s: %w", t.Name, err)
	}
	return rev, nil
}

// waitUpdated polls until the function's last update is no longer in progress.
func (in *Instrumenter) waitUpdated(ctx context.Context, fn string, c fnConfig) (fnConfig, error) {
	limit := in.WaitTimeout
	if limit <= 0 {
		limit = DefaultWaitTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	delay := in.PollInterval
	if delay <= 0 {
		delay = DefaultPollInterval
	}
	for {
		switch {
		case c.LastUpdateStatus == string(types.LastUpdateStatusFailed):
			return c, fmt.Errorf("update of %s failed: %s %s", fn, c.LastUpdateStatusReasonCode, c.LastUpdateStatusReason)
		case c.LastUpdateStatus != string(types.LastUpdateStatusInProgress) && c.State != string(types.StatePending):
			// Successful, or an endpoint that does not report the status at all.
			return c, nil
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return c, fmt.Errorf("wait for the update of %s to finish: %w", fn, ctx.Err())
		case <-timer.C:
		}
		delay = min(delay*2, maxPollInterval)
		var err error
		if _, c, err = in.get(ctx, fn); err != nil {
			return c, fmt.Errorf("wait for the update of %s to finish: %w", fn, err)
		}
	}
}

// redactedError is an error whose message has a secret cut out. It does not unwrap: the original's message
// still holds the secret.
type redactedError struct{ msg string }

func (e *redactedError) Error() string { return e.msg }

func redact(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), secret, "[redacted]")}
}

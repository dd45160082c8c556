package instrument

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/plldb/plldb/cloud/store"
)

// Outcome is what a restore did to one function.
type Outcome string

// Outcomes of a restore.
const (
	// Restored: the function is back as its snapshot shows (or was never changed), and the claim is released.
	Restored Outcome = "restored"
	// Merged: someone else changed the function since plldb attached; plldb took out only its own changes
	// (variables, wrapper, layer, its timeout), kept theirs, and released the claim.
	Merged Outcome = "merged"
	// Conflict: someone else changed the function since plldb attached in a way plldb cannot tell apart from
	// its own changes (or it kept changing under the restore); it was left as it is, and the claim and its
	// snapshot stay for a later `plldb detach`.
	Conflict Outcome = "conflict"
	// Held: another live session holds the function (Recover, or a detach whose claim was taken over
	// meanwhile); nothing was done.
	Held Outcome = "held"
	// Gone: the function no longer exists; the claim was released.
	Gone Outcome = "gone"
	// Failed: an error stopped the restore; the claim and its snapshot stay for another try.
	Failed Outcome = "failed"
)

// Result is the restore of one function.
type Result struct {
	FunctionARN, FunctionName string
	Outcome                   Outcome
	Message                   string // for people: what happened and why
	Err                       error  // for Failed
}

// ConflictMessage starts the Message of a Conflict result.
const ConflictMessage = "changed by someone else since attach; left as it is"

// Restore puts back every function the session holds, in parallel, and releases the claims (but those of
// Conflict and Failed results). From a function it shares with other live selective sessions it takes out only
// its own entries (Left); the last session out puts the snapshot back. Per-function problems are in the
// results; the error is for a store that cannot be read.
func (in *Instrumenter) Restore(ctx context.Context, session string) ([]Result, error) {
	if session == "" {
		return nil, errors.New("restore: empty session id")
	}
	ctx = store.WithSessionCache(ctx) // the holders every function's leave checks are the same few sessions
	snaps, err := in.Claims.SessionSnapshots(ctx, session)
	if err != nil {
		return nil, fmt.Errorf("restore: list the functions session %s holds: %w", session, err)
	}
	results := make([]Result, len(snaps))
	in.each(len(snaps), func(i int) {
		if snaps[i].Shared {
			results[i] = in.leave(ctx, snaps[i], session)
			return
		}
		results[i] = in.detachOne(ctx, snaps[i])
	})
	return results, nil
}

// Recovery asks Recover to put back functions whatever session left them instrumented.
type Recovery struct {
	Session, Owner string   // who recovers; takes over the claims of ended sessions
	FunctionARNs   []string // the functions to look at, e.g. a stack's
	// Force restores functions held by sessions the store still counts as live, for a developer who knows
	// their session crashed before it could expire. Never use it against someone else's session.
	Force bool
}

// Recover puts back the listed functions that any session left instrumented: the path of `plldb detach
// --stack-name` and of the next attach after a crash. A function held by another live session is reported as
// Held and left alone unless Force is set; from a function live selective sessions share it takes out the
// entries of the selective sessions that ended (Left). Functions with no claim produce no result.
func (in *Instrumenter) Recover(ctx context.Context, r Recovery) ([]Result, error) {
	if r.Session == "" {
		return nil, errors.New("recover: empty session id")
	}
	ctx = store.WithSessionCache(ctx)
	results := make([]*Result, len(r.FunctionARNs))
	errs := make([]error, len(r.FunctionARNs))
	in.each(len(r.FunctionARNs), func(i int) {
		arn := r.FunctionARNs[i]
		snap, ok, err := in.Claims.GetSnapshot(ctx, arn)
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("recover: read the claim on %s: %w", arn, err)
			return
		case !ok:
			return
		case snap.Session == r.Session:
			res := in.detachOne(ctx, snap)
			results[i] = &res
			return
		}
		res, held := in.takeOver(ctx, r.Session, r.Owner, snap)
		switch {
		case held != nil && snap.Shared && !r.Force && held.Holders != nil:
			// Live selective sessions keep the function; the entries of those that ended (a crashed plldb of
			// ours, whose session endCrashed removed) go. One ended session's leave drops every holder that is
			// no longer live, and their entries with it.
			for _, h := range snap.Holders {
				if !holdsSession(held.Holders, h.Session) {
					res = in.leave(ctx, Snapshot{FunctionARN: arn}, h.Session)
					break
				}
			}
		case held != nil && r.Force && snap.Shared:
			// Every selective session leaves in turn; the last one out puts the snapshot back.
			for _, h := range snap.Holders {
				res = in.leave(ctx, Snapshot{FunctionARN: arn}, h.Session)
			}
		case held != nil && r.Force:
			res = in.detachOne(ctx, snap)
		}
		results[i] = &res
	})
	var out []Result
	for _, res := range results {
		if res != nil {
			out = append(out, *res)
		}
	}
	return out, errors.Join(errs...)
}

// takeOver claims a snapshot left by another session, keeping its content, and restores it. held is set, and
// nothing done, when that session is still live.
func (in *Instrumenter) takeOver(ctx context.Context, session, owner string, stale Snapshot) (Result, *HeldError) {
	mine := stale
	mine.Session = session
	mine.Shared, mine.Holders = false, nil
	err := in.Claims.Claim(ctx, mine, owner)
	var held *HeldError
	switch {
	case errors.As(err, &held):
		return Result{FunctionARN: stale.FunctionARN, FunctionName: stale.FunctionName, Outcome: Held, Message: held.Error()}, held
	case err != nil:
		return failed(stale, fmt.Errorf("take over the claim of ended session %s: %w", stale.Session, err)), nil
	}
	in.logger().Info("restoring a function an ended session left instrumented", "function", stale.FunctionName, "session", stale.Session)
	return in.restoreOne(ctx, mine), nil
}

// untag removes the session tag. A tag left behind only lets the relay role look at a function no claim
// points to, so a failure is logged, not returned.
func (in *Instrumenter) untag(ctx context.Context, arn, name string) {
	if _, err := in.Lambda.UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(arn), TagKeys: []string{SessionTag}}); err != nil {
		in.logger().Warn("remove the session tag", "function", name, "err", err)
	}
}

func failed(s Snapshot, err error) Result {
	return Result{FunctionARN: s.FunctionARN, FunctionName: s.FunctionName, Outcome: Failed, Message: err.Error(), Err: err}
}

// mergeAttempts bounds the rounds of read, merge and guarded update when someone keeps changing a function
// while plldb restores it.
const mergeAttempts = 3

// restoreOne puts one snapshot back if the function is still as plldb left it. If someone else changed it
// since, it takes out only plldb's own changes and keeps theirs (Merged); if it cannot tell the two apart, or
// the function keeps changing under it, it leaves the function and keeps the claim for a later `plldb detach`
// (Conflict). Every update is guarded by the RevisionId it was computed from. The claim is released unless
// the restore failed or conflicted.
func (in *Instrumenter) restoreOne(ctx context.Context, snap Snapshot) Result {
	return in.restoreSnapshot(ctx, snap, false)
}

// detachOne is restoreOne for a session detaching from a function it holds exclusively (Restore, and Recover
// for a claim of the recovering session's own or a forced one). It first marks the claim as being released,
// as Leave does for the last selective session out, so that an attach that meets the claim while this
// restore runs waits for the release instead of being refused. A conflict or failure keeps the mark with the
// claim, until the session detaches again or ends; then the next attach or the sweep takes the claim over
// (Claim never writes the mark). A takeover's restore (takeOver) is no detach and does not mark: its session
// goes on to attach, or keeps the claim after a conflict while it is not putting anything back.
func (in *Instrumenter) detachOne(ctx context.Context, snap Snapshot) Result {
	if !snap.Releasing {
		err := in.Claims.MarkReleasing(ctx, snap.FunctionARN, snap.Session)
		var held *HeldError
		switch {
		case errors.As(err, &held):
			// Taken over meanwhile (this session ended) or held by another session: theirs to put back.
			return Result{FunctionARN: snap.FunctionARN, FunctionName: snap.FunctionName, Outcome: Held, Message: held.Error()}
		case errors.Is(err, store.ErrNotFound):
			// Nobody holds it any more: a detach of this session running alongside (its own and the relay's
			// expiry restore) put it back and released the claim, for a claim goes only after its restore. The
			// function is free, so another session may claim and instrument it at any moment; restoring it from
			// this snapshot now would take that session's changes out as if they were plldb's own (as leave
			// does on a claim that is gone, nothing is done).
			in.logger().Debug("no claim left to put back", "function", snap.FunctionName, "session", snap.Session)
			return Result{FunctionARN: snap.FunctionARN, FunctionName: snap.FunctionName, Outcome: Restored,
				Message: "no claim on it any more: already put back"}
		case err != nil:
			// The mark only lets an attach that meets the claim wait instead of being refused; the claim itself
			// still keeps everyone else off, so a store that failed to mark must not keep the function
			// instrumented.
			in.logger().Warn("could not mark the claim as being released; putting the function back anyway",
				"function", snap.FunctionName, "err", err)
		}
	}
	return in.restoreSnapshot(ctx, snap, false)
}

// restoreSnapshot is restoreOne; shared says the claim was shared by selective sessions until this restore's
// session, the last one out, took it, so the revision it recorded may be another session's (see state).
func (in *Instrumenter) restoreSnapshot(ctx context.Context, snap Snapshot, shared bool) Result {
	res := Result{FunctionARN: snap.FunctionARN, FunctionName: snap.FunctionName}
	release := func(r Result) Result {
		// The tag goes while the claim still stands, so that it cannot remove the tag of a session that claims
		// the function next.
		if r.Outcome != Gone {
			in.untag(ctx, snap.FunctionARN, snap.FunctionName)
		}
		if err := in.Claims.Release(ctx, snap.FunctionARN, snap.Session); err != nil {
			return failed(snap, fmt.Errorf("release the claim on %s: %w", snap.FunctionName, err))
		}
		return r
	}
	for range mergeAttempts {
		_, cur, err := in.getSettled(ctx, snap.FunctionARN)
		var nf *types.ResourceNotFoundException
		switch {
		case errors.As(err, &nf):
			res.Outcome, res.Message = Gone, "the function no longer exists"
			return release(res)
		case err != nil:
			return failed(snap, err)
		}
		up := &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(snap.FunctionARN),
			// An empty map is how the API removes every variable, which is what an absent environment needs.
			Environment: &types.Environment{Variables: map[string]string{}},
			Layers:      []string{},
		}
		switch in.stateOf(snap, &cur, shared) {
		case untouched:
			res.Outcome, res.Message = Restored, "plldb's change never reached it; nothing to put back"
			return release(res)
		case asLeft:
			maps.Copy(up.Environment.Variables, snap.Environment)
			up.Layers = append(up.Layers, snap.Layers...)
			up.Timeout = aws.Int32(snap.Timeout)
			res.Outcome, res.Message = Restored, "configuration put back"
		case changedByOthers:
			m := in.merge(snap, &cur)
			if m.problem != "" {
				in.logger().Warn("not restoring a function someone else changed", "function", snap.FunctionName, "problem", m.problem)
				res.Outcome, res.Message = Conflict, conflictMessage(m.problem)
				return res
			}
			res.Outcome, res.Message = Merged, mergedMessage(m.kept)
			if m.noop {
				if len(m.kept) == 0 {
					// Someone (another restore, a person) already put back exactly the snapshot.
					res.Outcome, res.Message = Restored, "already as it was before attach"
				}
				return release(res)
			}
			maps.Copy(up.Environment.Variables, m.env)
			up.Layers = append(up.Layers, m.layers...)
			up.Timeout = aws.Int32(m.timeout)
		}
		c, stale, err := in.updateGuarded(ctx, &cur, up)
		switch {
		case stale:
			in.logger().Info("the function changed while plldb restored it; reading it again", "function", snap.FunctionName)
			continue
		case err != nil:
			return failed(snap, fmt.Errorf("restore %s: %w", snap.FunctionName, redact(err, up.Environment.Variables[EnvFunctionKey])))
		}
		if _, err := in.waitUpdated(ctx, snap.FunctionARN, c); err != nil {
			return failed(snap, fmt.Errorf("restore %s: %w", snap.FunctionName, err))
		}
		in.logger().Debug("restored", "function", snap.FunctionName, "outcome", res.Outcome)
		return release(res)
	}
	res.Outcome = Conflict
	res.Message = conflictMessage(fmt.Sprintf("it kept changing while plldb restored it (%d tries, each refused by Lambda's RevisionId check)", mergeAttempts))
	return res
}

func conflictMessage(problem string) string {
	return ConflictMessage + ": " + problem + "; plldb keeps its claim and snapshot, so `plldb detach --stack-name STACK` can finish once the function settles (or remove the PLLDB_* variables, " + EnvExecWrapper + " and the plldb layer by hand)"
}

type fnState int

const (
	asLeft fnState = iota
	untouched
	changedByOthers
)

// state compares a function with what plldb did to it. With the revision plldb recorded after its update the
// answer is exact. Without it (plldb stopped between its update and recording the revision) the function is
// untouched if it still has its snapshot's revision, and as plldb left it if it differs from the snapshot only
// by plldb's own change.
func (in *Instrumenter) state(snap Snapshot, cur *fnConfig) fnState {
	return in.stateOf(snap, cur, false)
}

// stateOf is state. With shared, a revision that differs from the recorded one is still plldb's when the
// function is its snapshot plus plldb's changes and nothing else: sessions sharing a function record the
// revisions their updates left concurrently, so the last one recorded need not be the function's last.
func (in *Instrumenter) stateOf(snap Snapshot, cur *fnConfig, shared bool) fnState {
	if snap.RevisionAfter != "" {
		if cur.revision() == snap.RevisionAfter {
			return asLeft
		}
		if shared && onlyPlldbChanged(snap, cur) && sameOtherSettings(snap, cur) {
			return asLeft
		}
		return changedByOthers
	}
	if before, err := parseConfig(snap.Config); err == nil && before.revision() == cur.revision() {
		return untouched
	}
	if onlyPlldbChanged(snap, cur) {
		return asLeft
	}
	return changedByOthers
}

// onlyPlldbChanged tells whether cur is snap plus exactly the changes Instrument makes for snap's session.
func onlyPlldbChanged(snap Snapshot, cur *fnConfig) bool {
	vars := cur.vars()
	// A selectively instrumented function names its sessions in PLLDB_SESSIONS instead of PLLDB_SESSION.
	ours := vars[EnvSession] == snap.Session || (vars[EnvSession] == "" && vars[EnvSelective] != "")
	if !ours || vars[EnvExecWrapper] != WrapperPath || cur.timeout() != DebugTimeout {
		return false
	}
	rest := map[string]string{}
	for k, v := range vars {
		switch k {
		case EnvEndpoint, EnvSession, EnvFunctionKey, EnvAudience, EnvLogicalID, EnvPrevWrapper, EnvExecWrapper,
			EnvStrict, EnvCredentials, EnvSelective, EnvKnockKeys, EnvKnockStack, EnvSessions:
		default:
			rest[k] = v
		}
	}
	own := map[string]string{}
	for k, v := range snap.Environment {
		if k != EnvExecWrapper && k != EnvPrevWrapper {
			own[k] = v
		}
	}
	wantPrev := snap.Environment[EnvPrevWrapper]
	if w := snap.ExecWrapper; w != "" && w != WrapperPath {
		wantPrev = w
	}
	if !maps.Equal(rest, own) || vars[EnvPrevWrapper] != wantPrev {
		return false
	}
	layers := cur.layerARNs()
	if len(layers) != len(snap.Layers)+1 || !slices.Equal(layers[:len(snap.Layers)], snap.Layers) {
		return false
	}
	return strings.Contains(layers[len(layers)-1], ":layer:")
}

// sameOtherSettings tells whether the settings plldb never changes are still the snapshot's.
func sameOtherSettings(snap Snapshot, cur *fnConfig) bool {
	before, err := parseConfig(snap.Config)
	if err != nil || len(snap.Config) == 0 {
		return false
	}
	return before.Description == cur.Description && before.Handler == cur.Handler && before.Runtime == cur.Runtime &&
		before.Role == cur.Role && before.CodeSha256 == cur.CodeSha256 && ptrValue(before.MemorySize) == ptrValue(cur.MemorySize) &&
		before.KMSKeyArn == cur.KMSKeyArn && slices.Equal(before.Architectures, cur.Architectures)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // plain structs of strings and maps cannot fail
	}
	return b
}

package instrument

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/cloud/store"
)

// Several selective sessions share a function (docs/knock.md, "Several developers"). The claim store keeps one
// snapshot, the first session's, and the sessions holding it; the function's PLLDB_KNOCK_KEYS and PLLDB_SESSIONS
// carry one entry per session. Every change of those lists reads the function, then the claim's holders (in
// that order, so that the entries of a session that joined meanwhile are never mistaken for a stale session's),
// and writes with the RevisionId it read, reading again when Lambda refuses it: two developers joining or leaving
// at once serialize on the function's revision as their claims serialize in the store. The holders the session's
// own claim write left (Join, Leave) are the claim's as of before the function was read, so when the function
// names none but them the first round takes them instead of reading the claim again (listsOnly).

// sharedAttempts bounds the rounds of read, edit and guarded update of a shared function's lists. Each refused
// update means another session's edit landed, so the bound is the number of sessions that may edit at once.
const sharedAttempts = 2 * selenv.MaxSessions

// Left is the outcome of a selective session leaving a function that other live selective sessions still
// share: its entries are out of the function's lists, the function stays instrumented for them, and the last
// one out puts the snapshot back.
const Left Outcome = "left"

// selectivelyInstrumented tells whether vars carry plldb's selective instrumentation.
func selectivelyInstrumented(vars map[string]string) bool {
	return vars[EnvExecWrapper] == WrapperPath && vars[EnvSelective] != ""
}

// instrumentedBy names who left plldb's variables on a function, for messages.
func instrumentedBy(vars map[string]string) string {
	if vars[EnvSessions] != "" {
		links, err := selenv.ParseSessions(vars[EnvSessions])
		if err == nil {
			ids := make([]string, len(links))
			for i, l := range links {
				ids[i] = l.Session
			}
			return "selective sessions " + strings.Join(ids, ", ")
		}
		return "selective sessions"
	}
	return fmt.Sprintf("session %q", vars[EnvSession])
}

// sessionLists reads a function's selective lists; missing lists are empty.
func sessionLists(vars map[string]string) ([]selenv.Link, map[string]ed25519.PublicKey, error) {
	var links []selenv.Link
	keys := map[string]ed25519.PublicKey{}
	var err error
	if v := vars[EnvSessions]; v != "" {
		if links, err = selenv.ParseSessions(v); err != nil {
			return nil, nil, fmt.Errorf("the function's %s was changed by someone else and cannot be read: %w", EnvSessions, err)
		}
	}
	if v := vars[EnvKnockKeys]; v != "" {
		if keys, err = selenv.ParseKnockKeys(v); err != nil {
			return nil, nil, fmt.Errorf("the function's %s was changed by someone else and cannot be read: %w", EnvKnockKeys, err)
		}
	}
	return links, keys, nil
}

// keepHolders drops from the lists every session that is not among holders, and the session drop.
func keepHolders(links []selenv.Link, keys map[string]ed25519.PublicKey, holders []Holder, drop string) []selenv.Link {
	keep := func(id string) bool { return id != drop && holdsSession(holders, id) }
	links = slices.DeleteFunc(links, func(l selenv.Link) bool { return !keep(l.Session) })
	maps.DeleteFunc(keys, func(id string, _ ed25519.PublicKey) bool { return !keep(id) })
	return links
}

// writeLists sets both lists, or removes them when no session is left in them (the layer then runs every
// invocation as the deployed code until a session's entries come back).
func writeLists(env map[string]string, links []selenv.Link, keys map[string]ed25519.PublicKey) {
	if len(links) == 0 {
		delete(env, EnvSessions)
	} else {
		env[EnvSessions] = selenv.FormatSessions(links)
	}
	if len(keys) == 0 {
		delete(env, EnvKnockKeys)
	} else {
		env[EnvKnockKeys] = selenv.FormatKnockKeys(keys)
	}
}

// joinedEnvironment is a selectively instrumented function's variables with s's entries added, and the entries
// of sessions that no longer hold the function (holders) taken out.
func joinedEnvironment(vars map[string]string, holders []Holder, s Session, t Target) (map[string]string, error) {
	links, keys, err := sessionLists(vars)
	if err != nil {
		return nil, err
	}
	links = keepHolders(links, keys, holders, s.ID)
	if len(links)+1 > selenv.MaxSessions || len(keys)+1 > selenv.MaxSessions {
		return nil, fmt.Errorf("%d selective sessions share it already, the most its environment can list (%d)", len(links), selenv.MaxSessions)
	}
	links = append(links, s.link(t))
	keys[s.ID] = s.KnockKey
	env := maps.Clone(vars)
	// Single-session variables have no place next to the lists (a leftover of an older plldb, or a person).
	delete(env, EnvSession)
	delete(env, EnvFunctionKey)
	delete(env, EnvCredentials)
	sharedVariables(env, s, t)
	writeLists(env, links, keys)
	return env, nil
}

// joined is what a selective session writes to join a function: cur's variables and layers with its entries
// added when the function carries selective instrumentation already, else the snapshot plus plldb's.
func (in *Instrumenter) joined(claim Snapshot, cur *fnConfig, s Session, t Target, layer string) (map[string]string, []string, error) {
	vars := cur.vars()
	if selectivelyInstrumented(vars) {
		env, err := joinedEnvironment(vars, claim.Holders, s, t)
		if err != nil {
			return nil, nil, err
		}
		layers, err := withLayer(cur.layerARNs(), layer)
		if err != nil {
			return nil, nil, err
		}
		return env, layers, nil
	}
	// The first session to write: the function must still be as the snapshot shows, or instrumenting from the
	// snapshot would undo someone else's change.
	// Only what an update writes (variables, layers, timeout) matters: the rest of the function is not touched.
	if !maps.Equal(vars, claim.Environment) || !slices.Equal(cur.layerARNs(), claim.Layers) || cur.timeout() != claim.Timeout {
		return nil, nil, fmt.Errorf("%s: it is not instrumented, yet its variables, layers or timeout changed since the first selective session took its snapshot; detach the stack (plldb detach --stack-name), then attach again", ConflictMessage)
	}
	layers, err := withLayer(claim.Layers, layer)
	if err != nil {
		return nil, nil, err
	}
	return sessionEnvironment(claim.Environment, s, t), layers, nil
}

// withLayer is a copy of layers with the plldb layer added, or an error when Lambda's limit leaves no room.
func withLayer(layers []string, layer string) ([]string, error) {
	out := slices.Clone(layers)
	if out == nil {
		out = []string{} // an update with nil Layers would leave the function's layers as they are
	}
	if slices.Contains(out, layer) {
		return out, nil
	}
	if len(out) >= MaxLayers {
		return nil, fmt.Errorf("it already has %d layers, Lambda's limit, so the plldb layer does not fit", len(out))
	}
	return append(out, layer), nil
}

func environmentProblem(env, own map[string]string) string {
	if size := EnvironmentSize(env); size > MaxEnvironmentBytes {
		return fmt.Sprintf("its environment with plldb's variables would take %d bytes, over Lambda's %d-byte limit (its own variables take %d)",
			size, MaxEnvironmentBytes, EnvironmentSize(own))
	}
	return ""
}

// inspectJoin plans a selective session's claim on a function selective sessions share already.
func (in *Instrumenter) inspectJoin(ctx context.Context, s Session, t Target, stored Snapshot) (*plan, *Result, *Refusal, error) {
	refuse := func(format string, args ...any) (*plan, *Result, *Refusal, error) {
		return nil, nil, &Refusal{Function: t.StackFunction, Reason: fmt.Sprintf(format, args...)}, nil
	}
	_, cur, err := in.getSettled(ctx, t.ARN)
	if err != nil {
		return nil, nil, nil, err
	}
	if problem := runtimeProblem(&cur); problem != "" {
		return refuse("%s", problem)
	}
	p := &plan{target: t, cur: cur, snap: stored, reclaim: holdsSession(stored.Holders, s.ID)}
	p.snap.Session = s.ID
	p.layer = in.Layers.For(cur.Architectures)
	if p.env, p.layers, err = in.joined(stored, &cur, s, t, p.layer); err != nil {
		return refuse("%s", err)
	}
	if problem := environmentProblem(p.env, stored.Environment); problem != "" {
		return refuse("%s", problem)
	}
	return p, nil, nil, nil
}

// join adds the session's entries to a function it holds a shared claim on (the first session to write
// instruments it from the snapshot), guarded by the function's RevisionId and read again when it changed.
func (in *Instrumenter) join(ctx context.Context, s Session, p *plan) (*Attached, bool, error) {
	t := p.target
	// One tag for every session sharing the function (SessionTag): each one that joins puts it on, so that it
	// is there before any change the relay may have to undo.
	if err := in.tagSession(ctx, t, s.ID); err != nil {
		return nil, false, err
	}
	for attempt := range sharedAttempts {
		// The function first, then the holders: see the comment at the top of this file.
		_, cur, err := in.getSettled(ctx, t.ARN)
		if err != nil {
			return nil, false, err
		}
		var claim Snapshot
		if attempt == 0 && listsOnly(cur.vars(), p.holders) {
			// The holders Join left are the claim as of a moment before this read of the function; a session
			// that joined since could be on the function but not among them, and only then is the claim read.
			claim = p.snap
			claim.Holders = p.holders
		} else {
			var ok bool
			claim, ok, err = in.Claims.GetSnapshot(ctx, t.ARN)
			switch {
			case err != nil:
				return nil, false, fmt.Errorf("read the claim on %s: %w", t.Name, err)
			case !ok || !claim.Shared || !holdsSession(claim.Holders, s.ID):
				return nil, false, fmt.Errorf("%s (%s): this session's claim went while it was attaching (its session ended, or an exclusive attach took over); attach again", t.LogicalID, t.Name)
			}
		}
		env, layers, err := in.joined(claim, &cur, s, t, p.layer)
		if err != nil {
			return nil, false, fmt.Errorf("%s (%s): %w", t.LogicalID, t.Name, err)
		}
		if problem := environmentProblem(env, claim.Environment); problem != "" {
			return nil, false, fmt.Errorf("%s (%s): %s", t.LogicalID, t.Name, problem)
		}
		up := &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(t.ARN),
			Environment:  &types.Environment{Variables: env},
			Layers:       layers,
			Timeout:      aws.Int32(DebugTimeout),
		}
		c, stale, err := in.updateGuarded(ctx, &cur, up)
		switch {
		case stale:
			in.logger().Debug("the function changed while joining it; reading it again", "function", t.Name)
			continue
		case err != nil:
			// Lambda quotes the variables back in some refusals: keep the function keys out.
			return nil, false, fmt.Errorf("update %s: %w", t.Name, redactSessions(err, env[EnvSessions]))
		}
		rev, err := in.settle(ctx, t, s.ID, c)
		if err != nil {
			return nil, true, err
		}
		in.logger().Debug("joined", "function", t.Name, "logical_id", t.LogicalID, "sessions", len(claim.Holders))
		return &Attached{StackFunction: t.StackFunction, Layer: p.layer, Revision: rev}, true, nil
	}
	return nil, false, fmt.Errorf("%s (%s) kept changing while plldb joined it (%d tries, each refused by Lambda's RevisionId check); attach again", t.LogicalID, t.Name, sharedAttempts)
}

// leave takes a selective session out of a function it shares: its entries go from the lists when other live
// sessions remain (Left), and when it is the last one the snapshot goes back as for any restore.
//
// read is the claim as the caller read it (Restore's SessionSnapshots), for the store to build on; a
// Snapshot with only FunctionARN set makes it read the claim itself.
func (in *Instrumenter) leave(ctx context.Context, read Snapshot, session string) Result {
	arn := read.FunctionARN
	res := Result{FunctionARN: arn, FunctionName: arn}
	claim, last, err := in.Claims.Leave(ctx, read, session)
	var held *HeldError
	switch {
	case errors.Is(err, store.ErrNotFound):
		res.Outcome, res.Message = Left, "no claim on it any more"
		return res
	case errors.As(err, &held):
		res.Outcome, res.Message = Held, held.Error()
		return res
	case err != nil:
		res.Outcome, res.Message, res.Err = Failed, err.Error(), err
		return res
	}
	if claim.FunctionName != "" {
		res.FunctionName = claim.FunctionName
	}
	if last {
		return in.restoreSnapshot(ctx, claim, true)
	}
	for attempt := range sharedAttempts {
		_, cur, err := in.getSettled(ctx, arn)
		var nf *types.ResourceNotFoundException
		switch {
		case errors.As(err, &nf):
			res.Outcome, res.Message = Gone, "the function no longer exists"
			return res
		case err != nil:
			return failed(claim, err)
		}
		vars := cur.vars()
		now, ok := claim, true
		// As in join: the holders Leave left are the claim of a moment before this read of the function, and
		// only a session missing from them (one that joined since) makes it worth reading the claim again.
		if attempt > 0 || !listsOnly(vars, append(slices.Clone(claim.Holders), Holder{Session: session})) {
			if now, ok, err = in.Claims.GetSnapshot(ctx, arn); err != nil {
				return failed(claim, fmt.Errorf("read the claim on %s: %w", res.FunctionName, err))
			}
		}
		if !ok || !now.Shared || !selectivelyInstrumented(vars) {
			// The last session out, or a takeover, puts the whole snapshot back: nothing of ours to take out.
			res.Outcome, res.Message = Left, "left; the last session out puts it back"
			return res
		}
		links, keys, err := sessionLists(vars)
		if err != nil {
			res.Outcome, res.Message = Left, "left, but its entries could not be taken out: "+err.Error()
			return res
		}
		before := len(links) + len(keys)
		links = keepHolders(links, keys, now.Holders, session)
		if len(links)+len(keys) == before {
			res.Outcome, res.Message = Left, leftMessage(now.Holders)
			return res
		}
		env := maps.Clone(vars)
		writeLists(env, links, keys)
		up := &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(arn),
			Environment:  &types.Environment{Variables: env},
		}
		c, stale, err := in.updateGuarded(ctx, &cur, up)
		switch {
		case stale:
			continue
		case err != nil:
			return failed(claim, fmt.Errorf("take session %s out of %s: %w", session, res.FunctionName, redactSessions(err, env[EnvSessions])))
		}
		after, err := in.waitUpdated(ctx, arn, c)
		if err != nil {
			return failed(claim, fmt.Errorf("take session %s out of %s: %w", session, res.FunctionName, err))
		}
		if err := in.Claims.SetRevisionAfter(ctx, arn, session, after.revision()); err != nil {
			// The last session may have taken the claim meanwhile; its restore reads the function anyway.
			in.logger().Debug("record the revision after leaving", "function", res.FunctionName, "err", err)
		}
		res.Outcome, res.Message = Left, leftMessage(now.Holders)
		return res
	}
	// This session holds nothing any more; the next session to join or leave drops its entries.
	res.Outcome = Left
	res.Message = fmt.Sprintf("left, but it kept changing while plldb took this session's entries out (%d tries); the next session to attach or detach drops them", sharedAttempts)
	return res
}

// listsOnly tells whether vars carry selective instrumentation whose lists name no session but holders. A
// function that is not selectively instrumented (yet, or any more) answers false: whoever writes it first, or
// finds the claim gone, must see the claim as it is now.
func listsOnly(vars map[string]string, holders []Holder) bool {
	if holders == nil || !selectivelyInstrumented(vars) {
		return false
	}
	links, keys, err := sessionLists(vars)
	if err != nil {
		return false
	}
	for _, l := range links {
		if !holdsSession(holders, l.Session) {
			return false
		}
	}
	for id := range keys {
		if !holdsSession(holders, id) {
			return false
		}
	}
	return true
}

// redactSessions cuts every function key of a PLLDB_SESSIONS value out of an error, however Lambda quotes the
// variables back.
func redactSessions(err error, v string) error {
	links, perr := selenv.ParseSessions(v)
	if perr != nil {
		return redact(err, v)
	}
	for _, l := range links {
		err = redact(err, base64.StdEncoding.EncodeToString(l.FunctionKey))
	}
	return err
}

func leftMessage(holders []Holder) string {
	return "left; still instrumented for selective sessions " + store.HolderNames(holders)
}

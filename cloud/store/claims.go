package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Snapshot is a function's configuration as it was before a session instrumented it: what detach puts back.
type Snapshot struct {
	FunctionARN, FunctionName, Session string
	// Config is the function's GetFunctionConfiguration output as JSON, verbatim, taken before any change.
	// An empty Config comes back as nil.
	Config []byte
	// Environment and HasEnvironment tell a function without an Environment (HasEnvironment false) from one with
	// an empty or nil variables map; nil and empty maps round-trip as they were.
	Environment    map[string]string
	HasEnvironment bool
	Layers         []string // layer version ARNs in order; nil and empty round-trip as they were
	Timeout        int32
	ExecWrapper    string // the AWS_LAMBDA_EXEC_WRAPPER the function had ("" if none)
	// PlldbLayer is the plldb layer version attach added, so that a restore can take out exactly that layer
	// when someone else changed the function meanwhile ("" in claims written before it was recorded).
	PlldbLayer    string
	RevisionAfter string // RevisionId after plldb's update, to detect later changes by others
	TakenAt       time.Time
	// Shared says the claim is held by any number of selective sessions (Holders) rather than by Session
	// alone; the snapshot is the one the first of them took. Claim with Shared set asks for a shared claim.
	// GetSnapshot, StackSnapshots and Snapshots leave Session empty on a shared claim; SessionSnapshots sets it
	// to the session asked about.
	Shared  bool
	Holders []Holder // the sessions sharing the claim, by session id; nil on an exclusive claim
	// Releasing marks an exclusive claim whose session is putting the snapshot back and then releases the
	// claim, so a session refused by it only has to wait: the claim Leave gives the last selective session out,
	// or one MarkReleasing marked for a plain session's detach. Claim never writes it.
	Releasing bool
	// Version is a shared claim's version as the snapshot was read (GetSnapshot, SessionSnapshots,
	// StackSnapshots), 0 for an exclusive claim or a snapshot not read from a claim. Claim with Shared takes
	// the snapshot's Version and Holders as the claim it will find (Version 0: no claim yet), and Leave takes
	// them so when Version is set, instead of reading the claim once more: each writes with a transaction
	// conditioned on that version, so a claim that changed since the caller read it fails the write and is read
	// again, exactly as a change between the store's own read and its write would.
	Version int64
}

// Holder is one session sharing a claim.
type Holder struct {
	Session, Owner string
}

func (h Holder) String() string { return h.Session + " (" + h.Owner + ")" }

// HeldError says that another live session holds a function: one session exclusively (Session and Owner),
// or selective sessions sharing it (Holders).
type HeldError struct {
	Session, Owner string
	Function       string   // the function's name, or its ARN when the name is not known
	Holders        []Holder // set when selective sessions share the function
	// Releasing says that Session, detaching from the function (a plain session, or the last selective session
	// to leave it), is putting it back and will then release it (Snapshot.Releasing): the function is about to
	// be free.
	Releasing bool
}

func (e *HeldError) Error() string {
	switch {
	case len(e.Holders) > 0:
		return fmt.Sprintf("function %s is held by selective sessions %s: detach them or attach with --selective",
			e.Function, HolderNames(e.Holders))
	case e.Releasing:
		return fmt.Sprintf("function %s is being put back by session %s (owner %s), which is detaching from it",
			e.Function, e.Session, e.Owner)
	}
	return fmt.Sprintf("function %s is held by session %s (owner %s)", e.Function, e.Session, e.Owner)
}

func claimKey(arn string) item { return item{attrARN: sv(arn)} }

func encodeClaim(snap Snapshot, owner string) item {
	it := item{
		attrARN:      sv(snap.FunctionARN),
		attrName:     sv(snap.FunctionName),
		attrSession:  sv(snap.Session),
		attrOwner:    sv(owner),
		attrHasEnv:   &types.AttributeValueMemberBOOL{Value: snap.HasEnvironment},
		attrTimeout:  nv(int64(snap.Timeout)),
		attrWrapper:  sv(snap.ExecWrapper),
		attrRevision: sv(snap.RevisionAfter),
	}
	if snap.PlldbLayer != "" {
		it[attrPlldbLayer] = sv(snap.PlldbLayer)
	}
	if len(snap.Config) > 0 {
		it[attrConfig] = &types.AttributeValueMemberB{Value: snap.Config}
	}
	if snap.Environment != nil {
		env := make(item, len(snap.Environment))
		for k, v := range snap.Environment {
			env[k] = sv(v)
		}
		it[attrEnv] = &types.AttributeValueMemberM{Value: env}
	}
	if snap.Layers != nil {
		layers := make([]types.AttributeValue, len(snap.Layers))
		for i, l := range snap.Layers {
			layers[i] = sv(l)
		}
		it[attrLayers] = &types.AttributeValueMemberL{Value: layers}
	}
	if !snap.TakenAt.IsZero() {
		it[attrTakenAt] = timeS(snap.TakenAt)
	}
	if snap.Releasing && !snap.Shared {
		it[attrReleasing] = &types.AttributeValueMemberBOOL{Value: true}
	}
	if snap.Shared {
		// A shared claim stays out of the by-session index: its holders are found there by their membership
		// items instead.
		delete(it, attrSession)
		delete(it, attrOwner)
		it[attrShared] = &types.AttributeValueMemberBOOL{Value: true}
		it[attrHolders] = holdersAV(snap.Holders)
	}
	return it
}

func holdersAV(hs []Holder) types.AttributeValue {
	m := make(item, len(hs))
	for _, h := range hs {
		m[h.Session] = sv(h.Owner)
	}
	return &types.AttributeValueMemberM{Value: m}
}

// decodeClaim reads a claim item back into its snapshot and the owner of the claiming session.
func decodeClaim(it item) (snap Snapshot, owner string, err error) {
	fail := func(err error) (Snapshot, string, error) {
		arn, _ := getS(it, attrARN)
		return Snapshot{}, "", fmt.Errorf("claim of %s: %w", arn, err)
	}
	for name, dst := range map[string]*string{attrARN: &snap.FunctionARN, attrName: &snap.FunctionName,
		attrSession: &snap.Session, attrOwner: &owner, attrWrapper: &snap.ExecWrapper, attrRevision: &snap.RevisionAfter,
		attrPlldbLayer: &snap.PlldbLayer} {
		if *dst, err = getS(it, name); err != nil {
			return fail(err)
		}
	}
	switch v := it[attrConfig].(type) {
	case nil:
	case *types.AttributeValueMemberB:
		snap.Config = v.Value
	default:
		return fail(fmt.Errorf("attribute %s is %T, not binary", attrConfig, v))
	}
	switch v := it[attrHasEnv].(type) {
	case nil:
	case *types.AttributeValueMemberBOOL:
		snap.HasEnvironment = v.Value
	default:
		return fail(fmt.Errorf("attribute %s is %T, not a boolean", attrHasEnv, v))
	}
	switch v := it[attrEnv].(type) {
	case nil:
	case *types.AttributeValueMemberM:
		snap.Environment = make(map[string]string, len(v.Value))
		for k, av := range v.Value {
			s, ok := av.(*types.AttributeValueMemberS)
			if !ok {
				return fail(fmt.Errorf("environment variable %s is %T, not a string", k, av))
			}
			snap.Environment[k] = s.Value
		}
	default:
		return fail(fmt.Errorf("attribute %s is %T, not a map", attrEnv, v))
	}
	switch v := it[attrLayers].(type) {
	case nil:
	case *types.AttributeValueMemberL:
		snap.Layers = make([]string, len(v.Value))
		for i, av := range v.Value {
			s, ok := av.(*types.AttributeValueMemberS)
			if !ok {
				return fail(fmt.Errorf("layer %d is %T, not a string", i, av))
			}
			snap.Layers[i] = s.Value
		}
	default:
		return fail(fmt.Errorf("attribute %s is %T, not a list", attrLayers, v))
	}
	timeout, _, err := getN(it, attrTimeout)
	if err != nil {
		return fail(err)
	}
	if int64(int32(timeout)) != timeout {
		return fail(fmt.Errorf("timeout %d out of range", timeout))
	}
	snap.Timeout = int32(timeout)
	if snap.TakenAt, err = getTime(it, attrTakenAt); err != nil {
		return fail(err)
	}
	switch v := it[attrShared].(type) {
	case nil:
	case *types.AttributeValueMemberBOOL:
		snap.Shared = v.Value
	default:
		return fail(fmt.Errorf("attribute %s is %T, not a boolean", attrShared, v))
	}
	switch v := it[attrReleasing].(type) {
	case nil:
	case *types.AttributeValueMemberBOOL:
		snap.Releasing = v.Value
	default:
		return fail(fmt.Errorf("attribute %s is %T, not a boolean", attrReleasing, v))
	}
	if snap.Shared && snap.Releasing {
		return fail(fmt.Errorf("attribute %s on a shared claim", attrReleasing))
	}
	if snap.Shared {
		if snap.Version, _, err = getN(it, attrVersion); err != nil {
			return fail(err)
		}
		m, ok := it[attrHolders].(*types.AttributeValueMemberM)
		if !ok {
			return fail(fmt.Errorf("shared claim without a holders map (%T)", it[attrHolders]))
		}
		snap.Holders = make([]Holder, 0, len(m.Value))
		for id, av := range m.Value {
			o, ok := av.(*types.AttributeValueMemberS)
			if !ok {
				return fail(fmt.Errorf("holder %s is %T, not a string", id, av))
			}
			snap.Holders = append(snap.Holders, Holder{Session: id, Owner: o.Value})
		}
		slices.SortFunc(snap.Holders, func(a, b Holder) int { return strings.Compare(a.Session, b.Session) })
	}
	return snap, owner, nil
}

func heldBy(it item, arn string) *HeldError {
	snap, owner, _ := decodeClaim(it)
	fn := snap.FunctionName
	if fn == "" {
		fn = arn
	}
	if snap.Shared {
		return &HeldError{Function: fn, Holders: snap.Holders}
	}
	return &HeldError{Session: snap.Session, Owner: owner, Function: fn, Releasing: snap.Releasing}
}

// Claim records that snap.Session holds the function and keeps snap as its original configuration. The
// claiming session must exist and be live (PutSession first).
//
//   - A free function is claimed with one conditional write, so of several concurrent claims exactly one wins.
//   - The same session claiming again keeps the first snapshot: a retried attach must never overwrite the
//     original configuration with an already instrumented one.
//   - Another live session's claim fails with *HeldError naming that session and its owner.
//   - The claim of a session that has expired or been deleted is taken over, and its snapshot replaced: a caller
//     that takes over must first restore from the old snapshot (GetSnapshot), since the function may still be
//     instrumented.
//   - With snap.Shared the claim is selective: it joins the selective sessions already sharing the function
//     (keeping the first snapshot, dropping holders that are no longer live), and fails with *HeldError while a
//     live session holds the function exclusively. An exclusive claim on a function shared by live selective
//     sessions fails with a *HeldError listing them all (Holders); one whose holders are all gone takes over.
//   - A live session's claim marked as being released (by Leave for the last selective session out, or by
//     MarkReleasing for a plain session's detach; either is restoring) fails with a *HeldError with Releasing
//     set, whether the claim asked for is shared or exclusive.
func (s *Store) Claim(ctx context.Context, snap Snapshot, owner string) error {
	_, err := s.claim(ctx, snap, owner)
	return err
}

// Join is Claim for a selective session (snap.Shared must be set) that also returns the claim's holders as its
// write left them, this session among them: a caller that reads the function after Join knows, without reading
// the claim again, which sessions' entries it may find there (a session it does not know of joined later).
func (s *Store) Join(ctx context.Context, snap Snapshot, owner string) ([]Holder, error) {
	if !snap.Shared {
		return nil, fmt.Errorf("join %s: the snapshot is not a shared claim", snap.FunctionARN)
	}
	return s.claim(ctx, snap, owner)
}

// claim is Claim, with the holders a shared claim's write left.
func (s *Store) claim(ctx context.Context, snap Snapshot, owner string) ([]Holder, error) {
	if snap.FunctionARN == "" || snap.Session == "" {
		return nil, fmt.Errorf("claim: function ARN and session are required (ARN %q, session %q)", snap.FunctionARN, snap.Session)
	}
	name := snap.FunctionName
	if name == "" {
		name = snap.FunctionARN
	}
	// Only Leave and MarkReleasing mark a claim as being released; a snapshot read back from a releasing claim
	// (a takeover's) starts a claim that is not.
	snap.Releasing = false
	if err := s.live(ctx, snap.Session); err != nil {
		return nil, fmt.Errorf("claim %s: %w", name, err)
	}
	if snap.Shared {
		return s.claimShared(ctx, snap, owner, name)
	}
	return nil, s.claimExclusive(ctx, snap, owner, name)
}

// claimExclusive is Claim for an exclusive claim.
func (s *Store) claimExclusive(ctx context.Context, snap Snapshot, owner, name string) error {
	snap.Holders = nil
	it := encodeClaim(snap, owner)
	cond, names, values := "attribute_not_exists(#arn)", map[string]string{"#arn": attrARN}, item(nil)
	for range writeAttempts {
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                           aws.String(s.t.Claims),
			Item:                                it,
			ConditionExpression:                 aws.String(cond),
			ExpressionAttributeNames:            names,
			ExpressionAttributeValues:           values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var failed *types.ConditionalCheckFailedException
		if err == nil {
			return nil
		}
		if !errors.As(err, &failed) {
			return fmt.Errorf("claim %s: %w", name, err)
		}
		old := failed.Item
		if len(old) == 0 {
			// Removed between the write and its check: try again from scratch.
			cond, names, values = "attribute_not_exists(#arn)", map[string]string{"#arn": attrARN}, nil
			continue
		}
		holder := heldBy(old, snap.FunctionARN)
		if holder.Holders != nil {
			live, _, err := s.liveHolders(ctx, holder.Holders)
			if err != nil {
				return fmt.Errorf("claim %s: %w", name, err)
			}
			if len(live) > 0 {
				holder.Holders = live
				return holder
			}
			s.log().InfoContext(ctx, "taking over a shared claim whose sessions are all over", "function", name, "session", snap.Session)
			ok, err := s.takeOverShared(ctx, snap, owner, old)
			if err != nil {
				return fmt.Errorf("claim %s: %w", name, err)
			}
			if ok {
				return nil
			}
			cond, names, values = "attribute_not_exists(#arn)", map[string]string{"#arn": attrARN}, nil
			continue
		}
		if holder.Session == snap.Session {
			return nil
		}
		err = s.live(ctx, holder.Session)
		if err == nil {
			return holder
		}
		if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("claim %s: check holder: %w", name, err)
		}
		s.log().InfoContext(ctx, "taking over the claim of a dead session", "function", name,
			"from_session", holder.Session, "session", snap.Session)
		// Take over only if the dead session still holds it: of concurrent takeovers, one wins and the others
		// find the winner live.
		cond = "#session = :holder"
		names = map[string]string{"#session": attrSession}
		values = item{":holder": sv(holder.Session)}
	}
	return fmt.Errorf("claim %s: changed concurrently %d times", name, writeAttempts)
}

// SetRevisionAfter records the function's RevisionId after plldb's update. It fails with *HeldError when another
// session holds the function, and with an error wrapping ErrNotFound when nobody does. On a shared claim any
// plldb process may record it, including a session that has just left: the revision is the function's, the
// last one plldb's own update left.
func (s *Store) SetRevisionAfter(ctx context.Context, functionARN, session, revision string) error {
	if functionARN == "" {
		return errors.New("set revision: empty function ARN")
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.t.Claims),
		Key:                                 claimKey(functionARN),
		UpdateExpression:                    aws.String("SET #rev = :rev"),
		ConditionExpression:                 aws.String("#session = :session OR #shared = :true"),
		ExpressionAttributeNames:            map[string]string{"#rev": attrRevision, "#session": attrSession, "#shared": attrShared},
		ExpressionAttributeValues:           item{":rev": sv(revision), ":session": sv(session), ":true": &types.AttributeValueMemberBOOL{Value: true}},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		if len(failed.Item) == 0 {
			return fmt.Errorf("set revision of %s: no claim: %w", functionARN, ErrNotFound)
		}
		return heldBy(failed.Item, functionARN)
	}
	if err != nil {
		return fmt.Errorf("set revision of %s: %w", functionARN, err)
	}
	return nil
}

// MarkReleasing marks session's exclusive claim on the function as being released: the session is about to put
// the snapshot back and release the claim (a plain session's detach), so that a session refused by the claim
// meanwhile gets a *HeldError with Releasing set and may wait for the release instead of giving up. It is the
// mark Leave sets for the last selective session out, with the same afterlife: Release removes it with the
// claim; if session dies first, its claim is an ended session's, which the next attach or the sweep takes over
// (Claim never writes the mark), and if the restore stops on a conflict or a failure the claim stays marked,
// held by session, until it detaches again or ends. It is one UpdateItem conditioned on session holding the
// claim exclusively; marking a claim marked already changes nothing. It fails with *HeldError when another
// session (or selective sessions) holds the function, and with an error wrapping ErrNotFound when nobody does.
func (s *Store) MarkReleasing(ctx context.Context, functionARN, session string) error {
	if functionARN == "" || session == "" {
		return fmt.Errorf("mark releasing: function ARN and session are required (ARN %q, session %q)", functionARN, session)
	}
	// A shared claim has no session attribute, so the condition also keeps the mark off shared claims.
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.t.Claims),
		Key:                                 claimKey(functionARN),
		UpdateExpression:                    aws.String("SET #releasing = :true"),
		ConditionExpression:                 aws.String("#session = :session"),
		ExpressionAttributeNames:            map[string]string{"#releasing": attrReleasing, "#session": attrSession},
		ExpressionAttributeValues:           item{":session": sv(session), ":true": &types.AttributeValueMemberBOOL{Value: true}},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		if len(failed.Item) == 0 {
			return fmt.Errorf("mark %s as being released by session %s: no claim: %w", functionARN, session, ErrNotFound)
		}
		return heldBy(failed.Item, functionARN)
	}
	if err != nil {
		return fmt.Errorf("mark %s as being released by session %s: %w", functionARN, session, err)
	}
	return nil
}

// GetSnapshot returns the snapshot of the function's claim, whichever session holds it; ok is false when the
// function is not claimed.
func (s *Store) GetSnapshot(ctx context.Context, functionARN string) (Snapshot, bool, error) {
	if functionARN == "" {
		return Snapshot{}, false, errors.New("get snapshot: empty function ARN")
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.t.Claims),
		Key:            claimKey(functionARN),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("get snapshot of %s: %w", functionARN, err)
	}
	if len(out.Item) == 0 {
		return Snapshot{}, false, nil
	}
	snap, _, err := decodeClaim(out.Item)
	if err != nil {
		return Snapshot{}, false, err
	}
	return snap, true, nil
}

// SessionSnapshots lists the snapshots of the functions the session holds, exclusively or shared, ordered by
// ARN. It reads the by-session index, which is eventually consistent: a claim made a moment ago may be missing.
// A shared claim is found by the session's membership item and read by ARN (strongly consistent, in batches),
// and listed only if the session still holds it, with Session set to the session and Version to the version
// read, for Leave.
func (s *Store) SessionSnapshots(ctx context.Context, session string) ([]Snapshot, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.t.Claims),
		IndexName:                 aws.String(SessionIndex),
		KeyConditionExpression:    aws.String("#session = :session"),
		ExpressionAttributeNames:  map[string]string{"#session": attrSession},
		ExpressionAttributeValues: item{":session": sv(session)},
	}
	var snaps []Snapshot
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list snapshots of session %q: %w", session, err)
		}
		shared, err := sharedMemberships(out.Items)
		if err != nil {
			return nil, fmt.Errorf("list snapshots of session %q: %w", session, err)
		}
		// One BatchGetItem per 100 shared functions rather than a GetItem each: a detach reads them all.
		claims, err := s.StackSnapshots(ctx, shared)
		if err != nil {
			return nil, fmt.Errorf("list snapshots of session %q: %w", session, err)
		}
		for _, snap := range claims {
			if snap.Shared && holds(snap.Holders, session) {
				snap.Session = session
				snaps = append(snaps, snap)
			}
		}
		for _, it := range out.Items {
			if isMember(it) {
				continue
			}
			snap, _, err := decodeClaim(it)
			if err != nil {
				return nil, fmt.Errorf("list snapshots of session %q: %w", session, err)
			}
			snaps = append(snaps, snap)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	slices.SortFunc(snaps, func(a, b Snapshot) int { return strings.Compare(a.FunctionARN, b.FunctionARN) })
	return snaps, nil
}

// batchGetLimit is BatchGetItem's maximum number of keys per request.
const batchGetLimit = 100

// StackSnapshots returns the snapshots of those of the given functions that are claimed, by any session, in the
// order of arns (duplicates once). `plldb detach` uses it after a crash, when the session is unknown. Reads are
// strongly consistent.
func (s *Store) StackSnapshots(ctx context.Context, arns []string) ([]Snapshot, error) {
	var unique []string
	seen := make(map[string]bool, len(arns))
	for _, a := range arns {
		if a != "" && !seen[a] {
			seen[a] = true
			unique = append(unique, a)
		}
	}
	found := make(map[string]Snapshot, len(unique))
	for chunk := range slices.Chunk(unique, batchGetLimit) {
		keys := make([]item, len(chunk))
		for i, a := range chunk {
			keys[i] = claimKey(a)
		}
		req := map[string]types.KeysAndAttributes{s.t.Claims: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				// Unprocessed keys mean throttling: back off before asking again.
				select {
				case <-ctx.Done():
					return nil, fmt.Errorf("read snapshots: %w", ctx.Err())
				case <-time.After(min(time.Duration(1<<min(attempt, 10))*10*time.Millisecond, 2*time.Second)):
				}
			}
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("read snapshots: %w", err)
			}
			for _, it := range out.Responses[s.t.Claims] {
				snap, _, err := decodeClaim(it)
				if err != nil {
					return nil, fmt.Errorf("read snapshots: %w", err)
				}
				found[snap.FunctionARN] = snap
			}
			req = out.UnprocessedKeys
		}
	}
	snaps := make([]Snapshot, 0, len(found))
	for _, a := range unique {
		if snap, ok := found[a]; ok {
			snaps = append(snaps, snap)
		}
	}
	return snaps, nil
}

// Release drops the session's claim on the function. Releasing a function nobody holds is not an error;
// releasing one another session holds fails with *HeldError and changes nothing. On a shared claim it takes
// the session out of the holders, deleting the claim when it was the last one (see Leave for the liveness-aware
// way out).
func (s *Store) Release(ctx context.Context, functionARN, session string) error {
	if functionARN == "" {
		return errors.New("release: empty function ARN")
	}
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                           aws.String(s.t.Claims),
		Key:                                 claimKey(functionARN),
		ConditionExpression:                 aws.String("attribute_not_exists(#arn) OR #session = :session"),
		ExpressionAttributeNames:            map[string]string{"#arn": attrARN, "#session": attrSession},
		ExpressionAttributeValues:           item{":session": sv(session)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) && len(failed.Item) > 0 {
		held := heldBy(failed.Item, functionARN)
		if held.Holders != nil {
			return s.releaseShared(ctx, functionARN, session)
		}
		return held
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", functionARN, err)
	}
	return nil
}

// Snapshots lists every claim, ordered by ARN. It scans the claims table: for `plldb status` and sweeps after
// session expiry, never for the relay's hot path.
func (s *Store) Snapshots(ctx context.Context) ([]Snapshot, error) {
	in := &dynamodb.ScanInput{TableName: aws.String(s.t.Claims), ConsistentRead: aws.Bool(true)}
	var snaps []Snapshot
	for {
		out, err := s.db.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		for _, it := range out.Items {
			if isMember(it) {
				continue
			}
			snap, _, err := decodeClaim(it)
			if err != nil {
				return nil, fmt.Errorf("list snapshots: %w", err)
			}
			snaps = append(snaps, snap)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	slices.SortFunc(snaps, func(a, b Snapshot) int { return strings.Compare(a.FunctionARN, b.FunctionARN) })
	return snaps, nil
}

package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// memberPrefix starts the key of a membership item: "member#<session>#<function ARN>". Function ARNs start
// with "arn:", so a membership key is never a claim's.
const memberPrefix = "member#"

func memberKey(session, functionARN string) item {
	return item{attrARN: sv(memberPrefix + session + "#" + functionARN)}
}

func (s *Store) memberPut(session, owner, functionARN string) types.TransactWriteItem {
	it := memberKey(session, functionARN)
	it[attrSession] = sv(session)
	it[attrOwner] = sv(owner)
	it[attrMemberOf] = sv(functionARN)
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.t.Claims), Item: it}}
}

func (s *Store) memberDelete(session, functionARN string) types.TransactWriteItem {
	return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(s.t.Claims), Key: memberKey(session, functionARN)}}
}

func isMember(it item) bool { _, ok := it[attrMemberOf]; return ok }

// getClaimItem reads a claim item, strongly consistent.
func (s *Store) getClaimItem(ctx context.Context, arn string) (item, bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.t.Claims), Key: claimKey(arn), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, false, err
	}
	return out.Item, len(out.Item) > 0, nil
}

// liveHolders splits holders into those whose sessions are live and those whose sessions expired or are gone.
func (s *Store) liveHolders(ctx context.Context, hs []Holder) (live, dead []Holder, err error) {
	for _, h := range hs {
		err := s.live(ctx, h.Session)
		switch {
		case err == nil:
			live = append(live, h)
		case errors.Is(err, ErrNotFound):
			dead = append(dead, h)
		default:
			return nil, nil, fmt.Errorf("check holder %s: %w", h.Session, err)
		}
	}
	return live, dead, nil
}

func holds(hs []Holder, session string) bool {
	return slices.ContainsFunc(hs, func(h Holder) bool { return h.Session == session })
}

func without(hs []Holder, session string) []Holder {
	return slices.DeleteFunc(slices.Clone(hs), func(h Holder) bool { return h.Session == session })
}

// firstVersion is the version a shared claim starts at when it is made afresh (on a free function, or over a
// dead session's exclusive claim): random, not 1. A caller's reading of a claim is built on with only its
// version as the write's condition (claimShared, Leave), so a claim put back, released and made afresh by
// someone else since that reading must not have the version read: with every claim starting at 1, a join built
// on the old reading overwrote the new claim's holders, and a leave built on it took the new claim for the last
// one out. Versions then only count up, so a repeat needs the same 62 random bits twice.
func firstVersion() int64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err)) // crypto/rand does not fail on supported platforms
	}
	return int64(binary.BigEndian.Uint64(b[:])>>2) | 1
}

func versionCond(ver int64) (string, map[string]string, item) {
	return "#ver = :ver", map[string]string{"#ver": attrVersion}, item{":ver": nv(ver)}
}

// setHolders is the update that makes hs the claim's holders, conditioned on the version ver it was read at.
func (s *Store) setHolders(functionARN string, ver int64, hs []Holder) types.TransactWriteItem {
	cond, names, values := versionCond(ver)
	names["#holders"] = attrHolders
	values[":holders"] = holdersAV(hs)
	values[":next"] = nv(ver + 1)
	return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.t.Claims),
		Key: claimKey(functionARN), UpdateExpression: aws.String("SET #holders = :holders, #ver = :next"),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values}}
}

// claimShared adds snap.Session to the selective sessions sharing the function: the path of Claim for a
// Snapshot with Shared set. Every change of the holders is one transaction conditioned on the claim's version,
// which also writes or deletes the membership items, so concurrent joins and leaves serialize. The first round
// builds on the claim as the caller read it (snap.Version and snap.Holders; Version 0: no claim) rather than
// reading it again: the transaction's condition is that very version (or that there is no claim), so a claim
// that changed since fails it, and the next round reads it. It returns the claim's holders as its write (or,
// for a session that holds it already, the read that found so) left them.
func (s *Store) claimShared(ctx context.Context, snap Snapshot, owner, name string) ([]Holder, error) {
	me := Holder{Session: snap.Session, Owner: owner}
	// The caller's reading costs no request, so its round is on top of writeAttempts.
	for attempt := range writeAttempts + 1 {
		var cur item
		var found bool
		var old Snapshot
		if attempt == 0 {
			found = snap.Version > 0
			old = Snapshot{Shared: true, Holders: snap.Holders, Version: snap.Version}
		} else {
			var err error
			if cur, found, err = s.getClaimItem(ctx, snap.FunctionARN); err != nil {
				return nil, fmt.Errorf("claim %s: %w", name, err)
			}
			if found {
				if old, _, err = decodeClaim(cur); err != nil {
					return nil, fmt.Errorf("claim %s: %w", name, err)
				}
			}
		}
		var ops []types.TransactWriteItem
		holders := []Holder{me}
		switch {
		case !found:
			fresh := snap
			fresh.Holders, fresh.Version = []Holder{me}, 0
			it := encodeClaim(fresh, owner)
			it[attrVersion] = nv(firstVersion())
			ops = []types.TransactWriteItem{{Put: &types.Put{TableName: aws.String(s.t.Claims), Item: it,
				ConditionExpression: aws.String("attribute_not_exists(#arn)"), ExpressionAttributeNames: map[string]string{"#arn": attrARN}}}}
		case !old.Shared:
			if old.Session == snap.Session {
				return nil, fmt.Errorf("claim %s: session %s holds it exclusively already", name, snap.Session)
			}
			held := heldBy(cur, snap.FunctionARN)
			if err := s.live(ctx, old.Session); err == nil {
				return nil, held
			} else if !errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("claim %s: check holder: %w", name, err)
			}
			s.log().InfoContext(ctx, "taking over the claim of a dead session", "function", name,
				"from_session", old.Session, "session", snap.Session)
			fresh := snap
			fresh.Holders, fresh.Version = []Holder{me}, 0
			it := encodeClaim(fresh, owner)
			it[attrVersion] = nv(firstVersion())
			ops = []types.TransactWriteItem{{Put: &types.Put{TableName: aws.String(s.t.Claims), Item: it,
				ConditionExpression:       aws.String("#session = :holder"),
				ExpressionAttributeNames:  map[string]string{"#session": attrSession},
				ExpressionAttributeValues: item{":holder": sv(old.Session)}}}}
		default:
			if holds(old.Holders, snap.Session) {
				if attempt == 0 {
					// Only a fresh read may say so without a write: this session may have been dropped since
					// the caller read the claim.
					continue
				}
				return old.Holders, nil // a retried attach: the first snapshot stands
			}
			live, dead, err := s.liveHolders(ctx, old.Holders)
			if err != nil {
				return nil, fmt.Errorf("claim %s: %w", name, err)
			}
			for _, d := range dead {
				s.log().InfoContext(ctx, "dropping a dead session from a shared claim", "function", name, "from_session", d.Session)
				ops = append(ops, s.memberDelete(d.Session, snap.FunctionARN))
			}
			holders = append(live, me)
			ops = append(ops, s.setHolders(snap.FunctionARN, old.Version, holders))
		}
		ops = append(ops, s.memberPut(snap.Session, owner, snap.FunctionARN))
		_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: ops})
		if isRetryableCancel(err) {
			continue // someone joined or left meanwhile (or since the caller read it): read again
		}
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", name, err)
		}
		slices.SortFunc(holders, func(a, b Holder) int { return strings.Compare(a.Session, b.Session) })
		return holders, nil
	}
	return nil, fmt.Errorf("claim %s: changed concurrently %d times", name, writeAttempts)
}

// takeOverShared replaces a shared claim none of whose holders is live with snap's exclusive claim, deleting
// the holders' membership items. ok is false when the claim changed meanwhile.
func (s *Store) takeOverShared(ctx context.Context, snap Snapshot, owner string, old item) (ok bool, err error) {
	prev, _, err := decodeClaim(old)
	if err != nil {
		return false, err
	}
	ver, _, err := getN(old, attrVersion)
	if err != nil {
		return false, err
	}
	cond, names, values := versionCond(ver)
	ops := []types.TransactWriteItem{{Put: &types.Put{TableName: aws.String(s.t.Claims), Item: encodeClaim(snap, owner),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values}}}
	for _, h := range prev.Holders {
		ops = append(ops, s.memberDelete(h.Session, snap.FunctionARN))
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: ops})
	if isRetryableCancel(err) {
		return false, nil
	}
	return err == nil, err
}

// Leave takes session out of the selective sessions sharing a function, dropping holders whose sessions are
// no longer live. When other live sessions remain, it returns the claim with them as Holders and last false:
// the caller takes its own entries out of the function. When none remains, the claim becomes session's
// exclusive claim, with the first snapshot, marked Releasing, and last is true: the caller puts the snapshot
// back and releases it, and meanwhile a session that comes to claim it is refused with a *HeldError that says
// so (Releasing), and may wait for the release (or, if session dies first, takes the claim over and restores
// it). Leaving an exclusive claim of session's own returns it with last true, unchanged (a repeated leave);
// another session's exclusive claim fails with *HeldError; no claim, with ErrNotFound.
//
// read names the function (FunctionARN). When read.Version is set, read is the shared claim as the caller read
// it (SessionSnapshots), and the first round builds on it instead of reading the claim again: the transaction
// is conditioned on that version, so a claim that changed since fails it and the next round reads it.
func (s *Store) Leave(ctx context.Context, read Snapshot, session string) (Snapshot, bool, error) {
	functionARN := read.FunctionARN
	if functionARN == "" {
		return Snapshot{}, false, errors.New("leave: empty function ARN")
	}
	// The caller's reading costs no request, so its round is on top of writeAttempts.
	for attempt := range writeAttempts + 1 {
		var old Snapshot
		if attempt == 0 {
			if !read.Shared || read.Version == 0 {
				continue
			}
			old = read
		} else {
			cur, found, err := s.getClaimItem(ctx, functionARN)
			if err != nil {
				return Snapshot{}, false, fmt.Errorf("leave %s: %w", functionARN, err)
			}
			if !found {
				return Snapshot{}, false, fmt.Errorf("leave %s: no claim: %w", functionARN, ErrNotFound)
			}
			if old, _, err = decodeClaim(cur); err != nil {
				return Snapshot{}, false, fmt.Errorf("leave %s: %w", functionARN, err)
			}
			if !old.Shared {
				if old.Session == session {
					return old, true, nil
				}
				return Snapshot{}, false, heldBy(cur, functionARN)
			}
		}
		owner := ""
		for _, h := range old.Holders {
			if h.Session == session {
				owner = h.Owner
			}
		}
		live, _, err := s.liveHolders(ctx, without(old.Holders, session))
		if err != nil {
			return Snapshot{}, false, fmt.Errorf("leave %s: %w", functionARN, err)
		}
		var ops []types.TransactWriteItem
		last := len(live) == 0
		out := old
		out.Session, out.Version = "", old.Version+1
		if last {
			out.Shared, out.Holders, out.Session, out.Releasing, out.Version = false, nil, session, true, 0
			ops = append(ops, s.releasingUpdate(functionARN, old.Version, session, owner))
		} else {
			out.Holders = live
			ops = append(ops, s.setHolders(functionARN, old.Version, live))
		}
		for _, h := range old.Holders {
			if last || !holds(live, h.Session) {
				ops = append(ops, s.memberDelete(h.Session, functionARN))
			}
		}
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: ops})
		if isRetryableCancel(err) {
			continue
		}
		if err != nil {
			return Snapshot{}, false, fmt.Errorf("leave %s: %w", functionARN, err)
		}
		return out, last, nil
	}
	return Snapshot{}, false, fmt.Errorf("leave %s: changed concurrently %d times", functionARN, writeAttempts)
}

// releasingUpdate turns the shared claim, at version ver, into session's exclusive claim marked releasing. It
// updates the claim in place rather than putting it whole, so that what it does not change (the snapshot, the
// revision another session recorded meanwhile, which does not change the version) stays as stored, whether
// the caller read the claim a moment ago or earlier.
func (s *Store) releasingUpdate(functionARN string, ver int64, session, owner string) types.TransactWriteItem {
	cond, names, values := versionCond(ver)
	names["#session"], names["#owner"], names["#releasing"] = attrSession, attrOwner, attrReleasing
	names["#shared"], names["#holders"] = attrShared, attrHolders
	values[":session"], values[":owner"] = sv(session), sv(owner)
	values[":true"] = &types.AttributeValueMemberBOOL{Value: true}
	return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.t.Claims),
		Key:                       claimKey(functionARN),
		UpdateExpression:          aws.String("SET #session = :session, #owner = :owner, #releasing = :true REMOVE #shared, #holders, #ver"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values}}
}

// releaseShared takes session out of a shared claim without looking at anybody's liveness, deleting the claim
// when it was the last holder: Release for a shared claim.
func (s *Store) releaseShared(ctx context.Context, functionARN, session string) error {
	for range writeAttempts {
		cur, found, err := s.getClaimItem(ctx, functionARN)
		if err != nil {
			return fmt.Errorf("release %s: %w", functionARN, err)
		}
		if !found {
			return nil
		}
		old, _, err := decodeClaim(cur)
		if err != nil {
			return fmt.Errorf("release %s: %w", functionARN, err)
		}
		if !old.Shared {
			return s.Release(ctx, functionARN, session)
		}
		if !holds(old.Holders, session) {
			return nil
		}
		ver, _, err := getN(cur, attrVersion)
		if err != nil {
			return fmt.Errorf("release %s: %w", functionARN, err)
		}
		rest := without(old.Holders, session)
		ops := []types.TransactWriteItem{s.memberDelete(session, functionARN)}
		if len(rest) == 0 {
			cond, names, values := versionCond(ver)
			ops = append(ops, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(s.t.Claims), Key: claimKey(functionARN),
				ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values}})
		} else {
			ops = append(ops, s.setHolders(functionARN, ver, rest))
		}
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: ops})
		if isRetryableCancel(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("release %s: %w", functionARN, err)
		}
		return nil
	}
	return fmt.Errorf("release %s: changed concurrently %d times", functionARN, writeAttempts)
}

// sharedMemberships lists the functions whose membership items name session, from by-session index items.
func sharedMemberships(items []item) ([]string, error) {
	var arns []string
	for _, it := range items {
		if !isMember(it) {
			continue
		}
		a, err := getS(it, attrMemberOf)
		if err != nil {
			return nil, err
		}
		arns = append(arns, a)
	}
	slices.Sort(arns)
	return slices.Compact(arns), nil
}

// HolderNames lists holders for messages: "s-1 (alice), s-2 (bob)".
func HolderNames(hs []Holder) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.String()
	}
	return strings.Join(names, ", ")
}

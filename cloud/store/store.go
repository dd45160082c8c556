package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/wire"
)

// ErrNotFound is relay.ErrNotFound: lookups that find nothing return an error wrapping it.
var ErrNotFound = relay.ErrNotFound

// ConnectionRetention is how long a connection's items outlive their write before DynamoDB TTL may delete
// them: past API Gateway's two-hour maximum connection duration, so only connections whose $disconnect was
// missed are ever cleaned up this way.
const ConnectionRetention = 3 * time.Hour

// writeAttempts bounds the optimistic retries of a write that lost a race with a concurrent one.
const writeAttempts = 5

// Store is the DynamoDB store. It implements relay.Store and is safe for concurrent use.
type Store struct {
	// Now is the store's clock for session, ticket and claim expiry; nil means time.Now. Set it before first use.
	Now    func() time.Time
	Logger *slog.Logger // nil → slog.Default()

	db     *dynamodb.Client
	t      Tables
	lastAt atomic.Int64 // last insertion stamp handed out, so stamps from one process strictly increase

	seenMu sync.Mutex
	seen   map[string]time.Time // connection id → when DeveloperSeen last wrote for it
}

var _ relay.Store = (*Store)(nil)

// New returns a store over the given tables (see CreateTables and the package doc for their schema).
func New(client *dynamodb.Client, t Tables) *Store {
	return &Store{db: client, t: t}
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Store) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// putStamp orders insertions. Wall-clock nanoseconds keep the order across relay instances (up to clock skew,
// which only matters for connections made within the same nanosecond); within one process it strictly grows.
func (s *Store) putStamp() int64 {
	for {
		last := s.lastAt.Load()
		next := max(time.Now().UnixNano(), last+1)
		if s.lastAt.CompareAndSwap(last, next) {
			return next
		}
	}
}

// PutSession stores sess, replacing a session with the same ID. Attach creates the session with it.
func (s *Store) PutSession(ctx context.Context, sess relay.Session) error {
	if sess.ID == "" {
		return errors.New("put session: id is required")
	}
	keys := make(item, len(sess.Keys))
	for role, k := range sess.Keys {
		if len(k) > 0 {
			keys[string(role)] = &types.AttributeValueMemberB{Value: k}
		}
	}
	it := item{
		attrID:    sv(sess.ID),
		attrOwner: sv(sess.Owner),
		attrKeys:  &types.AttributeValueMemberM{Value: keys},
	}
	if !sess.ExpiresAt.IsZero() {
		it[attrExpires] = nv(unixNano(sess.ExpiresAt))
		it[TTLAttribute] = nv(ttlSeconds(sess.ExpiresAt))
	}
	// Creating the session is hearing from its developer: the dead-man sweep's grace starts now.
	it[attrSeen] = nv(unixNano(s.now()))
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.t.Sessions), Item: it}); err != nil {
		return fmt.Errorf("put session %q: %w", sess.ID, err)
	}
	return nil
}

// DeleteSession removes the session; its connections stay until they disconnect, but no new ticket for it
// verifies and its claims are no longer held by a live session. Deleting a missing session is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.t.Sessions),
		Key:       item{attrID: sv(id)},
	})
	if err != nil {
		return fmt.Errorf("delete session %q: %w", id, err)
	}
	return nil
}

// GetSession implements relay.Store. An expired session is reported as not found, whether or not DynamoDB TTL
// has deleted it yet.
func (s *Store) GetSession(ctx context.Context, id string) (relay.Session, error) {
	if id == "" {
		return relay.Session{}, fmt.Errorf("session %q: %w", id, ErrNotFound)
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.t.Sessions),
		Key:            item{attrID: sv(id)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return relay.Session{}, fmt.Errorf("get session %q: %w", id, err)
	}
	if len(out.Item) == 0 {
		return relay.Session{}, fmt.Errorf("session %q: %w", id, ErrNotFound)
	}
	sess, err := decodeSession(out.Item)
	if err != nil {
		return relay.Session{}, fmt.Errorf("session %q: %w", id, err)
	}
	if !sess.ExpiresAt.IsZero() && !s.now().Before(sess.ExpiresAt) {
		return relay.Session{}, fmt.Errorf("session %q expired: %w", id, ErrNotFound)
	}
	return sess, nil
}

func decodeSession(it item) (relay.Session, error) {
	var sess relay.Session
	var err error
	if sess.ID, err = getS(it, attrID); err != nil {
		return sess, err
	}
	if sess.Owner, err = getS(it, attrOwner); err != nil {
		return sess, err
	}
	switch keys := it[attrKeys].(type) {
	case nil:
	case *types.AttributeValueMemberM:
		sess.Keys = make(map[wire.Role][]byte, len(keys.Value))
		for role, v := range keys.Value {
			b, ok := v.(*types.AttributeValueMemberB)
			if !ok {
				return sess, fmt.Errorf("key of role %q is %T, not binary", role, v)
			}
			sess.Keys[wire.Role(role)] = b.Value
		}
	default:
		return sess, fmt.Errorf("attribute %s is %T, not a map", attrKeys, keys)
	}
	exp, ok, err := getN(it, attrExpires)
	if err != nil {
		return sess, err
	}
	if ok {
		sess.ExpiresAt = fromUnixNano(exp)
	}
	return sess, nil
}

// UseTicket implements relay.Store: one conditional write, which fails when the id is already recorded with an
// expiry still ahead.
//
// The write carries a random token of this call. DynamoDB may apply a write and lose its answer (a 500
// InternalServerError, "the request may or may not have succeeded", or a dropped connection), and the SDK then
// sends the same write again, which finds the id recorded: by this very call. Without the token that retry
// reported a fresh ticket as replayed, and the relay denied it: API Gateway's 403, which wsclient does not retry,
// so an attach failed and a developer's reconnect gave up on the relay. With the token, a failed condition whose
// item holds this call's token is this call's own write, and any other is a replay. The failed write returns the
// item it met (ReturnValuesOnConditionCheckFailure), so telling them apart costs no extra request.
func (s *Store) UseTicket(ctx context.Context, jti string, expires time.Time) error {
	if jti == "" {
		return errors.New("use ticket: empty ticket id")
	}
	use := rand.Text() // tells this call's write from every other's
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.t.Tickets),
		Item: item{
			attrJTI:      sv(jti),
			attrExpires:  nv(unixNano(expires)),
			TTLAttribute: nv(ttlSeconds(expires)),
			attrUse:      sv(use),
		},
		ConditionExpression:                 aws.String("attribute_not_exists(#jti) OR #exp <= :now"),
		ExpressionAttributeNames:            map[string]string{"#jti": attrJTI, "#exp": attrExpires},
		ExpressionAttributeValues:           item{":now": nv(unixNano(s.now()))},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		if got, _ := getS(failed.Item, attrUse); got == use {
			return nil // an earlier attempt of this call wrote it; only its answer was lost
		}
		return fmt.Errorf("ticket id: %w", relay.ErrReplayed)
	}
	if err != nil {
		// The ticket id is a secret-free random jti, but there is no need to log it either.
		return fmt.Errorf("record ticket id: %w", err)
	}
	return nil
}

// Connection items.

func connKey(id string) item { return item{attrPK: sv("c#" + id), attrSK: sv("c")} }

func sessionPK(session string) types.AttributeValue { return sv("s#" + session) }

func roleSK(c relay.Connection, putAt int64) string {
	return "r#" + escapeKey(string(c.Role)) + "#" + order(c.ConnectedAt, putAt) + "#" + c.ID
}

func peerSK(c relay.Connection, putAt int64) string {
	return "p#" + escapeKey(c.Peer) + "#" + order(c.ConnectedAt, putAt) + "#" + c.ID
}

// storedConn is a connection with its insertion stamp, which locates its index entries.
type storedConn struct {
	relay.Connection
	putAt int64
}

func (s *Store) connItem(key item, c relay.Connection, putAt int64) item {
	it := item{
		attrID:          sv(c.ID),
		attrSession:     sv(c.Session),
		attrRole:        sv(string(c.Role)),
		attrPeer:        sv(c.Peer),
		attrConnectedAt: timeS(c.ConnectedAt),
		attrPutAt:       nv(putAt),
		TTLAttribute:    nv(ttlSeconds(s.now().Add(ConnectionRetention))),
	}
	maps.Copy(it, key)
	return it
}

func decodeConn(it item) (storedConn, error) {
	var c storedConn
	var err error
	if c.ID, err = getS(it, attrID); err != nil {
		return c, err
	}
	if c.Session, err = getS(it, attrSession); err != nil {
		return c, err
	}
	role, err := getS(it, attrRole)
	if err != nil {
		return c, err
	}
	c.Role = wire.Role(role)
	if c.Peer, err = getS(it, attrPeer); err != nil {
		return c, err
	}
	if c.ConnectedAt, err = getTime(it, attrConnectedAt); err != nil {
		return c, err
	}
	if c.putAt, _, err = getN(it, attrPutAt); err != nil {
		return c, err
	}
	return c, nil
}

func (s *Store) getConn(ctx context.Context, id string) (storedConn, bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.t.Connections),
		Key:            connKey(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return storedConn{}, false, fmt.Errorf("get connection %q: %w", id, err)
	}
	if len(out.Item) == 0 {
		return storedConn{}, false, nil
	}
	c, err := decodeConn(out.Item)
	if err != nil {
		return storedConn{}, false, fmt.Errorf("connection %q: %w", id, err)
	}
	return c, true, nil
}

// indexDeletes deletes c's two index entries.
func (s *Store) indexDeletes(c storedConn) []types.TransactWriteItem {
	table := aws.String(s.t.Connections)
	return []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: table, Key: item{attrPK: sessionPK(c.Session), attrSK: sv(roleSK(c.Connection, c.putAt))}}},
		{Delete: &types.Delete{TableName: table, Key: item{attrPK: sessionPK(c.Session), attrSK: sv(peerSK(c.Connection, c.putAt))}}},
	}
}

// connCondition makes a transaction apply only if the connection item is still the one read (or still absent),
// so that the index entries deleted are the ones it points at.
func connCondition(old storedConn, found bool) (string, map[string]string, item) {
	if !found {
		return "attribute_not_exists(#pk)", map[string]string{"#pk": attrPK}, nil
	}
	return "#put = :put", map[string]string{"#put": attrPutAt}, item{":put": nv(old.putAt)}
}

// isRetryableCancel tells a transaction that lost a race (its condition failed because the connection changed
// after it was read, or DynamoDB saw a conflicting transaction) from a real failure.
func isRetryableCancel(err error) bool {
	var tc *types.TransactionCanceledException
	if !errors.As(err, &tc) {
		return false
	}
	for _, r := range tc.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed", "TransactionConflict":
			return true
		}
	}
	return false
}

// PutConnection implements relay.Store. The connection and its two index entries are written in one
// transaction, which also removes the entries of a connection it replaces.
func (s *Store) PutConnection(ctx context.Context, c relay.Connection) error {
	if c.ID == "" || c.Session == "" {
		return fmt.Errorf("put connection: id and session are required (id %q, session %q)", c.ID, c.Session)
	}
	table := aws.String(s.t.Connections)
	for range writeAttempts {
		old, found, err := s.getConn(ctx, c.ID)
		if err != nil {
			return fmt.Errorf("put connection: %w", err)
		}
		putAt := s.putStamp()
		cond, names, values := connCondition(old, found)
		ops := []types.TransactWriteItem{
			{Put: &types.Put{TableName: table, Item: s.connItem(connKey(c.ID), c, putAt),
				ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values}},
			{Put: &types.Put{TableName: table, Item: s.connItem(item{attrPK: sessionPK(c.Session), attrSK: sv(roleSK(c, putAt))}, c, putAt)}},
			{Put: &types.Put{TableName: table, Item: s.connItem(item{attrPK: sessionPK(c.Session), attrSK: sv(peerSK(c, putAt))}, c, putAt)}},
		}
		if found {
			ops = append(ops, s.indexDeletes(old)...)
		}
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: ops})
		if isRetryableCancel(err) {
			continue // replaced or removed meanwhile: read again
		}
		if err != nil {
			return fmt.Errorf("put connection %q: %w", c.ID, err)
		}
		return nil
	}
	return fmt.Errorf("put connection %q: changed concurrently %d times", c.ID, writeAttempts)
}

// GetConnection implements relay.Store: one GetItem.
func (s *Store) GetConnection(ctx context.Context, id string) (relay.Connection, error) {
	c, found, err := s.getConn(ctx, id)
	if err != nil {
		return relay.Connection{}, err
	}
	if !found {
		return relay.Connection{}, fmt.Errorf("connection %q: %w", id, ErrNotFound)
	}
	return c.Connection, nil
}

// DeleteConnection implements relay.Store: the connection and its index entries go in one transaction.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	for range writeAttempts {
		old, found, err := s.getConn(ctx, id)
		if err != nil {
			return fmt.Errorf("delete connection: %w", err)
		}
		if !found {
			return nil
		}
		cond, names, values := connCondition(old, true)
		ops := append([]types.TransactWriteItem{{Delete: &types.Delete{
			TableName: aws.String(s.t.Connections), Key: connKey(id),
			ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}}}, s.indexDeletes(old)...)
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: ops})
		if isRetryableCancel(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete connection %q: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("delete connection %q: changed concurrently %d times", id, writeAttempts)
}

// PeerConnection implements relay.Store: one Query, newest entry first, limit one.
func (s *Store) PeerConnection(ctx context.Context, session, peer string) (relay.Connection, error) {
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.t.Connections),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: item{":pk": sessionPK(session), ":prefix": sv("p#" + escapeKey(peer) + "#")},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return relay.Connection{}, fmt.Errorf("find peer %q in session %q: %w", peer, session, err)
	}
	if len(out.Items) == 0 {
		return relay.Connection{}, fmt.Errorf("peer %q in session %q: %w", peer, session, ErrNotFound)
	}
	c, err := decodeConn(out.Items[0])
	if err != nil {
		return relay.Connection{}, fmt.Errorf("peer %q in session %q: %w", peer, session, err)
	}
	return c.Connection, nil
}

// SessionConnections implements relay.Store: one Query (more only past 1 MB of connections). The list is
// ordered oldest first.
func (s *Store) SessionConnections(ctx context.Context, session string, role wire.Role) ([]relay.Connection, error) {
	prefix := "r#"
	if role != "" {
		prefix += escapeKey(string(role)) + "#"
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.t.Connections),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: item{":pk": sessionPK(session), ":prefix": sv(prefix)},
		ConsistentRead:            aws.Bool(true),
	}
	var list []storedConn
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list connections of session %q: %w", session, err)
		}
		for _, it := range out.Items {
			c, err := decodeConn(it)
			if err != nil {
				return nil, fmt.Errorf("list connections of session %q: %w", session, err)
			}
			list = append(list, c)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	// Entries of one role come back in age order already; across roles they are merged here.
	slices.SortStableFunc(list, func(a, b storedConn) int {
		if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
			return c
		}
		switch {
		case a.putAt < b.putAt:
			return -1
		case a.putAt > b.putAt:
			return 1
		}
		return 0
	})
	out := make([]relay.Connection, len(list))
	for i, c := range list {
		out[i] = c.Connection
	}
	return out, nil
}

// SessionInfo is what may be shown of a session: never its keys.
type SessionInfo struct {
	ID, Owner string
	ExpiresAt time.Time // zero: no expiry
	Seen      time.Time // when its developer was last heard from (DeveloperSeen); zero: not recorded
}

// Sessions lists the live sessions, ordered by ID, without their keys. It scans the sessions table: for
// `plldb status`, never for the relay's hot path.
func (s *Store) Sessions(ctx context.Context) ([]SessionInfo, error) {
	in := &dynamodb.ScanInput{
		TableName:                aws.String(s.t.Sessions),
		ProjectionExpression:     aws.String("#id, #owner, #exp, #seen"),
		ExpressionAttributeNames: map[string]string{"#id": attrID, "#owner": attrOwner, "#exp": attrExpires, "#seen": attrSeen},
		ConsistentRead:           aws.Bool(true),
	}
	now := s.now()
	var list []SessionInfo
	for {
		out, err := s.db.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		for _, it := range out.Items {
			sess, err := decodeSession(it)
			if err != nil {
				return nil, fmt.Errorf("list sessions: %w", err)
			}
			if sess.ExpiresAt.IsZero() || now.Before(sess.ExpiresAt) {
				info := SessionInfo{ID: sess.ID, Owner: sess.Owner, ExpiresAt: sess.ExpiresAt}
				if seen, ok, err := getN(it, attrSeen); err == nil && ok {
					info.Seen = fromUnixNano(seen)
				}
				list = append(list, info)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	slices.SortFunc(list, func(a, b SessionInfo) int { return strings.Compare(a.ID, b.ID) })
	return list, nil
}

// SeenInterval is how often, at most, DeveloperSeen writes for one connection: the relay hears from a developer
// on every message and every heartbeat (wsclient pings every 4 minutes), and a write per message would put a
// DynamoDB write on the hot path.
const SeenInterval = time.Minute

var _ relay.SeenRecorder = (*Store)(nil)

// DeveloperSeen implements relay.SeenRecorder: it records on the session's item when its developer was last
// heard from, for the dead-man sweep (Stale). It writes at most once per SeenInterval per connection and relay
// process: other calls return at once, without a DynamoDB call. The write is one conditional UpdateItem that
// never creates a session (a deleted one stays deleted) and never moves the time back.
func (s *Store) DeveloperSeen(ctx context.Context, c relay.Connection) error {
	now := s.now()
	s.seenMu.Lock()
	if last, ok := s.seen[c.ID]; ok && now.Sub(last) < SeenInterval && !now.Before(last) {
		s.seenMu.Unlock()
		return nil
	}
	if s.seen == nil {
		s.seen = map[string]time.Time{}
	}
	if len(s.seen) >= 4096 {
		for id, at := range s.seen {
			if now.Sub(at) >= SeenInterval {
				delete(s.seen, id)
			}
		}
	}
	s.seen[c.ID] = now
	s.seenMu.Unlock()
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.t.Sessions),
		Key:                       item{attrID: sv(c.Session)},
		UpdateExpression:          aws.String("SET #seen = :now"),
		ConditionExpression:       aws.String("attribute_exists(#id) AND (attribute_not_exists(#seen) OR #seen < :now)"),
		ExpressionAttributeNames:  map[string]string{"#id": attrID, "#seen": attrSeen},
		ExpressionAttributeValues: item{":now": nv(unixNano(now))},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return nil // the session is gone, or someone recorded a later time
	}
	if err != nil {
		s.seenMu.Lock()
		delete(s.seen, c.ID) // try again on the next message
		s.seenMu.Unlock()
		return fmt.Errorf("record that the developer of session %q was seen: %w", c.Session, err)
	}
	return nil
}

// StaleSession is a session whose functions the dead-man sweep must put back.
type StaleSession struct {
	ID     string
	Owner  string // "" when the session item is gone
	Reason string // for logs: "expired", "gone", "silent since …"
}

// StaleSessions lists the sessions that hold claims and are over: deleted (or removed by DynamoDB TTL),
// expired, or silent, i.e. their developer has not been heard from (DeveloperSeen, or the session's creation)
// for longer than grace. A session with no record of being seen (written before plldb recorded it) is judged by
// its expiry alone.
//
// It scans the claims table, projected to the session attribute: the table holds one item per instrumented
// function, so the scan stays small, and going by claims also finds sessions DynamoDB TTL has already deleted,
// which a scan of the sessions table would miss. Each session found costs one strongly consistent GetItem.
func (s *Store) StaleSessions(ctx context.Context, grace time.Duration) ([]StaleSession, error) {
	in := &dynamodb.ScanInput{
		TableName:                aws.String(s.t.Claims),
		ProjectionExpression:     aws.String("#session, #holders"),
		ExpressionAttributeNames: map[string]string{"#session": attrSession, "#holders": attrHolders},
		ConsistentRead:           aws.Bool(true),
	}
	held := map[string]bool{}
	for {
		out, err := s.db.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list the sessions holding claims: %w", err)
		}
		for _, it := range out.Items {
			id, err := getS(it, attrSession)
			if err != nil {
				return nil, fmt.Errorf("list the sessions holding claims: %w", err)
			}
			if id != "" {
				held[id] = true
			}
			// A shared claim names its holders in a map (their membership items carry the session too).
			if m, ok := it[attrHolders].(*types.AttributeValueMemberM); ok {
				for h := range m.Value {
					held[h] = true
				}
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	now := s.now()
	var stale []StaleSession
	for _, id := range slices.Sorted(maps.Keys(held)) {
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(s.t.Sessions), Key: item{attrID: sv(id)}, ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return nil, fmt.Errorf("read session %q: %w", id, err)
		}
		if len(out.Item) == 0 {
			stale = append(stale, StaleSession{ID: id, Reason: "gone"})
			continue
		}
		sess, err := decodeSession(out.Item)
		if err != nil {
			return nil, fmt.Errorf("session %q: %w", id, err)
		}
		seen, hasSeen, err := getN(out.Item, attrSeen)
		if err != nil {
			return nil, fmt.Errorf("session %q: %w", id, err)
		}
		switch {
		case !sess.ExpiresAt.IsZero() && !now.Before(sess.ExpiresAt):
			stale = append(stale, StaleSession{ID: id, Owner: sess.Owner, Reason: "expired at " + sess.ExpiresAt.UTC().Format(time.RFC3339)})
		case hasSeen && now.Sub(fromUnixNano(seen)) > grace:
			stale = append(stale, StaleSession{ID: id, Owner: sess.Owner,
				Reason: fmt.Sprintf("developer silent since %s (grace %s)", fromUnixNano(seen).Format(time.RFC3339), grace)})
		}
	}
	return stale, nil
}

// Package store is plldb's session store on DynamoDB: the relay Lambda's implementation of relay.Store
// (sessions, connections, single-use ticket ids), and the function claims that attach and detach use to
// snapshot a function's configuration before instrumenting it and to find that snapshot again for an exact
// restore, even after a crash.
//
// # Tables and key schema
//
// Four tables, named from the install name by DefaultTables ("plldb-sessions", …). Separate tables rather than
// one keep each table's TTL attribute meaningful (claims must never expire: they hold the only copy of a
// function's original configuration), and let the helper stack's IAM policy grant the relay and the developer
// exactly the tables they need. Every table is PAY_PER_REQUEST. CreateTableInputs returns the exact definitions;
// the CloudFormation template mirrors them:
//
//	Sessions     HASH id (S)                    TTL attribute "ttl"
//	             owner S, keys M{role: B}, expires N (unix ns; absent = never),
//	             seen N (unix ns: when the developer was last heard from, for the dead-man sweep)
//	Connections  HASH pk (S), RANGE sk (S)      TTL attribute "ttl"
//	             pk "c#<connection id>", sk "c"                    the connection, by id
//	             pk "s#<session>",       sk "r#<role>#<order>#<id>" index entry: by session and role
//	             pk "s#<session>",       sk "p#<peer>#<order>#<id>" index entry: by session and peer
//	Tickets      HASH jti (S)                   TTL attribute "ttl"
//	             expires N (unix ns), use S (random token of the write: a retry is not a replay)
//	Claims       HASH arn (S)                   no TTL
//	             GSI "by-session": HASH session (S), projection ALL
//	             arn "<function ARN>"                 a claim: the snapshot, and either session S + owner S
//	                                                  (exclusive; releasing BOOL while that session, detaching,
//	                                                  is putting it back) or shared BOOL,
//	                                                  holders M{session: owner}, ver N (shared by selective
//	                                                  sessions)
//	             arn "member#<session>#<function ARN>" a shared claim's holder: session S, member_of S, owner S
//
// Connections use a composite key in the base table instead of a global secondary index because GSIs are
// only eventually consistent: a function that connects and at once sends an invocation would race the index,
// and the relay would answer "not connected". Each connection is written as three items in one transaction
// (itself plus its two index entries, each a full copy), so every lookup on the hot path is one strongly
// consistent GetItem or Query and never a Scan: by id; newest of a peer (Query on "p#<peer>#", descending,
// Limit 1); all of a role, oldest first (Query on "r#<role>#"). <order> is the connection time then the
// insertion time as fixed-width numbers, so key order is age order and equal connection times keep insertion
// order, as in relay.MemoryStore. Role and peer are escaped ('%' and '#') so one peer's prefix is never another's.
// A connection item's TTL is set past API Gateway's two-hour connection limit, which only cleans up after a
// relay that missed a $disconnect; reads never depend on TTL deletion, which DynamoDB runs lazily.
//
// Claims are read by ARN (GetItem, BatchGetItem), always strongly consistent, and by session through the
// by-session GSI, which is eventually consistent: SessionSnapshots may miss a claim made a moment ago, so
// restore after a crash goes by ARN (StackSnapshots).
//
// # Shared claims
//
// Selective sessions (docs/knock.md) share a function: any number hold it at once, and the claim keeps the
// snapshot the first of them took, which the last one out restores. A shared claim has no session attribute,
// so it is not in the by-session index itself; each holder has a membership item there instead, whose key
// cannot be a function's (ARNs start with "arn:"), and SessionSnapshots reads the claims they point to by ARN
// (strongly consistent, BatchGetItem) and lists one only if the session still holds it. A holders map rather
// than a string set keeps each holder's owner for "held by" messages. Every change of the holders (Claim with Shared, Leave,
// Release, dropping holders whose sessions are no longer live) is one TransactWriteItems: the claim's update
// conditioned on its version ver (incremented; a claim made afresh starts at a random version, so that a
// reading of a claim that went since never matches its successor) together with the membership items' puts
// and deletes, so two developers joining or leaving at once serialize, the loser reading again (writeAttempts
// times). Because the
// version is the condition, Claim and Leave build their first transaction on the claim as the caller read it
// (Snapshot.Version and Holders, from StackSnapshots or SessionSnapshots; for Claim, Version 0 means no claim)
// instead of reading it once more: a claim that changed since fails the transaction like one that changed
// between the store's own read and its write, and is read again. Join is Claim returning the holders its write
// left, so that the instrumenter reads the claim again only when the function names a session outside them.
// When the last live holder leaves, Leave turns the claim into that session's exclusive claim in the same way
// (updating it in place, so that what it does not change stays as stored), marked
// releasing in that same transaction: nobody joins while it restores, a claim refused meanwhile gets a
// HeldError with Releasing set (from the claim item it reads or gets back anyway, no request more), so that the
// attach can wait for the release rather than give up, and if the session dies meanwhile, the claim is an
// ended session's, which the next attach or the sweep takes over (Claim never writes the mark). A plain
// session's detach sets the same mark on its exclusive claim before it puts the snapshot back (MarkReleasing:
// one UpdateItem conditioned on the session holding the claim), with the same afterlife: Release removes it
// with the claim, a takeover of an ended session's claim does not carry it over, and a restore that stops on
// a conflict or a failure keeps it, with the claim, until the session detaches again or ends. An exclusive
// claim on a shared function fails with a HeldError naming every live holder, and takes the claim over when
// none is left. StaleSessions reads the holders maps as well as the session attributes, so the sweep finds
// expired selective sessions too. Snapshots skips membership items.
//
// Expiry is always checked on read against the store's clock, so an item DynamoDB has not yet deleted is never
// taken as live. Under a context from WithSessionCache (one attach or detach of many functions) Claim and Leave
// read each session they check once, not once per function; a session found live is still checked against its
// expiry at every use, and one found gone stays gone.
//
// The dead-man sweep (StaleSessions) finds sessions whose functions must be put back with no developer left to do
// it: expired, deleted, or silent. A session's "seen" is set when it is created and, through DeveloperSeen, when
// its developer connects or sends anything (heartbeats included), at most once a minute per connection and relay
// process, so the hot path gains one write a minute per developer at most. The sweep scans the claims table
// (projected to the session id; one item per instrumented function) rather than the sessions table, so that it
// also finds the claims of sessions DynamoDB TTL has already deleted.
//
// # Calls and permissions
//
// Per function, an attach or detach makes these DynamoDB requests (pinned by the instrument package's
// TestDynamoDBRequestsPerFunction): a first selective attach 3 (TransactWriteItems, GetItem after reading the
// function, UpdateItem for the revision), a join 2, a leave 2 (TransactWriteItems, UpdateItem), the last one out
// 2 (TransactWriteItems, DeleteItem), an exclusive attach 2 (PutItem, UpdateItem) and its detach 2 (UpdateItem
// for the releasing mark, DeleteItem); per call, one BatchGetItem per 100 functions for the claims an attach
// plans from (StackSnapshots), one GetItem per session checked and, for a detach, the by-session Query and a
// BatchGetItem per 100 shared claims.
//
// Per routed message ($default) the relay makes two reads: GetItem (sender) and Query (destination). $connect
// costs GetItem on sessions and a conditional PutItem on tickets in the authorizer, then GetItem and
// TransactWriteItems on connections; $disconnect a GetItem, a GetItem and a TransactWriteItems, and one Query per
// role when a developer leaves. The IAM actions each side needs (TransactWriteItems is authorized as the
// PutItem, DeleteItem and ConditionCheckItem it contains):
//
//	relay Lambda   sessions: GetItem, UpdateItem (DeveloperSeen), DeleteItem (sweep); tickets: PutItem;
//	               connections: GetItem, Query, PutItem, DeleteItem, ConditionCheckItem; claims (expiry restore
//	               and sweep): GetItem, BatchGetItem (SessionSnapshots), Query on index by-session, DeleteItem,
//	               UpdateItem (MarkReleasing), Scan (StaleSessions), and for shared claims PutItem, UpdateItem,
//	               DeleteItem inside TransactWriteItems (Leave)
//	developer CLI  sessions: GetItem, PutItem, DeleteItem, Scan; claims: GetItem, BatchGetItem, PutItem,
//	               UpdateItem, DeleteItem, Scan, Query on index by-session, TransactWriteItems (shared claims)
package store

// Package relay holds the relay's WebSocket route handlers ($connect authorizer, $connect, $disconnect, $default)
// as plain Go functions over aws-lambda-go's events types. The same handlers run inside the embedded gateway
// (plldb local, tests) and inside the relay Lambda behind a real API Gateway WebSocket API.
//
// The handlers keep their state behind Store and reach connections through Connections; both interfaces are
// defined here, where they are consumed. MemoryStore implements Store in memory; cloud/ implements it on DynamoDB.
package relay

import (
	"context"
	"errors"
	"time"

	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
)

// ErrGone is returned (possibly wrapped) by Connections when the connection no longer exists: API Gateway's
// 410 GoneException.
var ErrGone = errors.New("connection gone")

// ErrNotFound is returned (possibly wrapped) by Store lookups that find nothing.
var ErrNotFound = errors.New("not found")

// ErrReplayed is returned by Store.UseTicket when the ticket id was already used. It is ticket.ErrReplayed, so the
// ticket verifier recognises a store's replay error without translation.
var ErrReplayed = ticket.ErrReplayed

// Connections is the management side of a WebSocket API: API Gateway's @connections endpoint.
type Connections interface {
	PostToConnection(ctx context.Context, connectionID string, data []byte) error
	DeleteConnection(ctx context.Context, connectionID string) error
}

// Session is what the relay knows of one debug session. Keys hold one HMAC key per role. No function holds the
// function key: each gets its own key derived from it (ticket.FunctionKey), so it can mint neither a developer
// ticket nor another function's.
type Session struct {
	ID        string
	Keys      map[wire.Role][]byte
	Owner     string    // who created it (for messages such as "held by alice@host"); never a secret
	ExpiresAt time.Time // zero: no expiry
}

// Connection is one live WebSocket connection.
type Connection struct {
	ID          string
	Session     string
	Role        wire.Role
	Peer        string
	ConnectedAt time.Time
}

// Store is the relay's state. Implementations must be safe for concurrent use: API Gateway runs handlers for
// one session concurrently.
type Store interface {
	// GetSession returns the session or an error wrapping ErrNotFound.
	GetSession(ctx context.Context, id string) (Session, error)
	// UseTicket records a ticket id as used until expires; a second use returns an error wrapping ErrReplayed.
	UseTicket(ctx context.Context, jti string, expires time.Time) error
	// PutConnection stores c, replacing a connection with the same ID.
	PutConnection(ctx context.Context, c Connection) error
	// GetConnection returns the connection or an error wrapping ErrNotFound.
	GetConnection(ctx context.Context, id string) (Connection, error)
	// DeleteConnection removes the connection; deleting a missing one is not an error.
	DeleteConnection(ctx context.Context, id string) error
	// PeerConnection returns the newest connection of peer in session, or an error wrapping ErrNotFound. Newest
	// wins so that a reconnect (planned or after a drop) takes over its own peer id; no other function can, since
	// a function's tickets only admit peer ids in its own namespace (ticket.FunctionPeer).
	PeerConnection(ctx context.Context, session, peer string) (Connection, error)
	// SessionConnections lists the session's connections of the given role ("" for all).
	SessionConnections(ctx context.Context, session string, role wire.Role) ([]Connection, error)
}

// SeenRecorder is implemented by stores that keep when each session's developer was last heard from (the
// DynamoDB store, for the helper stack's dead-man sweep, which restores the functions of a session whose
// developer went silent). The handlers call it on every developer message and connect; implementations must
// keep their writes rare (the DynamoDB store writes at most once a minute per connection), and a failure only
// costs the record, never the message.
type SeenRecorder interface {
	DeveloperSeen(ctx context.Context, c Connection) error
}

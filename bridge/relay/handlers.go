package relay

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
)

// ErrUnauthorized is what the authorizer returns for a request without a ticket: API Gateway answers it with
// HTTP 401 (the error message must be exactly "Unauthorized").
var ErrUnauthorized = errors.New("Unauthorized")

// Reasons carried by the nacks the relay sends. None of them says whether a peer exists in another session.
const (
	ReasonInvalid       = "invalid message"
	ReasonReserved      = "message type is reserved for the relay"
	ReasonNoDeveloper   = "no developer connected"
	ReasonNoDestination = "developer messages need \"to\""
	ReasonNotConnected  = "destination peer not connected"
	ReasonGone          = "destination connection gone"
	ReasonFailed        = "delivery failed"
	ReasonUnavailable   = "relay store unavailable"
	ReasonWrongFunction = "invocation names a function other than the sender's"
	ReasonWrongSession  = "invocation's knock names a session other than the sender's"
)

// ByeDeveloperDisconnected is the reason of the bye sent to a session's functions when its last developer
// connection closes.
const ByeDeveloperDisconnected = "developer disconnected"

// Authorizer context keys: what Authorize hands to Connect through API Gateway.
const (
	ContextSession = "session"
	ContextRole    = "role"
	ContextPeer    = "peer"
)

// Handlers are the relay's WebSocket routes. The zero value is not usable: Store, Conns and Audience are
// required.
type Handlers struct {
	Store    Store
	Conns    Connections
	Audience string // the audience tickets must carry
	// Restorer, if set, puts back the functions of a session whose last developer connection went away after
	// the session ended (expired, or deleted without a detach): the relay's expiry path.
	Restorer Restorer
	Logger   *slog.Logger // nil → slog.Default()
	Now      func() time.Time
}

func (h *Handlers) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handlers) log() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// Authorize is the $connect REQUEST authorizer. No bearer ticket → ErrUnauthorized (401); an invalid ticket or
// an unknown or expired session → a Deny policy (403); a failing store → an error (500).
func (h *Handlers) Authorize(ctx context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	log := h.log().With("source_ip", req.RequestContext.Identity.SourceIP)
	tok, err := bearer(req.Headers, req.MultiValueHeaders)
	if err != nil {
		log.InfoContext(ctx, "relay connect refused", "reason", err.Error())
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	}
	if tok == "" {
		log.InfoContext(ctx, "relay connect refused", "reason", "no bearer ticket")
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	}
	c, err := h.verifier().Verify(ctx, tok)
	if err != nil {
		if !isTicketError(err) {
			log.ErrorContext(ctx, "relay authorizer failed", "err", err.Error())
			return events.APIGatewayCustomAuthorizerResponse{}, fmt.Errorf("authorize connection: %w", err)
		}
		log.WarnContext(ctx, "relay ticket denied", "reason", err.Error())
		return policy("anonymous", "Deny", req.MethodArn, nil), nil
	}
	log.InfoContext(ctx, "relay ticket accepted", "session", c.Session, "role", c.Role, "peer", c.Peer)
	return policy(c.Peer, "Allow", req.MethodArn, map[string]any{
		ContextSession: c.Session,
		ContextRole:    string(c.Role),
		ContextPeer:    c.Peer,
	}), nil
}

func (h *Handlers) verifier() *ticket.Verifier {
	return &ticket.Verifier{
		Audience: h.Audience,
		Now:      h.now,
		Key: func(ctx context.Context, id string, role wire.Role) ([]byte, error) {
			s, err := h.Store.GetSession(ctx, id)
			switch {
			case errors.Is(err, ErrNotFound):
				return nil, fmt.Errorf("%w: %w", ticket.ErrUnknownSession, err)
			case err != nil:
				return nil, err
			case !s.ExpiresAt.IsZero() && !h.now().Before(s.ExpiresAt):
				return nil, fmt.Errorf("%w: session %q expired", ticket.ErrUnknownSession, id)
			}
			key := s.Keys[role]
			if len(key) == 0 {
				return nil, fmt.Errorf("%w: session %q has no %s key", ticket.ErrUnknownSession, id, role)
			}
			return key, nil
		},
		Use: h.Store.UseTicket,
	}
}

func isTicketError(err error) bool {
	for _, s := range []error{ticket.ErrMissing, ticket.ErrMalformed, ticket.ErrSignature, ticket.ErrExpired,
		ticket.ErrAudience, ticket.ErrRole, ticket.ErrTTL, ticket.ErrReplayed, ticket.ErrUnknownSession} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// bearer finds the Authorization header whatever its case, in either header map. It returns "" when there is
// none or it is not a Bearer credential, and an error when the request carries several different ones.
func bearer(single map[string]string, multi map[string][]string) (string, error) {
	var values []string
	for k, v := range single {
		if strings.EqualFold(k, "Authorization") {
			values = append(values, v)
		}
	}
	for k, vs := range multi {
		if strings.EqualFold(k, "Authorization") {
			values = append(values, vs...)
		}
	}
	tok := ""
	for _, v := range values {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			continue
		}
		rest = strings.TrimSpace(rest)
		if rest == "" {
			continue
		}
		if tok != "" && tok != rest {
			return "", errors.New("several different Authorization headers")
		}
		tok = rest
	}
	return tok, nil
}

func policy(principal, effect, resource string, ctx map[string]any) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principal,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   effect,
				Resource: []string{resource},
			}},
		},
		Context: ctx,
	}
}

func response(status int) events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: status, Body: http.StatusText(status)}
}

// Connect is the $connect route: it records the connection the authorizer let through.
func (h *Handlers) Connect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	id := req.RequestContext.ConnectionID
	c, err := connectionFromAuthorizer(req.RequestContext.Authorizer)
	if err != nil || id == "" {
		if err == nil {
			err = errors.New("no connection id")
		}
		h.log().WarnContext(ctx, "relay connect refused", "connection", LogRef(id), "reason", err.Error())
		return response(http.StatusForbidden), nil
	}
	c.ID = id
	c.ConnectedAt = h.now()
	if err := h.Store.PutConnection(ctx, c); err != nil {
		h.log().ErrorContext(ctx, "relay connect failed", "connection", LogRef(id), "err", err.Error())
		return response(http.StatusInternalServerError), fmt.Errorf("connect %s: %w", LogRef(id), err)
	}
	h.log().InfoContext(ctx, "relay connected", "connection", LogRef(id), "session", c.Session, "role", c.Role, "peer", c.Peer)
	h.developerSeen(ctx, c)
	return response(http.StatusOK), nil
}

// connectionFromAuthorizer reads what Authorize put in the context. API Gateway passes it as a JSON object; the
// embedded gateway may pass either map type.
func connectionFromAuthorizer(auth any) (Connection, error) {
	var get func(string) (string, bool)
	switch m := auth.(type) {
	case map[string]any:
		get = func(k string) (string, bool) { s, ok := m[k].(string); return s, ok }
	case map[string]string:
		get = func(k string) (string, bool) { s, ok := m[k]; return s, ok }
	default:
		return Connection{}, errors.New("no authorizer context")
	}
	session, ok1 := get(ContextSession)
	role, ok2 := get(ContextRole)
	peer, ok3 := get(ContextPeer)
	switch {
	case !ok1 || !ok2 || !ok3:
		return Connection{}, errors.New("authorizer context lacks session, role or peer")
	case session == "" || peer == "":
		return Connection{}, errors.New("authorizer context has an empty session or peer")
	case len(peer) > wire.MaxPeerLen:
		return Connection{}, fmt.Errorf("authorizer context peer longer than %d bytes", wire.MaxPeerLen)
	case !ticket.ValidRole(wire.Role(role)):
		return Connection{}, errors.New("authorizer context has an unknown role")
	}
	return Connection{Session: session, Role: wire.Role(role), Peer: peer}, nil
}

// Disconnect is the $disconnect route. When the session's last developer connection goes, its functions are
// told (bye) so that they stop waiting for answers instead of timing out.
func (h *Handlers) Disconnect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	id := req.RequestContext.ConnectionID
	c, err := h.Store.GetConnection(ctx, id)
	if errors.Is(err, ErrNotFound) {
		// Already removed, e.g. as stale after a 410.
		h.log().InfoContext(ctx, "relay disconnected", "connection", LogRef(id), "known", false)
		return response(http.StatusOK), nil
	}
	if err != nil {
		return response(http.StatusInternalServerError), fmt.Errorf("disconnect %s: %w", LogRef(id), err)
	}
	if err := h.Store.DeleteConnection(ctx, id); err != nil {
		return response(http.StatusInternalServerError), fmt.Errorf("disconnect %s: %w", LogRef(id), err)
	}
	log := h.log().With("connection", LogRef(id), "session", c.Session, "role", c.Role, "peer", c.Peer)
	log.InfoContext(ctx, "relay disconnected")
	if c.Role != wire.RoleDeveloper {
		return response(http.StatusOK), nil
	}
	devs, err := h.Store.SessionConnections(ctx, c.Session, wire.RoleDeveloper)
	if err != nil {
		return response(http.StatusInternalServerError), fmt.Errorf("disconnect %s: list developers: %w", LogRef(id), err)
	}
	if len(devs) > 0 {
		return response(http.StatusOK), nil
	}
	h.restoreIfEnded(ctx, c.Session, log)
	fns, err := h.Store.SessionConnections(ctx, c.Session, wire.RoleFunction)
	if err != nil {
		return response(http.StatusInternalServerError), fmt.Errorf("disconnect %s: list functions: %w", LogRef(id), err)
	}
	bye, err := relayMessage(wire.TypeBye, "", wire.Bye{Reason: ByeDeveloperDisconnected})
	if err != nil {
		return response(http.StatusInternalServerError), fmt.Errorf("disconnect %s: %w", LogRef(id), err)
	}
	for _, fn := range fns {
		err := h.Conns.PostToConnection(ctx, fn.ID, bye)
		switch {
		case errors.Is(err, ErrGone):
			h.dropStale(ctx, fn.ID)
		case err != nil:
			log.WarnContext(ctx, "relay bye not delivered", "to", LogRef(fn.ID), "err", err.Error())
		default:
			log.InfoContext(ctx, "relay bye sent", "to", LogRef(fn.ID), "to_peer", fn.Peer)
		}
	}
	return response(http.StatusOK), nil
}

// Restorer restores the functions a session instrumented. cloud/ implements it with the session's snapshots;
// it is an interface so that the relay does not depend on the Lambda API.
type Restorer interface {
	RestoreSession(ctx context.Context, session string) error
}

// restoreIfEnded restores the session's functions when the session is over (GetSession finds it expired or
// gone). A live session is left alone: its developer may reconnect. Failures are logged, not returned: the
// disconnect itself succeeded, and API Gateway does not retry $disconnect.
func (h *Handlers) restoreIfEnded(ctx context.Context, session string, log *slog.Logger) {
	if h.Restorer == nil {
		return
	}
	_, err := h.Store.GetSession(ctx, session)
	if err == nil {
		return
	}
	if !errors.Is(err, ErrNotFound) {
		log.WarnContext(ctx, "relay could not check whether the session ended", "err", err.Error())
		return
	}
	if err := h.Restorer.RestoreSession(ctx, session); err != nil {
		log.ErrorContext(ctx, "relay could not restore the functions of an ended session", "err", err.Error())
		return
	}
	log.InfoContext(ctx, "relay restored the functions of an ended session")
}

// developerSeen tells a SeenRecorder store that the connection's developer is alive (heartbeats included).
func (h *Handlers) developerSeen(ctx context.Context, c Connection) {
	if c.Role != wire.RoleDeveloper {
		return
	}
	rec, ok := h.Store.(SeenRecorder)
	if !ok {
		return
	}
	if err := rec.DeveloperSeen(ctx, c); err != nil {
		h.log().WarnContext(ctx, "relay could not record that the developer was seen", "connection", c.ID, "session", c.Session, "err", err.Error())
	}
}

// relayMessage builds an envelope the relay itself sends (pong, nack, bye): From is empty, which peers read as
// "the relay", since every forwarded message carries its sender's peer id.
func relayMessage(t wire.Type, id string, body any) ([]byte, error) {
	e, err := wire.NewEnvelope(t, id, body)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", t, err)
	}
	b, err := wire.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", t, err)
	}
	return b, nil
}

func (h *Handlers) dropStale(ctx context.Context, id string) {
	if err := h.Store.DeleteConnection(ctx, id); err != nil {
		h.log().WarnContext(ctx, "relay could not remove stale connection", "connection", LogRef(id), "err", err.Error())
		return
	}
	h.log().InfoContext(ctx, "relay removed stale connection", "connection", LogRef(id))
}

// Default is the $default route: every message after $connect. It reads only the envelope header, so a 128 KB
// chunk costs a header scan and one copy, and looks up the store at most twice (sender, destination).
func (h *Handlers) Default(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	id := req.RequestContext.ConnectionID
	sender, err := h.Store.GetConnection(ctx, id)
	if errors.Is(err, ErrNotFound) {
		h.log().WarnContext(ctx, "relay message from unknown connection", "connection", LogRef(id), "bytes", len(req.Body))
		return response(http.StatusForbidden), fmt.Errorf("route message from %s: %w", LogRef(id), err)
	}
	if err != nil {
		return response(http.StatusInternalServerError), fmt.Errorf("route message from %s: %w", LogRef(id), err)
	}
	// After the message is on its way: the record (a write once a minute at most) never delays delivery.
	defer h.developerSeen(ctx, sender)

	msg := []byte(req.Body)
	if req.IsBase64Encoded {
		if msg, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			h.nack(ctx, sender, wire.Header{}, ReasonInvalid+": body is not valid base64")
			return response(http.StatusOK), nil
		}
	}
	hdr, err := wire.PeekHeader(msg)
	if err != nil {
		// PeekHeader returns what it read so the nack can name the message, but only fields within their
		// limits are echoed back.
		if len(hdr.ID) > wire.MaxIDLen {
			hdr.ID = ""
		}
		if len(hdr.T) > wire.MaxTypeLen {
			hdr.T = ""
		}
		h.nack(ctx, sender, hdr, ReasonInvalid+": "+err.Error())
		return response(http.StatusOK), nil
	}
	switch hdr.T {
	case wire.TypePing:
		h.pong(ctx, sender, hdr)
		return response(http.StatusOK), nil
	case wire.TypePong, wire.TypeNack:
		h.nack(ctx, sender, hdr, fmt.Sprintf("%s: %s", ReasonReserved, hdr.T))
		return response(http.StatusOK), nil
	}
	out, err := wire.Restamp(msg, sender.Peer)
	if err != nil {
		h.nack(ctx, sender, hdr, ReasonInvalid+": "+err.Error())
		return response(http.StatusOK), nil
	}

	var dest Connection
	switch sender.Role {
	case wire.RoleFunction:
		if hdr.T == wire.TypeInvoke {
			fn, knocked := invokeTarget(msg)
			switch {
			case fn != ticket.PeerFunction(sender.Peer):
				// A function's ticket proved which function it is (its peer id is in that function's namespace); its
				// invocations may not name another. Chunked invocations pass unread: the developer side checks the
				// reassembled one against the relay-stamped from.
				h.nack(ctx, sender, hdr, ReasonWrongFunction)
				return response(http.StatusOK), nil
			case knocked != nil && *knocked != sender.Session:
				// Selective mode: a knocked invocation goes to the knock's session only, and the sender's ticket is
				// for the session its developers are in. Sent over another session's link, it is refused rather than
				// shown to that session's developer (docs/knock.md, several sessions on one stack).
				h.nack(ctx, sender, hdr, ReasonWrongSession)
				return response(http.StatusOK), nil
			}
		}
		devs, err := h.Store.SessionConnections(ctx, sender.Session, wire.RoleDeveloper)
		if err != nil {
			h.nack(ctx, sender, hdr, ReasonUnavailable)
			return response(http.StatusInternalServerError), fmt.Errorf("route %s %s: list developers: %w", hdr.T, hdr.ID, err)
		}
		if len(devs) == 0 {
			h.nack(ctx, sender, hdr, ReasonNoDeveloper)
			return response(http.StatusOK), nil
		}
		dest = newest(devs)
	case wire.RoleDeveloper:
		if hdr.To == "" {
			h.nack(ctx, sender, hdr, ReasonNoDestination)
			return response(http.StatusOK), nil
		}
		dest, err = h.Store.PeerConnection(ctx, sender.Session, hdr.To)
		if errors.Is(err, ErrNotFound) || (err == nil && dest.Role != wire.RoleFunction) {
			h.nack(ctx, sender, hdr, ReasonNotConnected)
			return response(http.StatusOK), nil
		}
		if err != nil {
			h.nack(ctx, sender, hdr, ReasonUnavailable)
			return response(http.StatusInternalServerError), fmt.Errorf("route %s %s: find peer: %w", hdr.T, hdr.ID, err)
		}
	default:
		return response(http.StatusInternalServerError), fmt.Errorf("route message from %s: stored connection has unknown role %q", LogRef(id), sender.Role)
	}
	// Belt and braces: every lookup above is scoped to the sender's session, and crossing sessions is the one
	// thing the relay must never do.
	if dest.Session != sender.Session {
		h.nack(ctx, sender, hdr, ReasonNotConnected)
		return response(http.StatusInternalServerError), fmt.Errorf("route %s %s: store returned a connection of another session", hdr.T, hdr.ID)
	}

	err = h.Conns.PostToConnection(ctx, dest.ID, out)
	switch {
	case errors.Is(err, ErrGone):
		h.dropStale(ctx, dest.ID)
		h.nack(ctx, sender, hdr, ReasonGone)
	case err != nil:
		h.log().WarnContext(ctx, "relay delivery failed", "type", hdr.T, "id", hdr.ID,
			"from", LogRef(id), "to", LogRef(dest.ID), "bytes", len(out), "err", err.Error())
		h.nack(ctx, sender, hdr, ReasonFailed)
	default:
		if log := h.log(); log.Enabled(ctx, slog.LevelDebug) {
			log.DebugContext(ctx, "relay routed", "type", hdr.T, "id", hdr.ID, "session", sender.Session,
				"from", id, "from_peer", sender.Peer, "to", dest.ID, "to_peer", dest.Peer, "bytes", len(out))
		}
	}
	return response(http.StatusOK), nil
}

// invokeTarget returns the function name an inline invoke envelope names ("" if it cannot be read) and the
// session its knock names (nil: not knocked), read as the developer side's decoder reads them.
func invokeTarget(msg []byte) (function string, knockSession *string) {
	var e struct {
		Body struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
			Knock *struct {
				Session string `json:"session"`
			} `json:"knock"`
		} `json:"body"`
	}
	if json.Unmarshal(msg, &e) != nil {
		return "", nil
	}
	if e.Body.Knock != nil {
		knockSession = &e.Body.Knock.Session
	}
	return e.Body.Function.Name, knockSession
}

func newest(cs []Connection) Connection {
	best := cs[0]
	for _, c := range cs[1:] {
		// Later entries win ties: stores list connections oldest first.
		if !c.ConnectedAt.Before(best.ConnectedAt) {
			best = c
		}
	}
	return best
}

func (h *Handlers) pong(ctx context.Context, to Connection, ping wire.Header) {
	b, err := relayMessage(wire.TypePong, ping.ID, wire.Ping{Sent: h.now()})
	if err == nil {
		err = h.Conns.PostToConnection(ctx, to.ID, b)
	}
	switch {
	case errors.Is(err, ErrGone):
		h.dropStale(ctx, to.ID)
	case err != nil:
		h.log().WarnContext(ctx, "relay pong not delivered", "connection", LogRef(to.ID), "id", ping.ID, "err", err.Error())
	}
}

// nack tells the sender its message was not delivered. ref is the message's id, so the sender can tell which.
func (h *Handlers) nack(ctx context.Context, to Connection, ref wire.Header, reason string) {
	h.log().InfoContext(ctx, "relay nack", "connection", LogRef(to.ID), "session", to.Session, "peer", to.Peer,
		"type", ref.T, "id", ref.ID, "reason", reason)
	b, err := relayMessage(wire.TypeNack, "", wire.Nack{Ref: ref.ID, T: ref.T, Reason: reason})
	if err == nil {
		err = h.Conns.PostToConnection(ctx, to.ID, b)
	}
	switch {
	case errors.Is(err, ErrGone):
		h.dropStale(ctx, to.ID)
	case err != nil:
		h.log().WarnContext(ctx, "relay nack not delivered", "connection", LogRef(to.ID), "err", err.Error())
	}
}

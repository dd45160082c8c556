// Package wire defines what crosses the plldb relay: a versioned JSON envelope, the bodies of each message
// type, and the compression and chunking that keep every WebSocket message inside API Gateway's limits.
//
// The relay (bridge/relay) reads only the envelope header (v, t, id, to, from) and never the body, so it can
// route chunks of a large message without reassembling them. docs/protocol.md is the prose version of this file.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"strings"
	"time"
)

// Version is the protocol version written in every envelope. A peer refuses envelopes of another version.
const Version = 1

// Type names a message kind.
type Type string

// The message types. Bodies are documented on their structs.
const (
	TypeHello  Type = "hello"  // first message on every connection: who is speaking
	TypeInvoke Type = "invoke" // function → developer: run this invocation
	TypeAck    Type = "ack"    // developer → function: I have the invocation, do not fall back
	TypeResult Type = "result" // developer → function: the handler returned
	TypeError  Type = "error"  // developer → function: the handler raised (Lambda's error document)
	TypeLog    Type = "log"    // developer → function: log lines for the sandbox's stdout (CloudWatch)
	TypePing   Type = "ping"   // either side → relay: heartbeat; the relay answers pong to the sender
	TypePong   Type = "pong"   // relay → sender
	TypeBye    Type = "bye"    // orderly goodbye; the relay sends it to functions when their developer leaves
	TypeNack   Type = "nack"   // relay → sender: the message could not be delivered
	TypeChunk  Type = "chunk"  // one piece of a compressed envelope that was too large for one message
	// TypeDeployed is function → developer in mirror mode: what the deployed code answered a mirrored invocation.
	TypeDeployed Type = "deployed"
)

// Role is who holds a connection. Tickets are bound to one role.
type Role string

const (
	RoleDeveloper Role = "developer"
	RoleFunction  Role = "function"
)

// Envelope is one logical message. Body is kept raw so the relay and proxies can pass bodies they do not
// understand unchanged.
type Envelope struct {
	V  int    `json:"v"`
	T  Type   `json:"t"`
	ID string `json:"id,omitempty"` // message id; for invocation traffic, the Lambda request id
	// To names the destination peer. Developer → function messages must set it; function → developer
	// messages leave it empty (a session has one developer).
	To string `json:"to,omitempty"`
	// From is set by the relay to the sender's peer id; whatever the sender put there is overwritten.
	From string          `json:"from,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

// FunctionIdentity says which function an invocation belongs to.
type FunctionIdentity struct {
	LogicalID string `json:"logicalId,omitempty"`
	Name      string `json:"name"`
	ARN       string `json:"arn,omitempty"`
	Version   string `json:"version,omitempty"`
	MemoryMB  int    `json:"memoryMB,omitempty"`
	Region    string `json:"region,omitempty"`
	Runtime   string `json:"runtime,omitempty"`
	Handler   string `json:"handler,omitempty"`
}

// Hello is the body of TypeHello.
type Hello struct {
	Role     Role              `json:"role"`
	Peer     string            `json:"peer"`
	Agent    string            `json:"agent,omitempty"` // e.g. "plldb-proxy/0.1.0"
	Function *FunctionIdentity `json:"function,omitempty"`
}

// Invoke is the body of TypeInvoke: everything the Runtime API gave the sandbox for one invocation.
type Invoke struct {
	RequestID       string           `json:"requestId"`
	Function        FunctionIdentity `json:"function"`
	Deadline        time.Time        `json:"deadline"`
	TraceID         string           `json:"traceId,omitempty"`
	ClientContext   string           `json:"clientContext,omitempty"`   // raw Lambda-Runtime-Client-Context header
	CognitoIdentity string           `json:"cognitoIdentity,omitempty"` // raw Lambda-Runtime-Cognito-Identity header
	Event           []byte           `json:"event"`                     // raw event bytes, exactly as received
	// Env is the function's environment after the redaction policy; Redacted lists the names whose values
	// were withheld (credentials, plldb's own keys) so the developer side knows they exist.
	Env      map[string]string `json:"env,omitempty"`
	Redacted []string          `json:"redacted,omitempty"`
	// AckTimeoutMs is how long the sandbox waits for the ack before it falls back (0: not said, the default 3 s).
	// The developer side does not run an invocation it could not ack well within it: the fallback would run it
	// too.
	AckTimeoutMs int64 `json:"ackTimeoutMs,omitempty"`
	// TenantID is the caller's tenant (the Runtime API's Lambda-Runtime-Aws-Tenant-Id header) for a function in
	// tenant isolation mode; "" otherwise. The handler sees it as context.tenant_id.
	TenantID string `json:"tenantId,omitempty"`
	// Credentials are the function's execution-role credentials as its sandbox holds them, sent only when the
	// developer asked for them (PLLDB_CREDENTIALS=function) so that the handler runs with the function's own
	// rights. They are withheld from Env whatever happens; see Credentials for how they are kept out of logs.
	Credentials *Credentials `json:"credentials,omitempty"`
	// Knock is set on an invocation sent in selective mode because it carried a valid knock (docs/knock.md): the
	// knock's session (its issuer) and token id, never the token. The relay refuses an inline invoke whose knock
	// names a session other than the sender's connection's.
	Knock *KnockRef `json:"knock,omitempty"`
	// Mirror marks a copy (selective mirror mode, docs/knock.md): the deployed code answers the caller, and the
	// developer side runs the copy for the developer alone. It is not acked and nothing is sent back for it (no
	// ack, result, error or log), its deadline does not end it while it is paused, and what the deployed code
	// answered follows in a TypeDeployed envelope with the same request id.
	Mirror bool `json:"mirror,omitempty"`
}

// Deployed is the body of TypeDeployed: what the deployed code answered the caller of a mirrored invocation,
// exactly as its runtime posted it to the Runtime API.
type Deployed struct {
	RequestID string `json:"requestId"`
	// Error is set when the runtime posted an error (/error); Payload is then its error document and ErrorType
	// the Lambda-Runtime-Function-Error-Type header.
	Error     bool   `json:"error,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	// Payload is the response body or error document as posted; ContentType its Content-Type.
	Payload     []byte `json:"payload"`
	ContentType string `json:"contentType,omitempty"`
	// DurationMs is from the invocation handed to the deployed runtime to its answer.
	DurationMs int64 `json:"durationMs"`
}

// KnockRef names the knock that sent an invocation to a developer.
type KnockRef struct {
	Session string `json:"session"` // the knock's issuer: the developer's session id
	ID      string `json:"id"`      // the knock's token id (jti)
}

// Credentials are AWS credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). They cross the
// relay inside an invoke body only, over TLS on a ticket-authenticated connection; the relay never reads bodies,
// and the developer side holds them in memory for the invocation alone. Every way Go prints a value (fmt's verbs,
// slog) shows "[redacted]", so a log line can carry an Invoke or its Credentials without leaking them; only JSON,
// which is the wire, carries the values.
type Credentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken,omitempty"`
}

const redacted = "[redacted]"

func (Credentials) String() string             { return redacted }
func (Credentials) GoString() string           { return redacted }
func (Credentials) LogValue() slog.Value       { return slog.StringValue(redacted) }
func (Credentials) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }
func (c *Credentials) Valid() bool             { return c != nil && c.AccessKeyID != "" && c.SecretAccessKey != "" }

// LogValue logs an invocation by its identity, never its event, environment or credentials.
func (i Invoke) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("requestId", i.RequestID),
		slog.String("function", i.Function.Name),
		slog.Time("deadline", i.Deadline),
		slog.Int("eventBytes", len(i.Event)),
		slog.Bool("credentials", i.Credentials != nil),
	)
}

// LogValue logs an envelope by its header: its body may carry an invocation's event and credentials.
func (e Envelope) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("v", e.V),
		slog.String("t", string(e.T)),
		slog.String("id", e.ID),
		slog.String("to", e.To),
		slog.String("from", e.From),
		slog.Int("bodyBytes", len(e.Body)),
	)
}

// String and GoString print an envelope by its header, for the same reason as LogValue (%#v would otherwise
// print the body's bytes).
func (e Envelope) String() string {
	return fmt.Sprintf("envelope{v:%d t:%s id:%q to:%q from:%q body:%d bytes}", e.V, e.T, e.ID, e.To, e.From, len(e.Body))
}

func (e Envelope) GoString() string { return e.String() }

// Ack is the body of TypeAck.
type Ack struct {
	RequestID string `json:"requestId"`
}

// Result is the body of TypeResult: the handler's return value, serialized, exactly as it is posted to the
// Runtime API.
type Result struct {
	RequestID string `json:"requestId"`
	Payload   []byte `json:"payload"`
	// ContentType is the Content-Type the runtime posts the payload with: "application/json", or
	// "application/unknown" for a handler that returned bytes. "" (an older peer) posts none. The receiver
	// checks it with ValidContentType: it becomes an HTTP header.
	ContentType string `json:"contentType,omitempty"`
}

// Error is the body of TypeError: Lambda's error document plus the request it answers.
type Error struct {
	RequestID    string   `json:"requestId"`
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace,omitempty"`
	// Document is the error document exactly as the runtime wrote it (awslambdaric's key order, separators, and
	// its empty requestId and stackTrace), posted to the Runtime API as it is. It is optional: older peers do not
	// send it, and errors made by the developer side's Go code have none; the receiver then builds the document
	// from the fields above. It must hold one JSON object (see CheckDocument). It travels as base64 rather than
	// as a json.RawMessage because encoding/json compacts and HTML-escapes a RawMessage when it marshals one,
	// which would change the very bytes this field exists to keep.
	Document []byte `json:"document,omitempty"`
}

// CheckDocument tells whether e.Document, which comes from the other side of the relay, may be posted as an
// error document as it is: absent, or one JSON object.
func (e *Error) CheckDocument() error {
	if len(e.Document) == 0 {
		return nil
	}
	if err := validJSON(e.Document); err != nil {
		return fmt.Errorf("error document of %q is not valid JSON: %w", e.RequestID, err)
	}
	if e.Document[skipWS(e.Document, 0)] != '{' {
		return fmt.Errorf("error document of %q is not a JSON object: %d bytes starting %q", e.RequestID,
			len(e.Document), clipBytes(e.Document, 16))
	}
	return nil
}

// MaxContentTypeLen bounds Result.ContentType.
const MaxContentTypeLen = 256

// ValidContentType checks a Result's content type, which comes from the other side of the relay and becomes an
// HTTP header: "" or a media type (type/subtype, optional parameters) of printable ASCII within
// MaxContentTypeLen.
func ValidContentType(ct string) error {
	if ct == "" {
		return nil
	}
	if len(ct) > MaxContentTypeLen {
		return fmt.Errorf("content type is %d bytes, longer than %d", len(ct), MaxContentTypeLen)
	}
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("content type %q has a byte 0x%02x that is not printable ASCII", ct, c)
		}
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content type %q is not a media type: %w", ct, err)
	}
	if !strings.Contains(mt, "/") {
		return fmt.Errorf("content type %q is not a media type: no subtype", ct)
	}
	return nil
}

func clipBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Log is the body of TypeLog: output the handler printed, to be echoed on the sandbox's stdout.
//
// Text is what goes to stdout. A record awslambdaric writes as one frame to Lambda's telemetry pipe when it has
// one (a logging record, the [ERROR] report of a failed invocation) also carries Frame, the frame type
// awslambdaric would use (see IsFrameType), and Record, the frame's message when it is not Text[Lead:] (see
// FrameMessage); Text[:Lead] is an unfinished line printed before the record, which stays on stdout. A sandbox
// with a telemetry pipe writes Text[:Lead] to stdout and the message as a frame stamped with Time; one without
// writes Text, as for plain output (Frame 0).
type Log struct {
	RequestID string    `json:"requestId,omitempty"`
	Time      time.Time `json:"time"`
	Stream    string    `json:"stream,omitempty"` // "stdout" or "stderr"
	Text      string    `json:"text"`
	Frame     uint32    `json:"frame,omitempty"`
	Record    string    `json:"record,omitempty"`
	Lead      int       `json:"lead,omitempty"`
}

// IsFrameType reports whether t is one of the log frame types of awslambdaric's FramedTelemetryLogSink
// (lambda_runtime_log_utils.py): 0xA55A0002 + 8*level/10 for JSON records, one more for text records, level
// NOTSET (0) to CRITICAL (50).
func IsFrameType(t uint32) bool {
	if t&^0xFF != 0xA55A0000 {
		return false
	}
	low := t & 0xFF
	return low >= 2 && low <= 0x1B && (low == 2 || low == 3 || (low >= 0x0A && (low-0x0A)%4 <= 1))
}

// FrameMessage is the message of a framed record: Record, or when it is empty the text after the lead (most
// records are their text; the error report is not: its lines are joined with \n in a frame and \r on stdout).
// Call it only on a log that passed CheckFrame with a Frame.
func (l *Log) FrameMessage() string {
	if l.Record != "" {
		return l.Record
	}
	return l.Text[l.Lead:]
}

// CheckFrame reports what is wrong with a log's framing fields, for a receiver to fall back to Text.
func (l *Log) CheckFrame() error {
	if l.Frame == 0 {
		if l.Record != "" || l.Lead != 0 {
			return errors.New("log record or lead without a frame type")
		}
		return nil
	}
	if !IsFrameType(l.Frame) {
		return fmt.Errorf("log frame type %#x is not one of awslambdaric's", l.Frame)
	}
	if l.Lead < 0 || l.Lead > len(l.Text) {
		return fmt.Errorf("log lead %d outside its %d-byte text", l.Lead, len(l.Text))
	}
	return nil
}

// Ping is the body of TypePing and TypePong.
type Ping struct {
	Sent time.Time `json:"sent"`
}

// Bye is the body of TypeBye.
type Bye struct {
	Reason string `json:"reason,omitempty"`
}

// Nack is the body of TypeNack: the relay could not deliver the message Ref (its envelope id).
type Nack struct {
	Ref    string `json:"ref"`
	T      Type   `json:"t,omitempty"` // type of the undelivered message (for chunks, "chunk")
	Reason string `json:"reason"`
}

// Chunk is the body of TypeChunk. The chunks of one message share Msg; the data of chunks 0..Count-1 in order,
// concatenated, is the compressed envelope, Size bytes long, whose SHA-256 is Sum.
type Chunk struct {
	Msg   string `json:"msg"`
	Seq   int    `json:"seq"`
	Count int    `json:"count"`
	Size  int    `json:"size"`
	Sum   string `json:"sum"` // hex SHA-256 of the whole compressed envelope
	Enc   string `json:"enc"` // compression: "zstd"
	Data  []byte `json:"data"`
}

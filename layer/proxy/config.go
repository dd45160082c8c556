// Package proxy is the plldb layer's Runtime API proxy as a library: started through AWS_LAMBDA_EXEC_WRAPPER,
// it runs the function's original runtime as its child behind its own Runtime API, polls the sandbox's real
// Runtime API, and for each invocation either relays it to the developer over a Link (session mode) or hands it
// to the child unchanged (pass-through and fallback). `plldb local` runs the same code in-process.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
)

// Defaults of the session settings.
const (
	DefaultAckTimeout      = 3 * time.Second
	DefaultDeadlineMargin  = 500 * time.Millisecond
	DefaultDisconnectGrace = 10 * time.Second
	// DefaultConnectWait bounds how long init waits for the relay link (Lambda's init phase is limited to 10 s).
	DefaultConnectWait = 3 * time.Second
)

// Error types the proxy answers with when the developer side cannot.
const (
	ErrorTypeNoDeveloper           = "Plldb.NoDeveloper"
	ErrorTypeTimeout               = "Plldb.Timeout"
	ErrorTypeDeveloperDisconnected = "Plldb.DeveloperDisconnected"
)

// Config is everything Run needs.
type Config struct {
	RuntimeAPI string // the sandbox's real Runtime API (AWS_LAMBDA_RUNTIME_API)
	// Command is the original runtime command ("$@" of the wrapper). With PrevWrapper set the child is
	// [PrevWrapper]+Command: a wrapper the function had before plldb still runs.
	Command     []string
	PrevWrapper string
	// Env is the child's environment base (os.Environ()). The proxy points AWS_LAMBDA_RUNTIME_API at itself,
	// restores AWS_LAMBDA_EXEC_WRAPPER to PrevWrapper (or removes it) and withholds PLLDB_* variables.
	Env []string
	// Session is session mode: every invocation is offered to this developer. nil: pure pass-through, or
	// selective mode, whose sessions are Selective.Links.
	Session *SessionConfig
	// Selective, when set, is selective mode: an invocation goes to a developer only with a valid knock, and then
	// to the link of the knock's session, dialled at that session's first valid knock and never before; all
	// others go to the child runtime through the byte relay.
	Selective *SelectiveConfig
	Logger    *slog.Logger // default: discard
	// Stdout receives the function logs relayed from the developer (the sandbox's stdout, i.e. CloudWatch).
	// Default os.Stdout.
	Stdout io.Writer
	// ChildStdout and ChildStderr are the child's output; default os.Stdout and os.Stderr (inherited).
	ChildStdout, ChildStderr io.Writer
	// Telemetry is Lambda's telemetry log pipe (the fd _LAMBDA_TELEMETRY_LOG_FD names), where awslambdaric
	// writes each logging record as one frame so that a multi-line record stays one CloudWatch record. Relayed
	// records the developer's executor marks as framed go there, one write per frame, as awslambdaric writes
	// them; nil (RIE, plldb local): every relayed line goes to Stdout. The child keeps the fd and the variable.
	Telemetry io.Writer
	// KillGrace is how long the child has to exit after SIGTERM before it is killed; default 2 s.
	KillGrace time.Duration
}

// SessionConfig turns on relaying to a developer.
type SessionConfig struct {
	// Dial connects to the relay. Run calls it in the background and retries it with backoff until it
	// succeeds; the Link it returns is expected to reconnect by itself.
	Dial           func(ctx context.Context) (Link, error)
	Function       wire.FunctionIdentity
	AckTimeout     time.Duration // default DefaultAckTimeout
	Strict         bool          // no fallback: answer Plldb.NoDeveloper instead
	DeadlineMargin time.Duration // default DefaultDeadlineMargin
	// DisconnectGrace is how long an acknowledged invocation waits for the developer after a bye or a lost
	// link before it is answered with Plldb.DeveloperDisconnected; default DefaultDisconnectGrace.
	DisconnectGrace time.Duration
	// ConnectWait is how long the first invocation is held (in Lambda's init phase) for the relay link to come
	// up; default DefaultConnectWait, negative: no wait.
	ConnectWait time.Duration
	Env         map[string]string // the function's environment, forwarded after Redact
	// SendCredentials (PLLDB_CREDENTIALS=function) sends the sandbox's execution-role credentials from Env with
	// each invocation, in wire.Invoke.Credentials and never in its Env, so that the developer's handler runs with
	// the function's own rights. Off, they never leave the sandbox.
	SendCredentials bool
	// Mirror (selective mode, PLLDB_SESSIONS' "mirror"): this session's knocked invocations run the deployed code,
	// which answers the caller, and a copy goes to the developer, followed by what the deployed code answered.
	Mirror bool

	// What a Dial implementation needs, filled by ConfigFromEnv.
	Endpoint    string // PLLDB_ENDPOINT, ws:// or wss://
	SessionID   string // PLLDB_SESSION, or the session of a PLLDB_SESSIONS entry
	Audience    string // PLLDB_AUDIENCE
	Peer        string // this sandbox's peer id, random per proxy process, in its function's namespace
	FunctionKey Secret // PLLDB_FUNCTION_KEY (or the entry's key), decoded: this function's own key for the session (ticket.FunctionKey)
}

// Secret is key material that must never be printed.
type Secret []byte

func (Secret) String() string               { return "[redacted]" }
func (Secret) GoString() string             { return "[redacted]" }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Link is a connection to the relay as the proxy uses it; bridge/wsclient's Client satisfies it.
type Link interface {
	Send(ctx context.Context, e *wire.Envelope) error
	Recv() <-chan *wire.Envelope
	Connected() bool
	Close() error
}

// ErrSessionConfig marks a problem with the PLLDB_* session settings. ConfigFromEnv still returns a usable
// pass-through Config with it: a broken debugging setup must not break the function.
var ErrSessionConfig = errors.New("plldb session settings")

// ConfigFromEnv builds a Config from the wrapper's arguments and the process environment. Session mode is on
// when PLLDB_ENDPOINT, PLLDB_SESSION and PLLDB_FUNCTION_KEY are all set; Session.Dial is left for the caller.
// When only the session settings are wrong the returned error wraps ErrSessionConfig and the Config is a
// working pass-through one.
func ConfigFromEnv(args []string, environ []string) (Config, error) {
	env := envMap(environ)
	cfg := Config{
		RuntimeAPI:  env["AWS_LAMBDA_RUNTIME_API"],
		Command:     args,
		PrevWrapper: env["PLLDB_PREV_WRAPPER"],
		Env:         environ,
		Stdout:      os.Stdout,
	}
	level, err := parseLevel(env["PLLDB_LOG_LEVEL"])
	if err != nil {
		return Config{}, err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "plldb-proxy")
	if v, ok := env[telemetryFDEnv]; ok {
		if f, err := telemetryFile(v); err != nil {
			// Relayed logs then go to stdout as under RIE: split by line, but not lost.
			cfg.Logger.Warn("not writing framed logs", "err", err)
		} else {
			cfg.Telemetry = f
		}
	}
	if cfg.RuntimeAPI == "" {
		return Config{}, errors.New("AWS_LAMBDA_RUNTIME_API is not set: the plldb proxy only runs inside a Lambda sandbox, started through AWS_LAMBDA_EXEC_WRAPPER")
	}
	if len(args) == 0 || args[0] == "" {
		return Config{}, errors.New("no runtime command: the exec wrapper must be called with the runtime's command as its arguments")
	}
	if cfg.PrevWrapper != "" && cfg.PrevWrapper == env["AWS_LAMBDA_EXEC_WRAPPER"] {
		return Config{}, fmt.Errorf("PLLDB_PREV_WRAPPER=%s is the plldb wrapper itself: it would start itself forever", cfg.PrevWrapper)
	}
	if _, err := compileGlobs(env["PLLDB_REDACT"]); err != nil {
		return Config{}, err
	}
	if selectiveWanted(env) {
		return selectiveConfig(cfg, env)
	}
	sess, err := sessionFromEnv(env)
	if err != nil {
		return cfg, fmt.Errorf("%w: %w (running without a debugging session)", ErrSessionConfig, err)
	}
	cfg.Session = sess
	return cfg, nil
}

// replayMemory is how many request-bound knocks a sandbox remembers as used (knock.MemoryReplay): a few hundred
// KB at most, far more than one sandbox serves within a knock's lifetime.
const replayMemory = 4096

// selectiveConfig completes cfg for selective mode. Whatever is wrong, the Config it returns works: with
// Selective.Broken set and no links, every invocation runs the deployed code and knocks are removed, and the
// error (wrapping ErrSessionConfig and ErrSelectiveConfig, without key material) says why. Selective mode never
// sets cfg.Session: its sessions are Selective.Links, each dialled at its own first valid knock.
func selectiveConfig(cfg Config, env map[string]string) (Config, error) {
	broken := func(err error) (Config, error) {
		cfg.Selective = &SelectiveConfig{Broken: err}
		cfg.Session = nil
		return cfg, fmt.Errorf("%w: %w: %w (every invocation runs the deployed code; knocks are removed and refused)",
			ErrSessionConfig, ErrSelectiveConfig, err)
	}
	kc, err := selectiveFromEnv(env)
	if err != nil {
		return broken(err)
	}
	kc.Replay = knock.NewMemoryReplay(replayMemory, nil)
	v, err := knock.NewVerifier(*kc)
	if err != nil {
		return broken(err)
	}
	links, err := linksFromEnv(env)
	if err != nil {
		return broken(err)
	}
	cfg.Session = nil
	cfg.Selective = &SelectiveConfig{Verifier: v, Sessions: slices.Sorted(maps.Keys(kc.Keys)), Links: links}
	return cfg, nil
}

// linksFromEnv builds selective mode's links: one per PLLDB_SESSIONS entry, and one for PLLDB_SESSION with
// PLLDB_FUNCTION_KEY (an attach that predates PLLDB_SESSIONS; PLLDB_CREDENTIALS applies to it alone). The
// settings every link shares (endpoint, audience, ack timeout, strictness, the function's identity) come from
// the usual variables. Settings that contradict each other are refused, so that no developer gets traffic
// that was not meant for them: a session listed twice, PLLDB_CREDENTIALS=function with no PLLDB_SESSION for it
// to apply to, or no link at all. A link whose session has no knock key is accepted (no knock of it can
// verify, so it is never dialled), as is a knock key without a link (its knocks are refused).
func linksFromEnv(env map[string]string) ([]*SessionConfig, error) {
	list := env[selenv.EnvSessions]
	legacy := env["PLLDB_SESSION"] != "" || env["PLLDB_FUNCTION_KEY"] != ""
	if list == "" && !legacy {
		return nil, fmt.Errorf("selective mode without %s, nor PLLDB_SESSION and PLLDB_FUNCTION_KEY: no developer to send knocked invocations to",
			selenv.EnvSessions)
	}
	if env["PLLDB_ENDPOINT"] == "" {
		return nil, errors.New("selective mode without PLLDB_ENDPOINT: no relay to send knocked invocations to")
	}
	var links []*SessionConfig
	if legacy {
		sc, err := sessionFromEnv(env)
		if err != nil {
			return nil, err
		}
		links = append(links, sc)
	} else if env["PLLDB_CREDENTIALS"] == "function" {
		return nil, fmt.Errorf("PLLDB_CREDENTIALS=function without PLLDB_SESSION: with %s each session says whether it gets credentials (;%s)",
			selenv.EnvSessions, selenv.OptCredentials)
	}
	if list == "" {
		return links, nil
	}
	parsed, err := selenv.ParseSessions(list)
	if err != nil {
		return nil, err
	}
	base, err := sessionBase(env)
	if err != nil {
		return nil, err
	}
	for _, l := range parsed {
		if legacy && l.Session == env["PLLDB_SESSION"] {
			return nil, fmt.Errorf("session %s is both PLLDB_SESSION and in %s", l.Session, selenv.EnvSessions)
		}
		sc := *base
		sc.SessionID, sc.FunctionKey = l.Session, Secret(l.FunctionKey)
		sc.SendCredentials, sc.Mirror = l.Credentials, l.Mirror
		// A peer id of its own per link: each link is its own connection to the relay.
		sc.Peer = ticket.FunctionPeer(sc.Function.Name, newPeerID())
		links = append(links, &sc)
	}
	return links, nil
}

func sessionFromEnv(env map[string]string) (*SessionConfig, error) {
	names := []string{"PLLDB_ENDPOINT", "PLLDB_SESSION", "PLLDB_FUNCTION_KEY"}
	var set, missing []string
	for _, n := range names {
		if env[n] != "" {
			set = append(set, n)
		} else {
			missing = append(missing, n)
		}
	}
	if len(set) == 0 {
		return nil, nil
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s set but %s missing", strings.Join(set, ", "), strings.Join(missing, ", "))
	}
	sc, err := sessionBase(env)
	if err != nil {
		return nil, err
	}
	key, err := decodeKey(env["PLLDB_FUNCTION_KEY"])
	if err != nil {
		return nil, err
	}
	sc.SessionID, sc.FunctionKey = env["PLLDB_SESSION"], key
	switch v := env["PLLDB_CREDENTIALS"]; v {
	case "function":
		sc.SendCredentials = true
	case "", "developer":
	default:
		return nil, fmt.Errorf("PLLDB_CREDENTIALS %q is neither \"function\" nor \"developer\"", v)
	}
	return sc, nil
}

// sessionBase is a SessionConfig with the settings that do not depend on the session: the relay, the function,
// the timeouts and strictness. It has no session id, key or credentials setting yet.
func sessionBase(env map[string]string) (*SessionConfig, error) {
	u, err := url.Parse(env["PLLDB_ENDPOINT"])
	if err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.Host == "" {
		return nil, fmt.Errorf("PLLDB_ENDPOINT %q is not a ws:// or wss:// URL", env["PLLDB_ENDPOINT"])
	}
	// The key is this function's own: its tickets name the function and put the peer id in its namespace.
	name := env["AWS_LAMBDA_FUNCTION_NAME"]
	if err := ticket.ValidFunction(name); err != nil {
		return nil, fmt.Errorf("AWS_LAMBDA_FUNCTION_NAME %q: %w", name, err)
	}
	sc := &SessionConfig{
		Endpoint:        env["PLLDB_ENDPOINT"],
		Audience:        env["PLLDB_AUDIENCE"],
		Peer:            ticket.FunctionPeer(name, newPeerID()),
		AckTimeout:      DefaultAckTimeout,
		DeadlineMargin:  DefaultDeadlineMargin,
		DisconnectGrace: DefaultDisconnectGrace,
		Env:             env,
		Function: wire.FunctionIdentity{
			LogicalID: env["PLLDB_LOGICAL_ID"],
			Name:      name,
			Version:   env["AWS_LAMBDA_FUNCTION_VERSION"],
			Region:    env["AWS_REGION"],
			Runtime:   env["AWS_EXECUTION_ENV"],
			Handler:   env["_HANDLER"],
		},
	}
	if sc.Audience == "" {
		sc.Audience = u.Host
	}
	if m := env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]; m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE %q is not a positive integer", m)
		}
		sc.Function.MemoryMB = n
	}
	if v := env["PLLDB_ACK_TIMEOUT"]; v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("PLLDB_ACK_TIMEOUT: %w", err)
		}
		sc.AckTimeout = d
	}
	if v := env["PLLDB_STRICT"]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("PLLDB_STRICT %q is not a boolean (true/false/1/0)", v)
		}
		sc.Strict = b
	}
	return sc, nil
}

// decodeKey accepts standard or URL-safe base64, padded or not. The value never appears in errors.
func decodeKey(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) < ticket.KeyLen {
				return nil, fmt.Errorf("PLLDB_FUNCTION_KEY decodes to %d bytes; at least %d expected", len(b), ticket.KeyLen)
			}
			return b, nil
		}
	}
	return nil, errors.New("PLLDB_FUNCTION_KEY is not valid base64")
}

// parseDuration takes a Go duration ("3s", "1500ms") or a plain number of seconds ("3", "0.5").
func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return 0, fmt.Errorf("%q is neither a duration (3s, 1500ms) nor a number of seconds", v)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d <= 0 || d > 15*time.Minute {
		return 0, fmt.Errorf("%q is out of range (0, 15m]", v)
	}
	return d, nil
}

func parseLevel(v string) (slog.Level, error) {
	if v == "" {
		return slog.LevelInfo, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return 0, fmt.Errorf("PLLDB_LOG_LEVEL %q is not one of debug, info, warn, error", v)
	}
	return l, nil
}

func newPeerID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "fn-" + hex.EncodeToString(b[:])
}

// telemetryFDEnv names Lambda's telemetry log pipe; awslambdaric reads it in create_log_sink.
const telemetryFDEnv = "_LAMBDA_TELEMETRY_LOG_FD"

// telemetryFile checks that v names an open fd and returns a writer for it. The writer is not an *os.File: the
// fd belongs to the sandbox, and the original runtime (started later, inheriting it at the same number)
// writes its own frames to it, so the proxy must never close it (an *os.File's finalizer would) nor change its
// flags; the fd stays inheritable (no FD_CLOEXEC) as Lambda made it.
func telemetryFile(v string) (io.Writer, error) {
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("%s=%q is not a file descriptor", telemetryFDEnv, v)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("%s=%d: %w", telemetryFDEnv, fd, err)
	}
	return fdWriter(fd), nil
}

// fdWriter writes with write(2) on a file descriptor it does not own. A frame is one write, as awslambdaric's
// unbuffered file writes it; only an interrupted or partial write (a pipe over PIPE_BUF) takes more.
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := syscall.Write(int(w), p[n:])
		if m > 0 {
			n += m
		}
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			// A non-blocking fd with a full pipe: wait as a blocking write would.
			time.Sleep(time.Millisecond)
		case err != nil:
			return n, fmt.Errorf("write telemetry log fd %d: %w", int(w), err)
		case m <= 0:
			return n, io.ErrShortWrite
		}
	}
	return n, nil
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// alwaysRedacted are withheld from the developer whatever PLLDB_REDACT says: the role's credentials, plldb's
// own keys (PLLDB_SESSIONS holds every selective session's function key: one developer must never see
// another's), the sandbox-internal Runtime API address, and the telemetry pipe's fd (a number meaningless on the
// developer's machine, which awslambdaric removes from the environment before a handler runs).
var alwaysRedacted = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "PLLDB_FUNCTION_KEY", selenv.EnvSessions, "AWS_LAMBDA_RUNTIME_API", telemetryFDEnv,
}

// Redact applies the redaction policy to env: the names in alwaysRedacted and the names matching the
// comma-separated globs of env["PLLDB_REDACT"] (path.Match syntax) are withheld. It returns the kept
// variables and the sorted names of the withheld ones.
func Redact(env map[string]string) (kept map[string]string, redacted []string) {
	globs, _ := compileGlobs(env["PLLDB_REDACT"])
	kept = make(map[string]string, len(env))
	for k, v := range env {
		if slices.Contains(alwaysRedacted, k) || matchAny(globs, k) {
			redacted = append(redacted, k)
			continue
		}
		kept[k] = v
	}
	slices.Sort(redacted)
	return kept, redacted
}

func compileGlobs(v string) ([]string, error) {
	var globs []string
	for _, g := range strings.Split(v, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("PLLDB_REDACT: pattern %q: %w", g, err)
		}
		globs = append(globs, g)
	}
	return globs, nil
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, err := path.Match(g, name); ok || (err != nil && g == name) {
			return true
		}
	}
	return false
}

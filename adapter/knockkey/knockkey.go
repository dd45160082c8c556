// Package knockkey holds one selective debug session's knock signing key: it generates the session's Ed25519 key
// pair and session id, mints knocks for it (bridge/knock), and keeps what `plldb knock` needs in a file only the
// developer can read, for as long as the session runs (docs/knock.md). FormatLine prints a knock as the header
// line or a ready-to-run command, for `plldb knock` and the debug adapter's plldbKnock request alike.
//
// The file is os.UserCacheDir()/plldb/knock/<audience>.json, mode 0600 in a 0700 directory. It holds the private
// key, so Load refuses a file or directory that others could read or write: a key that may have leaked is not a
// key to sign with. One running session owns an audience at a time; the file names the owning process, so a file
// left by a crashed session is replaced while a live one is refused.
//
// plldb local uses the fixed audience LocalAudience: a template names no stack (the stack name is chosen at
// deploy time), and a fixed name lets `plldb knock --local` find the session without being told the template.
package knockkey

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/plldb/plldb/bridge/knock"
)

// LocalAudience is the audience (the stand-in for a stack name) of plldb local's knocks: a function F of it
// answers to "local" and "local/F".
const LocalAudience = "local"

// ErrNoSession is returned by Load when no session of that audience is running.
var ErrNoSession = errors.New("no selective session is running")

// Session is one selective debug session's signing identity.
type Session struct {
	Audience string             // the stack name (or LocalAudience) knocks are bound to
	ID       string             // the session id: the knocks' issuer
	Public   ed25519.PublicKey  // what verifiers are given
	Private  ed25519.PrivateKey // never logged, never leaves this machine
	// Endpoint is where the session takes invocations (plldb local's Invoke API), for ready-to-run lines; "" when
	// unknown.
	Endpoint string
	// Functions are the functions the session debugs, which a knock can be bound to; nil when unknown (a file
	// written before they were saved).
	Functions []Function
	PID       int // the process running the session
	path      string
}

// Function is a function of a session, which a knock binds to by either name.
type Function struct {
	LogicalID string `json:"logicalId"`
	Name      string `json:"name,omitempty"` // the deployed (physical) name, when it differs
}

// InvokeName is the name to invoke the function named name by (its logical id or deployed name): the deployed
// name, which is what Lambda knows it by (a logical id names nothing outside its stack); name itself when the
// session does not know the function.
func (s *Session) InvokeName(name string) string {
	for _, f := range s.Functions {
		if (f.LogicalID == name || f.Name == name) && f.Name != "" {
			return f.Name
		}
	}
	return name
}

// CheckFunction refuses a function name that is none of the session's functions (the logical id or name of
// one), saying which there are: a knock bound to it would verify nowhere, and its invocation would run without
// the debugger. With no functions known it accepts any name.
func (s *Session) CheckFunction(name string) error {
	if len(s.Functions) == 0 {
		return nil
	}
	ids := make([]string, 0, len(s.Functions))
	for _, f := range s.Functions {
		if f.LogicalID == name || f.Name == name {
			return nil
		}
		ids = append(ids, f.LogicalID)
	}
	return fmt.Errorf("%q is not a function of this session (it debugs %s)", name, strings.Join(ids, ", "))
}

// file is the on-disk form.
type file struct {
	Audience  string     `json:"audience"`
	Session   string     `json:"session"`
	Seed      []byte     `json:"privateKeySeed"`
	Endpoint  string     `json:"endpoint,omitempty"`
	Functions []Function `json:"functions,omitempty"`
	PID       int        `json:"pid"`
	Created   string     `json:"created"`
}

// New generates a session for audience with a fresh key pair and session id.
func New(audience string) (*Session, error) {
	if err := checkAudience(audience); err != nil {
		return nil, err
	}
	pub, priv, err := knock.NewKey()
	if err != nil {
		return nil, err
	}
	return &Session{Audience: audience, ID: "s-" + knock.NewID(), Public: pub, Private: priv, PID: os.Getpid()}, nil
}

// checkAudience keeps audiences to what a knock accepts and what is safe as a file name.
func checkAudience(a string) error {
	if a == "" || strings.ContainsAny(a, "/\\") || a == "." || a == ".." {
		return fmt.Errorf("knock audience %q: not a stack name", a)
	}
	if _, err := knock.NewVerifier(knock.Config{Audiences: []string{a}}); err != nil {
		return fmt.Errorf("knock audience %q: %w", a, err)
	}
	return nil
}

// MintOptions narrow a knock.
type MintOptions struct {
	Function string        // "" binds the knock to the whole audience; else to audience/Function
	TTL      time.Duration // 0 → knock.DefaultTTL
	Route    string        // optional "METHOD /path/glob"
}

// Mint signs a knock for this session.
func (s *Session) Mint(o MintOptions) (string, error) {
	tok, _, err := s.Issue(o)
	return tok, err
}

// Issue signs a knock for this session and says when it expires (to the second, as the token does).
func (s *Session) Issue(o MintOptions) (tok string, expires time.Time, err error) {
	if o.TTL < 0 {
		return "", time.Time{}, errors.New("knock lifetime must be positive")
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = knock.DefaultTTL
	}
	c := knock.Claims{Issuer: s.ID, Audience: s.Audience, Route: o.Route, IssuedAt: time.Now()}
	if o.Function != "" {
		c.Audience = s.Audience + "/" + o.Function
	}
	c.Expires = c.IssuedAt.Add(ttl)
	tok, err = knock.Mint(s.Private, c)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, time.Unix(c.Expires.Unix(), 0), nil
}

// Verifier returns a verifier of this session's knocks for a function known by names (logical id, physical name).
func (s *Session) Verifier(names ...string) (*knock.Verifier, error) {
	return knock.NewVerifier(knock.Config{
		Keys:      map[string]ed25519.PublicKey{s.ID: s.Public},
		Audiences: knock.Audiences(s.Audience, names...),
	})
}

// DirEnv names a directory to keep session files in instead of the default, for tests and for developers
// whose cache directory is shared; the same permission rules apply to it.
const DirEnv = "PLLDB_KNOCK_DIR"

// Dir is where session files live: $PLLDB_KNOCK_DIR, else os.UserCacheDir()/plldb/knock.
func Dir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("knock session directory: %w", err)
	}
	return filepath.Join(base, "plldb", "knock"), nil
}

// Path is the session file of audience.
func Path(audience string) (string, error) {
	if err := checkAudience(audience); err != nil {
		return "", err
	}
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, audience+".json"), nil
}

// Save writes the session file (0600, in a 0700 directory). It refuses when a live process already owns the
// audience, and replaces a file left by one that is gone. Remove deletes it when the session ends.
func (s *Session) Save() error {
	path, err := Path(s.Audience)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := checkMode(dir, 0o077); err != nil {
		return err
	}
	js, err := json.Marshal(file{Audience: s.Audience, Session: s.ID, Seed: s.Private.Seed(), Endpoint: s.Endpoint,
		Functions: s.Functions, PID: s.PID, Created: time.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		return fmt.Errorf("encode knock session: %w", err)
	}
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, werr := f.Write(js)
			cerr := f.Close()
			if werr = errors.Join(werr, cerr); werr != nil {
				_ = os.Remove(path)
				return fmt.Errorf("write %s: %w", path, werr)
			}
			s.path = path
			return nil
		}
		if !errors.Is(err, fs.ErrExist) || attempt > 0 {
			return fmt.Errorf("create %s: %w", path, err)
		}
		// A file is there: another running session's, or one a crashed session left behind.
		if old, lerr := read(path); lerr == nil && old.PID != os.Getpid() && alive(old.PID) {
			return fmt.Errorf("another selective session for %q is running (pid %d); stop it first", s.Audience, old.PID)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale %s: %w", path, err)
		}
	}
}

// Remove deletes the session file Save wrote, if it is still this session's.
func (s *Session) Remove() error {
	if s.path == "" {
		return nil
	}
	if old, err := read(s.path); err == nil && old.Session != s.ID {
		return nil // another session took the audience over
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove knock session file: %w", err)
	}
	s.path = ""
	return nil
}

// Load reads the running session of audience. It returns ErrNoSession when there is none (no file, or its process
// is gone) and refuses a file others could read or write.
func Load(audience string) (*Session, error) {
	path, err := Path(audience)
	if err != nil {
		return nil, err
	}
	if err := checkMode(filepath.Dir(path), 0o077); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w for %q", ErrNoSession, audience)
		}
		return nil, err
	}
	if err := checkMode(path, 0o077); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w for %q", ErrNoSession, audience)
		}
		return nil, err
	}
	f, err := read(path)
	if err != nil {
		return nil, err
	}
	if !alive(f.PID) {
		return nil, fmt.Errorf("%w for %q (the session that wrote %s has ended)", ErrNoSession, audience, path)
	}
	if len(f.Seed) != ed25519.SeedSize || f.Audience != audience || f.Session == "" {
		return nil, fmt.Errorf("knock session file %s is malformed", path)
	}
	priv := ed25519.NewKeyFromSeed(f.Seed)
	return &Session{Audience: f.Audience, ID: f.Session, Private: priv, Public: priv.Public().(ed25519.PublicKey),
		Endpoint: f.Endpoint, Functions: f.Functions, PID: f.PID}, nil
}

func read(path string) (file, error) {
	var f file
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("read knock session file: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		// The decoder's message may quote the file's bytes, which hold the key: say only that it is malformed.
		return f, fmt.Errorf("knock session file %s is malformed", path)
	}
	return f, nil
}

// checkMode refuses path when any permission bit in forbidden is set, or when it is not the user's own.
func checkMode(path string, forbidden fs.FileMode) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("knock session: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("knock session: %s is a symbolic link; refusing it", path)
	}
	if fi.Mode().Perm()&forbidden != 0 {
		return fmt.Errorf("knock session: %s has mode %04o, readable or writable by others; refusing it (it holds a private key: delete it and restart the session)", path, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("knock session: %s belongs to another user; refusing it", path)
	}
	return nil
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

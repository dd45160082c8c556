// Package aws is AWS mode's developer side, the peer of adapter/local: Attach creates a debug session in a helper stack install,
// connects the developer side (adapter/devside) to the install's relay, maps the deployed stack's functions to
// local code and instruments them; Session.Close restores them and ends the session. Detach and the next Attach
// put back what a crashed session left instrumented.
package aws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"

	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/adapter/template"
	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
	"github.com/plldb/plldb/cloud/awsconfig"
	"github.com/plldb/plldb/cloud/install"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/store"
)

// DefaultExpiry is how long a session lives unless closed first; the relay's expiry path restores after it.
const DefaultExpiry = 12 * time.Hour

// Options configure Attach.
type Options struct {
	StackName string
	// Functions limits the session to these functions (logical ids, with or without the nested stack prefix,
	// or physical names); empty attaches every function of the stack that has local Python code.
	Functions []string
	// Template is the local template mapping functions to code; "" → template.yaml, template.yml or
	// template.json in Dir (as sam looks for them), else the deployed stack's template (GetTemplate).
	Template string
	// Dir is where relative paths start and template.yaml is looked for; "" → the working directory.
	Dir    string
	Python string
	// Env is added to every function's environment here (over the template's variables), as a launch's "env":
	// what points a developer's handler, and a mirror copy whose side effects happen a second time, at harmless
	// resources.
	Env  map[string]string
	Name string // install name; default install.DefaultName
	AWS  aws.Config
	// Install, if set, is used instead of reading the install's stack outputs (the offline harness sets it).
	Install *install.Resources
	Debug   bool // start executors under debugpy
	// OpenDebugpy lets any local client attach to the debugpys without their token (executor.Spec.OpenDebugpy),
	// for `plldb attach`, which prints the ports for an editor to attach to directly.
	OpenDebugpy bool
	// MaxConcurrency bounds each function's developer sandboxes, one per invocation running at once; 0 → 10 (a
	// function's ReservedConcurrentExecutions, when the template sets one, instead). Invocations past it wait for
	// a sandbox to free up, within their deadline: the cloud already decided to run them.
	MaxConcurrency int
	// Strict: invocations no developer takes get Plldb.NoDeveloper instead of the deployed code (PLLDB_STRICT).
	Strict bool
	// Selective attaches in selective mode (docs/knock.md): only invocations carrying a valid knock of this
	// session go to the developer; every other one runs the deployed code in its sandbox. Attach generates the
	// session's knock key and saves it for `plldb knock --stack-name` (adapter/knockkey); Close removes it.
	// Selective sessions share the stack: any number of developers attach it selectively at once, each adding
	// its entries to the functions, and Close takes out only this session's (the last one out restores).
	Selective bool
	// Mirror (with Selective): this session's knocked invocations are copies; the deployed code still answers
	// the caller (instrument.Session.Mirror).
	Mirror bool
	// Credentials chooses the AWS credentials the handlers run with: CredentialsFunction ("", the default) the
	// function's own execution role's, which the layer sends from the sandbox with each invocation;
	// CredentialsDeveloper the developer's own (AWS.Credentials), and the role's never leave the sandbox.
	Credentials string
	Expiry      time.Duration // session lifetime; default DefaultExpiry
	Owner       string        // default user@host

	devside.Hooks
	Logger *slog.Logger
}

// The choices of Options.Credentials.
const (
	CredentialsFunction  = "function"
	CredentialsDeveloper = "developer"
)

// ValidCredentials says why c is not a choice of Options.Credentials, or returns nil.
func ValidCredentials(c string) error {
	switch c {
	case "", CredentialsFunction, CredentialsDeveloper:
		return nil
	}
	return fmt.Errorf("credentials %q: want %q (the function's execution role, the default) or %q (your own)", c, CredentialsFunction, CredentialsDeveloper)
}

// Function is one attached function.
type Function struct {
	instrument.StackFunction
	Local template.Function
	Exec  *executor.Executor
}

// Session is an attached debug session. Close ends it.
type Session struct {
	ID      string
	Owner   string
	Install install.Resources

	log     *slog.Logger
	store   *store.Store
	inst    *instrument.Instrumenter
	dev     *devside.Side
	fns     []Function
	Results []instrument.Result // what the attach recovered from earlier sessions
	knock   *knockkey.Session   // the knock signing key of a selective session; nil otherwise

	closeOnce sync.Once
	closeRes  []instrument.Result
	closeErr  error
}

type clients struct {
	cfn    *cloudformation.Client
	lambda *lambda.Client
	store  *store.Store
}

func newClients(cfg aws.Config, in install.Resources, log *slog.Logger) clients {
	st := store.New(dynamodb.NewFromConfig(cfg), in.Tables)
	st.Logger = log
	return clients{cfn: cloudformation.NewFromConfig(cfg), lambda: lambda.NewFromConfig(cfg), store: st}
}

func (c clients) instrumenter(in install.Resources, log *slog.Logger) *instrument.Instrumenter {
	return &instrument.Instrumenter{Lambda: c.lambda, Claims: c.store, Layers: in.Layers, Logger: log}
}

// Attach attaches a debug session to a deployed stack's functions. On failure nothing stays changed.
func Attach(ctx context.Context, o Options) (s *Session, err error) {
	if strings.TrimSpace(o.StackName) == "" {
		return nil, errors.New("attach: a stack name is required (--stack-name)")
	}
	if err := ValidCredentials(o.Credentials); err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	if o.Mirror && !o.Selective {
		return nil, errors.New("attach: mirror mode goes with selective mode (--selective)")
	}
	var devCreds aws.CredentialsProvider
	if o.Credentials == CredentialsDeveloper {
		devCreds = o.AWS.Credentials
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.Expiry <= 0 {
		o.Expiry = DefaultExpiry
	}
	if o.Owner == "" {
		o.Owner = Owner()
	}
	var in install.Resources
	if o.Install != nil {
		in = *o.Install
	} else if in, err = install.Load(ctx, o.AWS, o.Name); err != nil {
		return nil, err
	}
	c := newClients(o.AWS, in, log)

	stackFns, err := instrument.ListFunctions(ctx, c.cfn, o.StackName)
	if err != nil {
		return nil, fmt.Errorf("attach: %w", stackError(ctx, o.AWS, o.StackName, err))
	}
	tpl, err := loadTemplate(ctx, c.cfn, o)
	if err != nil {
		return nil, err
	}
	pairs, err := match(stackFns, tpl, o.Functions, log)
	if err != nil {
		return nil, err
	}

	s = &Session{ID: "s-" + randomID(8), Owner: o.Owner, Install: in, store: c.store}
	s.log = log.With("session", s.ID)
	s.inst = c.instrumenter(in, log.With("component", "instrument"))
	arns := make([]string, len(pairs))
	for i, p := range pairs {
		arns[i] = p.remote.ARN
	}
	// A session of ours that crashed (no developer connected) still holds its functions until it expires: end it
	// now so that Instrument recovers its functions before attaching.
	if err := endCrashed(ctx, c.store, o.Owner, arns, log); err != nil {
		return nil, err
	}

	if o.Selective {
		ks, err := knockkey.New(o.StackName)
		if err != nil {
			return nil, fmt.Errorf("attach: selective mode: %w", err)
		}
		// The layer takes a knock's issuer as the session whose link it routes the invocation over, and that
		// link is the session's PLLDB_SESSIONS entry: the knock session's id has to be the attach session's.
		ks.ID = s.ID
		for _, p := range pairs {
			ks.Functions = append(ks.Functions, knockkey.Function{LogicalID: p.remote.LogicalID, Name: p.remote.Name})
		}
		s.knock = ks
	}

	rs := relay.NewSession(s.ID, o.Owner, time.Now().Add(o.Expiry))
	if err := c.store.PutSession(ctx, rs); err != nil {
		return nil, fmt.Errorf("attach: create session: %w", err)
	}
	sess := s // the named result is nil by the time a failed return runs the cleanup
	defer func() {
		if err != nil {
			sess.cleanup()
		}
	}()
	if s.knock != nil {
		// Saved before any function changes, so that a second selective session of this stack on this machine
		// is refused while nothing is instrumented yet.
		if err = s.knock.Save(); err != nil {
			return nil, fmt.Errorf("attach: selective mode: %w", err)
		}
	}

	local := make([]template.Function, len(pairs))
	for i, p := range pairs {
		local[i] = p.local
		// The handler sees the deployed function's name, as in Lambda, and invocations are matched by it: it is
		// the name the function's sandboxes run under and their tickets prove.
		local[i].Name = p.remote.Name
	}
	s.dev, err = devside.Start(ctx, devside.Config{
		Functions: local, TemplateDir: filepath.Dir(tpl.Path), Python: o.Python, Region: o.AWS.Region, Env: o.Env,
		Debug: o.Debug, OpenDebugpy: o.OpenDebugpy, MaxConcurrency: o.MaxConcurrency, Hooks: o.Hooks, Logger: log,
		DeveloperCredentials: devCreds, Session: s.ID,
	})
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	devKey := rs.Keys[wire.RoleDeveloper]
	peer := "developer-" + randomID(4)
	err = s.dev.Connect(ctx, wsclient.Config{
		URL: in.WebSocketURL,
		Ticket: func(context.Context) (string, error) {
			return ticket.Mint(devKey, ticket.Claims{Session: s.ID, Role: wire.RoleDeveloper, Peer: peer, Audience: in.Audience})
		},
	})
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}

	targets := make([]instrument.Target, len(pairs))
	for i, p := range pairs {
		// Each function gets its own key, derived from the session's function key and its name: it connects only as
		// that function (the relay derives the key again from the name its ticket claims).
		targets[i] = instrument.Target{StackFunction: p.remote, Key: ticket.FunctionKey(rs.Keys[wire.RoleFunction], p.remote.Name)}
	}
	is := instrument.Session{ID: s.ID, Owner: o.Owner, Endpoint: in.WebSocketURL, Audience: in.Audience, Strict: o.Strict,
		FunctionCredentials: o.Credentials != CredentialsDeveloper}
	if s.knock != nil {
		is.Selective, is.KnockKey, is.KnockStack, is.Mirror = true, s.knock.Public, o.StackName, o.Mirror
	}
	att, err := s.inst.Instrument(ctx, is, targets)
	if att != nil {
		s.Results = att.Recovered
	}
	if err != nil {
		return nil, err
	}
	for _, p := range pairs {
		sf, _ := s.dev.Lookup(p.local.LogicalID)
		s.fns = append(s.fns, Function{StackFunction: p.remote, Local: p.local, Exec: sf.Exec})
	}
	log.Info("attached", "session", s.ID, "functions", len(s.fns))
	return s, nil
}

// KnockSession is the session's knock signing key; nil unless Options.Selective.
func (s *Session) KnockSession() *knockkey.Session { return s.knock }

// Functions lists the attached functions.
func (s *Session) Functions() []Function { return s.fns }

// Close restores every function the session instrumented, stops the developer side and deletes the session.
// It uses its own context for the restore, so that a cancelled caller (Ctrl-C) still puts everything back.
func (s *Session) Close(ctx context.Context) ([]instrument.Result, error) {
	s.closeOnce.Do(func() {
		// No knock is minted for a session that is ending, whatever the restore does.
		kerr := s.removeKnock()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		res, err := s.inst.Restore(rctx, s.ID)
		s.closeRes = res
		s.closeErr = err
		for _, r := range res {
			switch r.Outcome {
			case instrument.Restored:
			case instrument.Left:
				s.log.Info("left; other selective sessions still share it", "function", r.FunctionName, "message", r.Message)
			case instrument.Merged:
				s.log.Info("restored, keeping someone else's changes", "function", r.FunctionName, "message", r.Message)
			default:
				s.log.Warn("not restored", "function", r.FunctionName, "outcome", r.Outcome, "message", r.Message)
			}
		}
		if err == nil {
			s.closeErr = s.cleanupCtx(rctx)
		}
		s.closeErr = errors.Join(s.closeErr, kerr)
	})
	return s.closeRes, s.closeErr
}

func (s *Session) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.cleanupCtx(ctx); err != nil {
		s.log.Warn("clean up after a failed attach", "err", err)
	}
}

// removeKnock deletes the session file of a selective session.
func (s *Session) removeKnock() error {
	if s.knock == nil {
		return nil
	}
	if err := s.knock.Remove(); err != nil {
		return fmt.Errorf("selective mode: %w", err)
	}
	return nil
}

// cleanupCtx stops the developer side, removes a selective session's knock file and deletes the session.
func (s *Session) cleanupCtx(ctx context.Context) error {
	var errs []error
	if err := s.removeKnock(); err != nil {
		errs = append(errs, err)
	}
	if s.dev != nil {
		if err := s.dev.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.store.DeleteSession(ctx, s.ID); err != nil {
		errs = append(errs, fmt.Errorf("delete session %s: %w", s.ID, err))
	}
	return errors.Join(errs...)
}

// DetachOptions configure Detach.
type DetachOptions struct {
	StackName string
	Name      string // install name
	AWS       aws.Config
	Install   *install.Resources
	Owner     string // default user@host
	// Force also restores functions held by live sessions of other owners. Never use it against a colleague.
	Force  bool
	Logger *slog.Logger
}

// Detach puts back every function of the stack that a session of this owner left instrumented (after a crash),
// and those of sessions that have ended. Functions held by other live sessions are reported as Held.
func Detach(ctx context.Context, o DetachOptions) ([]instrument.Result, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.Owner == "" {
		o.Owner = Owner()
	}
	var in install.Resources
	var err error
	if o.Install != nil {
		in = *o.Install
	} else if in, err = install.Load(ctx, o.AWS, o.Name); err != nil {
		return nil, err
	}
	c := newClients(o.AWS, in, log)
	fns, err := instrument.ListFunctions(ctx, c.cfn, o.StackName)
	if err != nil {
		return nil, fmt.Errorf("detach: %w", stackError(ctx, o.AWS, o.StackName, err))
	}
	arns := make([]string, len(fns))
	for i, f := range fns {
		arns[i] = f.ARN
	}
	if err := endCrashed(ctx, c.store, o.Owner, arns, log); err != nil {
		return nil, err
	}
	// Recover takes over stale claims in the name of a session, which must exist while it runs.
	id := "detach-" + randomID(6)
	if err := c.store.PutSession(ctx, relay.NewSession(id, o.Owner, time.Now().Add(time.Hour))); err != nil {
		return nil, fmt.Errorf("detach: %w", err)
	}
	defer func() {
		if err := c.store.DeleteSession(context.WithoutCancel(ctx), id); err != nil {
			log.Warn("delete the detach session", "err", err)
		}
	}()
	return c.instrumenter(in, log).Recover(ctx, instrument.Recovery{Session: id, Owner: o.Owner, FunctionARNs: arns, Force: o.Force})
}

// endCrashed deletes the sessions of owner that hold any of arns and have no developer connected: they crashed
// (a closed session deletes itself), and deleting them lets Recover and Instrument take their claims over.
func endCrashed(ctx context.Context, st *store.Store, owner string, arns []string, log *slog.Logger) error {
	snaps, err := st.StackSnapshots(ctx, arns)
	if err != nil {
		return fmt.Errorf("read the claims on the stack's functions: %w", err)
	}
	var holders []string
	for _, snap := range snaps {
		if snap.Shared {
			for _, h := range snap.Holders {
				holders = append(holders, h.Session)
			}
			continue
		}
		holders = append(holders, snap.Session)
	}
	checked := map[string]bool{}
	for _, id := range holders {
		if checked[id] {
			continue
		}
		checked[id] = true
		sess, err := st.GetSession(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read session %s: %w", id, err)
		}
		if sess.Owner != owner {
			continue
		}
		conns, err := st.SessionConnections(ctx, sess.ID, wire.RoleDeveloper)
		if err != nil {
			return fmt.Errorf("read the connections of session %s: %w", sess.ID, err)
		}
		if len(conns) > 0 {
			continue
		}
		log.Info("ending a crashed session of ours", "session", sess.ID)
		if err := st.DeleteSession(ctx, sess.ID); err != nil {
			return fmt.Errorf("end crashed session %s: %w", sess.ID, err)
		}
	}
	return nil
}

type pair struct {
	remote instrument.StackFunction
	local  template.Function
}

// templateNames are the files looked for in the folder when no template is given, in the order `sam` does.
var templateNames = []string{"template.yaml", "template.yml", "template.json"}

// stackError makes "stack not found" say where plldb looked, so that a wrong region or account shows.
func stackError(ctx context.Context, cfg aws.Config, stack string, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "ValidationError" && strings.Contains(api.ErrorMessage(), "does not exist") {
		return fmt.Errorf("no stack %q in %s: deploy it there, or choose the region or account it is in (--region, --profile)", stack, awsconfig.Where(ctx, cfg))
	}
	return err
}

func loadTemplate(ctx context.Context, cfn *cloudformation.Client, o Options) (*template.Template, error) {
	lo := template.LoadOptions{Parameters: map[string]string{"AWS::Region": o.AWS.Region, "AWS::StackName": o.StackName}}
	path := o.Template
	if path != "" && o.Dir != "" && !filepath.IsAbs(path) {
		path = filepath.Join(o.Dir, path)
	}
	if path != "" {
		return template.LoadWith(path, lo)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("attach: the folder to look for a template in: %w", err)
	}
	for _, name := range templateNames {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return template.LoadWith(filepath.Join(dir, name), lo)
		}
	}
	out, err := cfn.GetTemplate(ctx, &cloudformation.GetTemplateInput{StackName: aws.String(o.StackName)})
	if err != nil {
		return nil, fmt.Errorf("attach: no %s in %s and no --template, and the deployed template of stack %s could not be read: %w",
			strings.Join(templateNames, ", "), dir, o.StackName, stackError(ctx, o.AWS, o.StackName, err))
	}
	// Code paths of the deployed template resolve against the folder, as a template there would. The path only
	// anchors them: the template is the deployed one, which messages say (deployedTemplate).
	tpl, err := template.ParseWith(filepath.Join(dir, deployedTemplate), []byte(aws.ToString(out.TemplateBody)), lo)
	if err != nil {
		return nil, fmt.Errorf("attach: the deployed template of stack %s (no %s in %s): %w", o.StackName, strings.Join(templateNames, ", "), dir, err)
	}
	return tpl, nil
}

// deployedTemplate is the file name the deployed template is parsed under: it names no file that exists.
const deployedTemplate = "(deployed template)"

// describeTemplate names where the function mapping came from, for messages.
func describeTemplate(tpl *template.Template) string {
	if filepath.Base(tpl.Path) == deployedTemplate {
		return fmt.Sprintf("the stack's deployed template (no %s in %s, and no --template)", strings.Join(templateNames, ", "), filepath.Dir(tpl.Path))
	}
	return tpl.Path
}

func lastSegment(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// match pairs the stack's functions with the template's. A function named in want must exist and be
// supported; without want, functions with no local code are skipped with a log line.
func match(remote []instrument.StackFunction, tpl *template.Template, want []string, log *slog.Logger) ([]pair, error) {
	byKey := map[string]instrument.StackFunction{}
	for _, r := range remote {
		byKey[r.LogicalID] = r
		byKey[r.Name] = r
		if _, dup := byKey[lastSegment(r.LogicalID)]; !dup {
			byKey[lastSegment(r.LogicalID)] = r
		}
	}
	localOf := func(r instrument.StackFunction) (*template.Function, bool) {
		if f, ok := tpl.Function(r.LogicalID); ok {
			return f, true
		}
		return tpl.Function(lastSegment(r.LogicalID))
	}
	var out []pair
	if len(want) == 0 {
		for _, r := range remote {
			f, ok := localOf(r)
			switch {
			case !ok:
				log.Info("not attached: no function with this logical id in the template", "function", r.LogicalID)
			case !f.Supported:
				log.Info("not attached", "function", r.LogicalID, "reason", f.Reason)
			default:
				out = append(out, pair{r, *f})
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("attach: none of the %d function(s) of the stack has local Python code in %s", len(remote), describeTemplate(tpl))
		}
		return out, nil
	}
	for _, w := range want {
		r, ok := byKey[w]
		if !ok {
			return nil, &template.FunctionsError{Err: fmt.Errorf("attach: the stack has no function %q", w)}
		}
		f, ok := localOf(r)
		if !ok {
			return nil, &template.FunctionsError{Err: fmt.Errorf("attach: function %s is not in %s", r.LogicalID, describeTemplate(tpl))}
		}
		if !f.Supported {
			return nil, &template.FunctionsError{Err: fmt.Errorf("attach: function %s: %s", r.LogicalID, f.Reason)}
		}
		out = append(out, pair{r, *f})
	}
	return out, nil
}

// Owner is who attaches, user@host: shown to a second developer the session refuses.
func Owner() string {
	host, _ := os.Hostname()
	user := os.Getenv("USER")
	if user == "" {
		user = "developer"
	}
	return user + "@" + host
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

package dap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/adapter/template"
	"github.com/plldb/plldb/cloud/awsconfig"
	"github.com/plldb/plldb/cloud/instrument"
)

// backend is what a launch starts: the local pipeline ("mode": "local") or a session attached to a deployed
// stack ("mode": "aws"). Either way the developer side runs a pool of sandboxes per function, each with a debugpy
// the session attaches to.
type backend interface {
	functions() []backendFunction
	debugToken(logicalID string) string // the access token of the function's debugpys; a secret
	banner() string                     // the console line announcing what runs
	close(ctx context.Context) error
}

// backendFunction is one sandbox of a function, as the session attaches to it.
type backendFunction struct {
	LogicalID  string
	Sandbox    int // executor.SandboxInfo.ID
	DebugPort  int
	DebugToken string // a secret: never log it
}

// sandboxesOf lists ex's sandboxes as the session attaches to them.
func sandboxesOf(logicalID string, ex *executor.Executor) []backendFunction {
	var out []backendFunction
	for _, sb := range ex.Sandboxes() {
		out = append(out, backendFunction{LogicalID: logicalID, Sandbox: sb.ID, DebugPort: sb.DebugPort, DebugToken: ex.DebugToken()})
	}
	return out
}

type localBackend struct{ p *local.Pipeline }

func (b localBackend) functions() []backendFunction {
	var out []backendFunction
	for _, fn := range b.p.Functions() {
		ex, _ := b.p.Executor(fn.LogicalID)
		out = append(out, sandboxesOf(fn.LogicalID, ex)...)
	}
	return out
}

func (b localBackend) debugToken(logicalID string) string {
	if ex, ok := b.p.Executor(logicalID); ok {
		return ex.DebugToken()
	}
	return ""
}

func (b localBackend) banner() string {
	var names []string
	for _, fn := range b.p.Functions() {
		names = append(names, fn.LogicalID)
	}
	selective := ""
	switch {
	case b.p.Mirrored():
		selective = " (selective mirror: invocations with a knock are answered without the debugger and a copy of each stops here; get one with plldb knock --local, or plldb invoke FN --knock)"
	case b.p.KnockSession() != nil:
		selective = " (selective: only invocations with a knock stop; get one with plldb knock --local, or plldb invoke FN --knock)"
	}
	// The endpoint stays last: clients and tests read it from the end of the line.
	return fmt.Sprintf("plldb: debugging %s%s; Invoke API at %s\n", strings.Join(names, ", "), selective, b.p.Endpoint())
}

func (b localBackend) close(ctx context.Context) error { return b.p.Close(ctx) }

type awsBackend struct {
	s      *awsmode.Session
	stack  string
	mirror bool
}

func (b awsBackend) functions() []backendFunction {
	var out []backendFunction
	for _, fn := range b.s.Functions() {
		out = append(out, sandboxesOf(fn.Local.LogicalID, fn.Exec)...)
	}
	return out
}

func (b awsBackend) debugToken(logicalID string) string {
	for _, fn := range b.s.Functions() {
		if fn.Local.LogicalID == logicalID {
			return fn.Exec.DebugToken()
		}
	}
	return ""
}

func (b awsBackend) banner() string {
	var names []string
	for _, fn := range b.s.Functions() {
		names = append(names, fn.LogicalID+" ("+fn.Name+")")
	}
	// A selective session shares the stack and gets only its own knocks: saying "their invocations now run here"
	// would send the developer looking for traffic that never comes, and "restores them" is the last one's job.
	switch {
	case b.mirror:
		return fmt.Sprintf("plldb: session %s attached to stack %s: %s (selective mirror: the deployed code answers every caller, and a copy of each invocation carrying this session's knock stops here; get a knock with plldb knock --stack-name %s); disconnecting takes this session out of them\n",
			b.s.ID, b.stack, strings.Join(names, ", "), b.stack)
	case b.s.KnockSession() != nil:
		return fmt.Sprintf("plldb: session %s attached to stack %s: %s (selective: only invocations carrying this session's knock run here, every other one runs the deployed code; get a knock with plldb knock --stack-name %s); disconnecting takes this session out of them\n",
			b.s.ID, b.stack, strings.Join(names, ", "), b.stack)
	}
	return fmt.Sprintf("plldb: session %s attached to stack %s: %s; their invocations now run here, and disconnecting restores them\n",
		b.s.ID, b.stack, strings.Join(names, ", "))
}

// close restores every function. A function someone else changed meanwhile loses only plldb's changes
// (merged); one whose changes cannot be told apart from plldb's is reported and left for plldb detach. A selective
// session leaving a function other selective sessions still share takes out only its own entries (left): that is
// the shared stack working as meant, not a failure to report.
func (b awsBackend) close(ctx context.Context) error {
	results, err := b.s.Close(ctx)
	if err != nil {
		return err
	}
	var problems []string
	for _, r := range results {
		switch r.Outcome {
		case instrument.Restored, instrument.Merged, instrument.Left:
		default:
			problems = append(problems, fmt.Sprintf("%s: %s", r.FunctionName, r.Message))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("not restored: %s", strings.Join(problems, "; "))
	}
	return nil
}

func (s *session) startBackend(cfg *LaunchConfig) (backend, error) {
	hooks := devside.Hooks{Observer: observer{s}, OnLog: s.onLog, OnSandboxStart: s.onSandboxStart, OnSandboxExit: s.onSandboxExit, BeforeRun: s.holdUntilConfigured, OnMirror: s.onMirror}
	return startBackendWith(s.ctx, cfg, hooks, s.log, `"functions"`)
}

// startBackendWith starts what cfg describes, for as long as ctx lasts, with hooks. A function refused by name
// is reported under functionsSetting, where the user gave cfg.Functions: the pipeline cannot know, the user
// needs to.
func startBackendWith(ctx context.Context, cfg *LaunchConfig, hooks devside.Hooks, log *slog.Logger, functionsSetting string) (backend, error) {
	b, err := startBackendOf(ctx, cfg, hooks, log)
	if fe := (*template.FunctionsError)(nil); errors.As(err, &fe) {
		return nil, fmt.Errorf("%s: %w", functionsSetting, err)
	}
	return b, err
}

func startBackendOf(ctx context.Context, cfg *LaunchConfig, hooks devside.Hooks, log *slog.Logger) (backend, error) {
	if cfg.Mode != "aws" {
		// Handlers get the developer's credentials, as a deployed handler gets its role's.
		creds, err := awsconfig.DeveloperCredentials(ctx, cfg.Profile)
		if err != nil {
			return nil, err
		}
		p, err := local.Start(ctx, local.Options{
			Credentials: creds,
			Template:    cfg.Template,
			Functions:   cfg.Functions,
			Python:      cfg.Python,
			Host:        cfg.InvokeHost,
			Port:        cfg.InvokePort,
			Debug:       !cfg.NoDebug,
			Selective:   cfg.Selective,
			Mirror:      cfg.Mirror,
			Env:         cfg.Env,
			Hooks:       hooks,
			Logger:      log,

			MaxConcurrency:     cfg.MaxConcurrency,
			AccountConcurrency: cfg.AccountConcurrency,
		})
		if err != nil {
			return nil, err
		}
		return localBackend{p}, nil
	}
	awsCfg, err := awsconfig.Load(ctx, awsconfig.Options{Profile: cfg.Profile, Region: cfg.Region, EndpointURL: cfg.EndpointURL})
	if err != nil {
		return nil, err
	}
	sess, err := awsmode.Attach(ctx, awsmode.Options{
		StackName:   cfg.StackName,
		Functions:   cfg.Functions,
		Template:    cfg.Template,
		Dir:         cfg.Cwd,
		Python:      cfg.Python,
		Env:         cfg.Env,
		Name:        cfg.InstallName,
		AWS:         awsCfg,
		Debug:       !cfg.NoDebug,
		Strict:      cfg.Strict,
		Selective:   cfg.Selective,
		Mirror:      cfg.Mirror,
		Credentials: cfg.Credentials,
		// In AWS mode the cloud decides how many run at once; this bounds the sandboxes here.
		MaxConcurrency: cfg.MaxConcurrency,
		Hooks:          hooks,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	return awsBackend{s: sess, stack: cfg.StackName, mirror: cfg.Mirror}, nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/adapter/dap"
	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/cloud/install"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/stack"
	"github.com/plldb/plldb/cloud/store"
)

func runAttach(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plldb attach", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		a         awsFlags
		logs      logFlags
		functions listFlag
		stackName = fs.String("stack-name", "", "the deployed CloudFormation stack whose functions to attach (required)")
		tpl       = fs.String("template", "", "local template mapping functions to code (default: template.yaml, template.yml or template.json here, else the deployed one)")
		listen    = fs.String("listen", "", "serve DAP on HOST:PORT (launch with \"mode\": \"aws\" is implied; loopback only unless --allow-remote) instead of printing debugpy ports")
		remote    = fs.Bool("allow-remote", false, allowRemoteUsage)
		python    = fs.String("python", "", "Python interpreter (default: the project's virtualenv, then python3)")
		strict    = fs.Bool("strict", false, "an invocation nobody here takes gets Plldb.NoDeveloper instead of running the deployed code")
		selective = fs.Bool("selective", false, "only invocations carrying a knock of this session (plldb knock --stack-name X) run here; every other one runs the deployed code. Any number of developers may attach one stack selectively at once")
		mirror    = fs.Bool("mirror", false, "with --selective: the deployed code still answers every caller, and a copy of each knocked invocation runs here, where breakpoints stop without holding anybody")
		creds     = fs.String("credentials", "function", "AWS credentials the handlers run with: \"function\" (the function's execution role's, which the layer sends from the sandbox with each invocation over the relay) or \"developer\" (yours, from --profile or the SDK's chain; the role's never leave the sandbox)")
		maxConc   = fs.Int("max-concurrency", 10, "sandboxes per function here, one per invocation running at once (a function's ReservedConcurrentExecutions instead, when its template sets one); more invocations wait for one to free up")
	)
	fs.Var(&functions, "functions", "comma-separated logical ids or names to attach (default: every function with local code)")
	a.register(fs, true)
	logs.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *stackName == "" {
		return errors.New("plldb attach: --stack-name is required")
	}
	if err := awsmode.ValidCredentials(*creds); err != nil {
		return fmt.Errorf("plldb attach: --%w", err)
	}
	if *maxConc < 1 {
		return fmt.Errorf("plldb attach: --max-concurrency %d: must be at least 1", *maxConc)
	}
	if *mirror && !*selective {
		return errors.New("plldb attach: --mirror goes with --selective (only knocked invocations are mirrored here)")
	}
	log, closeLog, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	if *listen != "" {
		return serveAWSDAP(ctx, *listen, *remote, awsLaunchDefaults{stackName: *stackName, functions: functions, template: *tpl, python: *python, strict: *strict, selective: *selective, mirror: *mirror, maxConcurrency: *maxConc, credentials: *creds, flags: a}, stdout, stderr, log)
	}
	if *remote {
		return errors.New("plldb attach: --allow-remote goes with --listen")
	}
	cfg, err := a.config(ctx)
	if err != nil {
		return err
	}
	// Sandboxes started later (for concurrent invocations) print their ports too: each is a debuggee.
	printer := &invocationPrinter{w: stdout}
	s, err := awsmode.Attach(ctx, awsmode.Options{
		StackName: *stackName, Functions: functions, Template: *tpl, Python: *python, Name: a.name,
		// The ports are printed for an editor that attaches to debugpy directly and cannot authorize.
		AWS: cfg, Debug: true, OpenDebugpy: true, Strict: *strict, Selective: *selective, Mirror: *mirror, MaxConcurrency: *maxConc, Credentials: *creds, Logger: log,
		Hooks: devside.Hooks{OnSandboxStart: printer.sandboxStarted},
	})
	if err != nil {
		return err
	}
	printResults(stdout, "recovered from an earlier session", s.Results)
	if *selective {
		fmt.Fprintf(stdout, "plldb: session %s attached selectively to %d function(s) of stack %s: invocations carrying its knock run here, every other one runs the deployed code.\n", s.ID, len(s.Functions()), *stackName)
		if *mirror {
			fmt.Fprintln(stdout, "Mirror mode: the deployed code answers every caller; knocked invocations also run here as copies.")
		}
		fmt.Fprintln(stdout, "Other developers may attach this stack selectively too; detaching takes out only this session.")
		fmt.Fprintf(stdout, "Get a knock with: plldb knock --stack-name %s   (add --curl URL, --aws-cli or --boto3 for a ready-to-run line)\n", *stackName)
	} else {
		fmt.Fprintf(stdout, "plldb: session %s attached to %d function(s) of stack %s; their invocations now run here.\n", s.ID, len(s.Functions()), *stackName)
	}
	for _, f := range s.Functions() {
		fmt.Fprintf(stdout, "  %-28s %-40s debugpy at 127.0.0.1:%d\n", f.LogicalID, f.Name, f.Exec.DebugPort())
	}
	fmt.Fprintln(stdout, `Attach your debugger to a port above (VS Code: "type": "debugpy", "request": "attach", "connect": {"host": "127.0.0.1", "port": PORT}).`)
	fmt.Fprintln(stdout, "These ports take any local client: on a shared machine use --listen (plldb's DAP server), whose debugpys only plldb can reach.")
	if *selective {
		fmt.Fprintln(stdout, "Press Ctrl-C to detach: this session's entries come out, and the last session out puts every function back as it was.")
	} else {
		fmt.Fprintln(stdout, "Press Ctrl-C to detach: every function is put back as it was.")
	}
	printer.serving.Store(true)
	<-ctx.Done()
	printer.printf("plldb: detaching…\n")
	results, err := s.Close(context.WithoutCancel(ctx))
	printer.mu.Lock()
	defer printer.mu.Unlock()
	printResults(stdout, "detach", results)
	return err
}

func printResults(out io.Writer, what string, results []instrument.Result) {
	for _, r := range results {
		fmt.Fprintf(out, "  %s: %s (%s): %s\n", what, r.FunctionName, r.Outcome, r.Message)
	}
}

func runDetach(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plldb detach", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		a         awsFlags
		logs      logFlags
		stackName = fs.String("stack-name", "", "the stack whose functions to restore (required)")
		force     = fs.Bool("force", false, "also restore functions held by live sessions of other developers")
	)
	a.register(fs, true)
	logs.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *stackName == "" {
		return errors.New("plldb detach: --stack-name is required")
	}
	log, closeLog, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	cfg, err := a.config(ctx)
	if err != nil {
		return err
	}
	results, err := awsmode.Detach(ctx, awsmode.DetachOptions{StackName: *stackName, Name: a.name, AWS: cfg, Force: *force, Logger: log})
	if len(results) == 0 && err == nil {
		fmt.Fprintf(stdout, "plldb: no function of stack %s is instrumented\n", *stackName)
	}
	printResults(stdout, "detach", results)
	if err != nil {
		return err
	}
	for _, r := range results {
		switch r.Outcome {
		case instrument.Restored, instrument.Merged, instrument.Left:
		default:
			return fmt.Errorf("plldb detach: %s was not restored (%s)", r.FunctionName, r.Outcome)
		}
	}
	return nil
}

// statusHook prints an install's live sessions and instrumented functions.
func statusHook(ctx context.Context, cfg aws.Config, inst stack.Info, out io.Writer) error {
	in, err := install.FromOutputs(inst.Name, inst.Outputs)
	var unusable *install.OutputsError
	switch {
	case errors.As(err, &unusable) && !unusable.Tables:
		// Say so, and still list what its tables hold.
		fmt.Fprintf(out, "  %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	case err != nil:
		return err
	}
	st := store.New(dynamodb.NewFromConfig(cfg), in.Tables)
	sessions, err := st.Sessions(ctx)
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	if len(sessions) == 0 {
		fmt.Fprintln(out, "  no live sessions")
	}
	for _, s := range sessions {
		exp := "no expiry"
		if !s.ExpiresAt.IsZero() {
			exp = "expires " + s.ExpiresAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		seen := ""
		if !s.Seen.IsZero() {
			seen = ", developer last heard from " + s.Seen.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(out, "  session %s of %s, %s%s\n", s.ID, s.Owner, exp, seen)
	}
	snaps, err := st.Snapshots(ctx)
	if err != nil {
		return fmt.Errorf("list instrumented functions: %w", err)
	}
	for _, s := range snaps {
		if s.Shared {
			fmt.Fprintf(out, "  instrumented: %s (shared by selective sessions %s)\n", s.FunctionName, store.HolderNames(s.Holders))
			continue
		}
		if s.Releasing {
			// The session is detaching (a plain detach, or the last selective session out): attaches that
			// meet the claim wait for it rather than being refused.
			fmt.Fprintf(out, "  instrumented: %s (session %s; releasing: session %s is putting it back)\n", s.FunctionName, s.Session, s.Session)
			continue
		}
		fmt.Fprintf(out, "  instrumented: %s (session %s)\n", s.FunctionName, s.Session)
	}
	return nil
}

// awsLaunchDefaults are the attach flags that `plldb attach --listen` hands to every DAP launch.
type awsLaunchDefaults struct {
	stackName, template, python string
	credentials                 string
	functions                   []string
	strict, selective, mirror   bool
	maxConcurrency              int
	flags                       awsFlags
}

func (d awsLaunchDefaults) launch() map[string]any {
	m := map[string]any{"mode": "aws", "stackName": d.stackName, "installName": d.flags.name, "strict": d.strict}
	if d.selective {
		m["selective"] = true
	}
	if d.mirror {
		m["mirror"] = true
	}
	if d.maxConcurrency > 0 {
		m["maxConcurrency"] = d.maxConcurrency
	}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("template", d.template)
	set("python", d.python)
	set("region", d.flags.region)
	set("profile", d.flags.profile)
	set("endpointUrl", d.flags.endpoint)
	set("credentials", d.credentials)
	if len(d.functions) > 0 {
		m["functions"] = d.functions
	}
	return m
}

// serveAWSDAP serves DAP on addr. A launch attaches to the stack (unless it says otherwise) for that session
// alone, and disconnecting restores the functions. An attach request attaches this command to the stack (the
// first time) and binds the IDE to it: disconnecting detaches only the IDE, later attaches find the functions
// still instrumented, and Ctrl-C restores them.
func serveAWSDAP(ctx context.Context, addr string, allowRemote bool, d awsLaunchDefaults, stdout, stderr io.Writer, log *slog.Logger) error {
	host := dap.NewHost(dap.HostOptions{Logger: log, LaunchDefaults: d.launch(), OnStart: func(banner string) {
		fmt.Fprint(stdout, banner)
		fmt.Fprintln(stdout, "plldb: IDEs that attach here detach without restoring; Ctrl-C restores the functions.")
		if d.selective {
			fmt.Fprintf(stdout, "plldb: launches are selective: get a knock with plldb knock --stack-name %s\n", d.stackName)
		}
	}})
	l, err := listenDAP(addr, allowRemote, dap.Options{Logger: log, LaunchDefaults: d.launch(), Host: host}, stderr)
	if err != nil {
		return fmt.Errorf("plldb attach: %w", err)
	}
	if _, err := fmt.Fprintf(stdout, "DAP server listening at: %s\n", l.Addr()); err != nil {
		_ = l.Close()
		return fmt.Errorf("announce listening address: %w", err)
	}
	serveErr := l.Serve(ctx)
	if host.Running() {
		fmt.Fprintln(stdout, "plldb: detaching…")
	}
	return errors.Join(serveErr, host.Close(context.WithoutCancel(ctx)))
}

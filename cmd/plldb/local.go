package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plldb/plldb/adapter/dap"
	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/adapter/template"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/cloud/awsconfig"
)

func runLocal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plldb local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts      local.Options
		params    = kvFlag{}
		functions listFlag
		logs      logFlags
	)
	fs.StringVar(&opts.Template, "template", ".", "SAM or CloudFormation template (YAML or JSON), or a folder with template.yaml, template.yml or template.json")
	fs.IntVar(&opts.Port, "port", 3001, "port of the Lambda Invoke endpoint (0: any free port)")
	fs.StringVar(&opts.Host, "host", "127.0.0.1", "host of the Lambda Invoke endpoint (loopback only unless --allow-remote)")
	registerAllowRemote(fs, &opts.AllowRemote)
	fs.StringVar(&opts.Python, "python", "", "Python interpreter (default: .venv or venv next to the template or code, else python3)")
	fs.StringVar(&opts.Region, "region", "us-east-1", "region the functions believe they run in")
	fs.Var(params, "parameter", "template parameter override KEY=VALUE (repeatable)")
	fs.Var(&functions, "functions", "logical ids of the functions to serve (comma-separated; default all)")
	fs.IntVar(&opts.MaxConcurrency, "max-concurrency", local.DefaultMaxConcurrency, "concurrent invocations per function without ReservedConcurrentExecutions; past it a synchronous invocation gets 429 and an Event invocation waits")
	fs.IntVar(&opts.AccountConcurrency, "account-concurrency", local.DefaultAccountConcurrency, "concurrent invocations across all functions (Lambda's account quota), shared by those without a reservation")
	fs.BoolVar(&opts.Debug, "debug", false, "start executors under debugpy and print their ports (with --listen: behind plldb's DAP server instead)")
	fs.BoolVar(&opts.Selective, "selective", false, "only invocations carrying a knock (plldb knock --local) run under the debugger; every other one runs at full speed without debugpy (implies --debug)")
	fs.BoolVar(&opts.Mirror, "mirror", false, "with --selective: a knocked invocation is answered by the code without debugpy, as if nobody were debugging, and a copy of it runs under the debugger, where breakpoints hold no caller; both results are printed side by side")
	profile := fs.String("profile", "", "AWS profile whose credentials the handlers get as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (default: the SDK's chain: environment, AWS_PROFILE, the default profile, SSO …)")
	listen := fs.String("listen", "", "serve DAP on HOST:PORT for IDEs to attach to (\"request\": \"attach\"), one at a time, for as long as this runs; implies --debug (loopback only unless --allow-remote)")
	logs.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("plldb local: unexpected argument %q", fs.Arg(0))
	}
	if opts.Mirror && !opts.Selective {
		return errors.New("plldb local: --mirror needs --selective: only invocations carrying a knock are mirrored")
	}
	if opts.MaxConcurrency < 1 || opts.AccountConcurrency < 1 {
		return errors.New("plldb local: --max-concurrency and --account-concurrency must be at least 1 (a function reserved at 0 is throttled through its template instead)")
	}
	log, closeLog, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	opts.Parameters, opts.Functions, opts.Logger = params, functions, log
	if *listen != "" || opts.Selective {
		// Selective mode exists to stop at breakpoints on the knocked invocations: their executor runs debugpy.
		opts.Debug = true
	}
	// The ports are printed for an editor that attaches to debugpy directly and cannot authorize; behind the DAP
	// server only plldb, which holds their tokens, can reach them.
	opts.OpenDebugpy = opts.Debug && *listen == ""
	printer := &invocationPrinter{w: stdout}
	var host *dap.Host
	if *listen != "" {
		// The pipeline belongs to this command; IDEs attach to it and detach again (dap.Host).
		host = dap.NewHost(dap.HostOptions{Logger: log, Observer: printer, OnLog: printer.logLine, OnMirror: printer.mirror})
		opts.Hooks = host.Hooks()
	} else {
		opts.Observer, opts.OnLog, opts.OnMirror = printer, printer.logLine, printer.mirror
		if opts.OpenDebugpy {
			opts.OnSandboxStart = printer.sandboxStarted
		}
	}

	// Selective mode's unknocked invocations bypass the developer side: printed all the same.
	opts.PlainObserver = printer
	if opts.AllowRemote {
		opts.Token = newToken()
	}
	// Handlers run with the developer's credentials, as deployed ones run with their role's. They resolve at
	// start; none is not an error (the pipeline says so once), but a --profile that does not exist is.
	if opts.Credentials, err = awsconfig.DeveloperCredentials(ctx, *profile); err != nil {
		return fmt.Errorf("plldb local: %w", err)
	}
	p, err := local.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("plldb local: %w", err)
	}
	if opts.AllowRemote {
		warnRemote(stderr, "Lambda Invoke endpoint", p.Endpoint(), opts.Token,
			"every Invoke request must carry it: the AWS CLI and SDKs with AWS_ACCESS_KEY_ID=<token> (any secret key), other clients with Authorization: Bearer <token>")
	}
	closeCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 30*time.Second)
	}
	printServing(stdout, p, opts.OpenDebugpy, opts.AllowRemote)
	printer.serving.Store(true)
	if host == nil {
		<-ctx.Done()
		fmt.Fprintln(stdout, "shutting down: answering in-flight invocations and running queued events…")
		cctx, cancel := closeCtx()
		defer cancel()
		return reportUnfinished(stdout, p.Close(cctx))
	}
	host.SetPipeline(p)
	l, err := listenDAP(*listen, opts.AllowRemote, dap.Options{Logger: log, Host: host}, stderr)
	if err != nil {
		cctx, cancel := closeCtx()
		defer cancel()
		_ = host.Close(cctx)
		return fmt.Errorf("plldb local: %w", err)
	}
	fmt.Fprintln(stdout, `Attach an IDE to the DAP server ("request": "attach"); disconnecting detaches it and the functions stay served.`)
	fmt.Fprintf(stdout, "DAP server listening at: %s\n", l.Addr())
	serveErr := l.Serve(ctx) // until Ctrl-C; an attached IDE is detached first
	fmt.Fprintln(stdout, "shutting down: answering in-flight invocations and running queued events…")
	cctx, cancel := closeCtx()
	defer cancel()
	return errors.Join(serveErr, reportUnfinished(stdout, host.Close(cctx)))
}

// reportUnfinished prints, with the shutdown messages, the Event invocations that were accepted and never ran:
// their callers got 202, so nothing else tells them. The error is still returned (plldb exits 1).
func reportUnfinished(w io.Writer, err error) error {
	var left *local.UnfinishedEventsError
	if errors.As(err, &left) {
		fmt.Fprintf(w, "%d event invocation(s) were accepted but not run before shutdown:\n", len(left.RequestIDs))
		for _, id := range left.RequestIDs {
			fmt.Fprintf(w, "  %s\n", id)
		}
	}
	return err
}

func printServing(w io.Writer, p *local.Pipeline, debug, remote bool) {
	fmt.Fprintf(w, "plldb local: serving %s\n", p.Template().Path)
	// A function answers to its deployed name as well as its logical id, and callers use the deployed one.
	label := func(fn template.Function) string {
		if fn.Name != fn.LogicalID {
			return fn.LogicalID + " (" + fn.Name + ")"
		}
		return fn.LogicalID
	}
	width := 24
	for _, fn := range p.Template().Functions {
		width = max(width, len(label(fn)))
	}
	for _, fn := range p.Functions() {
		line := fmt.Sprintf("  %-*s %s  %s", width, label(fn), fn.Runtime, fn.Handler)
		if len(fn.Aliases) > 0 {
			line += "  aliases: " + strings.Join(fn.Aliases, ", ")
		}
		if debug {
			if ex, ok := p.Executor(fn.LogicalID); ok {
				line += fmt.Sprintf("  debugpy 127.0.0.1:%d", ex.DebugPort())
			}
		}
		fmt.Fprintln(w, line)
	}
	if debug {
		fmt.Fprintln(w, "The debugpy ports take any local client: on a shared machine debug through plldb dap, whose debugpys only plldb can reach.")
	}
	served := map[string]bool{}
	for _, fn := range p.Functions() {
		served[fn.LogicalID] = true
	}
	for _, fn := range p.Template().Functions {
		switch {
		case !fn.Supported:
			fmt.Fprintf(w, "  %-*s not served: %s\n", width, label(fn), fn.Reason)
		case !served[fn.LogicalID]:
			fmt.Fprintf(w, "  %-*s not served: not in --functions\n", width, label(fn))
		}
	}
	fmt.Fprintf(w, "Lambda Invoke endpoint: %s\n", p.Endpoint())
	if fns := p.Functions(); len(fns) > 0 {
		env := ""
		if remote {
			// The AWS CLI refuses an access key id from the environment without a secret key beside it
			// (partial credentials), so the line carries one: plldb local checks only the token.
			env = "AWS_ACCESS_KEY_ID=<token from stderr> AWS_SECRET_ACCESS_KEY=unused "
		}
		// AWS CLI v2 reads --payload as base64 unless told otherwise; v1 has no --cli-binary-format and sends it as is.
		fmt.Fprintf(w, "  %saws lambda invoke --endpoint-url %s --function-name %s --payload '{}' --cli-binary-format raw-in-base64-out out.json  # AWS CLI v2\n",
			env, p.Endpoint(), fns[0].LogicalID)
		fmt.Fprintf(w, "  %saws lambda invoke --endpoint-url %s --function-name %s --payload '{}' out.json  # AWS CLI v1\n",
			env, p.Endpoint(), fns[0].LogicalID)
	}
	if p.Mirrored() {
		fmt.Fprintln(w, "Selective mirror mode: invocations carrying a knock are answered without the debugger, and a copy of each runs under it; both results are printed side by side.")
	} else if p.KnockSession() != nil {
		fmt.Fprintln(w, "Selective mode: only invocations carrying a knock run under the debugger; the rest run at full speed without it.")
	}
	if p.KnockSession() != nil {
		header := "plldb knock --local"
		if fns := p.Functions(); len(fns) == 0 {
			fmt.Fprintf(w, "  %s  # prints the X-Plldb-Knock header for HTTP events\n", header)
		} else {
			// Without --function the line says FUNCTION for the user to replace: not ready to run.
			cli := "plldb knock --local --function " + fns[0].LogicalID + " --aws-cli"
			fmt.Fprintf(w, "  %-*s  # prints the X-Plldb-Knock header for HTTP events\n", len(cli), header)
			fmt.Fprintf(w, "  %s  # a ready-to-run aws lambda invoke with the knock in its client context\n", cli)
			fmt.Fprintf(w, "  plldb invoke %s --knock --endpoint-url %s\n", fns[0].LogicalID, p.Endpoint())
		}
	}
	fmt.Fprintln(w, "Ctrl-C stops.")
}

// invocationPrinter logs every invocation and the lines its handler prints.
type invocationPrinter struct {
	mu sync.Mutex
	w  io.Writer
	// serving is set once the banner, which lists the first sandboxes' debugpy ports, has been printed.
	serving atomic.Bool
}

// sandboxStarted prints the debugpy port of each sandbox started after the banner (one more for concurrent
// invocations, or a replacement), for an editor attached to debugpy directly: each sandbox is a debuggee of its
// own.
func (p *invocationPrinter) sandboxStarted(_ context.Context, sb executor.SandboxInfo) {
	if p.serving.Load() && sb.DebugPort != 0 {
		p.printf("      %s sandbox %d started: debugpy 127.0.0.1:%d\n", sb.Function, sb.ID, sb.DebugPort)
	}
}

func (p *invocationPrinter) Started(inv *wire.Invoke) {
	p.printf("START %s %s\n", inv.Function.LogicalID, inv.RequestID)
}

func (p *invocationPrinter) Finished(inv *wire.Invoke, out executor.Outcome, err error) {
	status := "ok"
	switch {
	case err != nil:
		status = "failed: " + err.Error()
	case out.Err != nil:
		status = "error " + out.Err.ErrorType + ": " + out.Err.ErrorMessage
	}
	p.printf("END   %s %s %.1f ms %s\n", inv.Function.LogicalID, inv.RequestID, float64(out.Duration.Microseconds())/1000, status)
}

// mirror prints a mirrored invocation's two results, the line the Debug Console shows.
func (p *invocationPrinter) mirror(r devside.MirrorReport) {
	p.printf("%s", devside.FormatMirror(r))
}

func (p *invocationPrinter) logLine(l executor.LogLine) {
	// awslambdaric joins the lines of an error report with \r, so that Lambda's line-based capture keeps it as
	// one record (CloudWatch shows the lines). A terminal would write each line over the last: show them.
	p.printf("      %s %s\n", l.RequestID, strings.ReplaceAll(trimNewline(l.Text), "\r", "\n"))
}

func (p *invocationPrinter) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

func trimNewline(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

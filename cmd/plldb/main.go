// Command plldb debugs AWS Lambda functions written in Python from the developer's own editor: it relays real
// invocations to the local source tree and runs them under debugpy. This package only wires subcommands to the
// packages that do the work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is every subcommand of plldb.
var commands = map[string]command{
	"local":     {"run functions of a SAM/CloudFormation template locally behind a Lambda Invoke endpoint", runLocal},
	"dap":       {"debug adapter (DAP on stdin/stdout, or --listen HOST:PORT) for VS Code, nvim-dap, JetBrains", runDAP},
	"attach":    {"attach to a deployed stack's functions: their invocations run here, under debugpy", runAttach},
	"detach":    {"restore the functions of a stack that a crashed plldb attach left instrumented", runDetach},
	"install":   {"create or update the helper stack (relay, tables, layers) in an AWS account", runInstall},
	"uninstall": {"delete the helper stack and its assets bucket", runUninstall},
	"status":    {"list the helper stack installs of a region", runStatus},
	"invoke":    {"send one invocation to plldb local or a deployed function and print its result and log tail", runInvoke},
	"knock":     {"print a knock (header, curl, aws cli or boto3 line) that sends an invocation to the running selective session", runKnock},
	"version":   {"print the version", runVersion},
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintln(stdout, "plldb", version)
	return err
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if msg := errorLine(err); msg != "" {
			fmt.Fprintln(os.Stderr, msg)
		}
		os.Exit(exitStatus(err))
	}
}

// errorLine is what main prints for err: "plldb: " and the message, unless the message already names the
// command ("plldb knock: …"), which would read "plldb: plldb knock: …"; nothing for --help, a bad flag (the flag
// set has printed it with the usage) or a command that has already said what went wrong.
func errorLine(err error) string {
	msg := err.Error()
	var fe *flagError
	switch {
	case errors.Is(err, flag.ErrHelp) || errors.As(err, &fe) || msg == "":
		return ""
	case strings.HasPrefix(msg, "plldb "):
		return msg
	}
	return "plldb: " + msg
}

// exitError is an error with an exit status other than 1; with a nil err the command has already said what
// went wrong, and main prints nothing more.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// flagError is a command line a command's flag set refused; the flag set has already printed why, and the
// command's flags.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }

func (e *flagError) Unwrap() error { return e.err }

// parseFlags parses args with fs (whose output is the command's stderr). Its errors are flag.ErrHelp for -h and
// --help, and a flagError for a command line it refused.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &flagError{err}
}

// exitStatus is the exit status for a command's error: 0 for none and for --help (as `plldb --help`), the
// exitError's code, else 1.
func exitStatus(err error) int {
	var ee *exitError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		return 1
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	cmd, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: plldb <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'plldb <command> -h' for the flags of a command.")
}

// logFlags are the logging flags every long-running command takes.
type logFlags struct {
	level string
	file  string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.file, "log-file", "", "write logs to this file instead of stderr")
}

// logger builds the slog logger; the returned closer closes the log file, if any.
func (l *logFlags) logger(stderr io.Writer) (*slog.Logger, func(), error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(l.level))); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	w, closer := stderr, func() {}
	if l.file != "" {
		f, err := os.OpenFile(l.file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		w, closer = f, func() { _ = f.Close() }
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})), closer, nil
}

// kvFlag collects repeated KEY=VALUE flags.
type kvFlag map[string]string

func (k kvFlag) String() string { return "" }

func (k kvFlag) Set(s string) error {
	key, val, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q: want KEY=VALUE", s)
	}
	k[key] = val
	return nil
}

// listFlag collects comma-separated or repeated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// Command plldb-demo is a developer's first look at plldb (`make demo`). It runs the built plldb binary on the
// hello sample app the way a user would: first `plldb local`, invoking the sample functions over the Lambda
// Invoke API, then `plldb dap --listen`, driven by a scripted DAP client that sets a breakpoint, invokes the
// function, and prints the thread, stack, locals and an evaluation where it stopped before letting the caller
// have its answer.
//
// It is a development tool, not part of plldb: it lives beside the sample apps and is not shipped.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/plldb/plldb/testfixtures/apps"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "plldb-demo:", err)
		}
		os.Exit(1)
	}
}

// config is what the demo runs: which plldb, on which app, with which interpreter.
type config struct {
	plldb, template, python, logLevel string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plldb-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.plldb, "plldb", "", "plldb binary to run (default: the plldb next to this program)")
	fs.StringVar(&c.template, "template", apps.HelloTemplate(), "template of the sample app")
	fs.StringVar(&c.python, "python", "", "Python interpreter with debugpy (default: plldb's choice, the .venv next to the template or python3)")
	fs.StringVar(&c.logLevel, "log-level", "warn", "plldb's log level: debug, info, warn, error (logs go to stderr)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.plldb == "" {
		var err error
		if c.plldb, err = besideMe("plldb"); err != nil {
			return err
		}
	}
	var err error
	if c.template, err = filepath.Abs(c.template); err != nil {
		return err
	}
	out := &output{w: stdout}
	if err := invokeSamples(ctx, out, stderr, c); err != nil {
		return fmt.Errorf("plldb local: %w", err)
	}
	if err := debugSession(ctx, out, stderr, c); err != nil {
		return fmt.Errorf("debug session: %w", err)
	}
	return nil
}

// besideMe is the program called name in this program's folder, where `make demo` builds both.
func besideMe(name string) (string, error) {
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find %s: %w (pass --plldb)", name, err)
	}
	p := filepath.Join(filepath.Dir(exe), name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no %s next to this program (%s): build it (make build) or pass --plldb PATH", name, p)
	}
	return p, nil
}

// output is the demo's stdout, shared by the demo's own lines and the lines its plldb processes print.
type output struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *output) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format, args...)
}

// process is a running plldb command whose stdout is copied line by line to the demo's output and kept, so
// the demo can wait for what plldb announces.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once stdout is drained and the process has exited
	err  error         // the exit error, set before done closes

	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced whenever a line arrives or stdout ends
	eof   bool
}

// start runs plldb with args after printing the command line, as a user would type it.
func start(ctx context.Context, out *output, stderr io.Writer, bin string, args ...string) (*process, error) {
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = shortPath(a)
	}
	out.printf("\n$ plldb %s\n", strings.Join(shown, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = stderr
	// Stopped like Ctrl-C stops it, so it answers what is in flight and cleans up its Python processes.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{}), more: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.printf("%s\n", sc.Text())
			p.add(sc.Text())
		}
		p.mu.Lock()
		p.eof = true
		close(p.more)
		p.mu.Unlock()
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) add(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
	close(p.more)
	p.more = make(chan struct{})
}

// mark is the number of lines printed so far, for waitFor.
func (p *process) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// waitFor returns the first line from line index from on that starts with prefix.
func (p *process) waitFor(from int, prefix string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for i := from; ; {
		p.mu.Lock()
		for ; i < len(p.lines); i++ {
			if strings.HasPrefix(p.lines[i], prefix) {
				p.mu.Unlock()
				return p.lines[i], nil
			}
		}
		more, eof := p.more, p.eof
		p.mu.Unlock()
		if eof {
			<-p.done
			return "", fmt.Errorf("exited (%v) before printing %q", p.err, prefix)
		}
		select {
		case <-more:
		case <-deadline:
			return "", fmt.Errorf("printed no %q in %s", prefix, timeout)
		}
	}
}

// stop interrupts the process as Ctrl-C would and waits for it to exit.
func (p *process) stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("did not exit within 30s of an interrupt")
	}
}

// shortPath shows paths under the working folder relative to it.
func shortPath(p string) string {
	if !filepath.IsAbs(p) {
		return p
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return p
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/plldb/plldb/adapter/dap"
)

// runDAP serves the debug adapter on stdin/stdout, or with --listen on a TCP port, one session at a time.
func runDAP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plldb dap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen      string
		allowRemote bool
		logs        logFlags
	)
	fs.StringVar(&listen, "listen", "", "serve DAP clients on HOST:PORT (port 0: any free port; loopback only unless --allow-remote) instead of stdin/stdout")
	registerAllowRemote(fs, &allowRemote)
	logs.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("plldb dap: unexpected argument %q", fs.Arg(0))
	}
	// stdout carries DAP in stdio mode, so logs never go there, whatever the flags say.
	log, closeLog, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	opts := dap.Options{Logger: log}
	if listen == "" {
		if allowRemote {
			return errors.New("plldb dap: --allow-remote goes with --listen")
		}
		return dap.ServeStdio(ctx, os.Stdin, stdout, opts)
	}
	l, err := listenDAP(listen, allowRemote, opts, stderr)
	if err != nil {
		return fmt.Errorf("plldb dap: %w", err)
	}
	// The line Delve prints: LSP4IJ and nvim-dap "server" adapters wait for it before connecting.
	if _, err := fmt.Fprintf(stdout, "DAP server listening at: %s\n", l.Addr()); err != nil {
		_ = l.Close()
		return fmt.Errorf("announce listening address: %w", err)
	}
	return l.Serve(ctx)
}

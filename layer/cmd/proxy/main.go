// Command proxy is the plldb layer's Runtime API proxy, started by /opt/plldb/wrapper (AWS_LAMBDA_EXEC_WRAPPER)
// with the runtime's command as its arguments. It exits with the runtime's exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/plldb/plldb/layer/proxy"
)

func main() {
	os.Exit(run())
}

func run() int {
	if os.Getenv("GOMAXPROCS") == "" {
		// The proxy's work is a chain of hand-offs between a few goroutines; on one P they stay on one thread
		// instead of waking others, which measurably cuts per-invocation latency and memory.
		runtime.GOMAXPROCS(1)
	}
	cfg, err := proxy.ConfigFromEnv(os.Args[1:], os.Environ())
	if err != nil && !errors.Is(err, proxy.ErrSessionConfig) {
		fmt.Fprintf(os.Stderr, "plldb proxy: %v\n", err)
		return 1
	}
	if err != nil && cfg.Selective == nil {
		// The function keeps working without debugging rather than failing every invocation. (Broken selective
		// settings are logged by Run, once.)
		cfg.Logger.Error("session disabled", "err", err)
	}
	// One dialer per session: session mode's, or each selective link's, with its own key, id and peer.
	for _, sc := range cfg.Sessions() {
		dial, err := proxy.RelayDialer(sc, cfg.Logger.With("session", sc.SessionID))
		if err != nil {
			cfg.Logger.Error("session disabled", "session", sc.SessionID, "err", err)
			cfg.Session = nil
			if cfg.Selective != nil {
				// Still selective: knocks are removed and refused, never passed to the deployed code.
				cfg.Selective = &proxy.SelectiveConfig{Broken: err}
			}
			break
		}
		sc.Dial = dial
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	code, err := proxy.Run(ctx, cfg)
	if err != nil {
		cfg.Logger.Error("proxy stopped", "err", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

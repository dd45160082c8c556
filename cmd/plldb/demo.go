package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/plldb/plldb/adapter/local"
)

// runDemo serves the sample app through the local pipeline and invokes it over the real Invoke API, the way
// `aws lambda invoke --endpoint-url` would.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plldb demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts local.Options
		logs logFlags
	)
	fs.StringVar(&opts.Template, "template", "testfixtures/apps/hello/template.yaml", "template of the sample app")
	fs.StringVar(&opts.Python, "python", "", "Python interpreter with debugpy")
	logs.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logs.level = "warn"
	log, closeLog, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	opts.Logger = log
	printer := &invocationPrinter{w: stdout}
	opts.Observer, opts.OnLog = printer, printer.logLine

	start := time.Now()
	p, err := local.Start(ctx, opts)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			_ = p.Close(context.Background())
		}
	}()
	fmt.Fprintf(stdout, "pipeline up in %s\n", time.Since(start).Round(time.Millisecond))
	printServing(stdout, p, false)

	for _, call := range []struct{ fn, payload string }{
		{"HelloFunction", `{"name": "plldb"}`},
		{"PackageFunction", `{"order": 42}`},
		{"FailingFunction", `{}`},
	} {
		fmt.Fprintf(stdout, "\n$ aws lambda invoke --function-name %s --payload '%s' …\n", call.fn, call.payload)
		if err := demoInvoke(ctx, stdout, p.Endpoint(), call.fn, call.payload); err != nil {
			return fmt.Errorf("%w: %v", errDemo, err)
		}
	}
	closed = true
	if err := p.Close(context.Background()); err != nil {
		return fmt.Errorf("%w: close pipeline: %v", errDemo, err)
	}
	if err := demoDebug(ctx, stdout, opts.Template, opts.Python, log); err != nil {
		return fmt.Errorf("%w: debug session: %v", errDemo, err)
	}
	return nil
}

func demoInvoke(ctx context.Context, w io.Writer, endpoint, fn, payload string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/2015-03-31/functions/"+fn+"/invocations", bytes.NewBufferString(payload))
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Log-Type", "Tail")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", fn, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read %s answer: %w", fn, err)
	}
	fmt.Fprintf(w, "HTTP %d in %s", resp.StatusCode, time.Since(start).Round(time.Microsecond*100))
	if fe := resp.Header.Get("X-Amz-Function-Error"); fe != "" {
		fmt.Fprintf(w, " (X-Amz-Function-Error: %s)", fe)
	}
	fmt.Fprintf(w, "\n%s\n", body)
	if tail, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Amz-Log-Result")); err == nil && len(tail) > 0 {
		fmt.Fprintf(w, "log tail:\n%s", tail)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("invoke %s: HTTP %d", fn, resp.StatusCode)
	}
	return nil
}

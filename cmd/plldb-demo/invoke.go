package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// invokeSamples serves the sample app with `plldb local` and invokes its functions over the Lambda Invoke API,
// the way `aws lambda invoke --endpoint-url` would, then stops plldb local as Ctrl-C does.
func invokeSamples(ctx context.Context, out *output, stderr io.Writer, c config) error {
	args := []string{"local", "--template", c.template, "--port", "0"}
	if c.python != "" {
		args = append(args, "--python", c.python)
	}
	args = append(args, "--log-level", c.logLevel)
	started := time.Now()
	p, err := start(ctx, out, stderr, c.plldb, args...)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = p.stop()
		}
	}()
	line, err := p.waitFor(0, "Lambda Invoke endpoint: ", 60*time.Second)
	if err != nil {
		return err
	}
	endpoint := strings.TrimPrefix(line, "Lambda Invoke endpoint: ")
	if _, err := p.waitFor(0, "Ctrl-C stops.", 10*time.Second); err != nil {
		return err
	}
	out.printf("(plldb local up in %s)\n", time.Since(started).Round(time.Millisecond))

	for _, call := range []struct{ fn, payload string }{
		{"HelloFunction", `{"name": "plldb"}`},
		{"PackageFunction", `{"order": 42}`},
		{"FailingFunction", `{}`},
	} {
		out.printf("\n$ aws lambda invoke --function-name %s --payload '%s' --log-type Tail …\n", call.fn, call.payload)
		mark := p.mark()
		res, err := invoke(ctx, endpoint, call.fn, call.payload)
		if err != nil {
			return err
		}
		// plldb local prints START, the handler's lines and END as the invocation runs; its answer goes after.
		if _, err := p.waitFor(mark, "END   "+call.fn, 10*time.Second); err != nil {
			return err
		}
		out.printf("%s", res)
	}
	out.printf("^C\n")
	stopped = true
	if err := p.stop(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

// invoke calls a function through the Invoke API with the log tail requested, and describes the answer.
func invoke(ctx context.Context, endpoint, fn, payload string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/2015-03-31/functions/"+fn+"/invocations", strings.NewReader(payload))
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Amz-Log-Type", "Tail")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("invoke %s: %w", fn, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read %s answer: %w", fn, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("invoke %s: HTTP %d: %s", fn, resp.StatusCode, body)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d in %s", resp.StatusCode, time.Since(start).Round(100*time.Microsecond))
	if fe := resp.Header.Get("X-Amz-Function-Error"); fe != "" {
		fmt.Fprintf(&b, " (X-Amz-Function-Error: %s)", fe)
	}
	fmt.Fprintf(&b, "\n%s\n", body)
	if tail, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Amz-Log-Result")); err == nil && len(tail) > 0 {
		fmt.Fprintf(&b, "log tail:\n%s", tail)
	}
	return b.String(), nil
}

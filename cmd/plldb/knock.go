package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/bridge/knock"
)

// runKnock prints a knock of the running selective session (docs/knock.md), as a header line or as ready-to-run
// commands. The token is printed to stdout only: it is a bearer credential for its lifetime.
func runKnock(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plldb knock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		stackName = fs.String("stack-name", "", "the stack a plldb attach --selective session is attached to")
		local     = fs.Bool("local", false, "the running plldb local --selective")
		function  = fs.String("function", "", "bind the knock to one function (logical id or name) instead of the whole stack")
		ttl       = fs.Duration("for", knock.DefaultTTL, "how long the knock is valid (at most "+knock.MaxTTL.String()+")")
		route     = fs.String("route", "", `bind the knock to HTTP requests matching "METHOD /path/glob", e.g. 'POST /orders/*'`)
		curl      = fs.String("curl", "", "print a curl command calling this URL with the knock")
		awsCLI    = fs.Bool("aws-cli", false, "print an aws lambda invoke command carrying the knock in its client context")
		boto3     = fs.Bool("boto3", false, "print Python (boto3) invoking the function with the knock in its client context")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("plldb knock: unexpected argument %q", fs.Arg(0))
	}
	audience, err := knockAudience(*stackName, *local)
	if err != nil {
		return err
	}
	if *ttl <= 0 || *ttl > knock.MaxTTL {
		return fmt.Errorf("plldb knock: --for must be between 1s and %s", knock.MaxTTL)
	}
	formats := 0
	for _, set := range []bool{*curl != "", *awsCLI, *boto3} {
		if set {
			formats++
		}
	}
	if formats > 1 {
		return errors.New("plldb knock: --curl, --aws-cli and --boto3 go one at a time")
	}
	s, err := loadKnockSession(audience)
	if err != nil {
		return fmt.Errorf("plldb knock: %w", err)
	}
	tok, err := s.Mint(knockkey.MintOptions{Function: *function, TTL: *ttl, Route: *route})
	if err != nil {
		return fmt.Errorf("plldb knock: %w", err)
	}
	fn := *function
	if fn == "" {
		fn = "FUNCTION"
	}
	switch {
	case *curl != "":
		_, err = fmt.Fprintf(stdout, "curl -H %s %s\n", shellQuote("X-Plldb-Knock: "+tok), shellQuote(*curl))
	case *awsCLI:
		endpoint := ""
		if s.Endpoint != "" && *local {
			endpoint = " --endpoint-url " + shellQuote(s.Endpoint)
		}
		_, err = fmt.Fprintf(stdout, "aws lambda invoke%s --function-name %s --client-context %s --payload '{}' --cli-binary-format raw-in-base64-out out.json\n",
			endpoint, shellQuote(fn), knockClientContext(tok))
	case *boto3:
		endpoint := ""
		if s.Endpoint != "" && *local {
			endpoint = ", endpoint_url=" + strconv.Quote(s.Endpoint)
		}
		_, err = fmt.Fprintf(stdout, "import boto3\nresp = boto3.client(\"lambda\"%s).invoke(FunctionName=%s, Payload=b\"{}\", ClientContext=%s)\nprint(resp[\"Payload\"].read().decode())\n",
			endpoint, strconv.Quote(fn), strconv.Quote(knockClientContext(tok)))
	default:
		_, err = fmt.Fprintf(stdout, "X-Plldb-Knock: %s\n", tok)
	}
	return err
}

// knockAudience is the audience --stack-name or --local names.
func knockAudience(stackName string, local bool) (string, error) {
	switch {
	case stackName != "" && local:
		return "", errors.New("plldb knock: --stack-name and --local go one at a time")
	case local:
		return knockkey.LocalAudience, nil
	case stackName != "":
		return stackName, nil
	}
	return "", errors.New("plldb knock: say whose session: --stack-name X (plldb attach --selective) or --local (plldb local --selective)")
}

// loadKnockSession loads the running session of audience, saying how to start one when there is none.
func loadKnockSession(audience string) (*knockkey.Session, error) {
	s, err := knockkey.Load(audience)
	if errors.Is(err, knockkey.ErrNoSession) {
		start := "plldb attach --stack-name " + audience + " --selective"
		if audience == knockkey.LocalAudience {
			start = "plldb local --selective"
		}
		return nil, fmt.Errorf("%w; start one with %s", err, start)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// knockClientContext is the X-Amz-Client-Context value carrying tok: base64 of {"custom":{"plldbKnock":tok}}, the
// field layer/carrier looks for.
func knockClientContext(tok string) string {
	js, _ := json.Marshal(map[string]any{"custom": map[string]string{"plldbKnock": tok}})
	return base64.StdEncoding.EncodeToString(js)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// invokeKnockTTL is the lifetime of the knock plldb invoke --knock adds: the invocation is sent at once.
const invokeKnockTTL = time.Minute

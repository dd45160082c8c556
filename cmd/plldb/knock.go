package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("plldb knock: unexpected argument %q", fs.Arg(0))
	}
	audience, err := knockAudience(*stackName, *local)
	if err != nil {
		return err
	}
	if *ttl < time.Second || *ttl > knock.MaxTTL {
		return fmt.Errorf("plldb knock: --for must be between 1s and %s", knock.MaxTTL)
	}
	if *route != "" {
		if _, err := knock.ParseRoute(*route); err != nil {
			// The parser's errors are about tokens ("knock malformed: …"); here the flag is at fault.
			why := strings.TrimPrefix(err.Error(), knock.ErrMalformed.Error()+": ")
			return fmt.Errorf(`plldb knock: --route %q: %s; want "METHOD /path/glob", e.g. 'POST /orders/*'`, *route, why)
		}
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
	f, o := knockkey.FormatHeader, knockkey.LineOptions{Function: *function}
	switch {
	case *curl != "":
		f, o.URL = knockkey.FormatCurl, *curl
	case *awsCLI:
		f = knockkey.FormatAWSCLI
	case *boto3:
		f = knockkey.FormatBoto3
	}
	if *route != "" && !knockkey.RouteApplies(f) {
		return errors.New("plldb knock: --route goes with the header and --curl: the --aws-cli and --boto3 lines invoke the function with the event {}, which is no HTTP request, so a knock bound to a route would be refused there")
	}
	s, err := loadKnockSession(audience)
	if err != nil {
		return fmt.Errorf("plldb knock: %w", err)
	}
	if *function != "" {
		if err := s.CheckFunction(*function); err != nil {
			return fmt.Errorf("plldb knock: --function %w", err)
		}
	}
	tok, err := s.Mint(knockkey.MintOptions{Function: *function, TTL: *ttl, Route: *route})
	if err != nil {
		return fmt.Errorf("plldb knock: %w", err)
	}
	if *local {
		o.Endpoint = s.Endpoint // a deployed stack's functions answer on AWS's own endpoint
	}
	if o.Function != "" {
		o.Function = s.InvokeName(o.Function) // --function may be a logical id; Lambda knows the deployed name
	}
	line, err := knockkey.FormatLine(f, tok, o)
	if err != nil {
		return fmt.Errorf("plldb knock: %w", err)
	}
	if _, err := io.WriteString(stdout, line); err != nil {
		return err
	}
	if *function == "" && !knockkey.RouteApplies(f) && len(s.Functions) > 0 {
		// The line invokes FUNCTION, a placeholder: say what to put there (on stderr, so that stdout stays the line).
		names := make([]string, len(s.Functions))
		for i, fn := range s.Functions {
			names[i] = s.InvokeName(fn.LogicalID)
		}
		fmt.Fprintf(stderr, "plldb knock: replace FUNCTION with the function to invoke (%s), or name it with --function\n", strings.Join(names, ", "))
	}
	return nil
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

// invokeKnockTTL is the lifetime of the knock plldb invoke --knock adds: the invocation is sent at once.
const invokeKnockTTL = time.Minute

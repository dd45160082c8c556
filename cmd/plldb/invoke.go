package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/cloud/awsconfig"
	"github.com/plldb/plldb/cloud/invoke"
)

// defaultLocalEndpoint is where `plldb local` serves the Invoke API unless told otherwise.
const defaultLocalEndpoint = "http://127.0.0.1:3001"

// stdin is what `--event -` reads; tests replace it.
var stdin io.Reader = os.Stdin

// Exit statuses of plldb invoke: the function failed, or it could not be invoked at all.
const (
	exitFunctionError = 1
	exitInvokeFailed  = 2
)

// runInvoke sends one invocation and prints the payload alone on stdout (so that `| jq` works), and the log
// tail, the function error and the request id on stderr.
func runInvoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := invokeCommand(ctx, args, stdout, stderr)
	var ee *exitError
	if err == nil || errors.Is(err, flag.ErrHelp) || errors.As(err, &ee) {
		return err
	}
	// Every other failure (a bad flag or event included) is one to invoke: 2, never the function's 1.
	return &exitError{exitInvokeFailed, err}
}

func invokeCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plldb invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		event         = fs.String("event", "", "event JSON file, or - for stdin (default: {})")
		endpoint      = fs.String("endpoint-url", "", "Invoke API of a plldb local (default "+defaultLocalEndpoint+" when --stack-name is not given; with --knock, that of the plldb local --selective whose session signs it)")
		stackName     = fs.String("stack-name", "", "invoke the deployed function of this stack: FN is its logical id, physical name or ARN")
		qualifier     = fs.String("qualifier", "", "version or alias to invoke")
		async         = fs.Bool("async", false, "Event invocation: Lambda queues it and answers 202 with no result or log")
		clientContext = fs.String("client-context", "", `client context JSON object the handler sees as context.client_context, e.g. '{"custom":{"k":"v"}}'`)
		region        = fs.String("region", "", "AWS region (default: from the environment or profile; us-east-1 for plldb local)")
		profile       = fs.String("profile", "", "AWS profile, with --stack-name (default: AWS_PROFILE or the default profile)")
		logDest       = fs.String("log", "stderr", "where the log tail goes: stderr, none (not asked for), or a file path")
		withKnock     = fs.Bool("knock", false, "carry a knock of the running selective session (plldb local --selective, or plldb attach --stack-name X --selective) in the client context, so the invocation stops at your breakpoints")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: plldb invoke FN [flags]\n\nFN is a function's logical id or name (an ARN with --stack-name). Flags:")
		fs.PrintDefaults()
	}
	fn, err := parseWithArg(fs, args)
	if err != nil {
		return err
	}
	if *endpoint != "" && *stackName != "" {
		return errors.New("plldb invoke: --endpoint-url (a plldb local) and --stack-name (a deployed stack) go one at a time")
	}
	if *profile != "" && *stackName == "" {
		return errors.New("plldb invoke: --profile goes with --stack-name (plldb local takes no AWS credentials)")
	}

	// Everything the invocation needs is read and checked before any call: a bad event changes nothing.
	req := invoke.Request{Function: fn, Qualifier: *qualifier, Async: *async, Tail: *logDest != "none"}
	if req.Payload, err = readEvent(*event, *async); err != nil {
		return err
	}
	if *clientContext != "" {
		if req.ClientContext, err = invoke.ParseClientContext(*clientContext); err != nil {
			return fmt.Errorf("plldb invoke: --client-context: %w", err)
		}
	}
	// knockEndpoint is the Invoke API of the plldb local whose session signs the knock, if it said.
	knockEndpoint := ""
	if *withKnock {
		// The knock goes in ClientContext.custom, the carrier of a direct Invoke, whatever the event's shape; it
		// lives a minute, since the invocation is sent now.
		audience := knockkey.LocalAudience
		if *stackName != "" {
			audience = *stackName
		}
		s, err := loadKnockSession(audience)
		if err != nil {
			return fmt.Errorf("plldb invoke: --knock: %w", err)
		}
		tok, err := s.Mint(knockkey.MintOptions{TTL: invokeKnockTTL})
		if err != nil {
			return fmt.Errorf("plldb invoke: --knock: %w", err)
		}
		req.SetCustom("plldbKnock", tok)
		knockEndpoint = s.Endpoint
	}
	if err := invoke.Check(req); err != nil {
		return fmt.Errorf("plldb invoke: %w", err)
	}
	logW, closeLog, err := logWriter(*logDest, stderr)
	if err != nil {
		return err
	}
	defer closeLog()

	var (
		client   *lambda.Client
		where    string
		whereAWS = func() string { return "" }
	)
	if *stackName != "" {
		cfg, err := awsconfig.Load(ctx, awsconfig.Options{Profile: *profile, Region: *region})
		if err != nil {
			return &exitError{exitInvokeFailed, fmt.Errorf("plldb invoke: %w", err)}
		}
		if err := awsconfig.ValidateRegion(cfg.Region); err != nil {
			return &exitError{exitInvokeFailed, fmt.Errorf("plldb invoke: %w", err)}
		}
		// Where (an STS call) is asked only for a message about something not found: a wrong --region or
		// --profile then shows.
		name, err := invoke.Resolve(ctx, cloudformation.NewFromConfig(cfg), *stackName, fn)
		if err != nil {
			return &exitError{exitInvokeFailed, fmt.Errorf("plldb invoke: in %s: %w", awsconfig.Where(ctx, cfg), err)}
		}
		req.Function = name
		client, where = lambda.NewFromConfig(cfg), "stack "+*stackName
		whereAWS = func() string { return " (" + awsconfig.Where(ctx, cfg) + ")" }
	} else {
		url := *endpoint
		if url == "" {
			// A knock only verifies at the plldb local whose session signed it, which need not listen on the
			// default port (--port, a launch's invokePort): send it there.
			url = knockEndpoint
		}
		if url == "" {
			url = defaultLocalEndpoint
		}
		client, where = localClient(url, *region), "plldb local at "+url
	}

	res, err := invoke.Invoke(ctx, client, req)
	if err != nil {
		var ie *invoke.Error
		if errors.As(err, &ie) && ie.NotFound() {
			where += whereAWS()
		}
		return &exitError{exitInvokeFailed, invokeFailure(fn, *qualifier, where, *stackName == "", err)}
	}
	return printResult(res, stdout, stderr, logW)
}

// parseWithArg parses flags on both sides of the one positional argument, since `plldb invoke FN --event e.json`
// is how people type it and the flag package stops at the first argument.
func parseWithArg(fs *flag.FlagSet, args []string) (string, error) {
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return "", errors.New("plldb invoke: name the function to invoke")
	}
	fn := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("plldb invoke: unexpected argument %q (one function per invocation)", fs.Arg(0))
	}
	return fn, nil
}

// readEvent reads the event file, or stdin for "-"; none is {}.
func readEvent(path string, async bool) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	switch path {
	case "":
		return []byte("{}"), nil
	case "-":
		// One byte past the largest payload is enough to say it is too large, without reading a runaway pipe.
		b, err = io.ReadAll(io.LimitReader(stdin, invoke.MaxPayload+1))
		path = "stdin"
	default:
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("plldb invoke: read the event: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("plldb invoke: --event %s is empty (leave --event out to send {})", path)
	}
	if err := invoke.CheckEvent(b, async); err != nil {
		return nil, fmt.Errorf("plldb invoke: --event %s: %w", path, err)
	}
	return b, nil
}

// logWriter is where the log tail is written; the closer closes a file.
func logWriter(dest string, stderr io.Writer) (io.Writer, func(), error) {
	switch dest {
	case "stderr", "":
		return stderr, func() {}, nil
	case "none":
		return io.Discard, func() {}, nil
	}
	// Logs can hold what the handler printed of its event or environment: the file is the developer's alone.
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("plldb invoke: --log: %w", err)
	}
	return f, func() { _ = f.Close() }, nil
}

// localClient is a Lambda client for a plldb local. It carries dummy credentials unless the environment has an
// access key: plldb local checks none, except the token of --allow-remote, which goes as AWS_ACCESS_KEY_ID. The
// developer's AWS profile is not read, so that no SSO login or instance role is ever asked for a local call.
func localClient(url, region string) *lambda.Client {
	if region == "" {
		region = "us-east-1"
	}
	key, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if key == "" {
		key, secret = "plldb", "plldb"
	}
	// plldb local never checks the signature, so the token of --allow-remote alone in AWS_ACCESS_KEY_ID is enough;
	// the SDK refuses an empty secret key, so stand one in.
	if secret == "" {
		secret = "plldb"
	}
	return lambda.New(lambda.Options{
		Region:       region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
	})
}

// invokeFailure says why the function could not be invoked, and what to do about it where there is something.
func invokeFailure(fn, qualifier, where string, local bool, err error) error {
	name := fn
	if qualifier != "" {
		name += " (qualifier " + qualifier + ")"
	}
	var (
		ie *invoke.Error
		ue *invoke.UnreachableError
	)
	switch {
	case errors.As(err, &ie) && ie.NotFound():
		hint := ""
		if local {
			hint = "; `aws lambda list-functions --endpoint-url " + strings.TrimPrefix(where, "plldb local at ") + "` lists what it serves"
		}
		return fmt.Errorf("plldb invoke: no function %s at %s: %s%s", name, where, ie.Message, hint)
	case errors.As(err, &ue) && local:
		return fmt.Errorf("plldb invoke: nothing answers at %s (%w): start `plldb local`, or pass --endpoint-url, or --stack-name for a deployed function", strings.TrimPrefix(where, "plldb local at "), ue.Err)
	default:
		return fmt.Errorf("plldb invoke: %s at %s: %w", name, where, err)
	}
}

// printResult writes the payload on stdout, pretty if it is JSON and byte for byte otherwise; the log tail on
// logW; and the function error, the executed version and the request id on stderr.
func printResult(res invoke.Result, stdout, stderr, logW io.Writer) error {
	if res.StatusCode == 202 {
		fmt.Fprintf(stderr, "accepted (202): Event invocation, request id %s\n", res.RequestID)
		return nil
	}
	if res.Log != "" {
		// awslambdaric joins the lines of an error report with \r so that Lambda keeps it as one record; a
		// terminal would write each line over the last.
		text := strings.ReplaceAll(res.Log, "\r", "\n")
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		if _, err := io.WriteString(logW, text); err != nil {
			return fmt.Errorf("plldb invoke: write the log tail: %w", err)
		}
	}
	if err := writePayload(stdout, res.Payload); err != nil {
		return fmt.Errorf("plldb invoke: write the result: %w", err)
	}
	if res.FunctionError != "" {
		what := res.ErrorType
		if res.ErrorMessage != "" {
			what += ": " + res.ErrorMessage
		}
		if what == "" {
			what = "see the payload"
		}
		fmt.Fprintf(stderr, "function error (%s): %s\n", res.FunctionError, what)
	}
	var ids []string
	if res.ExecutedVersion != "" {
		ids = append(ids, "executed version "+res.ExecutedVersion)
	}
	if res.RequestID != "" {
		ids = append(ids, "request id "+res.RequestID)
	}
	if len(ids) > 0 {
		fmt.Fprintln(stderr, strings.Join(ids, ", "))
	}
	if res.FunctionError != "" {
		return &exitError{code: exitFunctionError}
	}
	return nil
}

func writePayload(w io.Writer, payload []byte) error {
	if len(payload) == 0 {
		return nil
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, payload, "", "  ") == nil {
		pretty.WriteByte('\n')
		_, err := w.Write(pretty.Bytes())
		return err
	}
	_, err := w.Write(payload)
	return err
}

// Package install is the contract between the helper stack and the sessions that use it: the stack name of an
// install, the outputs its template promises, and reading them back into what a session needs (the relay's URL
// and ticket audience, the claim store's tables, the layer versions). The installer (cloud/stack) writes the
// outputs; attach, detach and the offline harness read them here without linking the installer.
package install

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/smithy-go"

	"github.com/plldb/plldb/cloud/awsconfig"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/store"
)

// DefaultName is the install name when none is given.
const DefaultName = "plldb"

// StackName is the CloudFormation stack name of the install called name.
func StackName(name string) string { return name }

// The helper stack's outputs, by key.
const (
	OutputWebSocketURL     = "WebSocketURL"
	OutputAudience         = "Audience"
	OutputSessionsTable    = "SessionsTable"
	OutputConnectionsTable = "ConnectionsTable"
	OutputTicketsTable     = "TicketsTable"
	OutputClaimsTable      = "ClaimsTable"
	OutputLayerX86Arn      = "LayerX86Arn"
	OutputLayerArm64Arn    = "LayerArm64Arn"
	OutputRelayFunctionArn = "RelayFunctionArn"
	OutputProtocol         = "Protocol"
)

// Protocol is the version of the contract between this plldb and the relay and layer an install deployed. It
// changes when an older install cannot serve this plldb: protocol 2 gave each function its own ticket key,
// which the relay Lambda and the layer of a protocol 1 install cannot verify, so their functions would quietly
// fall back to the deployed code. The template's Protocol output carries it; installs older than the output
// have none.
const Protocol = "2"

// Resources are what a session uses of an install.
type Resources struct {
	Name         string
	WebSocketURL string // wss:// URL of the relay
	Audience     string // the audience relay tickets carry
	Tables       store.Tables
	Layers       instrument.LayerARNs
}

// OutputsError says why an install's stack outputs cannot serve a session: each problem names the output, its
// value and what is wrong with it.
type OutputsError struct {
	Name     string
	Problems []string
	// WebSocketAPI: the relay URL has an unresolved reference, the mark of an endpoint whose CloudFormation did
	// not create the WebSocket API.
	WebSocketAPI bool
	// Tables: the table names themselves are unusable (the store cannot be opened).
	Tables bool
}

func (e *OutputsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plldb install %q is not usable: its stack outputs are wrong:", e.Name)
	for _, p := range e.Problems {
		b.WriteString("\n  " + p)
	}
	if e.WebSocketAPI {
		b.WriteString("\nThe endpoint's CloudFormation did not create the relay's WebSocket API (AWS::ApiGatewayV2::Api): AWS does; " +
			"moto and some other emulators cannot, so plldb attach cannot work against them.")
		fmt.Fprintf(&b, "\nInstall into an AWS account and region (plldb install --name %s --region REGION), or remove this one (plldb uninstall --name %s).", e.Name, e.Name)
		return b.String()
	}
	fmt.Fprintf(&b, "\nRun plldb install --name %s again to repair it, or remove it (plldb uninstall --name %s).", e.Name, e.Name)
	return b.String()
}

// layerARN is a Lambda layer version ARN: arn:PARTITION:lambda:REGION:ACCOUNT:layer:NAME:VERSION.
var layerARN = regexp.MustCompile(`^arn:aws(-[a-z]+)*:lambda:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:layer:[A-Za-z0-9_-]{1,140}:[0-9]+$`)

// tableName is a DynamoDB table name.
var tableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// FromOutputs reads an install's resources from its stack outputs and checks that they can serve a session:
// the relay URL is a wss:// URL with a host (ws:// only on a loopback host, as the offline harness serves it),
// the layers are layer version ARNs and the tables are plain DynamoDB table names. When they cannot, the error
// is an *OutputsError saying what is wrong and why, and the Resources hold what was read anyway (for status
// and uninstall, which need only the tables).
func FromOutputs(name string, out map[string]string) (Resources, error) {
	in := Resources{
		Name:         name,
		WebSocketURL: out[OutputWebSocketURL],
		Audience:     out[OutputAudience],
		Tables: store.Tables{
			Sessions:    out[OutputSessionsTable],
			Connections: out[OutputConnectionsTable],
			Tickets:     out[OutputTicketsTable],
			Claims:      out[OutputClaimsTable],
		},
		Layers: instrument.LayerARNs{X86_64: out[OutputLayerX86Arn], Arm64: out[OutputLayerArm64Arn]},
	}
	var missing []string
	for k, v := range Outputs(in) {
		if v == "" {
			missing = append(missing, k)
		}
	}
	e := &OutputsError{Name: name}
	if len(missing) > 0 {
		e.Problems = append(e.Problems, fmt.Sprintf("the outputs lack %s (is the install complete?)", strings.Join(slices.Sorted(slices.Values(missing)), ", ")))
	}
	if got := out[OutputProtocol]; got != Protocol {
		if got == "" {
			got = "1"
		}
		e.Problems = append(e.Problems, fmt.Sprintf("%s %q: the install's relay and layer are from an older plldb (protocol %s; this plldb needs protocol %s)", OutputProtocol, out[OutputProtocol], got, Protocol))
	}
	if problem, unresolved := checkRelayURL(in.WebSocketURL); problem != "" && in.WebSocketURL != "" {
		e.Problems = append(e.Problems, fmt.Sprintf("%s %q %s", OutputWebSocketURL, in.WebSocketURL, problem))
		e.WebSocketAPI = unresolved
	}
	for _, l := range []struct{ key, v string }{{OutputLayerX86Arn, in.Layers.X86_64}, {OutputLayerArm64Arn, in.Layers.Arm64}} {
		if l.v != "" && !layerARN.MatchString(l.v) {
			e.Problems = append(e.Problems, fmt.Sprintf("%s %q is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)", l.key, l.v))
		}
	}
	for _, t := range []struct{ key, v string }{{OutputSessionsTable, in.Tables.Sessions}, {OutputConnectionsTable, in.Tables.Connections},
		{OutputTicketsTable, in.Tables.Tickets}, {OutputClaimsTable, in.Tables.Claims}} {
		if !tableName.MatchString(t.v) {
			if t.v == "" {
				e.Tables = true
				continue
			}
			e.Problems = append(e.Problems, fmt.Sprintf("%s %q is not a DynamoDB table name (3 to 255 letters, digits, '_', '-' and '.')", t.key, t.v))
			e.Tables = true
		}
	}
	if len(e.Problems) > 0 {
		return in, e
	}
	return in, nil
}

// checkRelayURL says what is wrong with a relay URL ("" if nothing), and whether it holds an unresolved
// CloudFormation reference.
func checkRelayURL(raw string) (problem string, unresolved bool) {
	if strings.Contains(raw, "${") {
		return "holds an unresolved ${...} reference", true
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Sprintf("is not a URL: %v", err), false
	case u.Host == "" || u.Hostname() == "":
		return "has no host", false
	case u.Scheme == "wss":
		return "", false
	case u.Scheme == "ws" && isLoopback(u.Hostname()):
		return "", false
	case u.Scheme == "ws":
		return "is plain ws:// to a host that is not loopback; the relay must be reached over wss://", false
	default:
		return "is not a wss:// URL", false
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Outputs are the stack outputs that describe in: FromOutputs reads them back.
func Outputs(in Resources) map[string]string {
	return map[string]string{
		OutputWebSocketURL: in.WebSocketURL, OutputAudience: in.Audience,
		OutputSessionsTable: in.Tables.Sessions, OutputConnectionsTable: in.Tables.Connections,
		OutputTicketsTable: in.Tables.Tickets, OutputClaimsTable: in.Tables.Claims,
		OutputLayerX86Arn: in.Layers.X86_64, OutputLayerArm64Arn: in.Layers.Arm64,
		OutputProtocol: Protocol,
	}
}

// Load reads the resources of the install called name ("" → DefaultName) from its stack's outputs. When the
// stack is not there, the error names the region and account searched, so that a wrong --region or --profile
// is told from a missing install.
func Load(ctx context.Context, cfg aws.Config, name string) (Resources, error) {
	if name == "" {
		name = DefaultName
	}
	out, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(StackName(name))})
	var notFound bool
	if err != nil {
		var api smithy.APIError
		notFound = errors.As(err, &api) && api.ErrorCode() == "ValidationError" && strings.Contains(api.ErrorMessage(), "does not exist")
		if !notFound {
			return Resources{}, fmt.Errorf("find plldb install %q in %s: %w", name, awsconfig.Where(ctx, cfg), err)
		}
	}
	if notFound || len(out.Stacks) == 0 {
		return Resources{}, fmt.Errorf("no plldb install %q in %s (no stack %s there): if it is installed elsewhere, choose that region or account "+
			"(--region, --profile); otherwise install it here (plldb install --name %s --region %s)", name, awsconfig.Where(ctx, cfg), StackName(name), name, cfg.Region)
	}
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return FromOutputs(name, outputs)
}

// Package install is the contract between the helper stack and the sessions that use it: the stack name of an
// install, the outputs its template promises, and reading them back into what a session needs (the relay's URL
// and ticket audience, the claim store's tables, the layer versions). The installer (cloud/stack) writes the
// outputs; attach, detach and the offline harness read them here without linking the installer.
package install

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

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
)

// Resources are what a session uses of an install.
type Resources struct {
	Name         string
	WebSocketURL string // wss:// URL of the relay
	Audience     string // the audience relay tickets carry
	Tables       store.Tables
	Layers       instrument.LayerARNs
}

// FromOutputs reads an install's resources from its stack outputs.
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
	if len(missing) > 0 {
		return Resources{}, fmt.Errorf("install %s: stack outputs lack %s (is the install complete? run plldb install)", name, strings.Join(slices.Sorted(slices.Values(missing)), ", "))
	}
	return in, nil
}

// Outputs are the stack outputs that describe in: FromOutputs reads them back.
func Outputs(in Resources) map[string]string {
	return map[string]string{
		OutputWebSocketURL: in.WebSocketURL, OutputAudience: in.Audience,
		OutputSessionsTable: in.Tables.Sessions, OutputConnectionsTable: in.Tables.Connections,
		OutputTicketsTable: in.Tables.Tickets, OutputClaimsTable: in.Tables.Claims,
		OutputLayerX86Arn: in.Layers.X86_64, OutputLayerArm64Arn: in.Layers.Arm64,
	}
}

// Load reads the resources of the install called name ("" → DefaultName) from its stack's outputs.
func Load(ctx context.Context, cfg aws.Config, name string) (Resources, error) {
	if name == "" {
		name = DefaultName
	}
	out, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(StackName(name))})
	if err != nil {
		return Resources{}, fmt.Errorf("find plldb install %q (run plldb install --name %s): %w", name, name, err)
	}
	if len(out.Stacks) == 0 {
		return Resources{}, fmt.Errorf("find plldb install %q: no such stack (run plldb install --name %s)", name, name)
	}
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return FromOutputs(name, outputs)
}

package install_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/install"
	"github.com/plldb/plldb/testfixtures/moto"
)

func TestFromOutputsNamesWhatIsMissing(t *testing.T) {
	_, err := install.FromOutputs("plldb", map[string]string{"WebSocketURL": "wss://x"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Audience")
	assert.Contains(t, err.Error(), "LayerArm64Arn")
	assert.NotContains(t, err.Error(), "WebSocketURL,")
}

func good() install.Resources {
	in := install.Resources{Name: "dev", WebSocketURL: "wss://abc123.execute-api.eu-west-1.amazonaws.com/relay", Audience: "plldb:dev"}
	in.Tables.Sessions, in.Tables.Connections, in.Tables.Tickets, in.Tables.Claims = "dev-sessions", "dev-connections", "dev-tickets", "dev-claims"
	in.Layers.X86_64 = "arn:aws:lambda:eu-west-1:123456789012:layer:dev-x86_64:3"
	in.Layers.Arm64 = "arn:aws:lambda:eu-west-1:123456789012:layer:dev-arm64:3"
	return in
}

func TestOutputsRoundTrip(t *testing.T) {
	in := good()
	got, err := install.FromOutputs("dev", install.Outputs(in))
	require.NoError(t, err)
	assert.Equal(t, in, got)

	in.WebSocketURL = "ws://127.0.0.1:4321/relay" // the offline harness's embedded gateway
	_, err = install.FromOutputs("dev", install.Outputs(in))
	require.NoError(t, err)
	in.Layers.X86_64 = "arn:aws-cn:lambda:cn-north-1:123456789012:layer:dev_x86-64:12"
	_, err = install.FromOutputs("dev", install.Outputs(in))
	require.NoError(t, err)
}

// TestFromOutputsRefusesUnusableOutputs: what moto's CloudFormation makes of the template (it creates no
// WebSocket API and prints layer versions as Python objects), and other broken values, are refused with what
// is wrong and why, instead of a URL parse error at attach.
func TestFromOutputsRefusesUnusableOutputs(t *testing.T) {
	cases := []struct {
		name string
		edit func(o map[string]string)
		want []string
	}{
		{"moto", func(o map[string]string) {
			o[install.OutputWebSocketURL] = "wss://${WebSocketApi}.execute-api.us-east-1.amazonaws.com/relay"
			o[install.OutputLayerX86Arn] = "<moto.awslambda.models.LayerVersion object at 0x7f84e34617d0>"
		}, []string{"unresolved ${...} reference", "did not create the relay's WebSocket API", "moto", "LayerX86Arn", "is not a layer version ARN", "plldb uninstall --name dev"}},
		{"http", func(o map[string]string) { o[install.OutputWebSocketURL] = "https://relay.example.com" }, []string{"is not a wss:// URL"}},
		{"plain ws to a remote host", func(o map[string]string) { o[install.OutputWebSocketURL] = "ws://relay.example.com/relay" }, []string{"not loopback"}},
		{"no host", func(o map[string]string) { o[install.OutputWebSocketURL] = "wss:///relay" }, []string{"has no host"}},
		{"not a URL", func(o map[string]string) { o[install.OutputWebSocketURL] = "wss://a b/%zz" }, []string{"is not a URL"}},
		{"layer without version", func(o map[string]string) {
			o[install.OutputLayerArm64Arn] = "arn:aws:lambda:eu-west-1:123456789012:layer:dev-arm64"
		}, []string{"LayerArm64Arn"}},
		{"table as an object", func(o map[string]string) { o[install.OutputClaimsTable] = "{'Ref': 'ClaimsTable'}" }, []string{"ClaimsTable", "is not a DynamoDB table name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := install.Outputs(good())
			c.edit(out)
			_, err := install.FromOutputs("dev", out)
			var oe *install.OutputsError
			require.True(t, errors.As(err, &oe), "want *install.OutputsError, got %v", err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestLoadOfAMissingInstallNamesRegionAndAccount: a wrong --region must not read as "run plldb install".
func TestLoadOfAMissingInstallNamesRegionAndAccount(t *testing.T) {
	s := moto.Start(t)
	cfg := s.Config()
	cfg.Region = "eu-central-1"
	_, err := install.Load(context.Background(), cfg, "nowhere")
	require.Error(t, err)
	for _, w := range []string{`no plldb install "nowhere"`, "region eu-central-1", "account 123456789012", "--region", "plldb install --name nowhere --region eu-central-1"} {
		assert.Contains(t, err.Error(), w)
	}
	assert.False(t, strings.Contains(err.Error(), "ValidationError"), err.Error())
}

// An install made by an older plldb (no Protocol output, or another one) cannot verify per-function keys: attach
// must say so instead of letting every function quietly fall back to its deployed code.
func TestOlderInstallIsRefusedWithTheRemedy(t *testing.T) {
	in := install.Resources{Name: "dev", WebSocketURL: "wss://x.example/prod", Audience: "aud"}
	in.Tables.Sessions, in.Tables.Connections, in.Tables.Tickets, in.Tables.Claims = "sss", "ccc", "ttt", "cll"
	in.Layers.X86_64 = "arn:aws:lambda:us-east-1:123456789012:layer:plldb-x86:3"
	in.Layers.Arm64 = "arn:aws:lambda:us-east-1:123456789012:layer:plldb-arm64:3"
	outs := install.Outputs(in)
	_, err := install.FromOutputs("dev", outs)
	require.NoError(t, err)

	delete(outs, install.OutputProtocol)
	_, err = install.FromOutputs("dev", outs)
	require.ErrorContains(t, err, "protocol 1; this plldb needs protocol "+install.Protocol)
	assert.ErrorContains(t, err, "plldb install --name dev")

	outs[install.OutputProtocol] = "3"
	_, err = install.FromOutputs("dev", outs)
	assert.ErrorContains(t, err, "protocol 3")
}

package install_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/install"
)

func TestFromOutputsNamesWhatIsMissing(t *testing.T) {
	_, err := install.FromOutputs("plldb", map[string]string{"WebSocketURL": "wss://x"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Audience")
	assert.Contains(t, err.Error(), "LayerArm64Arn")
	assert.NotContains(t, err.Error(), "WebSocketURL,")
}

func TestOutputsRoundTrip(t *testing.T) {
	in := install.Resources{Name: "dev", WebSocketURL: "wss://x.example/prod", Audience: "aud"}
	in.Tables.Sessions, in.Tables.Connections, in.Tables.Tickets, in.Tables.Claims = "s", "c", "t", "cl"
	in.Layers.X86_64, in.Layers.Arm64 = "arn:x86", "arn:arm"
	got, err := install.FromOutputs("dev", install.Outputs(in))
	require.NoError(t, err)
	assert.Equal(t, in, got)
}

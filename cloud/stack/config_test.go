package stack_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/awsconfig"
	"github.com/plldb/plldb/cloud/stack"
	"github.com/plldb/plldb/testfixtures/moto"
)

// AWS_ENDPOINT_URL (honoured by the SDK) is enough to point every client at moto.
func TestEndpointFromTheEnvironmentReachesMoto(t *testing.T) {
	s := moto.Start(t)
	moto.IsolateAWSConfig(t)
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	require.NoError(t, err)
	_, err = stack.Install(context.Background(), cfg, options(t, "t-env", "v1", nil))
	requireInstalledOnMoto(t, err, "")
	infos, err := stack.Status(context.Background(), cfg, stack.StatusOptions{})
	require.NoError(t, err)
	var names []string
	for _, i := range infos {
		names = append(names, i.Name)
	}
	assert.Contains(t, names, "t-env")
}

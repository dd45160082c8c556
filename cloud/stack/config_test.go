package stack_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/awsconfig"
	"github.com/plldb/plldb/cloud/stack"
	"github.com/plldb/plldb/testfixtures/moto"
)

// isolate points the SDK's default chain at an empty home, so the machine's own AWS setup cannot leak in.
func isolate(t *testing.T) string {
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	return dir
}

// AWS_ENDPOINT_URL (honoured by the SDK) is enough to point every client at moto.
func TestEndpointFromTheEnvironmentReachesMoto(t *testing.T) {
	s := moto.Start(t)
	isolate(t)
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

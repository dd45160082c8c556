package awsconfig_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/awsconfig"
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

func TestLoadConfigFlagsOverrideTheChain(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_REGION", "eu-west-1")
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{Region: "ap-south-1", EndpointURL: "http://127.0.0.1:5000"})
	require.NoError(t, err)
	assert.Equal(t, "ap-south-1", cfg.Region)
	assert.Equal(t, "http://127.0.0.1:5000", aws.ToString(cfg.BaseEndpoint))
}

func TestLoadConfigReadsProfilesAndEnvironment(t *testing.T) {
	dir := isolate(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config"), []byte("[profile dev]\nregion = eu-north-1\n"), 0o600))
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{Profile: "dev"})
	require.NoError(t, err)
	assert.Equal(t, "eu-north-1", cfg.Region)

	t.Setenv("AWS_REGION", "us-west-2")
	cfg, err = awsconfig.Load(context.Background(), awsconfig.Options{})
	require.NoError(t, err)
	assert.Equal(t, "us-west-2", cfg.Region)
}

func TestLoadConfigBadInput(t *testing.T) {
	isolate(t)
	_, err := awsconfig.Load(context.Background(), awsconfig.Options{Region: "Europe"})
	require.ErrorContains(t, err, `invalid AWS region "Europe"`)
	_, err = awsconfig.Load(context.Background(), awsconfig.Options{Profile: "nope"})
	require.ErrorContains(t, err, "nope")
}

func TestValidateRegion(t *testing.T) {
	for _, r := range []string{"us-east-1", "eu-central-2", "us-gov-west-1", "ap-southeast-7", "cn-north-1"} {
		assert.NoError(t, awsconfig.ValidateRegion(r), r)
	}
	for _, r := range []string{"", "us-east", "useast1", "US-EAST-1", "us-east-1a", "../x"} {
		assert.Error(t, awsconfig.ValidateRegion(r), r)
	}
}

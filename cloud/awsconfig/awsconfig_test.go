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
	"github.com/plldb/plldb/testfixtures/moto"
)

func TestLoadConfigFlagsOverrideTheChain(t *testing.T) {
	moto.IsolateAWSConfig(t)
	t.Setenv("AWS_REGION", "eu-west-1")
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{Region: "ap-south-1", EndpointURL: "http://127.0.0.1:5000"})
	require.NoError(t, err)
	assert.Equal(t, "ap-south-1", cfg.Region)
	assert.Equal(t, "http://127.0.0.1:5000", aws.ToString(cfg.BaseEndpoint))
}

func TestLoadConfigReadsProfilesAndEnvironment(t *testing.T) {
	dir := moto.IsolateAWSConfig(t)
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
	moto.IsolateAWSConfig(t)
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

package stack_test

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/stack"
	"github.com/plldb/plldb/testfixtures/moto"
)

// writeZip writes a zip holding the given entries to dir/name.
func writeZip(t *testing.T, dir, name string, entries map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, body := range entries {
		w, err := zw.Create(n)
		require.NoError(t, err)
		_, err = w.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

// assets are stand-ins for the relay and layer zips; version changes their content (and so their S3 keys).
func assets(t *testing.T, version string) (relay string, layers map[string]string) {
	t.Helper()
	dir := t.TempDir()
	relay = writeZip(t, dir, "relay.zip", map[string]string{"bootstrap": "relay " + version})
	layers = map[string]string{
		stack.ArchX86:   writeZip(t, dir, "layer-x86_64.zip", map[string]string{"plldb/wrapper": "#!/bin/sh\n", "plldb/proxy": "x86 " + version}),
		stack.ArchArm64: writeZip(t, dir, "layer-arm64.zip", map[string]string{"plldb/wrapper": "#!/bin/sh\n", "plldb/proxy": "arm " + version}),
	}
	return relay, layers
}

func options(t *testing.T, name, version string, out *bytes.Buffer) stack.InstallOptions {
	relay, layers := assets(t, version)
	return stack.InstallOptions{Name: name, RelayZip: relay, LayerZips: layers, Out: out, PollInterval: 20 * time.Millisecond}
}

func accountOf(t *testing.T, cfg aws.Config) string {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	return aws.ToString(out.Account)
}

func s3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

func TestInstallCreatesWhatMotoCanCreate(t *testing.T) {
	s := moto.Start(t)
	cfg := s.Config()
	ctx := context.Background()
	var out bytes.Buffer
	info, err := stack.Install(ctx, cfg, options(t, "t-create", "v1", &out))
	require.NoError(t, err, out.String())
	t.Log(out.String())
	assert.Equal(t, "CREATE_COMPLETE", info.Status)
	assert.Equal(t, "t-create", info.Name)
	assert.Equal(t, stack.BucketName("t-create", accountOf(t, cfg), moto.Region), info.Bucket)
	t.Logf("%+v", info.Outputs)
}

var (
	_ = strings.Contains
	_ = cloudformation.NewFromConfig
	_ = dynamodb.NewFromConfig
	_ = iam.NewFromConfig
	_ = lambda.NewFromConfig
)

package stack_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamodbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/install"
	"github.com/plldb/plldb/cloud/stack"
	"github.com/plldb/plldb/cloud/store"
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

func options(t *testing.T, name, version string, out io.Writer) stack.InstallOptions {
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

func stackResource(t *testing.T, cfg aws.Config, stackName, logical string) string {
	t.Helper()
	out, err := cloudformation.NewFromConfig(cfg).DescribeStackResource(context.Background(), &cloudformation.DescribeStackResourceInput{
		StackName: aws.String(stackName), LogicalResourceId: aws.String(logical),
	})
	require.NoError(t, err, logical)
	return aws.ToString(out.StackResourceDetail.PhysicalResourceId)
}

// requireInstalledOnMoto checks the one way an install on moto fails: moto's CloudFormation creates no
// AWS::ApiGatewayV2 resources, so the stack settles with an unresolved relay URL (and layer ARNs printed as
// Python objects), which Install reports as unusable outputs rather than as success.
func requireInstalledOnMoto(t *testing.T, err error, out string) {
	t.Helper()
	var oe *install.OutputsError
	require.ErrorAs(t, err, &oe, out)
	assert.True(t, oe.WebSocketAPI, err.Error())
	assert.Contains(t, err.Error(), "did not create the relay's WebSocket API")
	assert.Contains(t, err.Error(), "moto")
	assert.NotContains(t, out, "installed \"", "no success is reported")
}

func TestInstallCreatesWhatMotoCanCreate(t *testing.T) {
	s := moto.Start(t)
	cfg := s.Config()
	ctx := context.Background()
	var out bytes.Buffer
	info, err := stack.Install(ctx, cfg, options(t, "t-create", "v1", &out))
	requireInstalledOnMoto(t, err, out.String())
	assert.Equal(t, "CREATE_COMPLETE", info.Status)
	assert.Equal(t, "t-create", info.Name)
	assert.Equal(t, "t-create", info.StackName)
	bucket := stack.BucketName("t-create", accountOf(t, cfg), moto.Region)
	assert.Equal(t, bucket, info.Bucket)

	// The assets bucket holds the three content-addressed zips, and is private.
	objs, err := s3Client(cfg).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	require.Len(t, objs.Contents, 3)
	for _, o := range objs.Contents {
		assert.Regexp(t, `^assets/[0-9a-f]{64}\.zip$`, aws.ToString(o.Key))
	}
	pab, err := s3Client(cfg).GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	assert.True(t, aws.ToBool(pab.PublicAccessBlockConfiguration.BlockPublicAcls))

	// Tables exactly as cloud/store defines them (moto's CloudFormation ignores TimeToLiveSpecification; the
	// template test checks it).
	db := dynamodb.NewFromConfig(cfg)
	want := store.CreateTableInputs(store.DefaultTables("t-create"))
	for i, table := range []string{"sessions", "connections", "tickets", "claims"} {
		name := "t-create-" + table
		d, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		require.NoError(t, err, name)
		assert.Equal(t, aws.ToString(want[i].TableName), name)
		assert.Equal(t, keyNames(want[i].KeySchema), keyNames(d.Table.KeySchema), name)
		require.Len(t, d.Table.GlobalSecondaryIndexes, len(want[i].GlobalSecondaryIndexes), name)
		for j, gsi := range want[i].GlobalSecondaryIndexes {
			got := d.Table.GlobalSecondaryIndexes[j]
			assert.Equal(t, aws.ToString(gsi.IndexName), aws.ToString(got.IndexName), name)
			assert.Equal(t, keyNames(gsi.KeySchema), keyNames(got.KeySchema), name)
		}
		assert.Equal(t, name, info.Outputs[strings.ToUpper(table[:1])+table[1:]+"Table"])
	}

	// One layer version per architecture. moto's CloudFormation names layers after the logical id and drops
	// CompatibleArchitectures, so both names are accepted and the architecture is not checked here.
	lc := lambda.NewFromConfig(cfg)
	layers, err := lc.ListLayers(ctx, &lambda.ListLayersInput{})
	require.NoError(t, err)
	for _, want := range []struct{ name, logical string }{{"t-create-x86_64", "t-create-LayerX86-"}, {"t-create-arm64", "t-create-LayerArm64-"}} {
		n := 0
		for _, l := range layers.Layers {
			name := aws.ToString(l.LayerName)
			if name == want.name || strings.HasPrefix(name, want.logical) {
				n++
				assert.EqualValues(t, 1, l.LatestMatchingVersion.Version, name)
			}
		}
		assert.Equal(t, 1, n, want.name)
	}

	// The relay function: Go on provided.al2023, told its tables, running as the relay role.
	fn, err := lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("t-create-relay")})
	require.NoError(t, err)
	assert.Equal(t, "provided.al2023", string(fn.Runtime))
	// (moto's CloudFormation drops Architectures; the template test checks arm64.)
	assert.Equal(t, "bootstrap", aws.ToString(fn.Handler))
	assert.Equal(t, "t-create-sessions", fn.Environment.Variables["PLLDB_SESSIONS_TABLE"])
	assert.Equal(t, "plldb:t-create", fn.Environment.Variables["PLLDB_AUDIENCE"])
	assert.Equal(t, aws.ToString(fn.FunctionArn), info.Outputs[install.OutputRelayFunctionArn])

	roleName := stackResource(t, cfg, "t-create", "RelayRole")
	role, err := iam.NewFromConfig(cfg).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(roleName)})
	require.NoError(t, err)
	assert.Equal(t, aws.ToString(role.Role.Arn), aws.ToString(fn.Role))
	pol, err := iam.NewFromConfig(cfg).GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(roleName), PolicyName: aws.String("relay")})
	require.NoError(t, err)
	assert.Contains(t, aws.ToString(pol.PolicyDocument), "execute-api")

	// Outputs and live output.
	for _, k := range []string{install.OutputWebSocketURL, install.OutputLayerX86Arn, install.OutputLayerArm64Arn, install.OutputAudience} {
		assert.NotEmpty(t, info.Outputs[k], k)
	}
	text := out.String()
	assert.Contains(t, text, "creating stack t-create")
	assert.Contains(t, text, "CREATE_COMPLETE")
	assert.Contains(t, text, stack.Progress(19, 19))
	assert.Contains(t, text, "RelayFunctionArn")
}

func TestReinstallIsIdempotent(t *testing.T) {
	s := moto.Start(t)
	cfg := s.Config()
	ctx := context.Background()
	var out bytes.Buffer
	opts := options(t, "t-again", "v1", &out)
	first, err := stack.Install(ctx, cfg, opts)
	requireInstalledOnMoto(t, err, out.String())

	out.Reset()
	second, err := stack.Install(ctx, cfg, opts)
	requireInstalledOnMoto(t, err, out.String())
	assert.Equal(t, first.StackID, second.StackID, "the same stack, not a new one")
	assert.Equal(t, first.Outputs, second.Outputs)
	assert.Equal(t, 3, strings.Count(out.String(), "unchanged"), out.String())
	assert.NotContains(t, out.String(), "uploaded")

	objs, err := s3Client(cfg).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(first.Bucket)})
	require.NoError(t, err)
	assert.Len(t, objs.Contents, 3)
	infos, err := stack.Status(ctx, cfg, stack.StatusOptions{})
	require.NoError(t, err)
	n := 0
	for _, i := range infos {
		if i.Name == "t-again" {
			n++
		}
	}
	assert.Equal(t, 1, n)
}

func TestInstallUpdatesChangedAssets(t *testing.T) {
	s := moto.Start(t)
	cfg := s.Config()
	ctx := context.Background()
	var out bytes.Buffer
	_, err := stack.Install(ctx, cfg, options(t, "t-update", "v1", &out))
	requireInstalledOnMoto(t, err, out.String())
	params := func() map[string]string {
		d, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("t-update")})
		require.NoError(t, err)
		m := map[string]string{}
		for _, p := range d.Stacks[0].Parameters {
			m[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
		}
		return m
	}
	before := params()

	out.Reset()
	info, err := stack.Install(ctx, cfg, options(t, "t-update", "v2", &out))
	requireInstalledOnMoto(t, err, out.String())
	assert.Equal(t, "UPDATE_COMPLETE", info.Status)
	assert.Contains(t, out.String(), "updating stack t-update")
	assert.Equal(t, 3, strings.Count(out.String(), "uploaded"), out.String())
	after := params()
	for _, k := range []string{"RelayCodeKey", "LayerX86Key", "LayerArm64Key"} {
		assert.NotEqual(t, before[k], after[k], k)
	}
	assert.Equal(t, before["InstallName"], after["InstallName"])
}

func TestUninstallLeavesNothing(t *testing.T) {
	s := moto.Start(t)
	cfg := s.Config()
	ctx := context.Background()
	var out bytes.Buffer
	info, err := stack.Install(ctx, cfg, options(t, "t-remove", "v1", &out))
	requireInstalledOnMoto(t, err, out.String())

	out.Reset()
	opts := stack.UninstallOptions{Name: "t-remove", Out: &out, PollInterval: 20 * time.Millisecond}
	require.NoError(t, stack.Uninstall(ctx, cfg, opts), out.String())
	assert.Contains(t, out.String(), "deleted bucket "+info.Bucket)

	_, err = cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("t-remove")})
	require.Error(t, err, "the stack is gone")
	_, err = s3Client(cfg).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(info.Bucket)})
	require.Error(t, err, "the bucket is gone")
	tables, err := dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{})
	require.NoError(t, err)
	for _, name := range tables.TableNames {
		assert.False(t, strings.HasPrefix(name, "t-remove-"), name)
	}
	_, err = lambda.NewFromConfig(cfg).GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("t-remove-relay")})
	require.Error(t, err, "the relay function is gone")
	infos, err := stack.Status(ctx, cfg, stack.StatusOptions{})
	require.NoError(t, err)
	for _, i := range infos {
		assert.NotEqual(t, "t-remove", i.Name)
	}

	// Uninstalling what is not there is fine.
	out.Reset()
	require.NoError(t, stack.Uninstall(ctx, cfg, opts))
	assert.Contains(t, out.String(), "no stack t-remove")
	assert.Contains(t, out.String(), "no bucket")
}

func TestStatusListsInstallsAndCallsTheHook(t *testing.T) {
	s := moto.Start(t)
	cfg := s.Config()
	ctx := context.Background()
	for _, name := range []string{"t-status-a", "t-status-b"} {
		_, err := stack.Install(ctx, cfg, options(t, name, "v1", nil))
		requireInstalledOnMoto(t, err, "")
	}
	var out bytes.Buffer
	var hooked []string
	infos, err := stack.Status(ctx, cfg, stack.StatusOptions{Out: &out, Hook: func(_ context.Context, _ aws.Config, inst stack.Info, w io.Writer) error {
		hooked = append(hooked, inst.Name)
		_, err := io.WriteString(w, "  sessions: none\n")
		return err
	}})
	require.NoError(t, err)
	byName := map[string]stack.Info{}
	for _, i := range infos {
		byName[i.Name] = i
	}
	require.Contains(t, byName, "t-status-a")
	require.Contains(t, byName, "t-status-b")
	assert.Equal(t, "t-status-b-sessions", byName["t-status-b"].Outputs[install.OutputSessionsTable])
	assert.Contains(t, hooked, "t-status-a")
	assert.Contains(t, hooked, "t-status-b")
	assert.Contains(t, out.String(), "t-status-a: stack t-status-a, CREATE_COMPLETE")
	assert.Contains(t, out.String(), "sessions: none")

	// A failing hook is reported with the install's name.
	_, err = stack.Status(ctx, cfg, stack.StatusOptions{Hook: func(context.Context, aws.Config, stack.Info, io.Writer) error {
		return errors.New("table unreachable")
	}})
	require.ErrorContains(t, err, "table unreachable")
}

// A stack of the same name that plldb did not create is neither updated nor deleted.
func TestForeignStackIsLeftAlone(t *testing.T) {
	s := moto.Start(t)
	cfg := s.Config()
	ctx := context.Background()
	cfn := cloudformation.NewFromConfig(cfg)
	_, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName:    aws.String("t-foreign"),
		TemplateBody: aws.String(`{"Resources":{"Topic":{"Type":"AWS::SNS::Topic"}}}`),
	})
	require.NoError(t, err)
	_, err = stack.Install(ctx, cfg, options(t, "t-foreign", "v1", nil))
	require.ErrorContains(t, err, "not a plldb install")
	err = stack.Uninstall(ctx, cfg, stack.UninstallOptions{Name: "t-foreign"})
	require.ErrorContains(t, err, "not a plldb install")
	d, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("t-foreign")})
	require.NoError(t, err)
	assert.Equal(t, "CREATE_COMPLETE", string(d.Stacks[0].StackStatus))
}

// Bad input is refused before any AWS call: the endpoint below answers nothing.
func TestBadInputIsAClearError(t *testing.T) {
	ctx := context.Background()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1")}
	relay, layers := assets(t, "v1")
	dir := t.TempDir()
	notZip := filepath.Join(dir, "not.zip")
	require.NoError(t, os.WriteFile(notZip, []byte("hello"), 0o644))
	noBootstrap := writeZip(t, dir, "empty.zip", map[string]string{"README": "x"})

	cases := []struct {
		name string
		edit func(o *stack.InstallOptions)
		want string
	}{
		{"bad name", func(o *stack.InstallOptions) { o.Name = "My_Install" }, `invalid install name "My_Install"`},
		{"long name", func(o *stack.InstallOptions) { o.Name = strings.Repeat("a", 25) }, "invalid install name"},
		{"bad region", func(o *stack.InstallOptions) { o.Region = "useast1" }, `invalid AWS region "useast1"`},
		{"upper region", func(o *stack.InstallOptions) { o.Region = "US-EAST-1" }, "invalid AWS region"},
		{"no layers", func(o *stack.InstallOptions) { o.LayerZips = nil }, "no x86_64 layer zip given (make layer builds build/layer-x86_64.zip)"},
		{"no arm64 layer", func(o *stack.InstallOptions) { delete(o.LayerZips, stack.ArchArm64) }, "no arm64 layer zip given"},
		{"missing layer file", func(o *stack.InstallOptions) { o.LayerZips[stack.ArchX86] = filepath.Join(dir, "nope.zip") }, "read x86_64 layer zip"},
		{"unknown arch", func(o *stack.InstallOptions) { o.LayerZips["riscv64"] = notZip }, `unknown layer architecture "riscv64"`},
		{"no relay", func(o *stack.InstallOptions) { o.RelayZip = "" }, "no relay code zip given"},
		{"relay not a zip", func(o *stack.InstallOptions) { o.RelayZip = notZip }, "not a zip file"},
		{"relay without bootstrap", func(o *stack.InstallOptions) { o.RelayZip = noBootstrap }, "has no bootstrap"},
		{"layer without wrapper", func(o *stack.InstallOptions) { o.LayerZips[stack.ArchArm64] = noBootstrap }, "has no plldb/wrapper"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := stack.InstallOptions{Name: "t-bad", RelayZip: relay, LayerZips: map[string]string{}}
			for k, v := range layers {
				o.LayerZips[k] = v
			}
			c.edit(&o)
			_, err := stack.Install(ctx, cfg, o)
			require.ErrorContains(t, err, c.want)
		})
	}
	_, err := stack.Install(ctx, aws.Config{}, stack.InstallOptions{RelayZip: relay, LayerZips: layers})
	require.ErrorContains(t, err, "no AWS region")
	require.ErrorContains(t, stack.Uninstall(ctx, cfg, stack.UninstallOptions{Name: "-x"}), "invalid install name")
	require.ErrorContains(t, stack.Uninstall(ctx, cfg, stack.UninstallOptions{Region: "mars"}), "invalid AWS region")
	_, err = stack.Status(ctx, cfg, stack.StatusOptions{Region: "eu_west_1"})
	require.ErrorContains(t, err, "invalid AWS region")
}

func TestValidNames(t *testing.T) {
	for _, n := range []string{"plldb", "a", "team-a-dev", "x1", strings.Repeat("a", 24)} {
		assert.NoError(t, stack.ValidateName(n), n)
	}
	for _, n := range []string{"", "-a", "a-", "A", "a_b", "a.b", "1abc", strings.Repeat("a", 25)} {
		assert.Error(t, stack.ValidateName(n), n)
	}
	assert.LessOrEqual(t, len(stack.BucketName(strings.Repeat("a", 24), "123456789012", "ap-southeast-2")), 63)
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

func keyNames(ks []dynamodbtypes.KeySchemaElement) []string {
	var out []string
	for _, k := range ks {
		out = append(out, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	return out
}

package stack_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/install"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/stack"
	"github.com/plldb/plldb/testfixtures/awsharness"
)

// TestUninstallRefusesWhileAFunctionIsInstrumented: uninstalling deletes the claims table, the only copy of an
// attached function's configuration, so it is refused, naming the session, its owner and its functions, until
// --force restores the functions first.
func TestUninstallRefusesWhileAFunctionIsInstrumented(t *testing.T) {
	h := awsharness.New(t, awsharness.Options{})
	ctx := context.Background()
	fns := h.DeployStack(t, "app-"+h.Install.Name, []awsharness.Function{{LogicalID: "Orders", CodeDir: t.TempDir(), Env: map[string]string{"A": "1"}, Timeout: 7}})
	orders := fns["Orders"]
	before := h.Settings(t, orders.Name)
	require.NoError(t, h.Store.PutSession(ctx, relay.NewSession("s-busy", "alice@laptop", time.Now().Add(time.Hour))))
	in := &instrument.Instrumenter{Lambda: h.Lambda, Claims: h.Store, Layers: h.Install.Layers}
	_, err := in.Instrument(ctx, instrument.Session{ID: "s-busy", Owner: "alice@laptop", Endpoint: h.Install.WebSocketURL},
		[]instrument.Target{{StackFunction: instrument.StackFunction{LogicalID: "Orders", Name: orders.Name, ARN: orders.ARN}, Key: make([]byte, 32)}})
	require.NoError(t, err)
	attached := h.Settings(t, orders.Name)

	var out bytes.Buffer
	opts := stack.UninstallOptions{Name: h.Install.Name, Out: &out, PollInterval: 20 * time.Millisecond}
	err = stack.Uninstall(ctx, h.AWS, opts)
	var inUse *stack.InUseError
	require.ErrorAs(t, err, &inUse)
	for _, w := range []string{"s-busy", "alice@laptop", orders.Name, "nothing was changed", "plldb detach", "--force"} {
		assert.Contains(t, err.Error(), w)
	}
	_, err = install.Load(ctx, h.AWS, h.Install.Name)
	require.NoError(t, err, "the install's stack is still there")
	_, held, err := h.Store.GetSnapshot(ctx, orders.ARN)
	require.NoError(t, err)
	assert.True(t, held, "the saved configuration is still there")
	assert.Equal(t, attached, h.Settings(t, orders.Name))

	out.Reset()
	opts.Force = true
	require.NoError(t, stack.Uninstall(ctx, h.AWS, opts), out.String())
	assert.Contains(t, out.String(), "restore "+orders.Name+": restored")
	assert.Equal(t, before, h.Settings(t, orders.Name), "restored before the install went")
	tags, err := h.Lambda.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(orders.ARN)})
	require.NoError(t, err)
	assert.NotContains(t, tags.Tags, instrument.SessionTag)
	_, err = cloudformation.NewFromConfig(h.AWS).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(install.StackName(h.Install.Name))})
	require.Error(t, err, "the install's stack is gone")
}

// A live session with no function yet (attach in progress) also holds the install.
func TestUninstallRefusesWhileASessionIsLive(t *testing.T) {
	h := awsharness.New(t, awsharness.Options{})
	ctx := context.Background()
	require.NoError(t, h.Store.PutSession(ctx, relay.NewSession("s-starting", "bob@desk", time.Now().Add(time.Hour))))
	err := stack.Uninstall(ctx, h.AWS, stack.UninstallOptions{Name: h.Install.Name, PollInterval: 20 * time.Millisecond})
	var inUse *stack.InUseError
	require.ErrorAs(t, err, &inUse)
	assert.Contains(t, err.Error(), "session s-starting of bob@desk")
	assert.Contains(t, err.Error(), "no functions")
}

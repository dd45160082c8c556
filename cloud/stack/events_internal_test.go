package stack

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func event(id, logical, kind string, st cfntypes.ResourceStatus, reason string) cfntypes.StackEvent {
	return cfntypes.StackEvent{
		EventId: aws.String(id), LogicalResourceId: aws.String(logical), ResourceType: aws.String(kind),
		ResourceStatus: st, ResourceStatusReason: aws.String(reason),
		Timestamp: aws.Time(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
	}
}

func TestWatcherPrintsEventsAndProgress(t *testing.T) {
	var out bytes.Buffer
	w := newWatcher(nil, "s", &out, time.Millisecond, 3)
	w.show([]cfntypes.StackEvent{
		event("1", "s", "AWS::CloudFormation::Stack", cfntypes.ResourceStatusCreateInProgress, "User Initiated"),
		event("2", "Table", "AWS::DynamoDB::Table", cfntypes.ResourceStatusCreateInProgress, ""),
	})
	w.show([]cfntypes.StackEvent{
		event("3", "Table", "AWS::DynamoDB::Table", cfntypes.ResourceStatusCreateComplete, ""),
		event("4", "Fn", "AWS::Lambda::Function", cfntypes.ResourceStatusCreateFailed, "Role is invalid"),
	})
	w.show(nil) // nothing new: no repeated bar
	w.finish(false)

	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	require.Len(t, lines, 6, out.String())
	assert.Equal(t, "  03:04:05  CREATE_IN_PROGRESS   AWS::CloudFormation::Stack       s  User Initiated", lines[0])
	assert.Contains(t, lines[1], "AWS::DynamoDB::Table")
	assert.Equal(t, Progress(0, 3), lines[2])
	assert.Contains(t, lines[3], "CREATE_COMPLETE")
	assert.Contains(t, lines[4], "Role is invalid")
	assert.Equal(t, Progress(1, 3), lines[5])
	assert.Equal(t, "[##########....................] 1/3 resources", lines[5])
}

func TestWatcherOnATerminalRedrawsTheBar(t *testing.T) {
	var out bytes.Buffer
	w := newWatcher(nil, "s", &out, time.Millisecond, 2)
	w.tty = true
	w.show([]cfntypes.StackEvent{event("1", "A", "AWS::SNS::Topic", cfntypes.ResourceStatusCreateComplete, "")})
	w.show([]cfntypes.StackEvent{event("2", "B", "AWS::SNS::Topic", cfntypes.ResourceStatusCreateComplete, "")})
	w.finish(true)
	s := out.String()
	assert.Contains(t, s, "\r\033[K"+Progress(1, 2))
	assert.Contains(t, s, "\r\033[K"+Progress(2, 2)+"\n")
	// Each event line clears the bar before it is printed.
	assert.Contains(t, s, Progress(1, 2)+"\r\033[K  03:04:05")
}

func TestProgress(t *testing.T) {
	assert.Equal(t, "[..............................] 0/17 resources", Progress(0, 17))
	assert.Equal(t, "[##############################] 17/17 resources", Progress(17, 17))
	assert.Equal(t, "[##############################] 0/0 resources", Progress(0, 0))
	assert.Equal(t, "[##############################] 20/10 resources", Progress(20, 10))
}

func TestResourceCount(t *testing.T) {
	n, err := resourceCount(Template)
	require.NoError(t, err)
	assert.Equal(t, 19, n)
	_, err = resourceCount("Outputs: {}")
	require.ErrorContains(t, err, "no Resources")
	_, err = resourceCount("[")
	require.Error(t, err)
}

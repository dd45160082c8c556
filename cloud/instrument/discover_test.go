package instrument_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/instrument"
)

// pagedStacks cuts moto's ListStackResources answers into pages of size entries with NextToken, as
// CloudFormation does past 100 resources; moto itself always answers in one page.
type pagedStacks struct {
	*cloudformation.Client
	size int

	mu    sync.Mutex
	pages map[string]int // stack → pages served
}

func (p *pagedStacks) ListStackResources(ctx context.Context, in *cloudformation.ListStackResourcesInput, optFns ...func(*cloudformation.Options)) (*cloudformation.ListStackResourcesOutput, error) {
	all, err := p.Client.ListStackResources(ctx, &cloudformation.ListStackResourcesInput{StackName: in.StackName}, optFns...)
	if err != nil {
		return nil, err
	}
	start := 0
	if in.NextToken != nil {
		if start, err = strconv.Atoi(*in.NextToken); err != nil {
			return nil, fmt.Errorf("bad token %q", *in.NextToken)
		}
	}
	end := min(start+p.size, len(all.StackResourceSummaries))
	out := &cloudformation.ListStackResourcesOutput{StackResourceSummaries: all.StackResourceSummaries[start:end]}
	if end < len(all.StackResourceSummaries) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	p.mu.Lock()
	p.pages[aws.ToString(in.StackName)]++
	p.mu.Unlock()
	return out, nil
}

func functionYAML(logical, name string) string {
	return fmt.Sprintf(`
  %s:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: %s
      Runtime: python3.12
      Handler: index.handler
      Role: %s
      Code:
        ZipFile: |
          def handler(event, context):
              return event
`, logical, name, testRole)
}

func TestListFunctionsPaginatesAndFollowsNestedStacks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := e.srv.Config()
	cfn := cloudformation.NewFromConfig(cfg)
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })

	bucket := strings.ToLower(unique(t, "tpl"))
	_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	names := map[string]string{}
	name := func(logical string) string {
		names[logical] = strings.ToLower(unique(t, logical))
		return names[logical]
	}
	nested := "Resources:" + functionYAML("OrdersFunction", name("Api/OrdersFunction")) + functionYAML("UsersFunction", name("Api/UsersFunction"))
	_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("api.yaml"), Body: strings.NewReader(nested)})
	require.NoError(t, err)

	root := "Resources:"
	for i := range 5 {
		logical := fmt.Sprintf("Worker%d", i)
		root += functionYAML(logical, name(logical))
	}
	root += fmt.Sprintf(`
  Assets:
    Type: AWS::S3::Bucket
  Api:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: https://%s.s3.amazonaws.com/api.yaml
`, bucket)
	stack := unique(t, "stack")
	_, err = cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(stack), TemplateBody: aws.String(root)})
	require.NoError(t, err)

	paged := &pagedStacks{Client: cfn, size: 2, pages: map[string]int{}}
	got, err := instrument.ListFunctions(ctx, paged, stack)
	require.NoError(t, err)

	var logical []string
	for _, f := range got {
		logical = append(logical, f.LogicalID)
		assert.Equal(t, names[f.LogicalID], f.Name, f.LogicalID)
		assert.Equal(t, "arn:aws:lambda:us-east-1:123456789012:function:"+f.Name, f.ARN)
		c := e.config(f.ARN)
		assert.Equal(t, f.Name, aws.ToString(c.FunctionName), "the ARN names the real function")
	}
	assert.Equal(t, []string{"Api/OrdersFunction", "Api/UsersFunction", "Worker0", "Worker1", "Worker2", "Worker3", "Worker4"}, logical)
	assert.Equal(t, 4, paged.pages[stack], "7 root resources in pages of 2")
	assert.Len(t, paged.pages, 2, "the nested stack was listed too")

	_, err = instrument.ListFunctions(ctx, paged, unique(t, "missing"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "describe stack")
	_, err = instrument.ListFunctions(ctx, paged, " ")
	require.Error(t, err)
}

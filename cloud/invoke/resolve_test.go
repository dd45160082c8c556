package invoke_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/invoke"
	"github.com/plldb/plldb/testfixtures/moto"
)

const role = "arn:aws:iam::123456789012:role/plldb-invoke-resolve"

func fnYAML(logical, name string) string {
	return fmt.Sprintf(`
  %s:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: %s
      Runtime: python3.12
      Handler: index.handler
      Role: %s
      Code:
        ZipFile: "def handler(event, context): return event"
`, logical, name, role)
}

// TestResolve finds functions of a stack deployed on moto, nested stacks included, the way a developer names
// them.
func TestResolve(t *testing.T) {
	srv := moto.Start(t)
	cfg := srv.Config()
	ctx := context.Background()
	_, _ = iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String("plldb-invoke-resolve"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
	})
	id := fmt.Sprint(time.Now().UnixNano())
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	bucket := "resolve-" + id
	_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	for _, nested := range []string{"api", "admin"} {
		body := "Resources:" + fnYAML("OrdersFunction", nested+"-orders-"+id)
		if nested == "api" {
			body += fnYAML("UsersFunction", "users-"+id)
		}
		_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(nested + ".yaml"), Body: strings.NewReader(body)})
		require.NoError(t, err)
	}
	root := "Resources:" + fnYAML("Worker", "worker-"+id) + fmt.Sprintf(`
  Api:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: https://%[1]s.s3.amazonaws.com/api.yaml
  Admin:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: https://%[1]s.s3.amazonaws.com/admin.yaml
`, bucket)
	cfn := cloudformation.NewFromConfig(cfg)
	stack := "resolve-" + id
	_, err = cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(stack), TemplateBody: aws.String(root)})
	require.NoError(t, err)
	arn := func(name string) string { return "arn:aws:lambda:us-east-1:123456789012:function:" + name }

	for _, c := range []struct{ fn, want string }{
		{"Worker", arn("worker-" + id)},
		{"worker-" + id, arn("worker-" + id)},
		{"Api/OrdersFunction", arn("api-orders-" + id)},
		{"Admin/OrdersFunction", arn("admin-orders-" + id)},
		{"UsersFunction", arn("users-" + id)}, // only one nested stack has it
		{"arn:aws:lambda:eu-west-1:111111111111:function:elsewhere", "arn:aws:lambda:eu-west-1:111111111111:function:elsewhere"},
	} {
		got, err := invoke.Resolve(ctx, cfn, stack, c.fn)
		require.NoError(t, err, c.fn)
		assert.Equal(t, c.want, got, c.fn)
	}

	_, err = invoke.Resolve(ctx, cfn, stack, "OrdersFunction")
	require.Error(t, err)
	assert.Equal(t, "stack "+stack+" has 2 functions named OrdersFunction in nested stacks: name one of Admin/OrdersFunction, Api/OrdersFunction", err.Error())

	_, err = invoke.Resolve(ctx, cfn, stack, "Nope")
	require.Error(t, err)
	assert.Equal(t, "stack "+stack+" has no function Nope; its functions: Admin/OrdersFunction (admin-orders-"+id+"), Api/OrdersFunction (api-orders-"+id+
		"), Api/UsersFunction (users-"+id+"), Worker (worker-"+id+")", err.Error())

	empty := "resolve-empty-" + id
	_, err = cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(empty), TemplateBody: aws.String("Resources:\n  B:\n    Type: AWS::S3::Bucket\n")})
	require.NoError(t, err)
	_, err = invoke.Resolve(ctx, cfn, empty, "Worker")
	require.Error(t, err)
	assert.Equal(t, "stack "+empty+" has no Lambda functions", err.Error())
}

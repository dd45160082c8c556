package instrument

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// StackFunction is one AWS::Lambda::Function of a stack.
type StackFunction struct {
	// LogicalID is the resource's logical id, prefixed with the logical ids of the nested stacks it sits in
	// ("Api/OrdersFunction").
	LogicalID string
	Name      string // physical name
	ARN       string
}

// StackAPI is the part of the CloudFormation API that ListFunctions uses.
type StackAPI interface {
	cloudformation.ListStackResourcesAPIClient
	cloudformation.DescribeStacksAPIClient
}

// maxNesting bounds the recursion into nested stacks; CloudFormation itself has no cycles, but a broken or
// hostile answer must not make discovery run forever.
const maxNesting = 16

// ListFunctions lists the Lambda functions of a stack and of its nested stacks, sorted by logical id.
func ListFunctions(ctx context.Context, cfn StackAPI, stackName string) ([]StackFunction, error) {
	if strings.TrimSpace(stackName) == "" {
		return nil, errors.New("list functions: empty stack name")
	}
	desc, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stackName)})
	if err != nil {
		return nil, fmt.Errorf("describe stack %s: %w", stackName, err)
	}
	if len(desc.Stacks) == 0 {
		return nil, fmt.Errorf("describe stack %s: no such stack", stackName)
	}
	loc, err := parseStackARN(aws.ToString(desc.Stacks[0].StackId))
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", stackName, err)
	}
	var out []StackFunction
	seen := map[string]bool{}
	if err := listStack(ctx, cfn, stackName, "", loc, seen, 0, &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LogicalID < out[j].LogicalID })
	return out, nil
}

func listStack(ctx context.Context, cfn StackAPI, stack, prefix string, loc arnLocation, seen map[string]bool, depth int, out *[]StackFunction) error {
	if depth > maxNesting {
		return fmt.Errorf("stack %s: nested deeper than %d levels", stack, maxNesting)
	}
	if seen[stack] {
		return fmt.Errorf("stack %s: nested stacks form a cycle", stack)
	}
	seen[stack] = true
	p := cloudformation.NewListStackResourcesPaginator(cfn, &cloudformation.ListStackResourcesInput{StackName: aws.String(stack)})
	for page := 1; p.HasMorePages(); page++ {
		res, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list resources of stack %s (page %d): %w", stack, page, err)
		}
		for _, r := range res.StackResourceSummaries {
			logical, physical := aws.ToString(r.LogicalResourceId), aws.ToString(r.PhysicalResourceId)
			if physical == "" || strings.HasPrefix(string(r.ResourceStatus), "DELETE_") {
				// Not created yet, failed, or on its way out: there is no function to instrument.
				continue
			}
			switch aws.ToString(r.ResourceType) {
			case "AWS::Lambda::Function":
				name, arn := physical, loc.functionARN(physical)
				if strings.HasPrefix(physical, "arn:") {
					arn = physical
					name = physical[strings.LastIndex(physical, ":")+1:]
				}
				*out = append(*out, StackFunction{LogicalID: prefix + logical, Name: name, ARN: arn})
			case "AWS::CloudFormation::Stack":
				if err := listStack(ctx, cfn, physical, prefix+logical+"/", loc, seen, depth+1, out); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// arnLocation is where a stack lives, taken from its ARN, so that function ARNs can be built from the physical
// names ListStackResources returns.
type arnLocation struct{ partition, region, account string }

func (l arnLocation) functionARN(name string) string {
	return fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", l.partition, l.region, l.account, name)
}

// parseStackARN reads arn:PARTITION:cloudformation:REGION:ACCOUNT:stack/NAME/ID.
func parseStackARN(s string) (arnLocation, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "cloudformation" || !strings.HasPrefix(parts[5], "stack/") {
		return arnLocation{}, fmt.Errorf("stack id %q is not a CloudFormation stack ARN", s)
	}
	loc := arnLocation{partition: parts[1], region: parts[3], account: parts[4]}
	if loc.partition == "" || loc.region == "" || loc.account == "" {
		return arnLocation{}, fmt.Errorf("stack id %q lacks a partition, region or account", s)
	}
	for _, r := range loc.partition + loc.region + loc.account {
		if !(r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return arnLocation{}, fmt.Errorf("stack id %q has an unexpected character %q", s, r)
		}
	}
	return loc, nil
}

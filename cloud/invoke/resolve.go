package invoke

import (
	"context"
	"fmt"
	"strings"

	"github.com/plldb/plldb/cloud/instrument"
)

// Resolve finds the function fn names in a deployed stack: its logical id (nested ones as "Api/OrdersFunction",
// or just "OrdersFunction" when only one nested stack has it), its physical name, or its ARN. It returns what to
// pass as Lambda's FunctionName. An ARN is taken as it is without asking CloudFormation, since it already names
// one function of one account and region. A name the stack does not have is an error that lists the stack's
// functions: invoking a function of the same name outside the stack is never what a typo meant.
func Resolve(ctx context.Context, cfn instrument.StackAPI, stack, fn string) (string, error) {
	if strings.HasPrefix(fn, "arn:") {
		return fn, nil
	}
	fns, err := instrument.ListFunctions(ctx, cfn, stack)
	if err != nil {
		return "", err
	}
	for _, f := range fns {
		if f.LogicalID == fn || f.Name == fn {
			return f.ARN, nil
		}
	}
	var nested []instrument.StackFunction
	for _, f := range fns {
		if strings.HasSuffix(f.LogicalID, "/"+fn) {
			nested = append(nested, f)
		}
	}
	if len(nested) == 1 {
		return nested[0].ARN, nil
	}
	list := make([]string, 0, len(fns))
	for _, f := range fns {
		list = append(list, f.LogicalID+" ("+f.Name+")")
	}
	if len(nested) > 1 {
		ids := make([]string, 0, len(nested))
		for _, f := range nested {
			ids = append(ids, f.LogicalID)
		}
		return "", fmt.Errorf("stack %s has %d functions named %s in nested stacks: name one of %s", stack, len(nested), fn, strings.Join(ids, ", "))
	}
	if len(list) == 0 {
		return "", fmt.Errorf("stack %s has no Lambda functions", stack)
	}
	return "", fmt.Errorf("stack %s has no function %s; its functions: %s", stack, fn, strings.Join(list, ", "))
}

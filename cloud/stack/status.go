package stack

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// StatusHook prints what one install knows beyond its stack: live sessions and instrumented functions (read
// from the install's tables by cloud/store, which plugs in here).
type StatusHook func(ctx context.Context, cfg aws.Config, inst Info, out io.Writer) error

// StatusOptions say where to look and what to print.
type StatusOptions struct {
	Region string
	Out    io.Writer  // nil: print nothing, just return the installs
	Hook   StatusHook // optional: sessions and instrumented functions of each install
}

// Status lists the installs in the region (stacks tagged InstallTag) with their outputs.
func Status(ctx context.Context, cfg aws.Config, o StatusOptions) ([]Info, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	cfg, err := regionOf(cfg, o.Region)
	if err != nil {
		return nil, err
	}
	c := newClients(cfg)
	var infos []Info
	p := cloudformation.NewDescribeStacksPaginator(c.cfn, &cloudformation.DescribeStacksInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list stacks in %s: %w", cfg.Region, err)
		}
		for _, s := range page.Stacks {
			if tagValue(s.Tags, InstallTag) == "" || s.StackStatus == "DELETE_COMPLETE" {
				continue
			}
			infos = append(infos, infoOf(s))
		}
	}
	if len(infos) == 0 {
		fmt.Fprintf(out, "no plldb installs in %s\n", cfg.Region)
	}
	for _, inst := range infos {
		fmt.Fprintf(out, "%s: stack %s, %s, updated %s\n", inst.Name, inst.StackName, inst.Status, inst.Updated.UTC().Format("2006-01-02 15:04:05Z"))
		printOutputs(out, inst.Outputs)
		if o.Hook != nil {
			if err := o.Hook(ctx, cfg, inst, out); err != nil {
				return infos, fmt.Errorf("status of install %s: %w", inst.Name, err)
			}
		}
	}
	return infos, nil
}

package stack

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/plldb/plldb/cloud/awsconfig"
)

// clients are the service clients one operation uses.
type clients struct {
	cfn *cloudformation.Client
	s3  *s3.Client
	sts *sts.Client
}

func newClients(cfg aws.Config) clients {
	return clients{
		cfn: cloudformation.NewFromConfig(cfg),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			// An endpoint override (moto, LocalStack) serves buckets by path, not by virtual host.
			o.UsePathStyle = o.UsePathStyle || cfg.BaseEndpoint != nil
		}),
		sts: sts.NewFromConfig(cfg),
	}
}

// regionOf applies an explicit region to cfg and checks the result.
func regionOf(cfg aws.Config, region string) (aws.Config, error) {
	if region != "" {
		cfg.Region = region
	}
	if err := awsconfig.ValidateRegion(cfg.Region); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func account(ctx context.Context, c clients) (string, error) {
	out, err := c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("find the AWS account (sts GetCallerIdentity): %w", err)
	}
	return aws.ToString(out.Account), nil
}

package stack

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ConfigOptions are the CLI's AWS flags. Empty fields leave the SDK's default chain (environment, shared config
// and credentials files, SSO, instance roles) in charge; AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> are
// honoured by the SDK itself.
type ConfigOptions struct {
	Profile     string // --profile
	Region      string // --region
	EndpointURL string // --endpoint-url: one endpoint for every service (moto, LocalStack)
}

// LoadConfig loads the AWS configuration from the SDK's default chain with the CLI's overrides.
func LoadConfig(ctx context.Context, o ConfigOptions) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Region != "" {
		if err := ValidateRegion(o.Region); err != nil {
			return aws.Config{}, err
		}
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.EndpointURL != "" {
		opts = append(opts, config.WithBaseEndpoint(o.EndpointURL))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

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
	if err := ValidateRegion(cfg.Region); err != nil {
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

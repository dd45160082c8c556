// Package awsconfig loads the AWS SDK configuration the way the AWS CLI does: the SDK's default chain
// (environment, shared config and credentials files, SSO, instance roles) with the CLI's --profile, --region and
// --endpoint-url on top. It is its own package so that everything that talks to AWS (the installer, attach, the
// DAP adapter's AWS mode) loads credentials one way without linking each other.
package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
)

// Options are the CLI's AWS flags. Empty fields leave the SDK's default chain in charge; AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> are honoured by the SDK itself.
type Options struct {
	Profile     string // --profile
	Region      string // --region
	EndpointURL string // --endpoint-url: one endpoint for every service (moto, LocalStack)
}

// Load loads the AWS configuration from the SDK's default chain with the CLI's overrides.
func Load(ctx context.Context, o Options) (aws.Config, error) {
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

// DeveloperCredentials is the developer's credential provider from the SDK's default chain (environment,
// shared config and credentials files, SSO, credential_process, container and instance roles), with profile on
// top: what `plldb local` gives handlers, as Lambda gives them their execution role's. Nothing is resolved yet
// (the caller does, once, and again when they expire); an explicit profile that does not exist is an error.
// The SDK's own log lines (IMDS fallbacks) are dropped: the caller says once whether credentials resolved.
// Connections are not kept alive: credentials are fetched at start and then once an hour or so, and an idle
// connection to the metadata service or an SSO portal would only outlive the session that made it.
func DeveloperCredentials(ctx context.Context, profile string) (aws.CredentialsProvider, error) {
	client := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.DisableKeepAlives = true })
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{}), config.WithHTTPClient(client)}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load your AWS credentials (profile %q): %w", profile, err)
	}
	return cfg.Credentials, nil
}

// Regions look like us-east-1, eu-central-2, us-gov-west-1, ap-southeast-7.
var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

// ValidateRegion says why region is not an AWS region name, or returns nil.
func ValidateRegion(region string) error {
	if region == "" {
		return errors.New("no AWS region: pass --region or set AWS_REGION (or a region in your AWS profile)")
	}
	if !regionRE.MatchString(region) {
		return fmt.Errorf("invalid AWS region %q: expected a name like us-east-1", region)
	}
	return nil
}

// Where is "region R of account A", for messages about something not found, so that a wrong --region or
// --profile shows. The account comes from sts GetCallerIdentity and is left out when that call fails.
func Where(ctx context.Context, cfg aws.Config) string {
	region := cfg.Region
	if region == "" {
		region = "(none)"
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) == "" {
		return "region " + region
	}
	return "region " + region + " of account " + aws.ToString(id.Account)
}

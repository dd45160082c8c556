// Package stack installs, updates, lists and removes plldb's helper stack: the CloudFormation stack (template
// embedded in the binary) that holds the WebSocket relay, its DynamoDB tables, the plldb layer versions and
// least-privilege IAM, plus the assets bucket the stack's code comes from. Several installs, told apart by their
// name, can live in one account and region.
package stack

import (
	_ "embed"
	"fmt"
	"regexp"
	"time"
)

// Template is the helper stack's CloudFormation template. Its parameters are InstallName, AssetsBucket,
// RelayCodeKey, LayerX86Key and LayerArm64Key (plus StageName and LogRetentionDays with defaults).
//
//go:embed template.yaml
var Template string

// InstallTag tags the stack and the bucket of an install; its value is the install name. Status finds installs
// by it.
const InstallTag = "plldb:install"

// Lambda architectures, the keys of InstallOptions.LayerZips.
const (
	ArchX86   = "x86_64"
	ArchArm64 = "arm64"
)

// DefaultPollInterval is how often stack events are fetched while a stack operation runs.
const DefaultPollInterval = 2 * time.Second

// Info describes one install.
type Info struct {
	Name      string // install name
	StackName string
	StackID   string
	Status    string // CloudFormation stack status, e.g. CREATE_COMPLETE
	Bucket    string // assets bucket ("" when unknown, e.g. in Status)
	Outputs   map[string]string
	Updated   time.Time
}

// The install name prefixes bucket, table, function and layer names: lowercase so it is a valid bucket name,
// short so "<name>-assets-<account>-<region>" stays within S3's 63 characters.
var nameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,22}[a-z0-9])?$`)

// ValidateName says why name cannot be an install name, or returns nil.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid install name %q: use 1 to 24 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen", name)
	}
	return nil
}

// BucketName is the assets bucket of an install: bucket names are global, so account and region make it unique.
func BucketName(name, account, region string) string {
	return fmt.Sprintf("%s-assets-%s-%s", name, account, region)
}

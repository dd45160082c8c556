package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/plldb/plldb/cloud/install"
)

// InstallOptions say what to install where.
type InstallOptions struct {
	Name         string            // install name; default install.DefaultName
	Region       string            // overrides the config's region when set
	LayerZips    map[string]string // ArchX86 and ArchArm64 → layer zip (make layer: build/layer-<arch>.zip)
	RelayZip     string            // relay Lambda zip (BuildRelayZip)
	Out          io.Writer         // live stack events, progress and outputs; nil discards
	PollInterval time.Duration     // how often events are fetched; default DefaultPollInterval
}

// Install creates the assets bucket, uploads the relay code and the layers, and creates or updates the helper
// stack, streaming its events to Out until it settles. Running it again with the same assets changes nothing.
// A stack that settles with outputs no session can use (install.FromOutputs) is reported with an error wrapping
// an *install.OutputsError; the Info is returned with it, and the stack stays for plldb uninstall.
func Install(ctx context.Context, cfg aws.Config, o InstallOptions) (Info, error) {
	if o.Name == "" {
		o.Name = install.DefaultName
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	if err := ValidateName(o.Name); err != nil {
		return Info{}, err
	}
	cfg, err := regionOf(cfg, o.Region)
	if err != nil {
		return Info{}, err
	}
	for arch := range o.LayerZips {
		if arch != ArchX86 && arch != ArchArm64 {
			return Info{}, fmt.Errorf("unknown layer architecture %q: Lambda has %s and %s", arch, ArchX86, ArchArm64)
		}
	}
	var assets []asset
	for _, a := range []struct{ what, path, want string }{
		{"relay code", o.RelayZip, "bootstrap"},
		{ArchX86 + " layer", o.LayerZips[ArchX86], "plldb/wrapper"},
		{ArchArm64 + " layer", o.LayerZips[ArchArm64], "plldb/wrapper"},
	} {
		as, err := readAsset(a.what, a.path, a.want)
		if err != nil {
			if a.path == "" && a.want == "plldb/wrapper" {
				return Info{}, fmt.Errorf("%w (make layer builds build/layer-%s.zip)", err, strings.TrimSuffix(a.what, " layer"))
			}
			return Info{}, err
		}
		assets = append(assets, as)
	}
	total, err := resourceCount(Template)
	if err != nil {
		return Info{}, err
	}

	c := newClients(cfg)
	acct, err := account(ctx, c)
	if err != nil {
		return Info{}, err
	}
	bucket := BucketName(o.Name, acct, cfg.Region)
	fmt.Fprintf(out, "plldb install %q in %s (account %s)\n", o.Name, cfg.Region, acct)
	if err := ensureBucket(ctx, c, bucket, cfg.Region, o.Name); err != nil {
		return Info{}, err
	}
	for _, a := range assets {
		put, err := upload(ctx, c, bucket, a)
		if err != nil {
			return Info{}, err
		}
		verb := "unchanged"
		if put {
			verb = "uploaded"
		}
		fmt.Fprintf(out, "  %-9s %-14s s3://%s/%s\n", verb, a.what, bucket, a.key)
	}

	params := []cfntypes.Parameter{
		{ParameterKey: aws.String("InstallName"), ParameterValue: aws.String(o.Name)},
		{ParameterKey: aws.String("AssetsBucket"), ParameterValue: aws.String(bucket)},
		{ParameterKey: aws.String("RelayCodeKey"), ParameterValue: aws.String(assets[0].key)},
		{ParameterKey: aws.String("LayerX86Key"), ParameterValue: aws.String(assets[1].key)},
		{ParameterKey: aws.String("LayerArm64Key"), ParameterValue: aws.String(assets[2].key)},
	}
	tags := []cfntypes.Tag{{Key: aws.String(InstallTag), Value: aws.String(o.Name)}}
	name := install.StackName(o.Name)

	stackID, err := deploy(ctx, c.cfn, deployment{
		install: o.Name, stack: name, params: params, tags: tags, out: out, poll: o.PollInterval, total: total,
	})
	if err != nil {
		return Info{}, err
	}
	info, err := finish(ctx, c, stackID, bucket, o.Name, out)
	if err != nil {
		return Info{}, err
	}
	// A stack can settle with outputs no session can use (an endpoint whose CloudFormation skipped the WebSocket
	// API leaves its URL unresolved): say so now rather than at the first attach.
	if _, err := install.FromOutputs(o.Name, info.Outputs); err != nil {
		return info, fmt.Errorf("stack %s is %s in %s (account %s), but %w", info.StackName, info.Status, cfg.Region, acct, err)
	}
	fmt.Fprintf(out, "installed %q in %s (account %s)\n", o.Name, cfg.Region, acct)
	return info, nil
}

// deployment is one create-or-update of the helper stack.
type deployment struct {
	install, stack string
	params         []cfntypes.Parameter
	tags           []cfntypes.Tag
	out            io.Writer
	poll           time.Duration
	total          int
}

// deploy creates or updates the stack, streaming its events until it settles, and returns the stack's id. A
// stack busy with another operation is waited for first; one whose creation failed is deleted and created again.
func deploy(ctx context.Context, cfn *cloudformation.Client, d deployment) (string, error) {
	name, out := d.stack, d.out
	existing, err := describe(ctx, cfn, name)
	if err != nil && !errors.Is(err, errStackGone) {
		return "", err
	}
	exists := err == nil
	if exists {
		if v := tagValue(existing.Tags, InstallTag); v != d.install {
			return "", fmt.Errorf("stack %s exists but is not a plldb install (no %s=%s tag): choose another --name", name, InstallTag, d.install)
		}
		st := string(existing.StackStatus)
		if strings.HasSuffix(st, "_IN_PROGRESS") {
			fmt.Fprintf(out, "stack %s is busy (%s); waiting for it\n", name, st)
			w := newWatcher(cfn, aws.ToString(existing.StackId), out, d.poll, d.total)
			if err := w.skipExisting(ctx); err != nil {
				return "", err
			}
			if st, _, err = w.wait(ctx); err != nil {
				return "", err
			}
			if st == "DELETE_COMPLETE" {
				exists = false
			}
		}
		// A stack whose creation failed cannot be updated; it has to go before it can be created again.
		if exists && (st == string(cfntypes.StackStatusRollbackComplete) || st == string(cfntypes.StackStatusRollbackFailed)) {
			fmt.Fprintf(out, "stack %s failed to create earlier (%s); deleting it first\n", name, st)
			if err := deleteStack(ctx, cfn, aws.ToString(existing.StackId), out, d.poll, d.total); err != nil {
				return "", err
			}
			exists = false
		}
	}

	var stackID string
	w := newWatcher(cfn, name, out, d.poll, d.total)
	if exists {
		stackID = aws.ToString(existing.StackId)
		w.stack = stackID
		if err := w.skipExisting(ctx); err != nil {
			return "", err
		}
		_, err := cfn.UpdateStack(ctx, &cloudformation.UpdateStackInput{
			StackName: aws.String(stackID), TemplateBody: aws.String(Template), Parameters: d.params, Tags: d.tags,
			Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam},
		})
		if err != nil && strings.Contains(err.Error(), "No updates are to be performed") {
			fmt.Fprintf(out, "stack %s is up to date\n", name)
			return stackID, nil
		}
		if err != nil {
			return "", fmt.Errorf("update stack %s: %w", name, err)
		}
		fmt.Fprintf(out, "updating stack %s\n", name)
	} else {
		res, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{
			StackName: aws.String(name), TemplateBody: aws.String(Template), Parameters: d.params, Tags: d.tags,
			Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam},
			OnFailure:    cfntypes.OnFailureRollback,
		})
		if err != nil {
			return "", fmt.Errorf("create stack %s: %w", name, err)
		}
		stackID = aws.ToString(res.StackId)
		w.stack = stackID
		fmt.Fprintf(out, "creating stack %s\n", name)
	}
	st, failure, err := w.wait(ctx)
	if err != nil {
		return "", err
	}
	if st != "CREATE_COMPLETE" && st != "UPDATE_COMPLETE" {
		if failure == "" {
			failure = "no reason given"
		}
		return "", fmt.Errorf("stack %s ended in %s: %s", name, st, failure)
	}
	return stackID, nil
}

// finish reads the settled stack and prints its outputs.
func finish(ctx context.Context, c clients, stack, bucket, name string, out io.Writer) (Info, error) {
	s, err := describe(ctx, c.cfn, stack)
	if err != nil {
		return Info{}, fmt.Errorf("read installed stack: %w", err)
	}
	info := infoOf(s)
	info.Name, info.Bucket = name, bucket
	fmt.Fprintf(out, "stack %s of install %q: %s\n", info.StackName, name, info.Status)
	printOutputs(out, info.Outputs)
	return info, nil
}

func printOutputs(out io.Writer, outputs map[string]string) {
	keys := make([]string, 0, len(outputs))
	for k := range outputs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(out, "  %-18s %s\n", k, outputs[k])
	}
}

func infoOf(s cfntypes.Stack) Info {
	info := Info{
		Name:      tagValue(s.Tags, InstallTag),
		StackName: aws.ToString(s.StackName),
		StackID:   aws.ToString(s.StackId),
		Status:    string(s.StackStatus),
		Outputs:   map[string]string{},
		Updated:   aws.ToTime(s.CreationTime),
	}
	if s.LastUpdatedTime != nil {
		info.Updated = *s.LastUpdatedTime
	}
	for _, o := range s.Outputs {
		info.Outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return info
}

func tagValue(tags []cfntypes.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

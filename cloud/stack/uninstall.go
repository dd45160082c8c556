package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/plldb/plldb/cloud/install"
)

// UninstallOptions say which install to remove.
type UninstallOptions struct {
	Name         string // default install.DefaultName
	Region       string
	Out          io.Writer
	PollInterval time.Duration
}

// Uninstall deletes the helper stack (waiting for it to go) and then empties and deletes the assets bucket,
// which the stack's layers and relay came from. Removing an install that is not there is not an error.
func Uninstall(ctx context.Context, cfg aws.Config, o UninstallOptions) error {
	if o.Name == "" {
		o.Name = install.DefaultName
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	if err := ValidateName(o.Name); err != nil {
		return err
	}
	cfg, err := regionOf(cfg, o.Region)
	if err != nil {
		return err
	}
	total, err := resourceCount(Template)
	if err != nil {
		return err
	}
	c := newClients(cfg)
	acct, err := account(ctx, c)
	if err != nil {
		return err
	}
	name := install.StackName(o.Name)
	s, err := describe(ctx, c.cfn, name)
	switch {
	case errors.Is(err, errStackGone):
		fmt.Fprintf(out, "no stack %s in %s\n", name, cfg.Region)
	case err != nil:
		return err
	case tagValue(s.Tags, InstallTag) != o.Name:
		return fmt.Errorf("stack %s is not a plldb install (no %s=%s tag); leaving it alone", name, InstallTag, o.Name)
	default:
		if err := deleteStack(ctx, c.cfn, aws.ToString(s.StackId), out, o.PollInterval, total); err != nil {
			return err
		}
	}
	bucket := BucketName(o.Name, acct, cfg.Region)
	deleted, err := emptyAndDeleteBucket(ctx, c, bucket)
	if err != nil {
		return err
	}
	if deleted {
		fmt.Fprintf(out, "deleted bucket %s\n", bucket)
	} else {
		fmt.Fprintf(out, "no bucket %s\n", bucket)
	}
	fmt.Fprintf(out, "uninstalled %q\n", o.Name)
	return nil
}

// deleteStack deletes a stack by id and streams its events until it is gone.
func deleteStack(ctx context.Context, cfn *cloudformation.Client, stackID string, out io.Writer, poll time.Duration, total int) error {
	w := newWatcher(cfn, stackID, out, poll, total)
	if err := w.skipExisting(ctx); err != nil {
		return err
	}
	if _, err := cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(stackID)}); err != nil {
		return fmt.Errorf("delete stack %s: %w", stackID, err)
	}
	fmt.Fprintf(out, "deleting stack %s\n", stackID)
	st, failure, err := w.wait(ctx)
	if err != nil {
		return err
	}
	if st != "DELETE_COMPLETE" {
		return fmt.Errorf("delete stack %s ended in %s: %s", stackID, st, failure)
	}
	return nil
}

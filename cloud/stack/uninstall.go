package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamodbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/install"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/store"
)

// UninstallOptions say which install to remove.
type UninstallOptions struct {
	Name   string // default install.DefaultName
	Region string
	// Force restores every function the install's claims hold (whatever session holds them, live or not)
	// before uninstalling, instead of refusing.
	Force        bool
	Out          io.Writer
	PollInterval time.Duration
}

// Uninstall deletes the helper stack (waiting for it to go) and then empties and deletes the assets bucket,
// which the stack's layers and relay came from. Removing an install that is not there is not an error.
//
// The stack's claims table holds the only copy of the configuration of every function a session instrumented,
// so Uninstall refuses with an *InUseError, changing nothing, while any live session or claim exists; with
// Force it first restores every claimed function, and uninstalls only if all of them were put back.
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
		if err := guard(ctx, cfg, infoOf(s), o, out); err != nil {
			return err
		}
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

// InUseError is Uninstall's refusal: the install still has live sessions or instrumented functions.
type InUseError struct {
	Name     string
	Sessions []store.SessionInfo
	Claims   []store.Snapshot
}

func (e *InUseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plldb uninstall: install %q is in use, and nothing was changed. Uninstalling deletes the table that holds the "+
		"saved configuration of every instrumented function, after which plldb could no longer restore them:", e.Name)
	fns := map[string][]string{}
	for _, c := range e.Claims {
		name := c.FunctionName
		if name == "" {
			name = c.FunctionARN
		}
		if c.Shared {
			for _, h := range c.Holders {
				fns[h.Session] = append(fns[h.Session], name)
			}
			continue
		}
		fns[c.Session] = append(fns[c.Session], name)
	}
	live := map[string]bool{}
	for _, s := range e.Sessions {
		live[s.ID] = true
		exp := "no expiry"
		if !s.ExpiresAt.IsZero() {
			exp = "expires " + s.ExpiresAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		list := "no functions"
		if f := fns[s.ID]; len(f) > 0 {
			slices.Sort(f)
			list = "functions " + strings.Join(f, ", ")
		}
		fmt.Fprintf(&b, "\n  session %s of %s (%s): %s", s.ID, s.Owner, exp, list)
	}
	for _, id := range slices.Sorted(maps.Keys(fns)) {
		if !live[id] {
			f := fns[id]
			slices.Sort(f)
			fmt.Fprintf(&b, "\n  session %s (ended, its functions still instrumented): functions %s", id, strings.Join(f, ", "))
		}
	}
	fmt.Fprintf(&b, "\nDetach first (Ctrl-C the plldb attach, or plldb detach --stack-name STACK --name %s), or run "+
		"plldb uninstall --name %s --force to restore every instrumented function and then uninstall.", e.Name, e.Name)
	return b.String()
}

// guard refuses to uninstall an install in use, or with o.Force restores its functions first.
func guard(ctx context.Context, cfg aws.Config, inst Info, o UninstallOptions, out io.Writer) error {
	in, _ := install.FromOutputs(o.Name, inst.Outputs) // only the tables matter here, and they are checked below
	tables := in.Tables
	def := store.DefaultTables(o.Name)
	if tables.Sessions == "" || tables.Claims == "" || strings.Contains(tables.Sessions+tables.Claims, "{") {
		tables = def
	}
	st := store.New(dynamodb.NewFromConfig(cfg), tables)
	sessions, err := st.Sessions(ctx)
	if err != nil && !isMissingTable(err) {
		return fmt.Errorf("plldb uninstall: check for live sessions (nothing was changed): %w", err)
	}
	claims, err := st.Snapshots(ctx)
	if err != nil && !isMissingTable(err) {
		return fmt.Errorf("plldb uninstall: check for instrumented functions (nothing was changed): %w", err)
	}
	if len(sessions) == 0 && len(claims) == 0 {
		return nil
	}
	if !o.Force {
		return &InUseError{Name: o.Name, Sessions: sessions, Claims: claims}
	}
	if len(claims) == 0 {
		return nil
	}
	// Recover takes claims over in the name of a session, which must exist while it runs.
	id := "uninstall-" + randomHex(6)
	if err := st.PutSession(ctx, relay.NewSession(id, "plldb uninstall", time.Now().Add(time.Hour))); err != nil {
		return fmt.Errorf("plldb uninstall --force: %w", err)
	}
	defer func() { _ = st.DeleteSession(context.WithoutCancel(ctx), id) }()
	arns := make([]string, len(claims))
	for i, c := range claims {
		arns[i] = c.FunctionARN
	}
	rec := &instrument.Instrumenter{Lambda: lambda.NewFromConfig(cfg), Claims: st, Layers: in.Layers}
	results, err := rec.Recover(ctx, instrument.Recovery{Session: id, Owner: "plldb uninstall", FunctionARNs: arns, Force: true})
	if err != nil {
		return fmt.Errorf("plldb uninstall --force: restore the instrumented functions (the install was left in place): %w", err)
	}
	var stuck []string
	for _, r := range results {
		fmt.Fprintf(out, "  restore %s: %s: %s\n", r.FunctionName, r.Outcome, r.Message)
		switch r.Outcome {
		case instrument.Restored, instrument.Merged, instrument.Gone:
		default:
			stuck = append(stuck, r.FunctionName)
		}
	}
	if len(stuck) > 0 {
		return fmt.Errorf("plldb uninstall --force: could not restore %s; the install was left in place so that their saved configurations stay", strings.Join(stuck, ", "))
	}
	return nil
}

func isMissingTable(err error) bool {
	var nf *dynamodbtypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

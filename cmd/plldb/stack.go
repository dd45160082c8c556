package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/plldb/plldb/cloud/awsconfig"
	"github.com/plldb/plldb/cloud/install"
	"github.com/plldb/plldb/cloud/stack"
	"github.com/plldb/plldb/layer/layerzip"
)

// The helper stack's commands register themselves here, so main.go's table stays a list of the local ones.
// awsFlags are the flags of every command that talks to AWS.
type awsFlags struct {
	name, region, profile, endpoint string
}

func (a *awsFlags) register(fs *flag.FlagSet, withName bool) {
	if withName {
		fs.StringVar(&a.name, "name", install.DefaultName, "install name (several installs can share an account and region)")
	}
	fs.StringVar(&a.region, "region", "", "AWS region (default: from the environment or profile)")
	fs.StringVar(&a.profile, "profile", "", "AWS profile (default: AWS_PROFILE or the default profile)")
	fs.StringVar(&a.endpoint, "endpoint-url", "", "send every AWS call to this endpoint (moto, LocalStack)")
}

func (a *awsFlags) config(ctx context.Context) (aws.Config, error) {
	return awsconfig.Load(ctx, awsconfig.Options{Profile: a.profile, Region: a.region, EndpointURL: a.endpoint})
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

func runInstall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plldb install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		a         awsFlags
		layerX86  = fs.String("layer-x86_64", "", "x86_64 layer zip (default: build/layer-x86_64.zip, else built now)")
		layerArm  = fs.String("layer-arm64", "", "arm64 layer zip (default: build/layer-arm64.zip, else built now)")
		relayZip  = fs.String("relay-zip", "", "relay Lambda zip (default: built now from the source tree)")
		keepBuild = fs.String("build-dir", "", "where zips built now are written (default: a temporary directory)")
	)
	a.register(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := stack.ValidateName(a.name); err != nil {
		return err
	}
	cfg, err := a.config(ctx)
	if err != nil {
		return err
	}
	dir := *keepBuild
	if dir == "" {
		tmp, err := os.MkdirTemp("", "plldb-install-")
		if err != nil {
			return fmt.Errorf("plldb install: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	layers := map[string]string{}
	for arch, flagValue := range map[string]string{stack.ArchX86: *layerX86, stack.ArchArm64: *layerArm} {
		p, err := layerZip(ctx, arch, flagValue, dir, stdout)
		if err != nil {
			return err
		}
		layers[arch] = p
	}
	if *relayZip == "" {
		*relayZip = filepath.Join(dir, "relay.zip")
		fmt.Fprintln(stdout, "building the relay Lambda (linux/arm64)")
		if err := stack.BuildRelayZip(ctx, *relayZip); err != nil {
			return err
		}
	}
	_, err = stack.Install(ctx, cfg, stack.InstallOptions{Name: a.name, LayerZips: layers, RelayZip: *relayZip, Out: stdout})
	return err
}

// layerZip returns the layer zip to upload: the flag's, else make layer's, else one built now.
func layerZip(ctx context.Context, arch, given, dir string, stdout io.Writer) (string, error) {
	if given != "" {
		return given, nil
	}
	made := filepath.Join("build", "layer-"+arch+".zip")
	if _, err := os.Stat(made); err == nil {
		return made, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("plldb install: %w", err)
	}
	out := filepath.Join(dir, "layer-"+arch+".zip")
	fmt.Fprintf(stdout, "building the %s layer\n", arch)
	if err := layerzip.Build(ctx, layerzip.Options{Arch: arch, Out: out, Dir: stack.SourceDir()}); err != nil {
		return "", fmt.Errorf("build the %s layer (or pass --layer-%s): %w", arch, arch, err)
	}
	return out, nil
}

func runUninstall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plldb uninstall", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a awsFlags
	force := fs.Bool("force", false, "restore every instrumented function first (whoever's session holds it), instead of refusing while the install is in use")
	a.register(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := stack.ValidateName(a.name); err != nil {
		return err
	}
	cfg, err := a.config(ctx)
	if err != nil {
		return err
	}
	return stack.Uninstall(ctx, cfg, stack.UninstallOptions{Name: a.name, Force: *force, Out: stdout})
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plldb status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a awsFlags
	a.register(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := a.config(ctx)
	if err != nil {
		return err
	}
	_, err = stack.Status(ctx, cfg, stack.StatusOptions{Out: stdout, Hook: statusHook})
	return err
}

// Package awsharness is AWS mode offline, for tests: moto serves the AWS APIs; a helper stack "install" is built
// directly on moto (its DynamoDB tables and plldb layer versions — moto's CloudFormation cannot create the
// WebSocket API); the embedded gateway hosts the relay handlers on the DynamoDB store, as the relay Lambda does;
// and each function invocation runs in an emulated sandbox that reads the function's configuration from the
// Lambda API (environment, layers, timeout, as attach left them) and, when the plldb exec wrapper is set, runs
// the real layer proxy with it in front of the stdlib Python runtime loop. Invocations therefore cross exactly
// the code they cross in AWS.
package awsharness

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/gateway"
	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/install"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/stack"
	"github.com/plldb/plldb/cloud/store"
	"github.com/plldb/plldb/layer/proxy"
	"github.com/plldb/plldb/layer/runtimeapi"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/moto"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// Role is the execution role the harness's functions get (moto checks it exists).
const Role = "arn:aws:iam::123456789012:role/plldb-harness"

// Harness is one offline install. New builds it; everything stops when the test ends.
type Harness struct {
	Moto    *moto.Server
	AWS     aws.Config
	Install install.Resources
	// Store is the relay's session store on moto, as the gateway's handlers use it.
	Store   *store.Store
	Gateway *gateway.Gateway
	Lambda  *lambda.Client
	// RelayCalls counts the DynamoDB calls of the relay handlers (not of attach): the hot path's cost.
	RelayCalls *instrument.CallCounter
	Python     string
	Logger     *slog.Logger
	// Clock is the relay store's clock: Advance it to expire sessions.
	Clock *Clock
	// RoleCredentials are every sandbox's execution-role credentials, random per harness, as Lambda sets them
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN): tests follow where they go.
	RoleCredentials Credentials

	t         testing.TB
	mu        sync.Mutex
	sandboxes map[string]*sandbox // function name → its warm sandbox
	codeDirs  map[string]string   // function name → its "deployed" code
}

// Credentials are a set of AWS credentials.
type Credentials struct{ AccessKeyID, SecretAccessKey, SessionToken string }

// Clock is the wall clock plus an offset tests advance.
type Clock struct{ offset atomic.Int64 }

// Now is time.Now plus the offset.
func (c *Clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// Options configure New.
type Options struct {
	Logger *slog.Logger // default: warnings and errors, shown if the test fails (logbuf.Logger)
}

var roleOnce sync.Once

// New builds an install named uniquely for the test on the test binary's moto server.
func New(t testing.TB, o Options) *Harness {
	t.Helper()
	log := o.Logger
	if log == nil {
		// Warnings and errors of the relay, gateway and sandboxes show when the test fails: a refusal seen once in
		// CI ("answered HTTP 403") then says which check refused.
		log = logbuf.Logger(t, slog.LevelWarn)
	}
	srv := moto.Start(t)
	cfg := srv.Config()
	ctx := context.Background()
	h := &Harness{
		Moto: srv, AWS: cfg, Lambda: lambda.NewFromConfig(cfg), RelayCalls: &instrument.CallCounter{},
		Python: pyenv.Python(t), Logger: log, t: t, Clock: &Clock{},
		sandboxes: map[string]*sandbox{}, codeDirs: map[string]string{},
		RoleCredentials: Credentials{
			AccessKeyID: "ASIAHARNESS" + strings.ToUpper(randomID(5)), SecretAccessKey: "role-secret-" + randomID(12), SessionToken: "role-token-" + randomID(24),
		},
	}
	name := "h" + randomID(5)
	tables := store.DefaultTables(name)
	require.NoError(t, store.CreateTables(ctx, dynamodb.NewFromConfig(cfg), tables), "create the install's tables")
	roleOnce.Do(func() {
		_, _ = iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{
			RoleName:                 aws.String("plldb-harness"),
			AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
		})
	})
	var layers instrument.LayerARNs
	for _, arch := range []types.Architecture{types.ArchitectureX8664, types.ArchitectureArm64} {
		out, err := h.Lambda.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{
			LayerName:               aws.String(name + "-layer-" + string(arch)),
			Content:                 &types.LayerVersionContentInput{ZipFile: zipOf(map[string]string{"plldb/wrapper": "#!/bin/sh\nexec \"$@\"\n"})},
			CompatibleArchitectures: []types.Architecture{arch},
		})
		require.NoError(t, err, "publish the plldb layer for %s", arch)
		if arch == types.ArchitectureArm64 {
			layers.Arm64 = aws.ToString(out.LayerVersionArn)
		} else {
			layers.X86_64 = aws.ToString(out.LayerVersionArn)
		}
	}

	relayDB := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, h.RelayCalls.Register) })
	h.Store = store.New(relayDB, tables)
	h.Store.Logger = log
	h.Store.Now = h.Clock.Now
	audience := name + ".relay.plldb.test"
	h.Gateway = gateway.New(gateway.Config{Logger: log}, nil) // it logs as component=gateway
	h.Gateway.SetRoutes(&relay.Handlers{
		Store: h.Store, Conns: h.Gateway, Audience: audience, Logger: log.With("component", "relay"),
		// The relay Lambda's expiry path, on the same store: restores with the Lambda API, untracked by RelayCalls.
		Restorer: instrument.NewRestorer(cfg, store.New(dynamodb.NewFromConfig(cfg), tables), log.With("component", "restorer")),
	})
	require.NoError(t, h.Gateway.Start(context.Background()), "start the embedded gateway")
	h.Install = install.Resources{Name: name, WebSocketURL: h.Gateway.URL(), Audience: audience, Tables: tables, Layers: layers}
	t.Cleanup(h.close)
	h.registerInstall(t)
	return h
}

// registerInstall creates a stack named after the install whose outputs are the install's, so that the real
// lookup (awsmode.LoadInstall: DescribeStacks by install name) finds it, as plldb attach --name does.
func (h *Harness) registerInstall(t testing.TB) {
	t.Helper()
	in := h.Install
	outputs := install.Outputs(in)
	var b strings.Builder
	b.WriteString("Resources:\n  Marker:\n    Type: AWS::CloudFormation::WaitConditionHandle\nOutputs:\n")
	for _, k := range slices.Sorted(maps.Keys(outputs)) {
		fmt.Fprintf(&b, "  %s:\n    Value: %q\n", k, outputs[k])
	}
	_, err := cloudformation.NewFromConfig(h.AWS).CreateStack(context.Background(), &cloudformation.CreateStackInput{
		StackName: aws.String(install.StackName(in.Name)), TemplateBody: aws.String(b.String()),
		Tags: []cftypes.Tag{{Key: aws.String(stack.InstallTag), Value: aws.String(in.Name)}},
	})
	require.NoError(t, err, "register the install's stack")
	got, err := install.Load(context.Background(), h.AWS, in.Name)
	require.NoError(t, err, "read the install back")
	require.Equal(t, in, got, "the install's stack outputs")
}

func (h *Harness) close() {
	h.mu.Lock()
	sbs := h.sandboxes
	h.sandboxes = map[string]*sandbox{}
	h.mu.Unlock()
	for _, sb := range sbs {
		sb.stop()
	}
	_ = h.Gateway.Close()
}

// Function is one function of a deployed stack.
type Function struct {
	LogicalID string
	Handler   string // default app.handler
	// CodeDir is the function's deployed code, which the emulated sandbox runs when plldb is not attached.
	CodeDir string
	Env     map[string]string
	Timeout int32
	Arch    types.Architecture
}

// Deployed is a deployed function.
type Deployed struct {
	LogicalID, Name, ARN string
}

// DeployStack creates a CloudFormation stack of the functions on moto and returns them by logical id.
func (h *Harness) DeployStack(t testing.TB, stackName string, fns []Function) map[string]Deployed {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	b.WriteString("Resources:\n")
	names := map[string]string{}
	for _, f := range fns {
		name := strings.ToLower(stackName + "-" + f.LogicalID)
		names[f.LogicalID] = name
		handler := f.Handler
		if handler == "" {
			handler = "app.handler"
		}
		fmt.Fprintf(&b, "  %s:\n    Type: AWS::Lambda::Function\n    Properties:\n      FunctionName: %s\n      Runtime: python3.12\n      Handler: %s\n      Role: %s\n",
			f.LogicalID, name, handler, Role)
		if f.Timeout > 0 {
			fmt.Fprintf(&b, "      Timeout: %d\n", f.Timeout)
		}
		if f.Arch != "" {
			fmt.Fprintf(&b, "      Architectures: [%s]\n", f.Arch)
		}
		if len(f.Env) > 0 {
			b.WriteString("      Environment:\n        Variables:\n")
			for _, k := range slices.Sorted(maps.Keys(f.Env)) {
				fmt.Fprintf(&b, "          %s: %q\n", k, f.Env[k])
			}
		}
		b.WriteString("      Code:\n        ZipFile: |\n          def handler(event, context):\n              return event\n")
		h.mu.Lock()
		h.codeDirs[name] = f.CodeDir
		h.mu.Unlock()
	}
	cfn := cloudformation.NewFromConfig(h.AWS)
	_, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(stackName), TemplateBody: aws.String(b.String())})
	require.NoError(t, err, "create stack %s", stackName)
	out := map[string]Deployed{}
	for _, f := range fns {
		c, err := h.Lambda.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(names[f.LogicalID])})
		require.NoError(t, err, "read function %s", f.LogicalID)
		out[f.LogicalID] = Deployed{LogicalID: f.LogicalID, Name: names[f.LogicalID], ARN: aws.ToString(c.FunctionArn)}
	}
	return out
}

// sandbox is one emulated execution environment, started for one revision of a function's configuration.
type sandbox struct {
	revision string
	api      *runtimeapi.Server
	arn      string
	timeout  time.Duration
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex // one invocation at a time, as in Lambda
}

func (sb *sandbox) stop() {
	sb.cancel()
	<-sb.done
	_ = sb.api.Close()
}

// Invoke runs one invocation of the function as Lambda would: in a warm sandbox of the function's current
// configuration, or a fresh one after the configuration changed (attach, detach).
func (h *Harness) Invoke(ctx context.Context, function string, payload []byte) (runtimeapi.Response, error) {
	sb, err := h.sandbox(ctx, function)
	if err != nil {
		return runtimeapi.Response{}, err
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.api.Invoke(ctx, runtimeapi.Invocation{
		RequestID:   runtimeapi.NewRequestID(),
		Deadline:    time.Now().Add(sb.timeout),
		FunctionARN: sb.arn,
		Event:       payload,
	})
}

func (h *Harness) sandbox(ctx context.Context, function string) (*sandbox, error) {
	c, err := h.Lambda.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(function)})
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", function, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if sb, ok := h.sandboxes[function]; ok {
		if sb.revision == revision(c) {
			select {
			case <-sb.done:
			default:
				return sb, nil
			}
		}
		sb.stop()
		delete(h.sandboxes, function)
	}
	sb, err := h.start(c)
	if err != nil {
		return nil, err
	}
	h.sandboxes[function] = sb
	return sb, nil
}

// start boots a sandbox for the configuration: Lambda's reserved variables and the function's own, then the
// exec wrapper if one is set (the plldb wrapper is the layer proxy, which needs the plldb layer), then the
// runtime.
func (h *Harness) start(c *lambda.GetFunctionConfigurationOutput) (*sandbox, error) {
	name := aws.ToString(c.FunctionName)
	codeDir := h.codeDirs[name]
	if codeDir == "" {
		return nil, fmt.Errorf("invoke %s: the harness did not deploy it (no code directory)", name)
	}
	api := runtimeapi.NewServer(runtimeapi.ServerOptions{Logger: h.Logger.With("component", "runtime-api")})
	sctx, cancel := context.WithCancel(context.Background())
	if err := api.Start(sctx); err != nil {
		cancel()
		return nil, fmt.Errorf("start the Runtime API of %s: %w", name, err)
	}
	timeout := time.Duration(aws.ToInt32(c.Timeout)) * time.Second
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"AWS_LAMBDA_RUNTIME_API=" + api.Addr(),
		"_HANDLER=" + aws.ToString(c.Handler),
		"LAMBDA_TASK_ROOT=" + codeDir,
		"AWS_LAMBDA_FUNCTION_NAME=" + name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + fmt.Sprint(aws.ToInt32(c.MemorySize)),
		"AWS_REGION=" + h.AWS.Region,
		"AWS_EXECUTION_ENV=AWS_Lambda_" + string(c.Runtime),
		"PYTHONDONTWRITEBYTECODE=1",
		"AWS_ACCESS_KEY_ID=" + h.RoleCredentials.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + h.RoleCredentials.SecretAccessKey,
		"AWS_SESSION_TOKEN=" + h.RoleCredentials.SessionToken,
	}
	vars := map[string]string{}
	if c.Environment != nil {
		vars = c.Environment.Variables
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	command := []string{h.Python, filepath.Join(pyenv.RepoRoot(), "testfixtures", "runtime", "bootstrap.py")}
	var cfg proxy.Config
	var linked chan error
	switch w := vars[instrument.EnvExecWrapper]; w {
	case "":
		cfg = proxy.Config{RuntimeAPI: api.Addr(), Command: command, Env: env}
	case instrument.WrapperPath:
		if !h.hasPlldbLayer(c.Layers) {
			cancel()
			_ = api.Close()
			return nil, fmt.Errorf("invoke %s: init failed: exec wrapper %s does not exist (no plldb layer)", name, w)
		}
		var err error
		cfg, err = proxy.ConfigFromEnv(command, env)
		if err != nil && !errors.Is(err, proxy.ErrSessionConfig) {
			cancel()
			_ = api.Close()
			return nil, fmt.Errorf("invoke %s: layer proxy: %w", name, err)
		}
		// Selective mode dials each link at its session's first valid knock, never at start, so nothing waits for
		// it; its sessions are cfg.Selective.Links.
		for _, sc := range cfg.Sessions() {
			dial, err := proxy.RelayDialer(sc, h.Logger.With("link", "sandbox", "function", name, "session", sc.SessionID)) // wsclient adds component=wsclient
			if err != nil {
				cancel()
				_ = api.Close()
				return nil, fmt.Errorf("invoke %s: %w", name, err)
			}
			sc.Dial = dial
		}
		if cfg.Session != nil {
			// Like local's sandboxes, the first invocation waits for the relay link. The proxy itself holds the first
			// invocation only up to SessionConfig.ConnectWait; waiting here keeps tests exact on a loaded machine.
			dial := cfg.Session.Dial
			linked = make(chan error, 1)
			cfg.Session.Dial = func(ctx context.Context) (proxy.Link, error) {
				l, err := dial(ctx)
				select {
				case linked <- err:
				default:
				}
				return l, err
			}
		}
	default:
		cancel()
		_ = api.Close()
		return nil, fmt.Errorf("invoke %s: the harness runs no exec wrapper but plldb's (have %s)", name, w)
	}
	cfg.Logger = h.Logger.With("component", "proxy", "function", name)
	cfg.Stdout, cfg.ChildStdout, cfg.ChildStderr = io.Discard, io.Discard, io.Discard
	sb := &sandbox{revision: revision(c), api: api, arn: aws.ToString(c.FunctionArn), timeout: timeout, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(sb.done)
		if _, err := proxy.Run(sctx, cfg); err != nil && sctx.Err() == nil {
			h.Logger.Warn("sandbox stopped", "function", name, "err", err)
		}
	}()
	if linked != nil {
		select {
		case err := <-linked:
			if err != nil {
				sb.stop()
				return nil, fmt.Errorf("invoke %s: connect the layer proxy to the relay: %w", name, err)
			}
		case <-sb.done:
			return nil, fmt.Errorf("invoke %s: the sandbox stopped while starting", name)
		case <-time.After(10 * time.Second):
			sb.stop()
			return nil, fmt.Errorf("invoke %s: the layer proxy did not reach the relay within 10s", name)
		}
	}
	return sb, nil
}

// revision identifies a configuration: the RevisionId and, since moto does not always change it, the settings
// plldb changes.
func revision(c *lambda.GetFunctionConfigurationOutput) string {
	var env map[string]string
	if c.Environment != nil {
		env = c.Environment.Variables
	}
	var layers []string
	for _, l := range c.Layers {
		layers = append(layers, aws.ToString(l.Arn))
	}
	return fmt.Sprint(aws.ToString(c.RevisionId), env, layers, aws.ToInt32(c.Timeout))
}

func (h *Harness) hasPlldbLayer(layers []types.Layer) bool {
	for _, l := range layers {
		if a := aws.ToString(l.Arn); a == h.Install.Layers.X86_64 || a == h.Install.Layers.Arm64 {
			return true
		}
	}
	return false
}

// Settings are what plldb changes on a function and must put back exactly.
type Settings struct {
	HasEnvironment bool
	Environment    map[string]string
	Layers         []string
	Timeout        int32
}

// Settings reads the function's settings from the Lambda API.
func (h *Harness) Settings(t testing.TB, function string) Settings {
	t.Helper()
	c, err := h.Lambda.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(function)})
	require.NoError(t, err, "read function %s", function)
	s := Settings{Timeout: aws.ToInt32(c.Timeout)}
	if c.Environment != nil {
		s.HasEnvironment = true
		s.Environment = c.Environment.Variables
	}
	for _, l := range c.Layers {
		s.Layers = append(s.Layers, aws.ToString(l.Arn))
	}
	return s
}

func zipOf(files map[string]string) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, body := range files {
		f, _ := w.Create(name)
		_, _ = f.Write([]byte(body))
	}
	_ = w.Close()
	return buf.Bytes()
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// App is a small two-function app for AWS mode tests, written to a temporary folder: the local template and
// code the developer debugs, and the different code "deployed" to the functions, so a test can tell who
// answered ("where": "local" or "deployed").
type App struct {
	Template string // template.yaml with OrdersFunction and UsersFunction (CodeUri src/, Handler app.handler)
	Handler  string // src/app.py; its "# BREAKPOINT" line is the handler's first statement
	Deployed string // the deployed code's folder, for Function.CodeDir
}

// WriteApp writes the app into a temporary folder.
func WriteApp(t testing.TB) App {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"template.yaml": `AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Timeout: 10
Resources:
  OrdersFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
  UsersFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
`,
		"src/app.py": `def handler(event, context):
    where = "local"  # BREAKPOINT
    return {"where": where, "event": event}
`,
		"deployed/app.py": `def handler(event, context):
    return {"where": "deployed", "event": event}
`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	return App{Template: filepath.Join(dir, "template.yaml"), Handler: filepath.Join(dir, "src", "app.py"), Deployed: filepath.Join(dir, "deployed")}
}

// BreakpointLine is the line of the app handler's "# BREAKPOINT" comment.
const BreakpointLine = 2

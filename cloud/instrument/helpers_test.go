package instrument_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/testfixtures/moto"
)

const testRole = "arn:aws:iam::123456789012:role/plldb-test"

// env is the moto server and clients a test uses. Tests never Reset moto; every name is unique to its test.
type env struct {
	t       testing.TB
	srv     *moto.Server
	lambda  *lambda.Client
	counter *instrument.CallCounter
	layers  instrument.LayerARNs
}

var (
	layersOnce sync.Once
	layerARNs  instrument.LayerARNs
	layerErr   error
)

func newEnv(t testing.TB) *env {
	t.Helper()
	srv := moto.Start(t)
	counter := &instrument.CallCounter{}
	client := lambda.NewFromConfig(srv.Config(), func(o *lambda.Options) {
		o.APIOptions = append(o.APIOptions, counter.Register)
	})
	layersOnce.Do(func() {
		ctx := context.Background()
		_, layerErr = iam.NewFromConfig(srv.Config()).CreateRole(ctx, &iam.CreateRoleInput{
			RoleName:                 aws.String("plldb-test"),
			AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
		})
		if layerErr != nil {
			return
		}
		for _, arch := range []types.Architecture{types.ArchitectureX8664, types.ArchitectureArm64} {
			out, err := client.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{
				LayerName:               aws.String("plldb-" + string(arch)),
				Content:                 &types.LayerVersionContentInput{ZipFile: zipOf(map[string]string{"plldb/wrapper": "#!/bin/sh\nexec \"$@\"\n"})},
				CompatibleArchitectures: []types.Architecture{arch},
			})
			if err != nil {
				layerErr = err
				return
			}
			if arch == types.ArchitectureArm64 {
				layerARNs.Arm64 = aws.ToString(out.LayerVersionArn)
			} else {
				layerARNs.X86_64 = aws.ToString(out.LayerVersionArn)
			}
		}
	})
	require.NoError(t, layerErr, "publish the plldb layers")
	return &env{t: t, srv: srv, lambda: client, counter: counter, layers: layerARNs}
}

func (e *env) instrumenter(claims instrument.Claims) *instrument.Instrumenter {
	return &instrument.Instrumenter{Lambda: e.lambda, Claims: claims, Layers: e.layers, PollInterval: 10 * time.Millisecond}
}

var nameClean = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// unique is a name no other test uses, readable in moto's logs.
func unique(t testing.TB, what string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	base := nameClean.ReplaceAllString(t.Name(), "")
	if len(base) > 30 {
		base = base[len(base)-30:]
	}
	return fmt.Sprintf("%s-%s-%s", base, nameClean.ReplaceAllString(what, ""), hex.EncodeToString(b))
}

func zipOf(files map[string]string) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, body := range files {
		f, err := w.Create(name)
		if err != nil {
			panic(err)
		}
		if _, err := f.Write([]byte(body)); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

var handlerZip = zipOf(map[string]string{"app.py": "def handler(event, context):\n    return event\n"})

// fn describes a function to create.
type fn struct {
	what    string
	env     map[string]string // nil: no Environment at all
	layers  []string
	arch    types.Architecture
	runtime types.Runtime
	image   bool
	timeout int32
}

// create makes the function in moto and returns it as a target.
func (e *env) create(f fn) instrument.Target {
	e.t.Helper()
	name := unique(e.t, f.what)
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Role:         aws.String(testRole),
		Layers:       f.layers,
	}
	if f.image {
		in.PackageType = types.PackageTypeImage
		in.Code = &types.FunctionCode{ImageUri: aws.String("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:latest")}
	} else {
		in.Runtime = types.RuntimePython312
		if f.runtime != "" {
			in.Runtime = f.runtime
		}
		in.Handler = aws.String("app.handler")
		in.Code = &types.FunctionCode{ZipFile: handlerZip}
	}
	if f.env != nil {
		in.Environment = &types.Environment{Variables: f.env}
	}
	if f.arch != "" {
		in.Architectures = []types.Architecture{f.arch}
	}
	if f.timeout != 0 {
		in.Timeout = aws.Int32(f.timeout)
	}
	out, err := e.lambda.CreateFunction(context.Background(), in)
	require.NoError(e.t, err, "create function %s", name)
	return instrument.Target{
		StackFunction: instrument.StackFunction{LogicalID: f.what, Name: name, ARN: aws.ToString(out.FunctionArn)},
		Key:           []byte("0123456789abcdef0123456789abcdef-" + f.what),
	}
}

// userLayer publishes a layer of the function's own, as a deploy would have attached it.
func (e *env) userLayer(what string) string {
	e.t.Helper()
	out, err := e.lambda.PublishLayerVersion(context.Background(), &lambda.PublishLayerVersionInput{
		LayerName: aws.String(unique(e.t, what)),
		Content:   &types.LayerVersionContentInput{ZipFile: zipOf(map[string]string{"python/lib.py": "X = 1\n"})},
	})
	require.NoError(e.t, err)
	return aws.ToString(out.LayerVersionArn)
}

// raw is GetFunctionConfiguration's answer for the function, verbatim.
func (e *env) raw(name string) []byte {
	e.t.Helper()
	return moto.RawFunctionConfiguration(e.t, e.srv.Config(), name)
}

// restorable is the part of a raw configuration that plldb changes and must put back byte for byte:
// Environment (absent, empty or values), Layers and Timeout, as Lambda wrote them. Only the order of keys in
// JSON objects is normalised: Lambda keeps variables as a map, and the Go SDK sends a map's keys in random
// order, which moto echoes back.
func restorable(t testing.TB, raw []byte) map[string]string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &m))
	out := map[string]string{}
	for _, k := range []string{"Environment", "Layers", "Timeout"} {
		v, ok := m[k]
		if !ok {
			out[k] = "<absent>"
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		var x any
		require.NoError(t, dec.Decode(&x))
		b, err := json.Marshal(x)
		require.NoError(t, err)
		out[k] = string(b)
	}
	return out
}

// config is the SDK's reading of the function's configuration.
func (e *env) config(name string) *lambda.GetFunctionConfigurationOutput {
	e.t.Helper()
	out, err := e.lambda.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
	require.NoError(e.t, err)
	return out
}

func vars(c *lambda.GetFunctionConfigurationOutput) map[string]string {
	if c.Environment == nil {
		return nil
	}
	return c.Environment.Variables
}

func layerList(c *lambda.GetFunctionConfigurationOutput) []string {
	var out []string
	for _, l := range c.Layers {
		out = append(out, aws.ToString(l.Arn))
	}
	return out
}

func session(id string) instrument.Session {
	return instrument.Session{ID: id, Owner: "alice@laptop", Endpoint: "wss://relay.example.com/dev", Audience: "relay.example.com"}
}

func targetsARNs(ts []instrument.Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ARN)
	}
	return out
}

func outcomes(rs []instrument.Result) map[string]instrument.Outcome {
	out := map[string]instrument.Outcome{}
	for _, r := range rs {
		out[r.FunctionName] = r.Outcome
	}
	return out
}

func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

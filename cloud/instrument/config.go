package instrument

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/plldb/plldb/bridge/selenv"
)

// Limits and values of the instrumentation.
const (
	// WrapperPath is where the plldb layer puts its exec wrapper.
	WrapperPath = "/opt/plldb/wrapper"
	// MaxLayers is Lambda's limit on layers per function.
	MaxLayers = 5
	// MaxEnvironmentBytes is Lambda's limit on a function's variables: "4 KB, for all environment variables
	// associated with the function, in aggregate", where the Lambda guide's KB is 1024 bytes.
	MaxEnvironmentBytes = 4096
	// DebugTimeout is the timeout an instrumented function gets, Lambda's maximum, so that a paused
	// invocation is not cut off by the function's own timeout.
	DebugTimeout int32 = 900
)

// The variables plldb adds to an instrumented function.
const (
	EnvExecWrapper = "AWS_LAMBDA_EXEC_WRAPPER"
	EnvPrevWrapper = "PLLDB_PREV_WRAPPER"
	EnvEndpoint    = "PLLDB_ENDPOINT"
	EnvSession     = "PLLDB_SESSION"
	EnvFunctionKey = "PLLDB_FUNCTION_KEY"
	EnvAudience    = "PLLDB_AUDIENCE"
	EnvLogicalID   = "PLLDB_LOGICAL_ID"
	EnvStrict      = "PLLDB_STRICT"
	// EnvCredentials is "function" when the layer sends the function's role credentials to the developer with
	// each invocation (Session.Credentials).
	EnvCredentials = "PLLDB_CREDENTIALS"
	// The selective mode variables (Session.Selective), as layer/proxy reads them (bridge/selenv). In selective
	// mode PLLDB_SESSIONS takes the place of PLLDB_SESSION, PLLDB_FUNCTION_KEY and PLLDB_CREDENTIALS: one entry
	// per session sharing the function.
	EnvSelective  = selenv.EnvSelective
	EnvKnockKeys  = selenv.EnvKnockKeys
	EnvKnockStack = selenv.EnvKnockStack
	EnvSessions   = selenv.EnvSessions
)

// SessionTag is the tag Instrument puts on every function it changes and the restore that puts the function
// back removes. The helper stack's relay role may only read, update and untag functions that carry it, which is
// what lets the relay put back the functions of an expired session and nothing else. Its value is the session
// that tagged the function last; with several selective sessions sharing a function there is still one tag
// (IAM conditions test its presence, not its value), put on by every session that joins and removed only by the
// last one out, so a session leaving never takes the relay's permission away from those that stay.
const SessionTag = "plldb:session"

// LambdaAPI is the part of the Lambda API that instrumentation uses.
type LambdaAPI interface {
	GetFunctionConfiguration(ctx context.Context, in *lambda.GetFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error)
	UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error)
	TagResource(ctx context.Context, in *lambda.TagResourceInput, optFns ...func(*lambda.Options)) (*lambda.TagResourceOutput, error)
	UntagResource(ctx context.Context, in *lambda.UntagResourceInput, optFns ...func(*lambda.Options)) (*lambda.UntagResourceOutput, error)
}

// fnConfig is the part of a function's configuration plldb reasons about, with the field names of Lambda's
// JSON so that it reads a snapshot's verbatim Config as well as the SDK's answers.
type fnConfig struct {
	FunctionName  string       `json:"FunctionName,omitempty"`
	FunctionArn   string       `json:"FunctionArn,omitempty"`
	Runtime       string       `json:"Runtime,omitempty"`
	Role          string       `json:"Role,omitempty"`
	Handler       string       `json:"Handler,omitempty"`
	CodeSha256    string       `json:"CodeSha256,omitempty"`
	Description   string       `json:"Description,omitempty"`
	Timeout       *int32       `json:"Timeout,omitempty"`
	MemorySize    *int32       `json:"MemorySize,omitempty"`
	Environment   *environment `json:"Environment,omitempty"`
	Layers        []layer      `json:"Layers,omitempty"`
	KMSKeyArn     string       `json:"KMSKeyArn,omitempty"`
	Architectures []string     `json:"Architectures,omitempty"`
	PackageType   string       `json:"PackageType,omitempty"`

	RevisionId                 string `json:"RevisionId,omitempty"`
	LastUpdateStatus           string `json:"LastUpdateStatus,omitempty"`
	LastUpdateStatusReason     string `json:"LastUpdateStatusReason,omitempty"`
	LastUpdateStatusReasonCode string `json:"LastUpdateStatusReasonCode,omitempty"`
	State                      string `json:"State,omitempty"`
}

type environment struct {
	Variables map[string]string `json:"Variables"`
}

type layer struct {
	Arn string `json:"Arn"`
}

func (c *fnConfig) vars() map[string]string {
	if c.Environment == nil {
		return nil
	}
	return c.Environment.Variables
}

func (c *fnConfig) layerARNs() []string {
	out := make([]string, 0, len(c.Layers))
	for _, l := range c.Layers {
		out = append(out, l.Arn)
	}
	return out
}

func (c *fnConfig) timeout() int32 {
	if c.Timeout == nil {
		return 3 // Lambda's default
	}
	return *c.Timeout
}

// revision identifies the configuration's state for "changed by someone else" checks: Lambda's RevisionId, or,
// where an endpoint does not report one (moto), a digest of everything a deploy or a person could change.
func (c *fnConfig) revision() string {
	if c.RevisionId != "" {
		return c.RevisionId
	}
	stable := *c
	stable.RevisionId, stable.LastUpdateStatus, stable.LastUpdateStatusReason, stable.LastUpdateStatusReasonCode, stable.State = "", "", "", "", ""
	b, _ := json.Marshal(stable) // plain strings, ints and maps: cannot fail
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

func fromGet(o *lambda.GetFunctionConfigurationOutput) fnConfig {
	c := fnConfig{
		FunctionName: aws.ToString(o.FunctionName), FunctionArn: aws.ToString(o.FunctionArn),
		Runtime: string(o.Runtime), Role: aws.ToString(o.Role), Handler: aws.ToString(o.Handler),
		CodeSha256: aws.ToString(o.CodeSha256), Description: aws.ToString(o.Description),
		Timeout: o.Timeout, MemorySize: o.MemorySize, KMSKeyArn: aws.ToString(o.KMSKeyArn),
		PackageType: string(o.PackageType), RevisionId: aws.ToString(o.RevisionId),
		LastUpdateStatus: string(o.LastUpdateStatus), LastUpdateStatusReason: aws.ToString(o.LastUpdateStatusReason),
		LastUpdateStatusReasonCode: string(o.LastUpdateStatusReasonCode), State: string(o.State),
	}
	c.Environment = fromEnv(o.Environment)
	c.Layers = fromLayers(o.Layers)
	for _, a := range o.Architectures {
		c.Architectures = append(c.Architectures, string(a))
	}
	return c
}

func fromUpdate(o *lambda.UpdateFunctionConfigurationOutput) fnConfig {
	// The SDK's two outputs are the same shape (the function's configuration), so one reading serves both.
	g := lambda.GetFunctionConfigurationOutput(*o)
	return fromGet(&g)
}

func fromEnv(e *types.EnvironmentResponse) *environment {
	if e == nil {
		return nil
	}
	v := map[string]string{}
	maps.Copy(v, e.Variables)
	return &environment{Variables: v}
}

func fromLayers(ls []types.Layer) []layer {
	var out []layer
	for _, l := range ls {
		out = append(out, layer{Arn: aws.ToString(l.Arn)})
	}
	return out
}

// parseConfig reads a snapshot's verbatim Config.
func parseConfig(raw []byte) (fnConfig, error) {
	var c fnConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return fnConfig{}, fmt.Errorf("parse saved function configuration: %w", err)
	}
	return c, nil
}

// captureBody keeps the raw response body of the call it is passed to, so that a snapshot holds Lambda's
// answer verbatim rather than the SDK's reading of it. It sits between the SDK's deserializer and the
// transport and hands the deserializer an identical copy of the body.
func captureBody(dst *[]byte) func(*lambda.Options) {
	return func(o *lambda.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("plldbCaptureBody",
				func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleDeserialize(ctx, in)
					if err != nil {
						return out, md, err
					}
					resp, ok := out.RawResponse.(*smithyhttp.Response)
					if !ok || resp.Body == nil {
						return out, md, nil
					}
					b, rerr := io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					if rerr != nil {
						return out, md, fmt.Errorf("read response body: %w", rerr)
					}
					*dst = b
					resp.Body = io.NopCloser(bytes.NewReader(b))
					return out, md, nil
				}), middleware.After)
		})
	}
}

// EnvironmentSize is the size Lambda counts against MaxEnvironmentBytes: the variables map serialised as
// compact JSON. Lambda's refusal quotes the string it measured ("…exceeded the 4KB limit. String measured:
// {"A":"1","B":"2"}"), the serialisation LocalStack reproduces with Python's json.dumps(separators=(",",":")).
// Characters outside printable ASCII are counted as their \u escapes, as that serialisation writes them;
// this never counts less than their UTF-8 bytes, so a function that passes here fits in Lambda too.
func EnvironmentSize(vars map[string]string) int {
	n := 2 // {}
	first := true
	for k, v := range vars {
		if !first {
			n++ // ,
		}
		first = false
		n += jsonStringSize(k) + 1 + jsonStringSize(v)
	}
	return n
}

func jsonStringSize(s string) int {
	n := 2 // quotes
	for _, r := range s {
		switch {
		case r == '"' || r == '\\' || r == '\b' || r == '\f' || r == '\n' || r == '\r' || r == '\t':
			n += 2
		case r < 0x20 || r == 0x7f:
			n += 6
		case r < 0x80:
			n++
		case r <= 0xffff:
			n += 6
		default:
			n += 12 // a surrogate pair
		}
	}
	return n
}

// runtimeProblem says why the function cannot run an exec wrapper, or "" when it can. Exec wrappers run only
// on managed runtimes; OS-only runtimes (provided.*) and container images never call one.
func runtimeProblem(c *fnConfig) string {
	if strings.EqualFold(c.PackageType, string(types.PackageTypeImage)) {
		return "it is a container image function, and exec wrappers run only on managed runtimes"
	}
	rt := c.Runtime
	switch {
	case rt == "":
		return "it has no managed runtime, and exec wrappers run only on managed runtimes"
	case strings.HasPrefix(rt, "provided"):
		return fmt.Sprintf("its runtime %s is OS-only, and exec wrappers run only on managed runtimes", rt)
	case rt == "go1.x" || rt == "java8" || rt == "nodejs" || strings.HasPrefix(rt, "dotnetcore") || rt == "python2.7":
		return fmt.Sprintf("its runtime %s does not support exec wrappers", rt)
	}
	for _, p := range []string{"python3", "nodejs", "ruby", "java", "dotnet"} {
		if strings.HasPrefix(rt, p) {
			return ""
		}
	}
	return fmt.Sprintf("its runtime %s is not a managed runtime known to support exec wrappers", rt)
}

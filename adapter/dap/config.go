package dap

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/adapter/local"
)

// LaunchConfig is a launch request's arguments, validated.
type LaunchConfig struct {
	Mode           string            // "local" (default) or "aws"
	Template       string            // absolute
	InvokeHost     string            // default 127.0.0.1
	InvokePort     int               // default 3001; 0 picks a free port
	Functions      []string          // logical ids; empty means all
	Python         string            // interpreter; "" finds the project's virtualenv, then python3
	Cwd            string            // base of relative paths; default the adapter's working directory
	Env            map[string]string // added to every function's environment
	JustMyCode     bool              // default true
	PathMappings   []PathMapping
	SubProcess     bool
	RedirectOutput bool // default true: handler output becomes output events
	Strict         bool
	NoDebug        bool
	// Selective: only invocations carrying a knock of this session reach the debugger. Mode local: they run under
	// debugpy, every other one at full speed without it (local.Options.Selective; plldb knock --local). Mode aws:
	// every other one runs the deployed code in its sandbox (awsmode.Options.Selective; plldb knock --stack-name).
	Selective bool
	// Mirror (with Selective): the caller of a knocked invocation gets the deployed code's answer and a copy runs
	// under the debugger for the developer alone; the Debug Console shows both results (docs/knock.md, "Mirror
	// mode"). Mode local: local.Options.Mirror. Mode aws: accepted here, refused when the session starts until
	// adapter/aws has the option (see startBackendWith).
	Mirror bool
	// `plldb local`'s --max-concurrency and --account-concurrency (0: its defaults).
	MaxConcurrency, AccountConcurrency int
	// AWS mode: the deployed stack, the AWS configuration (SDK default chain when empty), the helper stack
	// install name (default "plldb") and an endpoint override (moto, LocalStack).
	StackName, Region, Profile string
	InstallName, EndpointURL   string
	// Credentials are the AWS credentials handlers run with: in AWS mode "function" (the default: the
	// function's execution role's, sent by the layer) or "developer" (your own, from Profile or the SDK's default
	// chain); in local mode always your own, from Profile or the default chain.
	Credentials string
}

// PathMapping maps the IDE's folder to the folder the executor runs the code from.
type PathMapping struct {
	LocalRoot  string `json:"localRoot"`
	RemoteRoot string `json:"remoteRoot"`
}

// DefaultInvokePort is Lambda's local Invoke API port, as `sam local start-lambda` uses.
const DefaultInvokePort = 3001

// DefaultMaxConcurrency and DefaultAccountConcurrency are plldb local's (local.DefaultMaxConcurrency and
// local.DefaultAccountConcurrency, which a test keeps them equal to), written out as literals because the
// extension's schema test reads this file's defaults.
const DefaultMaxConcurrency = 10

const DefaultAccountConcurrency = 1000

// parseLaunch validates launch arguments. Every error names the attribute and what is wrong with it; attributes
// it does not know (VS Code adds name, type, request, __sessionId, …) are ignored.
func parseLaunch(raw json.RawMessage) (*LaunchConfig, error) { return parseLaunchWith(raw, nil) }

// parseLaunchWith is parseLaunch with defaults under the IDE's arguments (Options.LaunchDefaults).
func parseLaunchWith(raw json.RawMessage, defaults map[string]any) (*LaunchConfig, error) {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	var a obj
	if err := json.Unmarshal(raw, &a); err != nil || a == nil {
		return nil, errors.New("launch arguments must be a JSON object")
	}
	for k, v := range defaults {
		if _, set := a[k]; !set {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("launch default %q: %w", k, err)
			}
			a[k] = b
		}
	}
	c := &LaunchConfig{Mode: "local", InvokeHost: "127.0.0.1", InvokePort: DefaultInvokePort, MaxConcurrency: DefaultMaxConcurrency, AccountConcurrency: DefaultAccountConcurrency, JustMyCode: true, RedirectOutput: true}
	var errs []string
	field := func(name string, dst any, what string) bool {
		v, ok := a[name]
		if !ok || string(v) == "null" {
			return false
		}
		if err := json.Unmarshal(v, dst); err != nil {
			errs = append(errs, fmt.Sprintf("%q must be %s, got %s", name, what, clip(v)))
			return false
		}
		return true
	}
	field("mode", &c.Mode, "a string")
	field("template", &c.Template, "a string")
	field("invokeHost", &c.InvokeHost, "a string")
	if field("invokePort", &c.InvokePort, "an integer") && (c.InvokePort < 0 || c.InvokePort > 65535) {
		errs = append(errs, fmt.Sprintf(`"invokePort" %d is not a TCP port (0–65535; 0 picks a free one)`, c.InvokePort))
	}
	// One field call per attribute, spelled out: the extension's schema test reads them from this source.
	if field("maxConcurrency", &c.MaxConcurrency, "an integer") && c.MaxConcurrency < 1 {
		errs = append(errs, fmt.Sprintf(`"maxConcurrency" %d must be at least 1`, c.MaxConcurrency))
	}
	if field("accountConcurrency", &c.AccountConcurrency, "an integer") && c.AccountConcurrency < 1 {
		errs = append(errs, fmt.Sprintf(`"accountConcurrency" %d must be at least 1`, c.AccountConcurrency))
	}
	field("functions", &c.Functions, "a list of logical ids")
	field("python", &c.Python, "a string")
	field("cwd", &c.Cwd, "a string")
	field("env", &c.Env, "an object of string values")
	field("justMyCode", &c.JustMyCode, "true or false")
	field("pathMappings", &c.PathMappings, `a list of {"localRoot", "remoteRoot"}`)
	field("subProcess", &c.SubProcess, "true or false")
	field("redirectOutput", &c.RedirectOutput, "true or false")
	field("strict", &c.Strict, "true or false")
	field("noDebug", &c.NoDebug, "true or false")
	field("selective", &c.Selective, "true or false")
	field("mirror", &c.Mirror, "true or false")
	field("stackName", &c.StackName, "a string")
	field("region", &c.Region, "a string")
	field("profile", &c.Profile, "a string")
	field("installName", &c.InstallName, "a string")
	field("endpointUrl", &c.EndpointURL, "a string")
	field("credentials", &c.Credentials, `"function" or "developer"`)
	errs = append(errs, checkToken(a)...)
	if c.Mirror && !c.Selective {
		errs = append(errs, `"mirror": true needs "selective": true: only knocked invocations are mirrored`)
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}

	switch c.Mode {
	case "local":
		if c.Credentials != "" && c.Credentials != awsmode.CredentialsDeveloper {
			return nil, fmt.Errorf(`"credentials" %q: local handlers run with your own credentials ("developer"); "function" (the execution role's) needs "mode": "aws"`, c.Credentials)
		}
	case "aws":
		if err := awsmode.ValidCredentials(c.Credentials); err != nil {
			return nil, fmt.Errorf(`"credentials": %w`, err)
		}
		if c.StackName == "" {
			return nil, errors.New(`"stackName" is required with "mode": "aws"`)
		}
	default:
		return nil, fmt.Errorf(`"mode" %q is not supported: want "local" or "aws"`, c.Mode)
	}
	if c.Cwd == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf(`"cwd" not given and the working directory is unknown: %w`, err)
		}
		c.Cwd = wd
	} else if st, err := os.Stat(c.Cwd); err != nil || !st.IsDir() {
		return nil, fmt.Errorf(`"cwd" %q is not a folder`, c.Cwd)
	}
	if c.Template == "" {
		// sam's default names, as `plldb local` finds them.
		for _, name := range []string{"template.yaml", "template.yml", "template.json"} {
			if _, err := os.Stat(filepath.Join(c.Cwd, name)); err == nil {
				c.Template = name
				break
			}
		}
		if c.Template == "" && c.Mode == "local" {
			return nil, fmt.Errorf(`"template" is required: no template.yaml, template.yml or template.json in %s`, c.Cwd)
		}
	}
	if c.Template == "" { // AWS mode without a local template: the deployed stack's template maps the functions
		return c.checkRest()
	}
	if !filepath.IsAbs(c.Template) {
		c.Template = filepath.Join(c.Cwd, c.Template)
	}
	if st, err := os.Stat(c.Template); err != nil {
		return nil, fmt.Errorf(`"template" %s: %w`, c.Template, err)
	} else if st.IsDir() {
		return nil, fmt.Errorf(`"template" %s is a folder, not a template file`, c.Template)
	}
	return c.checkRest()
}

func (c *LaunchConfig) checkRest() (*LaunchConfig, error) {
	if c.InvokeHost == "" {
		return nil, errors.New(`"invokeHost" must not be empty`)
	}
	if !local.IsLoopbackHost(c.InvokeHost) {
		// The Invoke API runs the functions; a debug configuration never opens it to other machines (plldb local
		// --allow-remote does, with a token). A remote adapter's Invoke API is reached by forwarding its port.
		return nil, fmt.Errorf(`"invokeHost" %q is not a loopback address: the Invoke API would be reachable from other machines; use 127.0.0.1 and forward the port (ssh -L) to reach it from elsewhere`, c.InvokeHost)
	}
	for i, f := range c.Functions {
		if strings.TrimSpace(f) == "" {
			return nil, fmt.Errorf(`"functions"[%d] is empty`, i)
		}
	}
	for i, pm := range c.PathMappings {
		if pm.LocalRoot == "" || pm.RemoteRoot == "" {
			return nil, fmt.Errorf(`"pathMappings"[%d] needs both "localRoot" and "remoteRoot"`, i)
		}
	}
	if c.Python != "" {
		if _, err := os.Stat(c.Python); err != nil {
			return nil, fmt.Errorf(`"python" %s: %w`, c.Python, err)
		}
	}
	return c, nil
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// parseAttach validates an attach request's arguments: only the debugger's settings (justMyCode, pathMappings,
// subProcess, redirectOutput) apply, since the functions already run with the command's settings; host and
// port name the plldb server the IDE connected to, and the rest (VS Code's name, type, request, …) is ignored.
func parseAttach(raw json.RawMessage) (*LaunchConfig, error) {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	var a obj
	if err := json.Unmarshal(raw, &a); err != nil || a == nil {
		return nil, errors.New("attach arguments must be a JSON object")
	}
	c := &LaunchConfig{Mode: "attach", JustMyCode: true, RedirectOutput: true}
	var errs []string
	field := func(name string, dst any, what string) {
		v, ok := a[name]
		if !ok || string(v) == "null" {
			return
		}
		if err := json.Unmarshal(v, dst); err != nil {
			errs = append(errs, fmt.Sprintf("%q must be %s, got %s", name, what, clip(v)))
		}
	}
	field("justMyCode", &c.JustMyCode, "true or false")
	field("pathMappings", &c.PathMappings, `a list of {"localRoot", "remoteRoot"}`)
	field("subProcess", &c.SubProcess, "true or false")
	field("redirectOutput", &c.RedirectOutput, "true or false")
	errs = append(errs, checkToken(a)...)
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	for i, pm := range c.PathMappings {
		if pm.LocalRoot == "" || pm.RemoteRoot == "" {
			return nil, fmt.Errorf(`"pathMappings"[%d] needs both "localRoot" and "remoteRoot"`, i)
		}
	}
	return c, nil
}

// checkToken type-checks "token": a listener with --allow-remote takes it off the arguments before the session
// sees them (tokenGate); anywhere else it means nothing, but a token that is not a string is a mistake to name.
func checkToken(a obj) []string {
	v, ok := a["token"]
	if !ok || string(v) == "null" {
		return nil
	}
	var tok string
	if err := json.Unmarshal(v, &tok); err != nil {
		return []string{`"token" must be a string (the one plldb printed on stderr)`} // not echoed: a secret
	}
	return nil
}

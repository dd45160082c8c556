// Package template reads AWS SAM and CloudFormation templates (YAML or JSON) and tells plldb which Lambda
// functions it can serve from local source: each function's handler, runtime, code folder, layers, limits and
// environment, resolved the way `sam local` resolves them.
//
// Intrinsic functions (short and long forms) are evaluated as far as is possible without AWS: parameters take
// their Default or an override, pseudo parameters have local stand-ins (AWS::Region is us-east-1, the account
// 123456789012, the stack "local"), Mappings and Conditions are evaluated, and whatever only exists once
// deployed (a resource's Ref or attribute) stands in as the resource's logical id, so !Ref MyTable gives
// "MyTable". Problems with the template itself are reported as *Error with file, line and column; functions
// plldb cannot serve (another runtime, code in S3, inline code, container images) are listed with
// Supported false and a Reason.
package template

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Resource types this package reads.
const (
	TypeServerlessFunction = "AWS::Serverless::Function"
	TypeLambdaFunction     = "AWS::Lambda::Function"
	TypeServerlessLayer    = "AWS::Serverless::LayerVersion"
	TypeLambdaLayer        = "AWS::Lambda::LayerVersion"
	TypeLambdaAlias        = "AWS::Lambda::Alias"
)

// Defaults applied when a function does not say (the values Lambda and SAM use).
const (
	DefaultTimeout      = 3
	DefaultMemoryMB     = 128
	DefaultArchitecture = "x86_64"
)

// Local stand-ins for the pseudo parameters; LoadOptions.Parameters can override each by its name
// (e.g. "AWS::Region").
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "123456789012"
	DefaultStackName = "local"
)

// Function is one Lambda function of a template, resolved.
type Function struct {
	LogicalID    string
	Name         string            // FunctionName if set and resolvable, else the logical id
	Type         string            // AWS::Serverless::Function | AWS::Lambda::Function
	Runtime      string            // e.g. python3.12
	Handler      string            // module.function or package.module.function
	Description  string            // Description, when it resolves to a string
	CodeDir      string            // absolute path of the local code folder ("" when the code is not local)
	Timeout      int               // seconds (default 3)
	MemoryMB     int               // default 128
	Architecture string            // x86_64 | arm64 (Architectures[0], default x86_64)
	Env          map[string]string // Environment.Variables with Globals merged, values as strings; never nil
	Layers       []Layer           // layers with local content, in the function's order
	Logging      LoggingConfig     // LoggingConfig, with Globals merged; zero when absent
	// UnresolvedLayers are the function's layers that have no local content (ARNs of published layers, layers
	// in S3): they are not served locally, so imports from them fail unless the code has them otherwise.
	UnresolvedLayers []string
	// ReservedConcurrency is ReservedConcurrentExecutions: nil when the template does not set it (the function
	// shares the account's unreserved concurrency), else the reservation, which is also the function's cap. A
	// pointer because 0 is meaningful: Lambda throttles every invocation of a function reserved at 0.
	ReservedConcurrency *int
	// MaxEventRetries is SAM's EventInvokeConfig.MaximumRetryAttempts (0–2): how often Lambda retries an
	// asynchronous invocation that failed; nil when not set (Lambda's default is 2).
	MaxEventRetries *int
	Supported       bool     // a Python runtime with local code and a valid handler
	Reason          string   // why not supported, e.g. `runtime "nodejs20.x" is not supported yet (only Python runtimes)`
	Source          Position // where the function is defined (its logical id in Resources)
	// Aliases are the function's declared alias names: SAM's AutoPublishAlias and the AWS::Lambda::Alias
	// resources whose FunctionName refers to it. Invoking through one of them runs the local code, as $LATEST.
	Aliases []string
}

// LoggingConfig is a function's LoggingConfig: empty strings for what is not set.
type LoggingConfig struct {
	LogFormat           string // JSON | Text
	ApplicationLogLevel string // TRACE | DEBUG | INFO | WARN | ERROR | FATAL
	SystemLogLevel      string // DEBUG | INFO | WARN: Lambda's own START/END/REPORT lines, nothing the runtime sees
	LogGroup            string
}

// RuntimeEnv is what Lambda tells the runtime of this configuration, as environment variables: the JSON format
// and its application log level (INFO unless set; Lambda filters by level only in JSON format, so a level
// with Text is not passed on), read by awslambdaric; and the log group, which the context reports.
func (l LoggingConfig) RuntimeEnv() map[string]string {
	env := map[string]string{}
	if l.LogFormat == "JSON" {
		env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
		env["AWS_LAMBDA_LOG_LEVEL"] = "INFO"
		if l.ApplicationLogLevel != "" {
			env["AWS_LAMBDA_LOG_LEVEL"] = l.ApplicationLogLevel
		}
	}
	if l.LogGroup != "" {
		env["AWS_LAMBDA_LOG_GROUP_NAME"] = l.LogGroup
	}
	return env
}

// Layer is a layer with local content. Lambda puts <layer>/python on sys.path, so PythonDir is what an
// executor adds to the path.
type Layer struct {
	LogicalID string
	Dir       string // absolute
	PythonDir string // Dir/python if that folder exists, else ""
}

// Position is a place in a template file; Line and Column are 1-based.
type Position struct {
	File         string
	Line, Column int
}

func (p Position) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column) }

// Template is a parsed template.
type Template struct {
	Path       string            // absolute path of the template file
	Functions  []Function        // sorted by logical id
	Parameters map[string]string // declared parameters that have a value (override or Default); lists comma-joined
}

// LoadOptions change how a template is resolved.
type LoadOptions struct {
	// Parameters override parameter Defaults (like `sam local --parameter-overrides`) and pseudo parameters
	// (keys such as "AWS::Region", "AWS::AccountId", "AWS::StackName"). Overrides of undeclared names are ignored.
	Parameters map[string]string
}

// templateNames are the files Load looks for when given a folder, in the order `sam` does.
var templateNames = []string{"template.yaml", "template.yml", "template.json"}

// Load reads and parses a template file. Given a folder, it reads the folder's template.yaml (or .yml, .json).
func Load(path string) (*Template, error) {
	return LoadWith(path, LoadOptions{})
}

// LoadWith is Load with options.
func LoadWith(path string, opts LoadOptions) (*Template, error) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		found := false
		for _, name := range templateNames {
			if _, err := os.Stat(filepath.Join(path, name)); err == nil {
				path, found = filepath.Join(path, name), true
				break
			}
		}
		if !found {
			return nil, &Error{File: path, Msg: "folder has no " + strings.Join(templateNames, ", ") + " (want a template file)"}
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read template: %v", err), err: err}
	}
	return ParseWith(path, data, opts)
}

// Parse parses template data; path names the file in errors and relative code paths are taken from its folder.
func Parse(path string, data []byte) (*Template, error) {
	return ParseWith(path, data, LoadOptions{})
}

// ParseWith is Parse with options.
func ParseWith(path string, data []byte, opts LoadOptions) (*Template, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot make the path absolute: %v", err), err: err}
	}
	root, err := decode(abs, data)
	if err != nil {
		return nil, err
	}
	b := &builder{
		file:   abs,
		dir:    filepath.Dir(abs),
		root:   root,
		opts:   opts,
		layers: map[string]*layerInfo{},
		r: &resolver{
			file:       abs,
			params:     map[string]any{},
			declared:   map[string]bool{},
			resources:  map[string]*yaml.Node{},
			conditions: map[string]*yaml.Node{},
			condKeys:   map[string]*yaml.Node{},
			condVal:    map[string]bool{},
		},
	}
	return b.build()
}

// Function finds a function by logical id, or else by name (FunctionName). The result points into t.Functions.
func (t *Template) Function(nameOrLogicalID string) (*Function, bool) {
	for i := range t.Functions {
		if t.Functions[i].LogicalID == nameOrLogicalID {
			return &t.Functions[i], true
		}
	}
	for i := range t.Functions {
		if t.Functions[i].Name == nameOrLogicalID {
			return &t.Functions[i], true
		}
	}
	return nil, false
}

// Supported lists the functions plldb can serve, in logical id order.
func (t *Template) Supported() []Function {
	var out []Function
	for _, f := range t.Functions {
		if f.Supported {
			out = append(out, f)
		}
	}
	return out
}

// builder turns a decoded template into a Template.
type builder struct {
	file, dir string
	root      *yaml.Node
	opts      LoadOptions
	r         *resolver
	types     map[string]string // logical id → resource type
	keys      map[string]*yaml.Node
	globalFn  *yaml.Node // Globals.Function
	layers    map[string]*layerInfo
}

func (b *builder) errf(n *yaml.Node, format string, args ...any) *Error {
	return errAt(b.file, n, format, args...)
}

// section returns a top-level section, which must be a mapping if present.
func (b *builder) section(name string) (*yaml.Node, error) {
	n := mapGet(b.root, name)
	if n == nil {
		return nil, nil
	}
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode || isCustomTag(n.Tag) {
		return nil, b.errf(n, "%s must be a mapping, got %s", name, kindName(n))
	}
	return n, nil
}

// deref follows an alias to its anchor. An alias never names another alias, so one step is enough.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func (b *builder) build() (*Template, error) {
	t := &Template{Path: b.file, Parameters: map[string]string{}}
	b.pseudo()
	if err := b.parameters(t); err != nil {
		return nil, err
	}
	mappings, err := b.section("Mappings")
	if err != nil {
		return nil, err
	}
	b.r.mappings = mappings
	conds, err := b.section("Conditions")
	if err != nil {
		return nil, err
	}
	for i := 0; conds != nil && i+1 < len(conds.Content); i += 2 {
		k := conds.Content[i]
		b.r.conditions[k.Value] = conds.Content[i+1]
		b.r.condKeys[k.Value] = k
	}
	globals, err := b.section("Globals")
	if err != nil {
		return nil, err
	}
	if g := deref(mapGet(globals, "Function")); g != nil {
		if g.Kind != yaml.MappingNode || isCustomTag(g.Tag) {
			return nil, b.errf(g, "Globals.Function must be a mapping, got %s", kindName(g))
		}
		b.globalFn = g
	}
	resources, err := b.section("Resources")
	if err != nil {
		return nil, err
	}
	if resources == nil {
		return nil, b.errf(b.root, "no Resources: a template must define at least one resource")
	}
	if len(resources.Content) == 0 {
		return nil, b.errf(resources, "Resources is empty: a template must define at least one resource")
	}
	b.types = map[string]string{}
	b.keys = map[string]*yaml.Node{}
	entries, err := b.resourceEntries(resources)
	if err != nil {
		return nil, err
	}
	var ids []string
	for i := 0; i+1 < len(entries); i += 2 {
		k, v := entries[i], deref(entries[i+1])
		if k.Kind != yaml.ScalarNode || isCustomTag(k.Tag) || k.Value == "" {
			return nil, b.errf(k, "a resource's logical id must be a plain string, got %s", kindName(k))
		}
		id := k.Value
		if first, dup := b.keys[id]; dup {
			return nil, b.errf(k, "resource %s is defined twice (first at line %d)", id, first.Line)
		}
		if v.Kind != yaml.MappingNode || isCustomTag(v.Tag) {
			return nil, b.errf(v, "resource %s must be a mapping with Type and Properties, got %s", id, kindName(v))
		}
		tn := deref(mapGet(v, "Type"))
		if tn == nil {
			return nil, b.errf(k, "resource %s has no Type", id)
		}
		if tn.Kind != yaml.ScalarNode || isCustomTag(tn.Tag) || tn.Value == "" {
			return nil, b.errf(tn, "resource %s: Type must be a string, got %s", id, kindName(tn))
		}
		b.r.resources[id] = v
		b.types[id] = tn.Value
		b.keys[id] = k
		ids = append(ids, id)
		if strings.HasPrefix(tn.Value, "AWS::Serverless::") {
			b.r.samPrefixes = append(b.r.samPrefixes, id)
		}
	}
	b.r.resourcesKnown = true
	sort.Strings(ids)
	for _, id := range ids {
		switch b.types[id] {
		case TypeServerlessFunction, TypeLambdaFunction:
			f, err := b.function(id)
			if err != nil {
				return nil, err
			}
			t.Functions = append(t.Functions, *f)
		}
	}
	for _, id := range ids {
		if b.types[id] == TypeLambdaAlias {
			b.alias(t, id)
		}
	}
	return t, nil
}

// alias adds an AWS::Lambda::Alias resource's Name to the aliases of the function its FunctionName refers to
// (a Ref or GetAtt of the function stands in as its logical id; a name or ARN names it). An alias that does not
// resolve is skipped, not reported: aliases only widen which qualifiers the Invoke API accepts, and a template
// that serves its functions must not stop loading over one.
func (b *builder) alias(t *Template, id string) {
	props := deref(mapGet(b.r.resources[id], "Properties"))
	if props == nil || props.Kind != yaml.MappingNode || isCustomTag(props.Tag) {
		return
	}
	fnRef, _ := b.optionalString(props, "FunctionName")
	name, _ := b.optionalString(props, "Name")
	if fnRef == "" || name == "" {
		return
	}
	if i := strings.LastIndex(fnRef, ":function:"); i >= 0 { // an ARN, possibly qualified
		fnRef = fnRef[i+len(":function:"):]
		if j := strings.IndexByte(fnRef, ':'); j >= 0 {
			fnRef = fnRef[:j]
		}
	}
	if f, ok := t.Function(fnRef); ok {
		f.addAlias(name)
	}
}

func (f *Function) addAlias(name string) {
	for _, a := range f.Aliases {
		if a == name {
			return
		}
	}
	f.Aliases = append(f.Aliases, name)
}

// HasAlias reports whether name is one of the function's declared aliases.
func (f *Function) HasAlias(name string) bool {
	for _, a := range f.Aliases {
		if a == name {
			return true
		}
	}
	return false
}

// pseudo sets the local stand-ins of the pseudo parameters.
func (b *builder) pseudo() {
	o := b.opts.Parameters
	get := func(name, def string) string {
		if v, ok := o[name]; ok {
			return v
		}
		return def
	}
	region := get("AWS::Region", DefaultRegion)
	partition, suffix := "aws", "amazonaws.com"
	switch {
	case strings.HasPrefix(region, "cn-"):
		partition, suffix = "aws-cn", "amazonaws.com.cn"
	case strings.HasPrefix(region, "us-gov-"):
		partition = "aws-us-gov"
	}
	account := get("AWS::AccountId", DefaultAccountID)
	stack := get("AWS::StackName", DefaultStackName)
	partition = get("AWS::Partition", partition)
	b.r.pseudo = map[string]any{
		"AWS::Region":           region,
		"AWS::AccountId":        account,
		"AWS::StackName":        stack,
		"AWS::Partition":        partition,
		"AWS::URLSuffix":        get("AWS::URLSuffix", suffix),
		"AWS::StackId":          get("AWS::StackId", fmt.Sprintf("arn:%s:cloudformation:%s:%s:stack/%s/00000000-0000-0000-0000-000000000000", partition, region, account, stack)),
		"AWS::NotificationARNs": []any{},
	}
}

// parameters gives each declared parameter its override or Default.
func (b *builder) parameters(t *Template) error {
	params, err := b.section("Parameters")
	if err != nil {
		return err
	}
	for i := 0; params != nil && i+1 < len(params.Content); i += 2 {
		k, v := params.Content[i], deref(params.Content[i+1])
		name := k.Value
		if v.Kind != yaml.MappingNode || isCustomTag(v.Tag) {
			return b.errf(v, "parameter %s must be a mapping with a Type, got %s", name, kindName(v))
		}
		b.r.declared[name] = true
		typ := ""
		if tn := deref(mapGet(v, "Type")); tn != nil && tn.Kind == yaml.ScalarNode {
			typ = tn.Value
		}
		val, ok := b.opts.Parameters[name]
		if !ok {
			d := deref(mapGet(v, "Default"))
			if d == nil {
				continue // Ref gives the parameter's name
			}
			if d.Kind != yaml.ScalarNode || isCustomTag(d.Tag) {
				return b.errf(d, "parameter %s: Default must be a string, got %s", name, kindName(d))
			}
			val, _ = stringify(scalarValue(d))
		}
		t.Parameters[name] = val
		if isListType(typ) {
			var l []any
			for _, s := range strings.Split(val, ",") {
				l = append(l, s)
			}
			b.r.params[name] = l
		} else {
			b.r.params[name] = val
		}
	}
	return nil
}

// isListType tells the parameter types whose Ref is a list.
func isListType(typ string) bool {
	return typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<") ||
		strings.HasPrefix(typ, "AWS::SSM::Parameter::Value<List<") ||
		typ == "AWS::SSM::Parameter::Value<CommaDelimitedList>"
}

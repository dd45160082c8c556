package template

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// handlerRE is a Python handler: dotted identifiers, the last one the function.
var handlerRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$`)

// layerInfo is a layer resource resolved once, however many functions use it.
type layerInfo struct {
	layer  Layer
	local  bool   // content is a local folder
	reason string // set when local but unusable (folder missing)
}

// function resolves one function resource.
func (b *builder) function(id string) (*Function, error) {
	res := b.r.resources[id]
	typ := b.types[id]
	key := b.keys[id]
	f := &Function{
		LogicalID:    id,
		Name:         id,
		Type:         typ,
		Timeout:      DefaultTimeout,
		MemoryMB:     DefaultMemoryMB,
		Architecture: DefaultArchitecture,
		Env:          map[string]string{},
		Source:       Position{File: b.file, Line: key.Line, Column: key.Column},
	}
	props := deref(mapGet(res, "Properties"))
	if props == nil {
		return nil, b.errf(key, "function %s (%s) has no Properties", id, typ)
	}
	if props.Kind != yaml.MappingNode || isCustomTag(props.Tag) {
		return nil, b.errf(props, "function %s: Properties must be a mapping, got %s", id, kindName(props))
	}
	if typ == TypeServerlessFunction && b.globalFn != nil {
		// SAM merges Globals before it resolves anything, so intrinsics from both sides survive the merge.
		budget := maxMergeSteps
		props = mergeGlobals(b.globalFn, props, &budget)
	}
	var reasons []string
	unsupported := func(format string, args ...any) { reasons = append(reasons, fmt.Sprintf(format, args...)) }

	if v, _, ok, err := b.prop(props, "FunctionName"); err != nil {
		return nil, err
	} else if s, isStr := stringify(v); ok && isStr && s != "" {
		f.Name = s // otherwise (not a string) the logical id stands in
	}
	packageType, err := b.propString(id, props, "PackageType")
	if err != nil {
		return nil, err
	}
	if f.Runtime, err = b.propString(id, props, "Runtime"); err != nil {
		return nil, err
	}
	if f.Handler, err = b.propString(id, props, "Handler"); err != nil {
		return nil, err
	}
	if f.Timeout, err = b.propInt(id, props, "Timeout", DefaultTimeout); err != nil {
		return nil, err
	}
	if f.MemoryMB, err = b.propInt(id, props, "MemorySize", DefaultMemoryMB); err != nil {
		return nil, err
	}
	if f.ReservedConcurrency, err = b.propCount(id, props, "ReservedConcurrentExecutions"); err != nil {
		return nil, err
	}
	if err := b.eventInvokeConfig(f, props); err != nil {
		return nil, err
	}
	// Description and AutoPublishAlias are informational here (GetFunction, the qualifiers Invoke accepts): one
	// that does not resolve to a string is left out rather than made an error of a template that served before.
	f.Description, _ = b.optionalString(props, "Description")
	if typ == TypeServerlessFunction {
		if alias, _ := b.optionalString(props, "AutoPublishAlias"); alias != "" {
			f.addAlias(alias)
		}
	}
	if err := b.architecture(f, props); err != nil {
		return nil, err
	}
	if err := b.environment(f, props); err != nil {
		return nil, err
	}
	if err := b.logging(f, props); err != nil {
		return nil, err
	}

	// The most fundamental reason comes first: no point saying the handler is malformed in a container image.
	switch {
	case strings.EqualFold(packageType, "Image"):
		unsupported("package type Image (a container image) is not supported; only zip functions with local code")
	case f.Runtime == "":
		unsupported("no Runtime")
	case !strings.HasPrefix(f.Runtime, "python3."):
		unsupported("runtime %q is not supported yet (only Python runtimes)", f.Runtime)
	}
	codePath, why, err := b.codeLocation(id, typ, res, props)
	if err != nil {
		return nil, err
	}
	if why != "" {
		unsupported("%s", why)
	} else {
		f.CodeDir = b.abs(codePath)
		if why := folderProblem("code", f.CodeDir); why != "" {
			unsupported("%s", why)
		}
	}
	switch {
	case f.Handler == "":
		unsupported("no Handler")
	case !handlerRE.MatchString(f.Handler):
		unsupported("handler %q is malformed: want module.function or package.module.function", f.Handler)
	}
	if err := b.functionLayers(f, props, unsupported); err != nil {
		return nil, err
	}
	f.Supported = len(reasons) == 0
	if len(reasons) > 0 {
		f.Reason = reasons[0]
	}
	return f, nil
}

// prop resolves a property. ok is false when it is absent or AWS::NoValue.
func (b *builder) prop(props *yaml.Node, key string) (v any, n *yaml.Node, ok bool, err error) {
	n = mapGet(props, key)
	if n == nil {
		return nil, nil, false, nil
	}
	v, err = b.r.resolve(n, 0)
	if err != nil {
		return nil, n, false, err
	}
	if _, isNoValue := v.(noValue); isNoValue {
		return nil, n, false, nil
	}
	return v, n, true, nil
}

func (b *builder) propString(id string, props *yaml.Node, key string) (string, error) {
	v, n, ok, err := b.prop(props, key)
	if err != nil || !ok || v == nil {
		return "", err
	}
	s, isStr := stringify(v)
	if !isStr {
		return "", b.errf(n, "function %s: %s must be a string, got %s", id, key, describe(v))
	}
	return s, nil
}

// optionalString resolves a property that is only informational: "" when it is absent or not a string.
func (b *builder) optionalString(props *yaml.Node, key string) (string, error) {
	v, _, ok, err := b.prop(props, key)
	if err != nil || !ok {
		return "", err
	}
	s, isStr := stringify(v)
	if !isStr {
		return "", nil
	}
	return s, nil
}

func (b *builder) propInt(id string, props *yaml.Node, key string, def int) (int, error) {
	v, n, ok, err := b.prop(props, key)
	if err != nil || !ok || v == nil {
		return def, err
	}
	s, _ := stringify(v)
	i, convErr := strconv.Atoi(s)
	if convErr != nil || i <= 0 {
		return 0, b.errf(n, "function %s: %s must be a positive whole number, got %s", id, key, describe(v))
	}
	return i, nil
}

// propCount reads a property that is a whole number of at least 0; nil when it is absent.
func (b *builder) propCount(id string, props *yaml.Node, key string) (*int, error) {
	v, n, ok, err := b.prop(props, key)
	if err != nil || !ok || v == nil {
		return nil, err
	}
	s, _ := stringify(v)
	i, convErr := strconv.Atoi(s)
	if convErr != nil || i < 0 {
		return nil, b.errf(n, "function %s: %s must be a whole number, 0 or more, got %s", id, key, describe(v))
	}
	return &i, nil
}

// eventInvokeConfig reads SAM's EventInvokeConfig.MaximumRetryAttempts, the one part of it plldb local
// emulates. (A separate AWS::Lambda::EventInvokeConfig resource is not read.)
func (b *builder) eventInvokeConfig(f *Function, props *yaml.Node) error {
	v, n, ok, err := b.prop(props, "EventInvokeConfig")
	if err != nil || !ok || v == nil {
		return err
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		return b.errf(n, "function %s: EventInvokeConfig must be a mapping, got %s", f.LogicalID, describe(v))
	}
	r, ok := m["MaximumRetryAttempts"]
	if !ok || r == nil {
		return nil
	}
	s, _ := stringify(r)
	i, convErr := strconv.Atoi(s)
	if convErr != nil || i < 0 || i > 2 {
		pos := n
		if rn := mapGet(deref(n), "MaximumRetryAttempts"); rn != nil {
			pos = rn
		}
		return b.errf(pos, "function %s: EventInvokeConfig.MaximumRetryAttempts must be 0, 1 or 2, got %s", f.LogicalID, describe(r))
	}
	f.MaxEventRetries = &i
	return nil
}

func (b *builder) architecture(f *Function, props *yaml.Node) error {
	v, n, ok, err := b.prop(props, "Architectures")
	if err != nil || !ok || v == nil {
		return err
	}
	l, isList := v.([]any)
	if !isList {
		return b.errf(n, "function %s: Architectures must be a list, got %s", f.LogicalID, describe(v))
	}
	if len(l) == 0 {
		return nil
	}
	a, _ := stringify(l[0])
	if a != "x86_64" && a != "arm64" {
		return b.errf(n, "function %s: architecture %s is not x86_64 or arm64", f.LogicalID, describe(l[0]))
	}
	f.Architecture = a
	return nil
}

// loggingValues are the values CloudFormation accepts in LoggingConfig, as it spells them.
var loggingValues = map[string][]string{
	"LogFormat":           {"JSON", "Text"},
	"ApplicationLogLevel": {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"},
	"SystemLogLevel":      {"DEBUG", "INFO", "WARN"},
}

func (b *builder) logging(f *Function, props *yaml.Node) error {
	v, n, ok, err := b.prop(props, "LoggingConfig")
	if err != nil || !ok || v == nil {
		return err
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		return b.errf(n, "function %s: LoggingConfig must be a mapping, got %s", f.LogicalID, describe(v))
	}
	fields := map[string]*string{
		"LogFormat": &f.Logging.LogFormat, "ApplicationLogLevel": &f.Logging.ApplicationLogLevel,
		"SystemLogLevel": &f.Logging.SystemLogLevel, "LogGroup": &f.Logging.LogGroup,
	}
	for _, k := range sortedKeys(m) {
		if _, isNoValue := m[k].(noValue); isNoValue || m[k] == nil {
			continue
		}
		pos := n
		if kn := mapGet(deref(n), k); kn != nil {
			pos = kn
		}
		dst, known := fields[k]
		if !known {
			return b.errf(pos, "function %s: LoggingConfig has no property %s (it has ApplicationLogLevel, LogFormat, LogGroup, SystemLogLevel)", f.LogicalID, k)
		}
		s, isStr := stringify(m[k])
		if !isStr {
			return b.errf(pos, "function %s: LoggingConfig.%s must be a string, got %s", f.LogicalID, k, describe(m[k]))
		}
		if allowed := loggingValues[k]; allowed != nil && !slices.Contains(allowed, s) {
			return b.errf(pos, "function %s: LoggingConfig.%s is %q, want one of %s", f.LogicalID, k, s, strings.Join(allowed, ", "))
		}
		*dst = s
	}
	return nil
}

func (b *builder) environment(f *Function, props *yaml.Node) error {
	v, n, ok, err := b.prop(props, "Environment")
	if err != nil || !ok || v == nil {
		return err
	}
	env, isMap := v.(map[string]any)
	if !isMap {
		return b.errf(n, "function %s: Environment must be a mapping with Variables, got %s", f.LogicalID, describe(v))
	}
	vars, ok := env["Variables"]
	if !ok || vars == nil {
		return nil
	}
	m, isMap := vars.(map[string]any)
	if !isMap {
		return b.errf(n, "function %s: Environment.Variables must be a mapping, got %s", f.LogicalID, describe(vars))
	}
	for _, k := range sortedKeys(m) {
		if m[k] == nil { // SAM passes a null as an empty value
			f.Env[k] = ""
			continue
		}
		s, isStr := stringify(m[k])
		if !isStr {
			pos := n
			if vn := mapGet(deref(mapGet(deref(n), "Variables")), k); vn != nil {
				pos = vn
			}
			return b.errf(pos, "function %s: environment variable %s must be a string, got %s", f.LogicalID, k, describe(m[k]))
		}
		f.Env[k] = s
	}
	return nil
}

// codeLocation finds where a function's code is: a local path (relative to the template's folder), or why it
// is not local.
func (b *builder) codeLocation(id, typ string, res, props *yaml.Node) (path, reason string, err error) {
	asset := b.assetPath(res)
	if typ == TypeServerlessFunction {
		if mapGet(props, "InlineCode") != nil {
			return "", "code is inline (InlineCode); plldb serves code from a local folder", nil
		}
		v, n, ok, err := b.prop(props, "CodeUri")
		if err != nil {
			return "", "", err
		}
		if !ok || v == nil {
			if asset != "" {
				return asset, "", nil
			}
			return ".", "", nil // SAM's default: the template's folder
		}
		return b.pathOrS3(id, "CodeUri", v, n, asset)
	}
	v, n, ok, err := b.prop(props, "Code")
	if err != nil {
		return "", "", err
	}
	if !ok || v == nil {
		if asset != "" {
			return asset, "", nil
		}
		return "", "no Code", nil
	}
	if m, isMap := v.(map[string]any); isMap {
		switch {
		case m["ZipFile"] != nil:
			return "", "code is inline (Code.ZipFile); plldb serves code from a local folder", nil
		case m["ImageUri"] != nil:
			return "", "code is a container image (Code.ImageUri); plldb serves code from a local folder", nil
		}
	}
	return b.pathOrS3(id, "Code", v, n, asset)
}

// pathOrS3 reads a code location that is either a local path string or an S3 location (a mapping or s3://
// URI). An S3 location with CDK asset metadata is served from the asset folder.
func (b *builder) pathOrS3(id, key string, v any, n *yaml.Node, asset string) (string, string, error) {
	switch v := v.(type) {
	case string:
		if v == "" {
			return "", "", b.errf(n, "function %s: %s is empty", id, key)
		}
		if !strings.HasPrefix(v, "s3://") {
			return v, "", nil
		}
	case map[string]any:
	default:
		return "", "", b.errf(n, "function %s: %s must be a local path or an S3 location, got %s", id, key, describe(v))
	}
	if asset != "" {
		return asset, "", nil
	}
	return "", "code is in S3; plldb serves code from a local folder (point " + key + " at the source folder)", nil
}

// assetPath is the CDK asset folder named in a resource's metadata ("aws:asset:path"), or "".
func (b *builder) assetPath(res *yaml.Node) string {
	meta := deref(mapGet(res, "Metadata"))
	p := deref(mapGet(meta, "aws:asset:path"))
	if p == nil || p.Kind != yaml.ScalarNode || isCustomTag(p.Tag) {
		return ""
	}
	return p.Value
}

func (b *builder) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(b.dir, p)
}

// folderProblem says what is wrong with a folder that should hold code, or "".
func folderProblem(what, dir string) string {
	fi, err := os.Stat(dir)
	switch {
	case err != nil && os.IsNotExist(err):
		return fmt.Sprintf("%s folder %s does not exist", what, dir)
	case err != nil:
		return fmt.Sprintf("%s folder %s: %v", what, dir, err)
	case !fi.IsDir():
		return fmt.Sprintf("%s at %s is a file, not a folder; plldb serves code from a folder", what, dir)
	}
	return ""
}

// functionLayers resolves the function's Layers list: references to layer resources with local content become
// Layers, everything else is listed in UnresolvedLayers.
func (b *builder) functionLayers(f *Function, props *yaml.Node, unsupported func(string, ...any)) error {
	v, n, ok, err := b.prop(props, "Layers")
	if err != nil || !ok || v == nil {
		return err
	}
	l, isList := v.([]any)
	if !isList {
		return b.errf(n, "function %s: Layers must be a list, got %s", f.LogicalID, describe(v))
	}
	for i, item := range l {
		ref, isStr := stringify(item)
		if !isStr || ref == "" {
			return b.errf(n, "function %s: layer %d must be a layer ARN or a !Ref of a layer, got %s", f.LogicalID, i, describe(item))
		}
		li, err := b.layer(ref)
		if err != nil {
			return err
		}
		if li == nil || !li.local {
			f.UnresolvedLayers = append(f.UnresolvedLayers, ref)
			continue
		}
		if li.reason != "" {
			unsupported("layer %s: %s", ref, li.reason)
		}
		f.Layers = append(f.Layers, li.layer)
	}
	return nil
}

// layer resolves a layer resource by logical id; nil when ref names no layer resource of this template.
func (b *builder) layer(ref string) (*layerInfo, error) {
	if li, ok := b.layers[ref]; ok {
		return li, nil
	}
	typ := b.types[ref]
	if typ != TypeServerlessLayer && typ != TypeLambdaLayer {
		return nil, nil
	}
	res := b.r.resources[ref]
	props := deref(mapGet(res, "Properties"))
	if props == nil {
		return nil, b.errf(b.keys[ref], "layer %s (%s) has no Properties", ref, typ)
	}
	if props.Kind != yaml.MappingNode || isCustomTag(props.Tag) {
		return nil, b.errf(props, "layer %s: Properties must be a mapping, got %s", ref, kindName(props))
	}
	key := "Content"
	if typ == TypeServerlessLayer {
		key = "ContentUri"
	}
	li := &layerInfo{layer: Layer{LogicalID: ref}}
	b.layers[ref] = li
	asset := b.assetPath(res)
	v, n, ok, err := b.prop(props, key)
	if err != nil {
		return nil, err
	}
	path := ""
	switch v := v.(type) {
	case string:
		if ok && v != "" && !strings.HasPrefix(v, "s3://") {
			path = v
		}
	case map[string]any, nil:
	default:
		return nil, b.errf(n, "layer %s: %s must be a local path or an S3 location, got %s", ref, key, describe(v))
	}
	if path == "" {
		path = asset
	}
	if path == "" {
		return li, nil // in S3: not local
	}
	li.local = true
	li.layer.Dir = b.abs(path)
	if why := folderProblem("content", li.layer.Dir); why != "" {
		li.reason = why
		return li, nil
	}
	if py := filepath.Join(li.layer.Dir, "python"); folderProblem("", py) == "" {
		li.layer.PythonDir = py
	}
	return li, nil
}

// maxMergeSteps bounds the work of merging Globals into one function, against aliases that contain themselves.
const maxMergeSteps = 10_000

// mergeGlobals merges Globals.Function into a function's Properties the way SAM does: mappings merge key by key
// (recursively), lists concatenate with the globals first, anything else (scalars, intrinsic functions, a type
// mismatch) takes the function's value.
func mergeGlobals(global, local *yaml.Node, budget *int) *yaml.Node {
	global, local = deref(global), deref(local)
	*budget--
	switch {
	case *budget < 0: // aliases that contain themselves; resolving what is read reports the cycle
		return local
	case global == nil:
		return local
	case local == nil:
		return global
	case plainMapping(global) && plainMapping(local):
		out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: local.Line, Column: local.Column}
		for i := 0; i+1 < len(global.Content); i += 2 {
			k := global.Content[i]
			v := global.Content[i+1]
			if lv := mapGet(local, k.Value); lv != nil {
				k, v = mapKey(local, k.Value), mergeGlobals(v, lv, budget)
			}
			out.Content = append(out.Content, k, v)
		}
		for i := 0; i+1 < len(local.Content); i += 2 {
			if mapGet(global, local.Content[i].Value) == nil {
				out.Content = append(out.Content, local.Content[i], local.Content[i+1])
			}
		}
		return out
	case global.Kind == yaml.SequenceNode && local.Kind == yaml.SequenceNode && !isCustomTag(global.Tag) && !isCustomTag(local.Tag):
		out := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: local.Line, Column: local.Column}
		out.Content = append(append(out.Content, global.Content...), local.Content...)
		return out
	}
	return local
}

// plainMapping is a mapping that is data, not an intrinsic function.
func plainMapping(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode || isCustomTag(n.Tag) {
		return false
	}
	_, fn := intrinsicOf(n)
	return !fn
}

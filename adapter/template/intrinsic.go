package template

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Resolved values are plain Go values: string, number, bool, nil (YAML null), []any, map[string]any, or
// noValue (AWS::NoValue: the key or item it stands in is dropped).
type (
	noValue struct{}
	// number keeps the digits as written, so that an environment variable gets the text of the template
	// ("1.50" stays "1.50", as CloudFormation passes it on).
	number string
)

const (
	// maxDepth bounds recursion: real templates nest a few dozen levels; deeper means an alias cycle.
	maxDepth = 500
	// maxSteps bounds the work of resolving one template, against alias bombs (a billion laughs).
	maxSteps = 1_000_000
	// maxValueBytes bounds one resolved string: a whole template may not be larger.
	maxValueBytes = 1 << 20
)

// shortForms maps the YAML short-form tags to the long-form function names.
var shortForms = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!Sub": "Fn::Sub", "!GetAtt": "Fn::GetAtt", "!Join": "Fn::Join", "!Select": "Fn::Select",
	"!Split": "Fn::Split", "!If": "Fn::If", "!Equals": "Fn::Equals", "!Not": "Fn::Not", "!And": "Fn::And",
	"!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr",
	"!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue", "!Transform": "Fn::Transform",
	"!Length": "Fn::Length", "!ToJsonString": "Fn::ToJsonString",
}

// intrinsicOf reports whether n is a long-form intrinsic function ({"Ref": …} or {"Fn::Xxx": …}).
func intrinsicOf(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 || isCustomTag(n.Tag) {
		return "", false
	}
	k := n.Content[0]
	if k.Kind != yaml.ScalarNode || isCustomTag(k.Tag) {
		return "", false
	}
	if k.Value == "Ref" || strings.HasPrefix(k.Value, "Fn::") {
		return k.Value, true
	}
	return "", false
}

// resolver evaluates intrinsic functions as far as can be done without AWS: parameters, pseudo parameters,
// mappings and conditions are known; resource attributes are not and stand in as the resource's logical id.
type resolver struct {
	file      string
	params    map[string]any  // declared parameters that have a value: string, or []any for list types
	declared  map[string]bool // every declared parameter, with a value or not
	pseudo    map[string]any
	resources map[string]*yaml.Node
	// resourcesKnown is set once resources holds every resource (Fn::ForEach collections are resolved before).
	resourcesKnown bool
	// samPrefixes are the logical ids of AWS::Serverless::* resources: SAM's transform creates resources named
	// after them (MyFunctionRole, MyApiProdStage, …), which Fn::Sub may name.
	samPrefixes []string
	mappings    *yaml.Node
	conditions  map[string]*yaml.Node // name → expression
	condKeys    map[string]*yaml.Node // name → key, for error positions
	condVal     map[string]bool
	condBusy    []string
	steps       int
	anchored    map[*yaml.Node]bool // anchored nodes being resolved: meeting one again is an alias cycle
}

func (r *resolver) errf(n *yaml.Node, format string, args ...any) *Error {
	return errAt(r.file, n, format, args...)
}

func (r *resolver) enter(n *yaml.Node, depth int) error {
	r.steps++
	if r.steps > maxSteps {
		return r.errf(n, "template too large to resolve (more than %d values; excessive aliasing?)", maxSteps)
	}
	if depth > maxDepth {
		return r.errf(n, "nested more than %d levels deep (circular alias?)", maxDepth)
	}
	return nil
}

// deref follows aliases to the node they name.
func (r *resolver) deref(n *yaml.Node, depth int) (*yaml.Node, error) {
	for n.Kind == yaml.AliasNode {
		if err := r.enter(n, depth); err != nil {
			return nil, err
		}
		if n.Alias == nil {
			return nil, r.errf(n, "alias *%s names no anchor", n.Value)
		}
		n = n.Alias
		depth++
	}
	return n, nil
}

// resolve evaluates a node and everything in it.
func (r *resolver) resolve(n *yaml.Node, depth int) (any, error) {
	if err := r.enter(n, depth); err != nil {
		return nil, err
	}
	alias := n
	n, err := r.deref(n, depth)
	if err != nil {
		return nil, err
	}
	if n.Anchor != "" {
		if r.anchored[n] {
			return nil, r.errf(alias, "circular alias: &%s contains *%s, so its value would contain itself", n.Anchor, n.Anchor)
		}
		if r.anchored == nil {
			r.anchored = map[*yaml.Node]bool{}
		}
		r.anchored[n] = true
		defer delete(r.anchored, n)
	}
	if isCustomTag(n.Tag) {
		fn, ok := shortForms[n.Tag]
		if !ok {
			return nil, r.errf(n, "unknown tag %s", n.Tag)
		}
		return r.call(fn, n, untagged(n), depth+1)
	}
	switch n.Kind {
	case yaml.MappingNode:
		if fn, ok := intrinsicOf(n); ok {
			return r.call(fn, n.Content[0], n.Content[1], depth+1)
		}
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, err := r.deref(n.Content[i], depth+1)
			if err != nil {
				return nil, err
			}
			if k.Kind != yaml.ScalarNode || isCustomTag(k.Tag) {
				return nil, r.errf(k, "a mapping key must be a plain string, got %s", kindName(k))
			}
			v, err := r.resolve(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			if _, drop := v.(noValue); !drop {
				m[k.Value] = v
			}
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := r.resolve(c, depth+1)
			if err != nil {
				return nil, err
			}
			if _, drop := v.(noValue); !drop {
				l = append(l, v)
			}
		}
		return l, nil
	case yaml.ScalarNode:
		return scalarValue(n), nil
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			return r.resolve(n.Content[0], depth+1)
		}
	}
	return nil, r.errf(n, "unexpected YAML node")
}

// untagged is the argument of a short-form function: the node itself without the tag. A scalar argument is
// a string whatever it looks like (!Ref 10 names "10").
func untagged(n *yaml.Node) *yaml.Node {
	c := *n
	switch n.Kind {
	case yaml.ScalarNode:
		c.Tag = "!!str"
	case yaml.MappingNode:
		c.Tag = "!!map"
	case yaml.SequenceNode:
		c.Tag = "!!seq"
	}
	return &c
}

func scalarValue(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	case "!!int", "!!float":
		return number(n.Value)
	}
	return n.Value
}

// stringify turns a scalar into the string CloudFormation would pass on.
func stringify(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case number:
		return string(v), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case noValue:
		return "AWS::NoValue"
	case string:
		return strconv.Quote(v)
	case number:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprintf("%T", v)
}

// args checks that a function's argument is a literal list of lo to hi items and returns them.
func (r *resolver) args(fn string, at, arg *yaml.Node, depth, lo, hi int, shape string) ([]*yaml.Node, error) {
	n, err := r.deref(arg, depth)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) < lo || len(n.Content) > hi {
		return nil, r.errf(at, "%s: want %s, got %s", fn, shape, kindName(n))
	}
	return n.Content, nil
}

// str resolves a node that must give a string (numbers and booleans are taken as their text).
func (r *resolver) str(fn string, n *yaml.Node, depth int, what string) (string, error) {
	v, err := r.resolve(n, depth)
	if err != nil {
		return "", err
	}
	s, ok := stringify(v)
	if !ok {
		return "", r.errf(n, "%s: %s must be a string, got %s", fn, what, describe(v))
	}
	return s, nil
}

func (r *resolver) list(fn string, n *yaml.Node, depth int, what string) ([]any, error) {
	v, err := r.resolve(n, depth)
	if err != nil {
		return nil, err
	}
	l, ok := v.([]any)
	if !ok {
		return nil, r.errf(n, "%s: %s must be a list, got %s", fn, what, describe(v))
	}
	return l, nil
}

// ref is what Ref gives: pseudo parameters and parameters with a value resolve, anything else (a resource, a
// parameter without Default or override) stands in as its own name.
func (r *resolver) ref(name string) any {
	if name == "AWS::NoValue" {
		return noValue{}
	}
	if v, ok := r.pseudo[name]; ok {
		return v
	}
	if v, ok := r.params[name]; ok {
		return v
	}
	return name
}

// call evaluates one intrinsic function; at is where it is written, arg its argument.
func (r *resolver) call(fn string, at, arg *yaml.Node, depth int) (any, error) {
	if err := r.enter(at, depth); err != nil {
		return nil, err
	}
	v, err := r.eval(fn, at, arg, depth)
	if s, ok := v.(string); ok && len(s) > maxValueBytes {
		// Strings doubled through aliases grow exponentially with little work; stop them here.
		return nil, r.errf(at, "%s: the value is longer than %d bytes (CloudFormation's own template limit)", fn, maxValueBytes)
	}
	return v, err
}

func (r *resolver) eval(fn string, at, arg *yaml.Node, depth int) (any, error) {
	switch fn {
	case "Ref":
		name, err := r.str(fn, arg, depth, "the name")
		if err != nil {
			return nil, err
		}
		return r.ref(name), nil
	case "Condition":
		name, err := r.str(fn, arg, depth, "the condition name")
		if err != nil {
			return nil, err
		}
		return r.condition(name, at, depth)
	case "Fn::Sub":
		return r.sub(at, arg, depth)
	case "Fn::GetAtt":
		return r.getAtt(at, arg, depth)
	case "Fn::Join":
		a, err := r.args(fn, at, arg, depth, 2, 2, "[delimiter, [values…]]")
		if err != nil {
			return nil, err
		}
		delim, err := r.str(fn, a[0], depth, "the delimiter")
		if err != nil {
			return nil, err
		}
		items, err := r.list(fn, a[1], depth, "the values")
		if err != nil {
			return nil, err
		}
		parts := make([]string, len(items))
		for i, it := range items {
			s, ok := stringify(it)
			if !ok {
				return nil, r.errf(a[1], "%s: value %d must be a string, got %s", fn, i, describe(it))
			}
			parts[i] = s
		}
		return strings.Join(parts, delim), nil
	case "Fn::Select":
		a, err := r.args(fn, at, arg, depth, 2, 2, "[index, [values…]]")
		if err != nil {
			return nil, err
		}
		is, err := r.str(fn, a[0], depth, "the index")
		if err != nil {
			return nil, err
		}
		i, err := strconv.Atoi(is)
		if err != nil {
			return nil, r.errf(a[0], "%s: index %q is not a whole number", fn, is)
		}
		items, err := r.list(fn, a[1], depth, "the values")
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= len(items) {
			return nil, r.errf(a[0], "%s: index %d is out of range (the list has %d values)", fn, i, len(items))
		}
		return items[i], nil
	case "Fn::Split":
		a, err := r.args(fn, at, arg, depth, 2, 2, "[delimiter, string]")
		if err != nil {
			return nil, err
		}
		delim, err := r.str(fn, a[0], depth, "the delimiter")
		if err != nil {
			return nil, err
		}
		if delim == "" {
			return nil, r.errf(a[0], "%s: the delimiter is empty", fn)
		}
		s, err := r.str(fn, a[1], depth, "the source")
		if err != nil {
			return nil, err
		}
		var out []any
		for _, p := range strings.Split(s, delim) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::If":
		a, err := r.args(fn, at, arg, depth, 3, 3, "[condition, value if true, value if false]")
		if err != nil {
			return nil, err
		}
		name, err := r.str(fn, a[0], depth, "the condition name")
		if err != nil {
			return nil, err
		}
		ok, err := r.condition(name, a[0], depth)
		if err != nil {
			return nil, err
		}
		if ok {
			return r.resolve(a[1], depth)
		}
		return r.resolve(a[2], depth)
	case "Fn::Equals":
		a, err := r.args(fn, at, arg, depth, 2, 2, "[value, value]")
		if err != nil {
			return nil, err
		}
		x, err := r.resolve(a[0], depth)
		if err != nil {
			return nil, err
		}
		y, err := r.resolve(a[1], depth)
		if err != nil {
			return nil, err
		}
		xs, xok := stringify(x)
		ys, yok := stringify(y)
		if xok && yok {
			return xs == ys, nil
		}
		return reflect.DeepEqual(x, y), nil
	case "Fn::Not":
		a, err := r.args(fn, at, arg, depth, 1, 1, "[condition]")
		if err != nil {
			return nil, err
		}
		v, err := r.condExpr(a[0], depth)
		return !v, err
	case "Fn::And", "Fn::Or":
		a, err := r.args(fn, at, arg, depth, 2, 10, "a list of 2 to 10 conditions")
		if err != nil {
			return nil, err
		}
		and := fn == "Fn::And"
		for _, c := range a {
			v, err := r.condExpr(c, depth)
			if err != nil {
				return nil, err
			}
			if v != and {
				return v, nil
			}
		}
		return and, nil
	case "Fn::FindInMap":
		return r.findInMap(at, arg, depth)
	case "Fn::Base64":
		s, err := r.str(fn, arg, depth, "the value")
		if err != nil {
			return nil, err
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	case "Fn::Cidr":
		return r.cidr(at, arg, depth)
	case "Fn::GetAZs":
		region, err := r.str(fn, arg, depth, "the region")
		if err != nil {
			return nil, err
		}
		if region == "" {
			region, _ = stringify(r.pseudo["AWS::Region"])
		}
		return []any{region + "a", region + "b", region + "c"}, nil
	case "Fn::ImportValue":
		// Another stack's export cannot be read locally; its name is the most useful stand-in.
		return r.str(fn, arg, depth, "the export name")
	case "Fn::Length":
		items, err := r.list(fn, arg, depth, "the argument")
		if err != nil {
			return nil, err
		}
		return number(strconv.Itoa(len(items))), nil
	case "Fn::ToJsonString":
		v, err := r.resolve(arg, depth)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(jsonable(v))
		if err != nil {
			return nil, r.errf(at, "%s: %v", fn, err)
		}
		return string(b), nil
	case "Fn::Transform":
		return nil, r.errf(at, "Fn::Transform runs a CloudFormation macro, which cannot be done locally")
	}
	return nil, r.errf(at, "unknown intrinsic function %s", fn)
}

func jsonable(v any) any {
	switch v := v.(type) {
	case number:
		if json.Valid([]byte(v)) {
			return json.RawMessage(v)
		}
		return string(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = jsonable(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = jsonable(x)
		}
		return out
	}
	return v
}

// sub evaluates Fn::Sub in both forms: "template" and [template, {variables}].
func (r *resolver) sub(at, arg *yaml.Node, depth int) (any, error) {
	const fn = "Fn::Sub"
	n, err := r.deref(arg, depth)
	if err != nil {
		return nil, err
	}
	tmplNode, vars := n, map[string]any{}
	if n.Kind == yaml.SequenceNode && !isCustomTag(n.Tag) {
		if len(n.Content) != 2 {
			return nil, r.errf(at, "%s: want a string or [string, {variables}], got a list of %d", fn, len(n.Content))
		}
		tmplNode = n.Content[0]
		v, err := r.resolve(n.Content[1], depth)
		if err != nil {
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, r.errf(n.Content[1], "%s: the variables must be a mapping, got %s", fn, describe(v))
		}
		vars = m
	}
	s, err := r.str(fn, tmplNode, depth, "the template")
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		rest := s[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 { // no closing brace: CloudFormation leaves the text as it is
			b.WriteString(s[i:])
			break
		}
		inner := rest[:j]
		s = rest[j+1:]
		if strings.HasPrefix(inner, "!") { // ${!Literal} writes ${Literal}
			b.WriteString("${" + inner[1:] + "}")
			continue
		}
		v, err := r.subVar(strings.TrimSpace(inner), vars)
		if err != nil {
			return nil, r.errf(tmplNode, "%s: %v", fn, err)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func (r *resolver) subVar(name string, vars map[string]any) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty variable ${}")
	}
	v, ok := vars[name]
	if !ok {
		if id, _, dotted := strings.Cut(name, "."); dotted {
			if !r.isResource(id) {
				return "", fmt.Errorf("${%s}: %s is not a resource of this template (${LogicalId.Attribute} names a resource's attribute; write ${!%s} for the literal text)", name, id, name)
			}
			return id, nil // ${Resource.Attribute}: the attribute is only known in AWS
		}
		if !r.isName(name) {
			return "", fmt.Errorf("${%s} is not a parameter, pseudo parameter or resource of this template, nor a variable of this Fn::Sub (write ${!%s} for the literal text)", name, name)
		}
		v = r.ref(name)
	}
	if _, isNoValue := v.(noValue); isNoValue {
		return "", fmt.Errorf("${%s} cannot be used in a string", name)
	}
	s, ok := stringify(v)
	if !ok {
		return "", fmt.Errorf("${%s} is %s, not a string", name, describe(v))
	}
	return s, nil
}

// isName tells whether Ref (or Fn::Sub) can name it: a pseudo parameter, a declared parameter or a resource.
func (r *resolver) isName(name string) bool {
	if name == "AWS::NoValue" {
		return true
	}
	if _, ok := r.pseudo[name]; ok {
		return true
	}
	return r.declared[name] || r.isResource(name)
}

// isResource tells whether a logical id is a resource of the template, or one SAM's transform creates. Before
// every resource is known (Fn::ForEach collections), every name is taken.
func (r *resolver) isResource(id string) bool {
	if !r.resourcesKnown {
		return true
	}
	if _, ok := r.resources[id]; ok {
		return true
	}
	if len(r.samPrefixes) > 0 && (strings.HasPrefix(id, "ServerlessRestApi") || strings.HasPrefix(id, "ServerlessHttpApi")) {
		return true
	}
	for _, p := range r.samPrefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// getAtt gives the logical id: attributes of resources exist only once deployed.
func (r *resolver) getAtt(at, arg *yaml.Node, depth int) (any, error) {
	const fn = "Fn::GetAtt"
	n, err := r.deref(arg, depth)
	if err != nil {
		return nil, err
	}
	if n.Kind == yaml.SequenceNode && !isCustomTag(n.Tag) {
		if len(n.Content) != 2 {
			return nil, r.errf(at, "%s: want [LogicalId, Attribute], got a list of %d", fn, len(n.Content))
		}
		id, err := r.str(fn, n.Content[0], depth, "the logical id")
		if err != nil {
			return nil, err
		}
		if _, err := r.str(fn, n.Content[1], depth, "the attribute"); err != nil {
			return nil, err
		}
		return id, nil
	}
	s, err := r.str(fn, n, depth, "the argument")
	if err != nil {
		return nil, err
	}
	id, attr, ok := strings.Cut(s, ".")
	if !ok || id == "" || attr == "" {
		return nil, r.errf(at, "%s: want LogicalId.Attribute, got %q", fn, s)
	}
	return id, nil
}

func (r *resolver) findInMap(at, arg *yaml.Node, depth int) (any, error) {
	const fn = "Fn::FindInMap"
	a, err := r.args(fn, at, arg, depth, 3, 4, "[MapName, TopLevelKey, SecondLevelKey]")
	if err != nil {
		return nil, err
	}
	var keys [3]string
	for i := range keys {
		if keys[i], err = r.str(fn, a[i], depth, "a key"); err != nil {
			return nil, err
		}
	}
	var def *yaml.Node
	if len(a) == 4 {
		d, err := r.deref(a[3], depth)
		if err != nil {
			return nil, err
		}
		if def = mapGet(d, "DefaultValue"); def == nil || d.Kind != yaml.MappingNode {
			return nil, r.errf(a[3], "%s: the fourth argument must be {DefaultValue: …}", fn)
		}
	}
	cur := r.mappings
	where := "Mappings"
	for _, k := range keys {
		var next *yaml.Node
		if cur != nil {
			if cur, err = r.deref(cur, depth); err != nil {
				return nil, err
			}
			if cur.Kind == yaml.MappingNode {
				next = mapGet(cur, k)
			}
		}
		if next == nil {
			if def != nil {
				return r.resolve(def, depth)
			}
			return nil, r.errf(at, "%s: %s has no key %q", fn, where, k)
		}
		cur, where = next, where+"."+k
	}
	return r.resolve(cur, depth)
}

func (r *resolver) cidr(at, arg *yaml.Node, depth int) (any, error) {
	const fn = "Fn::Cidr"
	a, err := r.args(fn, at, arg, depth, 3, 3, "[ipBlock, count, cidrBits]")
	if err != nil {
		return nil, err
	}
	block, err := r.str(fn, a[0], depth, "the ip block")
	if err != nil {
		return nil, err
	}
	p, err := netip.ParsePrefix(block)
	if err != nil {
		return nil, r.errf(a[0], "%s: %v", fn, err)
	}
	var nums [2]int
	for i := range nums {
		s, err := r.str(fn, a[i+1], depth, "a count")
		if err != nil {
			return nil, err
		}
		if nums[i], err = strconv.Atoi(s); err != nil {
			return nil, r.errf(a[i+1], "%s: %q is not a whole number", fn, s)
		}
	}
	count, hostBits := nums[0], nums[1]
	total := p.Addr().BitLen()
	subLen := total - hostBits
	if count < 1 || count > 256 {
		return nil, r.errf(a[1], "%s: count must be between 1 and 256, got %d", fn, count)
	}
	if hostBits < 0 || subLen < p.Bits() {
		return nil, r.errf(a[2], "%s: %d host bits do not fit in %s", fn, hostBits, block)
	}
	if spare := subLen - p.Bits(); spare < 9 && count > 1<<spare {
		return nil, r.errf(a[1], "%s: %s holds only %d subnets of /%d", fn, block, 1<<spare, subLen)
	}
	base := new(big.Int).SetBytes(p.Masked().Addr().AsSlice())
	step := new(big.Int).Lsh(big.NewInt(1), uint(hostBits))
	out := make([]any, count)
	for i := range out {
		b := base.FillBytes(make([]byte, total/8))
		addr, _ := netip.AddrFromSlice(b)
		out[i] = netip.PrefixFrom(addr, subLen).String()
		base.Add(base, step)
	}
	return out, nil
}

// condExpr evaluates a condition: a Condition reference or a function giving a boolean.
func (r *resolver) condExpr(n *yaml.Node, depth int) (bool, error) {
	if err := r.enter(n, depth); err != nil {
		return false, err
	}
	n, err := r.deref(n, depth)
	if err != nil {
		return false, err
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == "Condition" && !isCustomTag(n.Tag) {
		name, err := r.str("Condition", n.Content[1], depth+1, "the condition name")
		if err != nil {
			return false, err
		}
		return r.condition(name, n, depth+1)
	}
	v, err := r.resolve(n, depth+1)
	if err != nil {
		return false, err
	}
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
			return b, nil
		}
	}
	return false, r.errf(n, "a condition must be Fn::Equals, Fn::And, Fn::Or, Fn::Not or a Condition, got %s", describe(v))
}

// condition evaluates a named condition of the Conditions section once, refusing cycles.
func (r *resolver) condition(name string, at *yaml.Node, depth int) (bool, error) {
	if v, ok := r.condVal[name]; ok {
		return v, nil
	}
	expr, ok := r.conditions[name]
	if !ok {
		return false, r.errf(at, "unknown condition %q", name)
	}
	if i := slices.Index(r.condBusy, name); i >= 0 {
		chain := append(slices.Clone(r.condBusy[i:]), name)
		return false, r.errf(r.condKeys[name], "circular condition: %s", strings.Join(chain, " → "))
	}
	r.condBusy = append(r.condBusy, name)
	v, err := r.condExpr(expr, depth+1)
	r.condBusy = r.condBusy[:len(r.condBusy)-1]
	if err != nil {
		return false, err
	}
	r.condVal[name] = v
	return v, nil
}

// mapGet returns the value of key in a plain mapping node, or nil.
func mapGet(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// mapKey returns the key node of key in a mapping node, or nil.
func mapKey(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return k
		}
	}
	return nil
}

// sortedKeys lists a map's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

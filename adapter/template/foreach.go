package template

import (
	"strings"
	"unicode"

	yaml "go.yaml.in/yaml/v3"
)

// forEachPrefix starts the key of an AWS::LanguageExtensions loop: "Fn::ForEach::Name":
// [Identifier, [values…], {OutputKey: OutputValue}] stands for one copy of the outputs per value, with
// ${Identifier} and &{Identifier} in keys and strings, and Ref Identifier, replaced by the value.
const forEachPrefix = "Fn::ForEach::"

// maxForEachDepth is how deeply loops may nest (CloudFormation allows 5).
const maxForEachDepth = 5

// resourceEntries lists the Resources section as key, value pairs with Fn::ForEach loops expanded.
func (b *builder) resourceEntries(resources *yaml.Node) ([]*yaml.Node, error) {
	var out []*yaml.Node
	for i := 0; i+1 < len(resources.Content); i += 2 {
		k, v := resources.Content[i], resources.Content[i+1]
		if k.Kind == yaml.ScalarNode && strings.HasPrefix(k.Value, forEachPrefix) {
			pairs, err := b.forEach(k, v, 1)
			if err != nil {
				return nil, err
			}
			out = append(out, pairs...)
			continue
		}
		out = append(out, k, v)
	}
	return out, nil
}

func (b *builder) forEach(k, v *yaml.Node, depth int) ([]*yaml.Node, error) {
	loop := k.Value
	if depth > maxForEachDepth {
		return nil, b.errf(k, "%s: loops nest more than %d deep", loop, maxForEachDepth)
	}
	v = deref(v)
	if v.Kind != yaml.SequenceNode || isCustomTag(v.Tag) || len(v.Content) != 3 {
		return nil, b.errf(v, "%s: want [Identifier, [values…], {OutputKey: OutputValue}], got %s", loop, kindName(v))
	}
	ident := deref(v.Content[0])
	if ident.Kind != yaml.ScalarNode || isCustomTag(ident.Tag) || ident.Value == "" {
		return nil, b.errf(ident, "%s: the identifier must be a string, got %s", loop, kindName(ident))
	}
	coll, err := b.r.list(loop, v.Content[1], 0, "the collection")
	if err != nil {
		return nil, err
	}
	outputs := deref(v.Content[2])
	if outputs.Kind != yaml.MappingNode || isCustomTag(outputs.Tag) {
		return nil, b.errf(outputs, "%s: the outputs must be a mapping, got %s", loop, kindName(outputs))
	}
	var out []*yaml.Node
	for _, item := range coll {
		val, ok := stringify(item)
		if !ok {
			return nil, b.errf(v.Content[1], "%s: collection values must be strings, got %s", loop, describe(item))
		}
		s := &substitution{ident: ident.Value, value: val, budget: maxMergeSteps}
		for i := 0; i+1 < len(outputs.Content); i += 2 {
			outKey, outVal := s.node(outputs.Content[i]), s.node(outputs.Content[i+1])
			if s.budget < 0 {
				return nil, b.errf(outputs, "%s: the outputs are too large to expand (aliases that contain themselves?)", loop)
			}
			if outKey.Kind == yaml.ScalarNode && strings.HasPrefix(outKey.Value, forEachPrefix) {
				pairs, err := b.forEach(outKey, outVal, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, pairs...)
				continue
			}
			out = append(out, outKey, outVal)
		}
	}
	return out, nil
}

// substitution copies a node tree, replacing a loop identifier by one of its values.
type substitution struct {
	ident, value string
	budget       int
}

func (s *substitution) node(n *yaml.Node) *yaml.Node {
	n = deref(n)
	s.budget--
	if s.budget < 0 {
		return n
	}
	c := *n
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!Ref" && n.Value == s.ident:
		c.Tag, c.Value, c.Style = "!!str", s.value, 0
		return &c
	case n.Kind == yaml.ScalarNode:
		c.Value = s.text(n.Value)
		return &c
	}
	if fn, ok := intrinsicOf(n); ok && fn == "Ref" {
		if arg := deref(n.Content[1]); arg.Kind == yaml.ScalarNode && arg.Value == s.ident {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s.value, Line: n.Line, Column: n.Column}
		}
	}
	c.Anchor = "" // a copy is a new node: it must not be taken for the anchored one in cycle checks
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, x := range n.Content {
		c.Content[i] = s.node(x)
	}
	return &c
}

func (s *substitution) text(t string) string {
	if !strings.Contains(t, "{"+s.ident+"}") {
		return t
	}
	t = strings.ReplaceAll(t, "${"+s.ident+"}", s.value)
	return strings.ReplaceAll(t, "&{"+s.ident+"}", strings.Map(func(r rune) rune {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return -1
	}, s.value))
}

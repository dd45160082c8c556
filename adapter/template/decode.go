package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

var utf8BOM = []byte("\xef\xbb\xbf")

// decode turns the bytes of a template into its root mapping node. JSON goes through encoding/json rather than
// the YAML parser: JSON is YAML, but the YAML parser's errors on broken JSON point at the wrong place and it
// rejects some valid JSON (tab indentation), so JSON gets its own reader that keeps positions.
func decode(file string, data []byte) (*yaml.Node, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: file, Msg: "template is empty"}
	}
	isJSONFile := strings.EqualFold(filepath.Ext(file), ".json")
	looksJSON := bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
	var root *yaml.Node
	switch {
	case isJSONFile || (looksJSON && json.Valid(data)):
		if err := jsonSyntax(file, data); err != nil {
			return nil, err
		}
		n, err := jsonToNode(data)
		if err != nil {
			return nil, &Error{File: file, Msg: fmt.Sprintf("invalid JSON: %v", err)}
		}
		root = n
	default:
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			if looksJSON {
				// Someone's JSON with a typo: the JSON error is the one that helps.
				return nil, jsonSyntax(file, data)
			}
			return nil, yamlSyntax(file, err)
		}
		if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
			return nil, &Error{File: file, Msg: "template is empty"}
		}
		root = doc.Content[0]
	}
	if root.Kind != yaml.MappingNode || isCustomTag(root.Tag) {
		return nil, errAt(file, root, "template must be a mapping of sections (Resources, Parameters, …), got %s", kindName(root))
	}
	if err := checkDuplicateKeys(file, root, 0); err != nil {
		return nil, err
	}
	return root, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlSyntax turns the YAML parser's error text ("yaml: line 3: did not find expected key") into an Error.
func yamlSyntax(file string, err error) *Error {
	msg := strings.TrimSpace(err.Error())
	e := &Error{File: file, err: err}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	e.Msg = "invalid YAML: " + msg
	return e
}

// jsonSyntax reports the first JSON syntax error with its line and column, or nil when data is valid JSON.
func jsonSyntax(file string, data []byte) error {
	var v any
	err := json.Unmarshal(data, &v)
	if err == nil {
		return nil
	}
	e := &Error{File: file, Msg: "invalid JSON: " + err.Error(), err: err}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := int(se.Offset)
		if off > 0 {
			off-- // Offset is just past the byte that broke the syntax.
		}
		e.Line, e.Column = newLineIndex(data).position(off)
	}
	return e
}

// lineIndex maps byte offsets to 1-based line and column (counted in characters, as the YAML parser does).
type lineIndex struct {
	data   []byte
	starts []int
}

func newLineIndex(data []byte) *lineIndex {
	li := &lineIndex{data: data, starts: []int{0}}
	for i, c := range data {
		if c == '\n' {
			li.starts = append(li.starts, i+1)
		}
	}
	return li
}

func (li *lineIndex) position(off int) (line, col int) {
	off = min(max(off, 0), len(li.data))
	i := sort.Search(len(li.starts), func(i int) bool { return li.starts[i] > off }) - 1
	return i + 1, utf8.RuneCount(li.data[li.starts[i]:off]) + 1
}

// jsonToNode builds a YAML node tree, with positions, from valid JSON.
func jsonToNode(data []byte) (*yaml.Node, error) {
	jr := &jsonReader{data: data, dec: json.NewDecoder(bytes.NewReader(data)), li: newLineIndex(data)}
	jr.dec.UseNumber()
	n, err := jr.value()
	if err != nil {
		return nil, err
	}
	if _, err := jr.dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the top-level value")
	}
	return n, nil
}

type jsonReader struct {
	data []byte
	dec  *json.Decoder
	li   *lineIndex
}

// start is where the next token begins: the decoder's offset is just past the previous token, before any
// separators.
func (jr *jsonReader) start() (line, col int) {
	off := int(jr.dec.InputOffset())
	for off < len(jr.data) {
		switch jr.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return jr.li.position(off)
}

func (jr *jsonReader) value() (*yaml.Node, error) {
	line, col := jr.start()
	tok, err := jr.dec.Token()
	if err != nil {
		return nil, err
	}
	n := &yaml.Node{Line: line, Column: col}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n.Kind, n.Tag, n.Style = yaml.MappingNode, "!!map", yaml.FlowStyle
			for jr.dec.More() {
				kl, kc := jr.start()
				kt, err := jr.dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is %T", kt)
				}
				v, err := jr.value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Line: kl, Column: kc}, v)
			}
		case '[':
			n.Kind, n.Tag, n.Style = yaml.SequenceNode, "!!seq", yaml.FlowStyle
			for jr.dec.More() {
				v, err := jr.value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, v)
			}
		default:
			return nil, fmt.Errorf("unexpected %q", t)
		}
		if _, err := jr.dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", t, yaml.DoubleQuotedStyle
	case json.Number:
		n.Kind, n.Value = yaml.ScalarNode, t.String()
		n.Tag = "!!float"
		if _, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			n.Tag = "!!int"
		}
	case bool:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", strconv.FormatBool(t)
	case nil:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
	default:
		return nil, fmt.Errorf("unexpected token %T", tok)
	}
	return n, nil
}

// checkDuplicateKeys rejects a mapping that defines a key twice: CloudFormation refuses such templates, and
// silently picking one of the two would serve something the developer did not write.
func checkDuplicateKeys(file string, n *yaml.Node, depth int) error {
	if depth > maxDepth {
		return errAt(file, n, "template is nested more than %d levels deep", maxDepth)
	}
	if n.Kind == yaml.MappingNode {
		seen := make(map[string]*yaml.Node, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				continue
			}
			if first, ok := seen[k.Value]; ok {
				return errAt(file, k, "duplicate key %q (first defined at line %d)", k.Value, first.Line)
			}
			seen[k.Value] = k
		}
	}
	for _, c := range n.Content {
		// Aliases are not followed: their targets are walked where they are defined.
		if err := checkDuplicateKeys(file, c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// isCustomTag tells local tags (!Ref, !Sub, …) from YAML's own (!!str, !!map, …) and the empty tag.
func isCustomTag(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

func kindName(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	if isCustomTag(n.Tag) {
		return "a " + n.Tag + " function"
	}
	switch n.Kind {
	case yaml.MappingNode:
		if _, ok := intrinsicOf(n); ok {
			return "an intrinsic function"
		}
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return fmt.Sprintf("the scalar %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

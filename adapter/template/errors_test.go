package template

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBrokenTemplates(t *testing.T) {
	dir := appDir(t, "broken")
	cases := []struct {
		file      string
		line, col int
		msg       string
	}{
		{"invalid-yaml.yaml", 4, 0, "invalid YAML: mapping values are not allowed in this context"},
		{"invalid-json.json", 5, 7, "invalid JSON: invalid character '\"' after object key:value pair"},
		{"no-resources.yaml", 1, 1, "no Resources: a template must define at least one resource"},
		{"resources-not-map.yaml", 2, 3, "Resources must be a mapping, got a list"},
		{"resource-not-map.yaml", 4, 7, `resource Fn must be a mapping with Type and Properties, got the scalar "just a string"`},
		{"no-type.yaml", 2, 3, "resource Fn has no Type"},
		{"no-properties.yaml", 2, 3, "function Fn (AWS::Serverless::Function) has no Properties"},
		{"properties-not-map.yaml", 4, 17, "function Fn: Properties must be a mapping, got a list"},
		{"circular-conditions.yaml", 2, 3, "circular condition: A → B → C → A"},
		{"circular-sub.yaml", 9, 41, "circular alias: &loop contains *loop, so its value would contain itself"},
		{"duplicate-key.yaml", 7, 7, `duplicate key "Runtime" (first defined at line 5)`},
		{"not-a-mapping.yaml", 1, 1, "template must be a mapping of sections (Resources, Parameters, …), got a list"},
		{"empty.yaml", 0, 0, "template is empty"},
		{"unknown-tag.yaml", 6, 16, "unknown tag !Lookup"},
		{"bad-timeout.yaml", 7, 16, `function Fn: Timeout must be a positive whole number, got "soon"`},
		{"bad-env.yaml", 10, 17, "function Fn: environment variable LIST must be a string, got a list"},
		{"unknown-condition.yaml", 7, 24, `unknown condition "IsBig"`},
		{"select-out-of-range.yaml", 6, 25, "Fn::Select: index 3 is out of range (the list has 2 values)"},
		{"bad-logging.yaml", 8, 20, `function Fn: LoggingConfig.LogFormat is "json", want one of JSON, Text`},
		{"layers-not-list.yaml", 7, 15, `function Fn: Layers must be a list, got "arn:aws:lambda:us-east-1:123456789012:layer:x:1"`},
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.*"))
	require.NoError(t, err)
	require.Len(t, files, len(cases)+1, "every broken fixture (and the README) is covered")

	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			tmpl, err := Load(path)
			require.Error(t, err)
			assert.Nil(t, tmpl)
			var te *Error
			require.True(t, errors.As(err, &te), "%T: %v", err, err)
			assert.Equal(t, Error{File: path, Line: tc.line, Column: tc.col, Msg: tc.msg}, Error{File: te.File, Line: te.Line, Column: te.Column, Msg: te.Msg})
			prefix := path + ":"
			switch {
			case tc.col > 0:
				prefix = fmt.Sprintf("%s:%d:%d:", path, tc.line, tc.col)
			case tc.line > 0:
				prefix = fmt.Sprintf("%s:%d:", path, tc.line)
			}
			assert.Equal(t, prefix+" "+tc.msg, err.Error())
		})
	}
}

func TestUnreadableTemplate(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(missing)
	var te *Error
	require.True(t, errors.As(err, &te), "%v", err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.Equal(t, missing, te.File)
	assert.True(t, strings.HasPrefix(err.Error(), missing+": cannot read template: "), err.Error())

	empty := t.TempDir()
	_, err = Load(empty)
	require.True(t, errors.As(err, &te), "%v", err)
	assert.Equal(t, empty+": folder has no template.yaml, template.yml, template.json (want a template file)", err.Error())

	if os.Geteuid() != 0 { // root reads anything
		unreadable := filepath.Join(t.TempDir(), "t.yaml")
		require.NoError(t, os.WriteFile(unreadable, []byte("Resources: {}"), 0o000))
		_, err = Load(unreadable)
		assert.ErrorIs(t, err, fs.ErrPermission)
	}
}

func TestJSONSyntaxErrors(t *testing.T) {
	cases := []struct {
		name, src string
		line, col int
		msg       string
	}{
		// A .yaml file that is JSON gets the JSON error, which points at the real problem.
		{"template.yaml", "{\n  \"Resources\": {\n    \"Fn\": {\"Type\": \"X\" \"Properties\": {}}\n  }\n}\n", 3, 24, "invalid JSON: invalid character '\"' after object key:value pair"},
		{"template.json", "{\"Resources\": {}", 1, 16, "invalid JSON: unexpected end of JSON input"},
		{"template.json", "Resources: {}\n", 1, 1, "invalid JSON: invalid character 'R' looking for beginning of value"},
		{"template.json", "{\"a\": \"é\", \"b\": x}", 1, 17, "invalid JSON: invalid character 'x' looking for beginning of value"},
	}
	for _, tc := range cases {
		path := filepath.Join(t.TempDir(), tc.name)
		_, err := Parse(path, []byte(tc.src))
		var te *Error
		require.True(t, errors.As(err, &te), "%s: %v", tc.src, err)
		assert.Equal(t, tc.msg, te.Msg, tc.src)
		assert.Equal(t, []int{tc.line, tc.col}, []int{te.Line, te.Column}, "%v", err)
	}
}

func TestStructuralErrors(t *testing.T) {
	cases := []struct{ name, src, msg string }{
		{"Resources empty", "Resources: {}\n", "1:12: Resources is empty"},
		{"Parameters not a mapping", "Parameters: [a]\nResources: {A: {Type: X}}\n", "1:13: Parameters must be a mapping, got a list"},
		{"parameter not a mapping", "Parameters: {P: x}\nResources: {A: {Type: X}}\n", `1:17: parameter P must be a mapping with a Type, got the scalar "x"`},
		{"parameter default a list", "Parameters: {P: {Type: String, Default: [a]}}\nResources: {A: {Type: X}}\n", "1:41: parameter P: Default must be a string, got a list"},
		{"Globals.Function not a mapping", "Globals: {Function: x}\nResources: {A: {Type: X}}\n", `1:21: Globals.Function must be a mapping, got the scalar "x"`},
		{"Type not a string", "Resources: {A: {Type: [X]}}\n", "1:23: resource A: Type must be a string, got a list"},
		{"logical id not a string", "Resources: {[A]: {Type: X}}\n", "1:13: a resource's logical id must be a plain string, got a list"},
		{"layer without Properties", "Resources:\n  F: {Type: AWS::Serverless::Function, Properties: {Runtime: python3.12, Handler: a.b, Layers: [!Ref L]}}\n  L: {Type: AWS::Lambda::LayerVersion}\n", "3:3: layer L (AWS::Lambda::LayerVersion) has no Properties"},
		{"architecture", "Resources:\n  F: {Type: AWS::Serverless::Function, Properties: {Architectures: [mips]}}\n", `2:68: function F: architecture "mips" is not x86_64 or arm64`},
		{"memory", "Resources:\n  F: {Type: AWS::Serverless::Function, Properties: {MemorySize: -1}}\n", "2:65: function F: MemorySize must be a positive whole number, got -1"},
		{"Runtime a list", "Resources:\n  F: {Type: AWS::Serverless::Function, Properties: {Runtime: [a]}}\n", "2:62: function F: Runtime must be a string, got a list"},
		{"Environment a list", "Resources:\n  F: {Type: AWS::Serverless::Function, Properties: {Environment: [a]}}\n", "2:66: function F: Environment must be a mapping with Variables, got a list"},
		{"layer item a mapping", "Resources:\n  F: {Type: AWS::Serverless::Function, Properties: {Layers: [{a: b}]}}\n", "2:61: function F: layer 0 must be a layer ARN or a !Ref of a layer, got a mapping"},
		{"CodeUri a list", "Resources:\n  F: {Type: AWS::Serverless::Function, Properties: {CodeUri: [a]}}\n", "2:62: function F: CodeUri must be a local path or an S3 location, got a list"},
		{"Sub of an unknown name", "Parameters: {Stage: {Type: String}}\nResources:\n  F: {Type: AWS::Serverless::Function, Properties: {Handler: !Sub \"app.${Stage}${Nope}\"}}\n", "3:62: Fn::Sub: ${Nope} is not a parameter, pseudo parameter or resource of this template"},
		{"alias bomb", aliasBomb(), "3:17: template too large to resolve (more than 1000000 values; excessive aliasing?)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "template.yaml")
			_, err := Parse(path, []byte(tc.src))
			var te *Error
			require.True(t, errors.As(err, &te), "%v", err)
			assert.Contains(t, err.Error(), path+":"+tc.msg)
		})
	}
}

// aliasBomb is a "billion laughs" template: each level doubles the size of the environment.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("X:\n  l0: &l0 [lol]\n")
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d [*l%d, *l%d]\n", i, i, i-1, i-1)
	}
	b.WriteString("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n        Variables:\n          V: !Join [\",\", *l30]\n")
	return b.String()
}

package template

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/plldb/plldb/testfixtures/apps"
)

// FuzzParse feeds arbitrary bytes to the parser: it must never panic or hang, every failure must be an *Error
// naming the file, and every success must be a consistent Template. Seeds in testdata/fuzz/FuzzParse are the
// fixture templates (hello, cdk, broken/*).
func FuzzParse(f *testing.F) {
	for _, expr := range []string{
		`!Join ["-", [!Sub "${Stage}-${Table.Arn}", !Select [1, !Split [",", !Join [",", !Cidr ["10.0.0.0/16", 2, 8]]]]]]`,
		`!If [DevAndEast, !FindInMap [RegionMap, !Ref "AWS::Region", Ami, {DefaultValue: d}], !Base64 !Ref Stage]`,
		`{"Fn::ToJsonString": {"Fn::GetAZs": ""}}`,
	} {
		f.Add([]byte(fmt.Sprintf(intrinsicTemplate, expr)), false)
	}
	f.Add([]byte("Resources:\n  Fn::ForEach::L:\n    - N\n    - [a, b]\n    - \"&{N}Fn\": {Type: AWS::Serverless::Function, Properties: {Runtime: python3.12, Handler: !Sub \"app.${N}\", CodeUri: src/}}\n"), false)
	dir := apps.Dir("hello")
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		path := filepath.Join(dir, "fuzz.yaml") // in the hello app, so that its code and layer folders resolve
		if asJSON {
			path = filepath.Join(dir, "fuzz.json")
		}
		tmpl, err := Parse(path, data)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			if te.File != path || te.Msg == "" || !strings.HasPrefix(err.Error(), path) {
				t.Fatalf("error does not name the file and the problem: %#v", te)
			}
			if tmpl != nil {
				t.Fatal("a template and an error")
			}
			return
		}
		if tmpl.Path != path || tmpl.Parameters == nil {
			t.Fatalf("template without path or parameters: %+v", tmpl)
		}
		if !slices.IsSortedFunc(tmpl.Functions, func(a, b Function) int { return strings.Compare(a.LogicalID, b.LogicalID) }) {
			t.Fatal("functions not sorted by logical id")
		}
		for _, fn := range tmpl.Functions {
			switch {
			case fn.Supported == (fn.Reason != ""):
				t.Fatalf("%s: Supported %v with reason %q", fn.LogicalID, fn.Supported, fn.Reason)
			case fn.Env == nil || fn.Timeout <= 0 || fn.MemoryMB <= 0 || fn.Name == "":
				t.Fatalf("%s: incomplete: %+v", fn.LogicalID, fn)
			case fn.Architecture != "x86_64" && fn.Architecture != "arm64":
				t.Fatalf("%s: architecture %q", fn.LogicalID, fn.Architecture)
			case fn.Source.File != path || fn.Source.Line <= 0:
				t.Fatalf("%s: source %+v", fn.LogicalID, fn.Source)
			case fn.Supported && (!filepath.IsAbs(fn.CodeDir) || !handlerRE.MatchString(fn.Handler) || !strings.HasPrefix(fn.Runtime, "python3.")):
				t.Fatalf("%s: supported but %+v", fn.LogicalID, fn)
			}
			for _, l := range fn.Layers {
				if !filepath.IsAbs(l.Dir) {
					t.Fatalf("%s: layer dir %q", fn.LogicalID, l.Dir)
				}
			}
		}
	})
}

func BenchmarkParseHello(b *testing.B) {
	path := apps.HelloTemplate()
	data := readFileB(b, path)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(path, data); err != nil {
			b.Fatal(err)
		}
	}
}

func readFileB(b *testing.B, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

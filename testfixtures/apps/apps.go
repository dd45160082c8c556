// Package apps locates the sample Lambda apps under testfixtures/apps (hello: a SAM app; cdk: a cdk.out-style
// template; broken: templates with one problem each) and the lines tests set breakpoints on.
//
// Every handler's first statement is marked with a "# BREAKPOINT" comment, so tests find breakpoint lines
// by name instead of hard-coding numbers that break when a fixture is edited.
package apps

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// Dir is the absolute folder of a sample app ("hello", "cdk", "broken").
func Dir(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), name)
}

// HelloTemplate is the hello app's template.yaml.
func HelloTemplate() string { return filepath.Join(Dir("hello"), "template.yaml") }

// CDKTemplate is the cdk app's template.
func CDKTemplate() string { return filepath.Join(Dir("cdk"), "HelloCdkStack.template.json") }

var defRE = regexp.MustCompile(`^\s*(?:async\s+)?def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(`)

// BreakpointLine is the 1-based line of the "# BREAKPOINT" marker in function fn of a Python file.
func BreakpointLine(pyFile, fn string) (int, error) {
	f, err := os.Open(pyFile)
	if err != nil {
		return 0, fmt.Errorf("breakpoint of %s: %w", fn, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	current := ""
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if m := defRE.FindStringSubmatch(text); m != nil {
			current = m[1]
		}
		if current == fn && strings.Contains(text, "# BREAKPOINT") {
			return line, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", pyFile, err)
	}
	return 0, fmt.Errorf("%s: no # BREAKPOINT line in function %s", pyFile, fn)
}

// WriteSlow writes, into dir, a SAM app with one function, Slow, whose handler sleeps the given seconds and
// returns "finished": an invocation that is still in flight when a test acts. It returns the template's path.
func WriteSlow(dir string, seconds int) (string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		return "", err
	}
	code := fmt.Sprintf("import time\ndef slow(event, context):\n    time.sleep(%d)\n    return 'finished'\n", seconds)
	if err := os.WriteFile(filepath.Join(dir, "src", "app.py"), []byte(code), 0o644); err != nil {
		return "", err
	}
	tpl := filepath.Join(dir, "template.yaml")
	return tpl, os.WriteFile(tpl, []byte(`Transform: AWS::Serverless-2016-10-31
Resources:
  Slow:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.slow, Runtime: python3.11, Timeout: 30}
`), 0o644)
}

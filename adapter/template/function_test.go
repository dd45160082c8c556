package template

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parseIn parses src as dir/template.yaml, after creating the given folders under dir.
func parseIn(t *testing.T, src string, folders ...string) (*Template, string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range folders {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, f), 0o755))
	}
	file := filepath.Join(dir, "template.yaml")
	require.NoError(t, os.WriteFile(file, []byte(src), 0o644))
	tmpl, err := Load(file)
	require.NoError(t, err)
	return tmpl, dir
}

func mustFunction(t *testing.T, tmpl *Template, id string) *Function {
	t.Helper()
	f, ok := tmpl.Function(id)
	require.True(t, ok, "function %s", id)
	return f
}

func TestGlobalsMerge(t *testing.T) {
	src := `Globals:
  Function:
    Runtime: python3.11
    Handler: app.handler
    Timeout: 20
    CodeUri: shared/
    Architectures: [arm64]
    Layers: [!Ref GlobalLayer, arn:aws:lambda:us-east-1:123456789012:layer:remote:3]
    Environment:
      Variables:
        A: global-a
        B: global-b
Resources:
  GlobalLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: glayer/}
  OwnLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: olayer}
  Plain:
    Type: AWS::Serverless::Function
    Properties: {}
  Own:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.13
      CodeUri: own
      Timeout: 5
      MemorySize: 1024
      Layers: [!Ref OwnLayer]
      Environment:
        Variables:
          B: own-b
          C: own-c
  Intrinsic:
    Type: AWS::Serverless::Function
    Properties:
      Environment: !If [Never, {Variables: {X: x}}, {Variables: {ONLY: mine}}]
  Lambda:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Code: built/Lambda
Conditions:
  Never: !Equals [a, b]
`
	tmpl, dir := parseIn(t, src, "shared", "own", "glayer/python", "olayer", "built/Lambda")

	plain := mustFunction(t, tmpl, "Plain")
	assert.True(t, plain.Supported, plain.Reason)
	assert.Equal(t, "python3.11", plain.Runtime)
	assert.Equal(t, "app.handler", plain.Handler)
	assert.Equal(t, 20, plain.Timeout)
	assert.Equal(t, DefaultMemoryMB, plain.MemoryMB)
	assert.Equal(t, "arm64", plain.Architecture)
	assert.Equal(t, filepath.Join(dir, "shared"), plain.CodeDir)
	assert.Equal(t, map[string]string{"A": "global-a", "B": "global-b"}, plain.Env)
	assert.Equal(t, []Layer{{LogicalID: "GlobalLayer", Dir: filepath.Join(dir, "glayer"), PythonDir: filepath.Join(dir, "glayer", "python")}}, plain.Layers)
	assert.Equal(t, []string{"arn:aws:lambda:us-east-1:123456789012:layer:remote:3"}, plain.UnresolvedLayers)

	own := mustFunction(t, tmpl, "Own")
	assert.True(t, own.Supported, own.Reason)
	assert.Equal(t, "python3.13", own.Runtime)
	assert.Equal(t, 5, own.Timeout)
	assert.Equal(t, 1024, own.MemoryMB)
	assert.Equal(t, filepath.Join(dir, "own"), own.CodeDir)
	assert.Equal(t, map[string]string{"A": "global-a", "B": "own-b", "C": "own-c"}, own.Env)
	// Lists add up, the globals first; a layer without a python folder has no PythonDir.
	assert.Equal(t, []Layer{
		{LogicalID: "GlobalLayer", Dir: filepath.Join(dir, "glayer"), PythonDir: filepath.Join(dir, "glayer", "python")},
		{LogicalID: "OwnLayer", Dir: filepath.Join(dir, "olayer")},
	}, own.Layers)

	// An intrinsic function is a value of its own: the function's wins whole.
	assert.Equal(t, map[string]string{"ONLY": "mine"}, mustFunction(t, tmpl, "Intrinsic").Env)

	// Globals are SAM's: they do not apply to AWS::Lambda::Function.
	lambda := mustFunction(t, tmpl, "Lambda")
	assert.True(t, lambda.Supported, lambda.Reason)
	assert.Equal(t, TypeLambdaFunction, lambda.Type)
	assert.Equal(t, filepath.Join(dir, "built", "Lambda"), lambda.CodeDir)
	assert.Equal(t, DefaultTimeout, lambda.Timeout)
	assert.Equal(t, DefaultArchitecture, lambda.Architecture)
	assert.Empty(t, lambda.Env)
	assert.NotNil(t, lambda.Env)
	assert.Empty(t, lambda.Layers)
}

func TestUnsupportedFunctions(t *testing.T) {
	src := `Globals:
  Function:
    Runtime: python3.12
    Handler: app.handler
Resources:
  Inline:
    Type: AWS::Serverless::Function
    Properties: {InlineCode: "def handler(e, c): pass"}
  S3Map:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: {Bucket: b, Key: k.zip}}
  S3Uri:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: s3://b/k.zip}
  Image:
    Type: AWS::Serverless::Function
    Properties: {PackageType: Image, ImageUri: repo:latest}
  NoRuntime:
    Type: AWS::Lambda::Function
    Properties: {Handler: app.handler, Code: src}
  Java:
    Type: AWS::Serverless::Function
    Properties: {Runtime: java21, CodeUri: src}
  Python2:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python2.7, CodeUri: src}
  NoHandler:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Code: src}
  BadHandler:
    Type: AWS::Serverless::Function
    Properties: {Handler: handler, CodeUri: src}
  SlashHandler:
    Type: AWS::Serverless::Function
    Properties: {Handler: src/app.handler}
  DashHandler:
    Type: AWS::Serverless::Function
    Properties: {Handler: my-app.handler, CodeUri: src}
  MissingCode:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: nowhere/}
  ZipCode:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: app.zip}
  LambdaZipFile:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: index.handler, Code: {ZipFile: "x = 1"}}
  LambdaS3:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: index.handler, Code: {S3Bucket: b, S3Key: k}}
  LambdaImage:
    Type: AWS::Lambda::Function
    Properties: {PackageType: Image, Code: {ImageUri: repo:latest}}
  LambdaNoCode:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: index.handler}
  MissingLayer:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src, Layers: [!Ref GoneLayer]}
  GoneLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: gone/}
`
	_, dir := parseIn(t, src, "src")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.zip"), []byte("PK"), 0o644))
	tmpl, err := Load(filepath.Join(dir, "template.yaml")) // again, now that app.zip exists
	require.NoError(t, err)

	want := map[string]string{
		"Inline":        "code is inline (InlineCode); plldb serves code from a local folder",
		"S3Map":         "code is in S3; plldb serves code from a local folder (point CodeUri at the source folder)",
		"S3Uri":         "code is in S3; plldb serves code from a local folder (point CodeUri at the source folder)",
		"Image":         "package type Image (a container image) is not supported; only zip functions with local code",
		"NoRuntime":     "no Runtime",
		"Java":          `runtime "java21" is not supported yet (only Python runtimes)`,
		"Python2":       `runtime "python2.7" is not supported yet (only Python runtimes)`,
		"NoHandler":     "no Handler",
		"BadHandler":    `handler "handler" is malformed: want module.function or package.module.function`,
		"SlashHandler":  `handler "src/app.handler" is malformed: want module.function or package.module.function`,
		"DashHandler":   `handler "my-app.handler" is malformed: want module.function or package.module.function`,
		"MissingCode":   "code folder " + filepath.Join(dir, "nowhere") + " does not exist",
		"ZipCode":       "code at " + filepath.Join(dir, "app.zip") + " is a file, not a folder; plldb serves code from a folder",
		"LambdaZipFile": "code is inline (Code.ZipFile); plldb serves code from a local folder",
		"LambdaS3":      "code is in S3; plldb serves code from a local folder (point Code at the source folder)",
		"LambdaImage":   "package type Image (a container image) is not supported; only zip functions with local code",
		"LambdaNoCode":  "no Code",
		"MissingLayer":  "layer GoneLayer: content folder " + filepath.Join(dir, "gone") + " does not exist",
	}
	require.Len(t, tmpl.Functions, len(want))
	for _, f := range tmpl.Functions {
		assert.False(t, f.Supported, f.LogicalID)
		assert.Equal(t, want[f.LogicalID], f.Reason, f.LogicalID)
	}
	assert.Empty(t, tmpl.Supported())
}

func TestFunctionNameAndLimits(t *testing.T) {
	src := `Parameters:
  Memory: {Type: Number, Default: 2048}
  Name: {Type: String}
Resources:
  Named:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.12, Handler: a.b, FunctionName: !Sub "${AWS::StackName}-named", MemorySize: !Ref Memory, Timeout: "900"}
  Unresolvable:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.12, Handler: a.b, FunctionName: !Split [",", "a,b"]}
  FromParam:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.12, Handler: a.b, FunctionName: !Ref Name, Architectures: [x86_64]}
  Removed:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.12, Handler: a.b, FunctionName: !Ref AWS::NoValue, Timeout: !Ref AWS::NoValue}
`
	tmpl, _ := parseIn(t, src)
	named := mustFunction(t, tmpl, "Named")
	assert.Equal(t, "local-named", named.Name)
	assert.Equal(t, 2048, named.MemoryMB)
	assert.Equal(t, 900, named.Timeout)
	assert.Equal(t, "Unresolvable", mustFunction(t, tmpl, "Unresolvable").Name)
	assert.Equal(t, "Name", mustFunction(t, tmpl, "FromParam").Name, "a parameter without value stands in as its name")
	removed := mustFunction(t, tmpl, "Removed")
	assert.Equal(t, "Removed", removed.Name)
	assert.Equal(t, DefaultTimeout, removed.Timeout)
	got, ok := tmpl.Function("local-named")
	require.True(t, ok)
	assert.Equal(t, "Named", got.LogicalID)
}

func TestCDKApp(t *testing.T) {
	dir := appDir(t, "cdk")
	file := filepath.Join(dir, "HelloCdkStack.template.json")
	tmpl, err := Load(file)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"BootstrapVersion": "/cdk-bootstrap/hnb659fds/version"}, tmpl.Parameters)
	require.Len(t, tmpl.Functions, 2)

	h := mustFunction(t, tmpl, "Handler886CB40B")
	assert.Equal(t, Function{
		LogicalID: "Handler886CB40B", Name: "Handler886CB40B", Type: TypeLambdaFunction,
		Runtime: "python3.12", Handler: "index.handler", CodeDir: filepath.Join(dir, "asset.3f2c9a1b7e"),
		Timeout: 60, MemoryMB: 512, Architecture: "x86_64",
		Env: map[string]string{"REGION": "us-east-1", "ROLE": "HandlerServiceRoleFCDC14AE", "RETRIES": "3"},
		Layers: []Layer{{
			LogicalID: "UtilLayer4D5D7E8B", Dir: filepath.Join(dir, "asset.8d41e07c55"),
			PythonDir: filepath.Join(dir, "asset.8d41e07c55", "python"),
		}},
		UnresolvedLayers: []string{"arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:7"},
		Supported:        true,
		Source:           Position{File: file, Line: 35, Column: 3},
	}, *h)

	inline := mustFunction(t, tmpl, "InlineHandler2A3B4C5D")
	assert.False(t, inline.Supported)
	assert.Equal(t, "code is inline (Code.ZipFile); plldb serves code from a local folder", inline.Reason)

	// Without the asset metadata, the same function's code is only in S3.
	data := readFile(t, file)
	tmplNoMeta, err := Parse(file, []byte(replaceOnce(t, data, `"aws:asset:path": "asset.3f2c9a1b7e",`, "")))
	require.NoError(t, err)
	h = mustFunction(t, tmplNoMeta, "Handler886CB40B")
	assert.False(t, h.Supported)
	assert.Equal(t, "code is in S3; plldb serves code from a local folder (point Code at the source folder)", h.Reason)
}

func TestJSONTemplate(t *testing.T) {
	// Tab-indented JSON (which YAML parsers refuse), with positions counted in characters.
	src := "{\n\t\"Résumé\": \"é\",\n\t\"Resources\": {\n\t\t\"Fn\": {\n\t\t\t\"Type\": \"AWS::Serverless::Function\",\n" +
		"\t\t\t\"Properties\": {\"Runtime\": \"python3.12\", \"Handler\": \"app.handler\", \"Timeout\": 7,\n" +
		"\t\t\t\t\"Environment\": {\"Variables\": {\"F\": 1.25, \"B\": false, \"N\": null, \"S\": {\"Fn::Sub\": \"${AWS::Region}\"}}}}\n" +
		"\t\t}\n\t}\n}\n"
	for _, name := range []string{"template.json", "template.yaml"} {
		tmpl, err := Parse(filepath.Join(t.TempDir(), name), []byte(src))
		require.NoError(t, err, name)
		f := mustFunction(t, tmpl, "Fn")
		assert.True(t, f.Supported, f.Reason)
		assert.Equal(t, 7, f.Timeout)
		assert.Equal(t, map[string]string{"F": "1.25", "B": "false", "N": "", "S": "us-east-1"}, f.Env)
		assert.Equal(t, 4, f.Source.Line)
		assert.Equal(t, 3, f.Source.Column)
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(s, old), "%q should occur once", old)
	return strings.Replace(s, old, new, 1)
}

func TestForEach(t *testing.T) {
	src := `Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]
Parameters:
  Names: {Type: CommaDelimitedList, Default: "orders,user-profiles"}
Resources:
  Fn::ForEach::Handlers:
    - Name
    - !Ref Names
    - "&{Name}Function":
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          Handler: !Sub "app.${Name}"
          Environment:
            Variables:
              NAME: !Ref Name
              LONG: {"Ref": "Name"}
              KEY: "&{Name}"
              OTHER: !Ref AWS::Region
      Fn::ForEach::Inner:
        - Size
        - [S, L]
        - "&{Name}${Size}Function":
            Type: AWS::Lambda::Function
            Properties: {Runtime: python3.12, Handler: !Sub "app.h${Size}", Code: "."}
`
	tmpl, _ := parseIn(t, src)
	var ids []string
	for _, f := range tmpl.Functions {
		ids = append(ids, f.LogicalID)
	}
	assert.Equal(t, []string{"ordersFunction", "ordersLFunction", "ordersSFunction", "userprofilesFunction", "userprofilesLFunction", "userprofilesSFunction"}, ids)
	f := mustFunction(t, tmpl, "userprofilesFunction")
	assert.Equal(t, "app.user-profiles", f.Handler)
	assert.Equal(t, map[string]string{"NAME": "user-profiles", "LONG": "user-profiles", "KEY": "userprofiles", "OTHER": "us-east-1"}, f.Env)
	assert.Equal(t, `handler "app.user-profiles" is malformed: want module.function or package.module.function`, f.Reason)
	f = mustFunction(t, tmpl, "ordersSFunction")
	assert.True(t, f.Supported, f.Reason)
	assert.Equal(t, "app.hS", f.Handler)

	_, err := parseInline(t, "Resources:\n  Fn::ForEach::X: [a, b]\n", LoadOptions{})
	require.ErrorContains(t, err, "2:19: Fn::ForEach::X: want [Identifier, [values…], {OutputKey: OutputValue}], got a list")
	_, err = parseInline(t, "Resources:\n  Fn::ForEach::X: [N, [a, a], {\"R${N}\": {Type: T}}]\n", LoadOptions{})
	require.ErrorContains(t, err, "resource Ra is defined twice")
}

func TestReservedConcurrencyAndEventRetries(t *testing.T) {
	src := `Globals:
  Function:
    Runtime: python3.12
    Handler: app.handler
    ReservedConcurrentExecutions: 7
    EventInvokeConfig:
      MaximumRetryAttempts: 1
Resources:
  FromGlobals:
    Type: AWS::Serverless::Function
    Properties: {}
  Own:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: 3
      EventInvokeConfig: {MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60}
  Throttled:
    Type: AWS::Serverless::Function
    Properties: {ReservedConcurrentExecutions: 0}
  FromParameter:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Code: .
      ReservedConcurrentExecutions: !Ref Reserved
  Unset:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: app.handler, Code: .}
  NoValue:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: app.handler, Code: ., ReservedConcurrentExecutions: !Ref AWS::NoValue}
Parameters:
  Reserved: {Type: Number, Default: 5}
`
	tmpl, _ := parseIn(t, src)
	for id, want := range map[string]int{"FromGlobals": 7, "Own": 3, "Throttled": 0, "FromParameter": 5} {
		f := mustFunction(t, tmpl, id)
		require.NotNil(t, f.ReservedConcurrency, id)
		assert.Equal(t, want, *f.ReservedConcurrency, id)
	}
	for _, id := range []string{"Unset", "NoValue"} {
		f := mustFunction(t, tmpl, id)
		assert.Nil(t, f.ReservedConcurrency, "%s: unset is not 0, which would throttle it", id)
		assert.Nil(t, f.MaxEventRetries, id)
	}
	require.NotNil(t, mustFunction(t, tmpl, "FromGlobals").MaxEventRetries)
	assert.Equal(t, 1, *mustFunction(t, tmpl, "FromGlobals").MaxEventRetries)
	require.NotNil(t, mustFunction(t, tmpl, "Own").MaxEventRetries)
	assert.Equal(t, 0, *mustFunction(t, tmpl, "Own").MaxEventRetries)
}

func TestReservedConcurrencyAndEventRetriesErrors(t *testing.T) {
	for _, c := range []struct{ props, want string }{
		{`{ReservedConcurrentExecutions: -1}`, "ReservedConcurrentExecutions must be a whole number, 0 or more"},
		{`{ReservedConcurrentExecutions: many}`, "ReservedConcurrentExecutions must be a whole number"},
		{`{EventInvokeConfig: {MaximumRetryAttempts: 3}}`, "MaximumRetryAttempts must be 0, 1 or 2"},
		{`{EventInvokeConfig: [1]}`, "EventInvokeConfig must be a mapping"},
	} {
		src := "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: " + c.props + "\n"
		dir := t.TempDir()
		file := filepath.Join(dir, "template.yaml")
		require.NoError(t, os.WriteFile(file, []byte(src), 0o644))
		_, err := Load(file)
		require.Error(t, err, c.props)
		assert.Contains(t, err.Error(), c.want, c.props)
		assert.Contains(t, err.Error(), "template.yaml:4:", "the error points at the line: %v", err)
	}
}

func TestLoggingConfig(t *testing.T) {
	src := `Globals:
  Function:
    Runtime: python3.12
    Handler: a.b
    LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: WARN}
Resources:
  Merged:
    Type: AWS::Serverless::Function
    Properties:
      LoggingConfig: {ApplicationLogLevel: DEBUG, SystemLogLevel: WARN, LogGroup: /custom/group}
  Text:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: a.b, LoggingConfig: {LogFormat: Text, ApplicationLogLevel: DEBUG}}
  Plain:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.12, Handler: a.b}
`
	tmpl, _ := parseIn(t, src)
	merged := mustFunction(t, tmpl, "Merged")
	assert.Equal(t, LoggingConfig{LogFormat: "JSON", ApplicationLogLevel: "DEBUG", SystemLogLevel: "WARN", LogGroup: "/custom/group"}, merged.Logging)
	assert.Equal(t, map[string]string{"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "DEBUG", "AWS_LAMBDA_LOG_GROUP_NAME": "/custom/group"},
		merged.Logging.RuntimeEnv())
	assert.Empty(t, mustFunction(t, tmpl, "Text").Logging.RuntimeEnv(), "Lambda filters by level only in JSON format")
	assert.Empty(t, mustFunction(t, tmpl, "Plain").Logging.RuntimeEnv())
	assert.Equal(t, map[string]string{"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"},
		LoggingConfig{LogFormat: "JSON"}.RuntimeEnv(), "JSON's default application level")
}

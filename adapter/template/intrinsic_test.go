package template

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// intrinsicTemplate has one function whose environment variable V is the expression under test (%s, at
// exprLine:exprColumn).
const intrinsicTemplate = `Parameters:
  Stage: {Type: String, Default: dev}
  Subnets: {Type: CommaDelimitedList, Default: "a,b,c"}
  Size: {Type: Number, Default: 512}
  NoDefault: {Type: String}
Mappings:
  RegionMap:
    us-east-1: {Ami: ami-east, Size: 3}
    eu-west-1: {Ami: ami-west, Size: 5}
Conditions:
  IsDev: !Equals [!Ref Stage, dev]
  IsProd: {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
  IsNotProd: !Not [!Condition IsProd]
  DevAndEast: !And [!Condition IsDev, !Equals [!Ref "AWS::Region", us-east-1]]
  ProdOrDev: !Or [!Condition IsProd, {"Condition": "IsDev"}]
  LongNot: {"Fn::Not": [{"Fn::Equals": [a, b]}]}
  LongAnd: {"Fn::And": [{"Condition": "IsDev"}, {"Condition": "IsProd"}]}
  LongOr: {"Fn::Or": [{"Condition": "IsProd"}, {"Fn::Equals": [1, "1"]}]}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Environment:
        Variables:
          FIXED: x
          V: %s
`

// exprLine and exprColumn are where %s lands in intrinsicTemplate.
const exprLine, exprColumn = 30, 14

func parseInline(t *testing.T, src string, opts LoadOptions) (*Template, error) {
	t.Helper()
	return ParseWith(filepath.Join(t.TempDir(), "template.yaml"), []byte(src), opts)
}

func evalExpr(t *testing.T, expr string, opts LoadOptions) (string, bool, error) {
	t.Helper()
	tmpl, err := parseInline(t, fmt.Sprintf(intrinsicTemplate, expr), opts)
	if err != nil {
		return "", false, err
	}
	f, ok := tmpl.Function("Fn")
	require.True(t, ok)
	require.Equal(t, "x", f.Env["FIXED"])
	v, ok := f.Env["V"]
	return v, ok, nil
}

func TestIntrinsics(t *testing.T) {
	cases := []struct{ name, expr, want string }{
		// Ref: parameters, pseudo parameters, and what only exists in AWS (the logical id stands in).
		{"Ref parameter", `!Ref Stage`, "dev"},
		{"Ref parameter long", `{"Ref": "Stage"}`, "dev"},
		{"Ref number parameter", `!Ref Size`, "512"},
		{"Ref resource", `!Ref Table`, "Table"},
		{"Ref parameter without default", `!Ref NoDefault`, "NoDefault"},
		{"Ref unknown", `{"Ref": "Nowhere"}`, "Nowhere"},
		{"Ref AWS::Region", `!Ref AWS::Region`, "us-east-1"},
		{"Ref AWS::AccountId", `{"Ref": "AWS::AccountId"}`, "123456789012"},
		{"Ref AWS::StackName", `!Ref AWS::StackName`, "local"},
		{"Ref AWS::Partition", `!Ref AWS::Partition`, "aws"},
		{"Ref AWS::URLSuffix", `!Ref AWS::URLSuffix`, "amazonaws.com"},
		{"Ref AWS::StackId", `!Ref AWS::StackId`, "arn:aws:cloudformation:us-east-1:123456789012:stack/local/00000000-0000-0000-0000-000000000000"},

		// Fn::Sub, string and [string, map] forms.
		{"Sub", `!Sub "${Stage}-${AWS::Region}-${Table}-${Table.Arn}-${!Literal}-${NoDefault}"`, "dev-us-east-1-Table-Table-${Literal}-NoDefault"},
		{"Sub with variables", `!Sub ["${A}-${Stage}-${ B }", {A: !Ref AWS::AccountId, B: 7}]`, "123456789012-dev-7"},
		{"Sub variable shadows parameter", `!Sub ["${Stage}", {Stage: mine}]`, "mine"},
		{"Sub long", `{"Fn::Sub": "arn:${AWS::Partition}:s3:::${Stage}-bucket"}`, "arn:aws:s3:::dev-bucket"},
		{"Sub long with variables", `{"Fn::Sub": ["${A}/${B}", {"A": {"Ref": "Stage"}, "B": {"Fn::GetAtt": ["Table", "Arn"]}}]}`, "dev/Table"},
		{"Sub unterminated", `!Sub "cost: ${5"`, "cost: ${5"},
		{"Sub pseudo parameters", `!Sub "${AWS::StackName}/${AWS::AccountId}/${AWS::Partition}/${AWS::URLSuffix}"`, "local/123456789012/aws/amazonaws.com"},
		{"Sub literal of an unknown name", `!Sub "${!NoSuchParam}-${!Nowhere.Arn}"`, "${NoSuchParam}-${Nowhere.Arn}"},
		{"Sub resources SAM creates", `!Sub "${FnRole}|${FnRole.Arn}|${ServerlessRestApi}|${FnAliaslive}"`, "FnRole|FnRole|ServerlessRestApi|FnAliaslive"},
		{"Sub parameter with default and resource attribute", `{"Fn::Sub": "${Size}-${Table.StreamArn}"}`, "512-Table"},

		// Fn::GetAtt, dotted and list forms: the logical id.
		{"GetAtt dotted", `!GetAtt Table.Arn`, "Table"},
		{"GetAtt list", `!GetAtt [Table, StreamArn]`, "Table"},
		{"GetAtt long", `{"Fn::GetAtt": ["Table", "Arn"]}`, "Table"},
		{"GetAtt long dotted", `{"Fn::GetAtt": "Table.Arn"}`, "Table"},
		{"GetAtt nested attribute", `!GetAtt Nested.Outputs.TableName`, "Nested"},

		// Fn::Join, Fn::Select, Fn::Split.
		{"Join", `!Join ["-", [a, !Ref Stage, 3, true]]`, "a-dev-3-true"},
		{"Join list parameter", `!Join ["+", !Ref Subnets]`, "a+b+c"},
		{"Join long", `{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":x"]]}`, "arn:aws:x"},
		{"Select", `!Select [1, !Ref Subnets]`, "b"},
		{"Select string index", `!Select ["0", [x, y]]`, "x"},
		{"Select long", `{"Fn::Select": [2, {"Fn::Split": ["/", "a/b/c"]}]}`, "c"},
		{"Split", `!Join ["+", !Split [",", "x,y,z"]]`, "x+y+z"},
		{"Split long", `{"Fn::Join": ["|", {"Fn::Split": ["::", "a::b"]}]}`, "a|b"},

		// Conditions: Fn::If over Fn::Equals, Fn::Not, Fn::And, Fn::Or and Condition references.
		{"If true", `!If [IsDev, yes, no]`, "yes"},
		{"If false", `!If [IsProd, yes, no]`, "no"},
		{"If long", `{"Fn::If": ["IsNotProd", {"Ref": "Stage"}, "no"]}`, "dev"},
		{"If And with Equals", `!If [DevAndEast, yes, no]`, "yes"},
		{"If Or with long Condition", `!If [ProdOrDev, yes, no]`, "yes"},
		{"If long Not", `!If [LongNot, yes, no]`, "yes"},
		{"If long And", `!If [LongAnd, yes, no]`, "no"},
		{"If long Or with number equality", `!If [LongOr, yes, no]`, "yes"},
		{"Equals as a value", `!Equals [!Ref Stage, dev]`, "true"},
		{"Not as a value", `!Not [!Equals [a, a]]`, "false"},
		{"And as a value", `!And [!Condition IsDev, !Condition IsNotProd]`, "true"},
		{"Or as a value", `!Or [!Condition IsProd, !Equals [a, b]]`, "false"},
		{"Condition as a value", `!Condition IsDev`, "true"},

		// Fn::FindInMap, with keys from intrinsics and the LanguageExtensions default.
		{"FindInMap", `!FindInMap [RegionMap, !Ref "AWS::Region", Ami]`, "ami-east"},
		{"FindInMap number", `!FindInMap [RegionMap, us-east-1, Size]`, "3"},
		{"FindInMap long", `{"Fn::FindInMap": ["RegionMap", "eu-west-1", "Ami"]}`, "ami-west"},
		{"FindInMap default", `!FindInMap [RegionMap, ap-south-1, Ami, {DefaultValue: fallback}]`, "fallback"},

		// Fn::Base64, Fn::Cidr, Fn::GetAZs, Fn::ImportValue.
		{"Base64", `!Base64 hello`, "aGVsbG8="},
		{"Base64 long of Sub", `{"Fn::Base64": {"Fn::Sub": "${Stage}"}}`, "ZGV2"},
		{"Cidr", `!Join [",", !Cidr ["10.0.0.0/24", 3, 6]]`, "10.0.0.0/26,10.0.0.64/26,10.0.0.128/26"},
		{"Cidr long", `{"Fn::Select": [1, {"Fn::Cidr": ["192.168.0.0/16", "2", "8"]}]}`, "192.168.1.0/24"},
		{"Cidr IPv6", `!Select [1, !Cidr ["2001:db8::/56", 2, 64]]`, "2001:db8:0:1::/64"},
		{"GetAZs", `!Select [0, !GetAZs ""]`, "us-east-1a"},
		{"GetAZs long", `{"Fn::Select": [1, {"Fn::GetAZs": {"Ref": "AWS::Region"}}]}`, "us-east-1b"},
		{"ImportValue", `!ImportValue shared-vpc-id`, "shared-vpc-id"},
		{"ImportValue long of Sub", `{"Fn::ImportValue": {"Fn::Sub": "${Stage}-vpc"}}`, "dev-vpc"},

		// LanguageExtensions functions.
		{"Length", `{"Fn::Length": [1, 2, 3]}`, "3"},
		{"ToJsonString", `!ToJsonString {b: [x, 1.5], a: true}`, `{"a":true,"b":["x",1.5]}`},

		// Scalars, as CloudFormation stringifies them.
		{"int", `10`, "10"},
		{"float keeps its text", `1.50`, "1.50"},
		{"bool", `true`, "true"},
		{"bool capitalised", `False`, "false"},
		{"quoted number", `"007"`, "007"},
		{"null", `null`, ""},
		{"timestamp-looking", `2024-01-02`, "2024-01-02"},
		{"short form scalar is a string", `!Join ["", [!Ref 10]]`, "10"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := evalExpr(t, tc.expr, LoadOptions{})
			require.NoError(t, err)
			require.True(t, ok, "V was dropped")
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestIntrinsicsWithOverrides(t *testing.T) {
	opts := LoadOptions{Parameters: map[string]string{
		"Stage": "prod", "Subnets": "x,y", "NoDefault": "given",
		"AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333", "AWS::StackName": "shop",
	}}
	cases := []struct{ expr, want string }{
		{`!Ref Stage`, "prod"},
		{`!Ref NoDefault`, "given"},
		{`!Join [",", !Ref Subnets]`, "x,y"},
		{`!Sub "${AWS::Region}/${AWS::AccountId}/${AWS::StackName}"`, "eu-west-1/111122223333/shop"},
		{`!FindInMap [RegionMap, !Ref "AWS::Region", Ami]`, "ami-west"},
		{`!If [IsProd, yes, no]`, "yes"},
		{`!Select [0, !GetAZs ""]`, "eu-west-1a"},
	}
	for _, tc := range cases {
		got, _, err := evalExpr(t, tc.expr, opts)
		require.NoError(t, err, tc.expr)
		assert.Equal(t, tc.want, got, tc.expr)
	}
	got, _, err := evalExpr(t, `!Sub "${AWS::Partition} ${AWS::URLSuffix}"`, LoadOptions{Parameters: map[string]string{"AWS::Region": "cn-north-1"}})
	require.NoError(t, err)
	assert.Equal(t, "aws-cn amazonaws.com.cn", got)
}

func TestNoValueRemovesTheKey(t *testing.T) {
	for _, expr := range []string{`!Ref AWS::NoValue`, `!If [IsProd, x, !Ref AWS::NoValue]`, `{"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]}`} {
		_, ok, err := evalExpr(t, expr, LoadOptions{})
		require.NoError(t, err, expr)
		assert.False(t, ok, "%s: V should be removed", expr)
	}
	// In a list, the item goes.
	got, _, err := evalExpr(t, `!Join [",", [a, !If [IsProd, b, !Ref AWS::NoValue], c]]`, LoadOptions{})
	require.NoError(t, err)
	assert.Equal(t, "a,c", got)
}

func TestIntrinsicErrors(t *testing.T) {
	cases := []struct{ name, expr, msg string }{
		{"unknown tag", `!Lookup x`, "unknown tag !Lookup"},
		{"unknown function", `{"Fn::Nope": 1}`, "unknown intrinsic function Fn::Nope"},
		{"Transform", `{"Fn::Transform": {"Name": "M"}}`, "Fn::Transform runs a CloudFormation macro"},
		{"Join shape", `!Join "x"`, `Fn::Join: want [delimiter, [values…]], got the scalar "x"`},
		{"Join item", `!Join [",", [a, [b]]]`, "Fn::Join: value 1 must be a string, got a list"},
		{"Select out of range", `!Select [5, [a]]`, "Fn::Select: index 5 is out of range (the list has 1 values)"},
		{"Select index", `!Select [first, [a]]`, `Fn::Select: index "first" is not a whole number`},
		{"Select not a list", `!Select [0, abc]`, `Fn::Select: the values must be a list, got "abc"`},
		{"Split empty delimiter", `!Select [0, !Split ["", abc]]`, "Fn::Split: the delimiter is empty"},
		{"GetAtt without attribute", `!GetAtt Table`, `Fn::GetAtt: want LogicalId.Attribute, got "Table"`},
		{"GetAtt list length", `!GetAtt [Table]`, "Fn::GetAtt: want [LogicalId, Attribute], got a list of 1"},
		{"If unknown condition", `!If [Missing, a, b]`, `unknown condition "Missing"`},
		{"If shape", `!If [IsDev, a]`, "Fn::If: want [condition, value if true, value if false], got a list"},
		{"And arity", `!And [!Condition IsDev]`, "Fn::And: want a list of 2 to 10 conditions"},
		{"condition not boolean", `!Not [abc]`, "a condition must be Fn::Equals"},
		{"FindInMap missing map", `!FindInMap [Nope, a, b]`, `Fn::FindInMap: Mappings has no key "Nope"`},
		{"FindInMap missing key", `!FindInMap [RegionMap, us-east-1, Color]`, `Fn::FindInMap: Mappings.RegionMap.us-east-1 has no key "Color"`},
		{"Sub list parameter", `!Sub "${Subnets}"`, "Fn::Sub: ${Subnets} is a list, not a string"},
		{"Sub NoValue", `!Sub "${AWS::NoValue}"`, "Fn::Sub: ${AWS::NoValue} cannot be used in a string"},
		{"Sub empty variable", `!Sub "${}"`, "Fn::Sub: empty variable ${}"},
		{"Sub unknown name", `!Sub "prefix-${NoSuchParam}"`, "Fn::Sub: ${NoSuchParam} is not a parameter, pseudo parameter or resource of this template, nor a variable of this Fn::Sub (write ${!NoSuchParam} for the literal text)"},
		{"Sub unknown name long form", `{"Fn::Sub": "${Stage}-${Stag}"}`, "Fn::Sub: ${Stag} is not a parameter"},
		{"Sub unknown pseudo parameter", `!Sub "${AWS::Regoin}"`, "Fn::Sub: ${AWS::Regoin} is not a parameter"},
		{"Sub unknown variable", `!Sub ["${A}-${B}", {A: a}]`, "Fn::Sub: ${B} is not a parameter"},
		{"Sub attribute of no resource", `!Sub "${Nowhere.Arn}"`, "Fn::Sub: ${Nowhere.Arn}: Nowhere is not a resource of this template"},
		{"Sub shape", `!Sub [a, b, c]`, "Fn::Sub: want a string or [string, {variables}], got a list of 3"},
		{"Sub variables not a map", `!Sub ["${A}", [a]]`, "Fn::Sub: the variables must be a mapping, got a list"},
		{"Cidr bad block", `!Select [0, !Cidr ["10.0.0.0", 1, 8]]`, "Fn::Cidr: netip.ParsePrefix"},
		{"Cidr too many", `!Select [0, !Cidr ["10.0.0.0/24", 3, 7]]`, "Fn::Cidr: 10.0.0.0/24 holds only 2 subnets of /25"},
		{"Cidr bits", `!Select [0, !Cidr ["10.0.0.0/24", 1, 9]]`, "Fn::Cidr: 9 host bits do not fit in 10.0.0.0/24"},
		{"Ref of a list", `!Ref [a]`, "Ref: the name must be a string, got a list"},
		{"env value is a mapping", `{a: b}`, "environment variable V must be a string, got a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := evalExpr(t, tc.expr, LoadOptions{})
			require.Error(t, err)
			var te *Error
			require.True(t, errors.As(err, &te), "%T: %v", err, err)
			assert.Contains(t, te.Msg, tc.msg)
			assert.Equal(t, "template.yaml", filepath.Base(te.File))
			assert.Equal(t, exprLine, te.Line, "error should point at the expression: %v", err)
			assert.GreaterOrEqual(t, te.Column, exprColumn, "%v", err)
			assert.True(t, strings.HasPrefix(err.Error(), fmt.Sprintf("%s:%d:%d: ", te.File, te.Line, te.Column)), err.Error())
		})
	}
}

func TestUnusedBrokenIntrinsicsDoNotMatter(t *testing.T) {
	// Only what plldb reads is resolved: a macro in another resource or an unused property does not stop
	// the template from loading.
	src := `Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: {"Fn::Transform": {"Name": "Macro"}}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Events:
        Api: {Type: Api, Properties: {Path: !Lookup x}}
`
	tmpl, err := parseInline(t, src, LoadOptions{})
	require.NoError(t, err)
	f, ok := tmpl.Function("Fn")
	require.True(t, ok)
	assert.True(t, f.Supported, f.Reason)
}

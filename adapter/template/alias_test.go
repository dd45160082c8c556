package template

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAliasesAndDescription(t *testing.T) {
	src := `Transform: AWS::Serverless-2016-10-31
Parameters:
  AliasName:
    Type: String
    Default: live
Globals:
  Function:
    Runtime: python3.12
    CodeUri: src/
    AutoPublishAlias: !Ref AliasName
Resources:
  Api:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Description: !Sub "the ${AliasName} API"
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: my-worker
      Handler: app.work
      AutoPublishAlias: stable
      Description: [not, a, string]
  Plain:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Code: src/
      Handler: app.plain
  PlainCanary:
    Type: AWS::Lambda::Alias
    Properties:
      FunctionName: !Ref Plain
      FunctionVersion: "1"
      Name: canary
  WorkerBlue:
    Type: AWS::Lambda::Alias
    Properties:
      FunctionName: arn:aws:lambda:us-east-1:123456789012:function:my-worker
      FunctionVersion: "3"
      Name: blue
  Dangling:
    Type: AWS::Lambda::Alias
    Properties:
      FunctionName: !GetAtt NoSuchFunction.Arn
      Name: orphan
  Unnamed:
    Type: AWS::Lambda::Alias
    Properties:
      FunctionName: !Ref Plain
`
	tmpl, _ := parseIn(t, src, "src")
	api := mustFunction(t, tmpl, "Api")
	assert.Equal(t, []string{"live"}, api.Aliases, "AutoPublishAlias from Globals, resolved")
	assert.Equal(t, "the live API", api.Description)
	assert.True(t, api.HasAlias("live"))
	assert.False(t, api.HasAlias("1"))

	worker := mustFunction(t, tmpl, "Worker")
	assert.Equal(t, []string{"stable", "blue"}, worker.Aliases, "the function's own AutoPublishAlias wins over Globals; an alias resource names it by ARN")
	assert.Empty(t, worker.Description, "a Description that is not a string is left out, not an error")

	plain := mustFunction(t, tmpl, "Plain")
	assert.Equal(t, []string{"canary"}, plain.Aliases, "AutoPublishAlias is SAM's: a plain AWS::Lambda::Function gets only alias resources")
}

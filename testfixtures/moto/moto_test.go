package moto_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/moto"
)

func TestMotoServesTheLambdaAPIAndResets(t *testing.T) {
	s := moto.Start(t)
	client := lambda.NewFromConfig(s.Config())
	ctx := context.Background()
	out, err := client.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	require.NoError(t, err)
	assert.Empty(t, out.Functions)

	_, err = client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("nope")})
	require.Error(t, err, "moto answers like Lambda for unknown functions")
	s.Reset(t)
	assert.Same(t, s, moto.Start(t), "one server per test binary")
}

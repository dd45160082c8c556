package moto_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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

// TestConcurrentConditionalWritesHaveOneWinner holds the server to DynamoDB's atomicity, which plldb's claims rely
// on: of several PutItems conditioned on attribute_not_exists racing for one key, exactly one succeeds. moto_server
// alone checks and writes without a lock, and two claims of one function both won in CI.
func TestConcurrentConditionalWritesHaveOneWinner(t *testing.T) {
	s := moto.Start(t)
	db := dynamodb.NewFromConfig(s.Config())
	ctx := context.Background()
	table := "atomicity-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	require.NoError(t, err)
	// A long condition (within DynamoDB's 4 KB) keeps each check busy long enough for Python to switch threads
	// between a check and its write, which is how the race shows: with one term it needs a loaded machine.
	cond := "attribute_not_exists(k)"
	for i := range 60 {
		cond += fmt.Sprintf(" AND attribute_not_exists(a%d)", i)
	}
	const rounds, writers = 20, 6
	for round := range rounds {
		var wg sync.WaitGroup
		var won atomic.Int32
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				_, err := db.PutItem(ctx, &dynamodb.PutItemInput{
					TableName: aws.String(table),
					Item: map[string]types.AttributeValue{
						"k": &types.AttributeValueMemberS{Value: strconv.Itoa(round)},
						"w": &types.AttributeValueMemberN{Value: strconv.Itoa(w)},
					},
					ConditionExpression: aws.String(cond),
				})
				var failed *types.ConditionalCheckFailedException
				switch {
				case err == nil:
					won.Add(1)
				case !errors.As(err, &failed):
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err, "round %d", round)
		}
		require.Equal(t, int32(1), won.Load(), "round %d: exactly one conditional write wins", round)
	}
}

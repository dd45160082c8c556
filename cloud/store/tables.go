package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Tables names the store's four tables.
type Tables struct {
	Sessions, Connections, Tickets, Claims string
}

// DefaultTables derives the table names from an install name: "plldb" → "plldb-sessions", "plldb-connections",
// "plldb-tickets", "plldb-claims".
func DefaultTables(name string) Tables {
	return Tables{
		Sessions:    name + "-sessions",
		Connections: name + "-connections",
		Tickets:     name + "-tickets",
		Claims:      name + "-claims",
	}
}

func (t Tables) validate() error {
	if t.Sessions == "" || t.Connections == "" || t.Tickets == "" || t.Claims == "" {
		return fmt.Errorf("store tables: every table needs a name (got %+v)", t)
	}
	return nil
}

// TTLAttribute is the attribute DynamoDB TTL is enabled on, in the tables TTLTables lists.
const TTLAttribute = "ttl"

// SessionIndex is the claims table's global secondary index by session.
const SessionIndex = "by-session"

// Attribute names.
const (
	attrID          = "id"
	attrOwner       = "owner"
	attrKeys        = "keys"
	attrExpires     = "expires"
	attrPK          = "pk"
	attrSK          = "sk"
	attrSession     = "session"
	attrRole        = "role"
	attrPeer        = "peer"
	attrConnectedAt = "connected_at"
	attrPutAt       = "put_at"
	attrJTI         = "jti"
	attrUse         = "use"
	attrARN         = "arn"
	attrName        = "function_name"
	attrConfig      = "config"
	attrHasEnv      = "has_env"
	attrEnv         = "env"
	attrLayers      = "layers"
	attrTimeout     = "timeout"
	attrWrapper     = "exec_wrapper"
	attrRevision    = "revision_after"
	attrTakenAt     = "taken_at"
	attrPlldbLayer  = "plldb_layer"
	attrSeen        = "seen"
	attrShared      = "shared"
	attrHolders     = "holders"
	attrVersion     = "ver"
	attrMemberOf    = "member_of"
	attrReleasing   = "releasing"
)

// TTLTables lists the tables that have DynamoDB TTL on TTLAttribute: all but the claims table.
func TTLTables(t Tables) []string {
	return []string{t.Sessions, t.Connections, t.Tickets}
}

// CreateTableInputs returns the definitions of the store's tables, for CreateTables and for checking a
// CloudFormation template against.
func CreateTableInputs(t Tables) []dynamodb.CreateTableInput {
	hash := func(name string) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: types.KeyTypeHash}
	}
	str := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	return []dynamodb.CreateTableInput{
		{
			TableName:            aws.String(t.Sessions),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{str(attrID)},
			KeySchema:            []types.KeySchemaElement{hash(attrID)},
		},
		{
			TableName:            aws.String(t.Connections),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{str(attrPK), str(attrSK)},
			KeySchema: []types.KeySchemaElement{hash(attrPK),
				{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange}},
		},
		{
			TableName:            aws.String(t.Tickets),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{str(attrJTI)},
			KeySchema:            []types.KeySchemaElement{hash(attrJTI)},
		},
		{
			TableName:            aws.String(t.Claims),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{str(attrARN), str(attrSession)},
			KeySchema:            []types.KeySchemaElement{hash(attrARN)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
				IndexName:  aws.String(SessionIndex),
				KeySchema:  []types.KeySchemaElement{hash(attrSession)},
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
			}},
		},
	}
}

// CreateTables creates the store's tables, waits until they are active and enables TTL where it applies. Tables
// that already exist are left as they are, so it is idempotent. The helper stack creates the tables through
// CloudFormation; this is for tests and offline harnesses.
func CreateTables(ctx context.Context, client *dynamodb.Client, t Tables) error {
	if err := t.validate(); err != nil {
		return err
	}
	for _, in := range CreateTableInputs(t) {
		_, err := client.CreateTable(ctx, &in)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create table %s: %w", *in.TableName, err)
		}
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	})
	for _, in := range CreateTableInputs(t) {
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, 5*time.Minute); err != nil {
			return fmt.Errorf("wait for table %s: %w", *in.TableName, err)
		}
	}
	for _, name := range TTLTables(t) {
		d, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("describe TTL of %s: %w", name, err)
		}
		if d.TimeToLiveDescription != nil && d.TimeToLiveDescription.TimeToLiveStatus == types.TimeToLiveStatusEnabled {
			continue
		}
		_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName: aws.String(name),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{
				AttributeName: aws.String(TTLAttribute), Enabled: aws.Bool(true),
			},
		})
		if err != nil {
			return fmt.Errorf("enable TTL on %s: %w", name, err)
		}
	}
	return nil
}

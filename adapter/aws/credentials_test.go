package aws_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/testfixtures/awsharness"
	"github.com/plldb/plldb/testfixtures/logbuf"
)

// credsTemplate maps OrdersFunction to a handler that reports the credential variables it sees.
func credsTemplate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "src", "app.py"), []byte(`import os
def handler(event, context):
    print("handler ran")
    return {k: os.environ.get(k) for k in ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN')}
`), 0o644))
	tpl := filepath.Join(dir, "template.yaml")
	require.NoError(t, os.WriteFile(tpl, []byte(`Transform: AWS::Serverless-2016-10-31
Resources:
  OrdersFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
`), 0o644))
	return tpl
}

func TestHandlersRunWithTheFunctionsRoleOrTheDevelopersCredentials(t *testing.T) {
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFixtureWith(t, awsharness.Options{Logger: log}) // gateway, relay handlers, store, layer proxy
	role := f.h.RoleCredentials
	dev := awsharness.Credentials{AccessKeyID: "AKIADEVELOPERSOWN001", SecretAccessKey: "developer-own-secret", SessionToken: "developer-own-token"}
	var printed logbuf.Buffer
	opts := func(choice string) awsmode.Options {
		o := f.options()
		o.Template, o.Functions, o.Credentials, o.Logger = credsTemplate(t), []string{"OrdersFunction"}, choice, log
		o.AWS = f.h.AWS.Copy()
		o.AWS.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(dev.AccessKeyID, dev.SecretAccessKey, dev.SessionToken))
		o.Hooks = devside.Hooks{OnLog: func(l executor.LogLine) { _, _ = printed.Write([]byte(l.Text)) }}
		return o
	}
	sees := func(c awsharness.Credentials) map[string]any {
		return map[string]any{"AWS_ACCESS_KEY_ID": c.AccessKeyID, "AWS_SECRET_ACCESS_KEY": c.SecretAccessKey, "AWS_SESSION_TOKEN": c.SessionToken}
	}
	orders := f.fns["OrdersFunction"].Name

	// The default: the function's own execution role, sent from its sandbox with each invocation.
	s, err := awsmode.Attach(context.Background(), opts(""))
	require.NoError(t, err)
	assert.Equal(t, "function", f.h.Settings(t, orders).Environment[instrument.EnvCredentials])
	assert.Equal(t, sees(role), f.invoke(t, "OrdersFunction"))
	assert.Equal(t, sees(role), f.invoke(t, "OrdersFunction"), "a warm sandbox gets them again")
	assertNoSecretStored(t, f, role)
	_, err = s.Close(context.Background())
	require.NoError(t, err)
	f.assertRestored(t)

	// "developer": the developer's own; the role's never leave the sandbox.
	s, err = awsmode.Attach(context.Background(), opts("developer"))
	require.NoError(t, err)
	assert.NotContains(t, f.h.Settings(t, orders).Environment, instrument.EnvCredentials)
	assert.Equal(t, sees(dev), f.invoke(t, "OrdersFunction"))
	_, err = s.Close(context.Background())
	require.NoError(t, err)
	f.assertRestored(t)

	_, err = awsmode.Attach(context.Background(), opts("mine"))
	require.ErrorContains(t, err, `credentials "mine"`)

	require.Contains(t, printed.String(), "handler ran")
	require.Contains(t, logs.String(), `"component":"relay"`, "the relay logged meanwhile")
	require.Contains(t, logs.String(), `"component":"proxy"`, "the layer proxy logged meanwhile")
	require.Contains(t, logs.String(), `"component":"dispatch"`, "the developer side logged meanwhile")
	for _, secret := range []string{role.AccessKeyID, role.SecretAccessKey, role.SessionToken, dev.AccessKeyID, dev.SecretAccessKey, dev.SessionToken} {
		assert.NotContains(t, logs.String(), secret, "no log line of the proxy, gateway, relay, store, devside or executor holds a credential")
		assert.NotContains(t, printed.String(), secret)
	}
}

// assertNoSecretStored scans every table of the install: the relay stores sessions, connections and claims,
// never an invocation or its credentials.
func assertNoSecretStored(t *testing.T, f *fixture, c awsharness.Credentials) {
	t.Helper()
	db := dynamodb.NewFromConfig(f.h.AWS)
	tables, err := db.ListTables(context.Background(), &dynamodb.ListTablesInput{})
	require.NoError(t, err)
	scanned := 0
	for _, name := range tables.TableNames {
		if !strings.HasPrefix(name, f.h.Install.Name) {
			continue
		}
		out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(name)})
		require.NoError(t, err)
		b, err := json.Marshal(out.Items)
		require.NoError(t, err)
		scanned++
		for _, secret := range []string{c.AccessKeyID, c.SecretAccessKey, c.SessionToken} {
			assert.NotContains(t, string(b), secret, "table %s", name)
		}
	}
	require.NotZero(t, scanned, "the install's tables were scanned")
}

package aws

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/template"
	"github.com/plldb/plldb/cloud/instrument"
)

const matchTemplate = `Transform: AWS::Serverless-2016-10-31
Resources:
  OrdersFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.12}
  NodeFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler, Runtime: nodejs20.x}
`

func TestMatchMapsNestedAndNamedFunctions(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "src", "app.py"), []byte("def handler(e, c):\n    return e\n"), 0o644))
	tpl, err := template.Parse(dir+"/template.yaml", []byte(matchTemplate))
	require.NoError(t, err)
	remote := []instrument.StackFunction{
		{LogicalID: "Api/OrdersFunction", Name: "app-orders", ARN: "arn:orders"},
		{LogicalID: "NodeFunction", Name: "app-node", ARN: "arn:node"},
		{LogicalID: "Unknown", Name: "app-unknown", ARN: "arn:unknown"},
	}
	log := slog.New(slog.DiscardHandler)

	all, err := match(remote, tpl, nil, log)
	require.NoError(t, err)
	require.Len(t, all, 1, "only functions with local Python code are attached")
	assert.Equal(t, "Api/OrdersFunction", all[0].remote.LogicalID, "a nested stack's function maps by its own logical id")
	assert.Equal(t, "OrdersFunction", all[0].local.LogicalID)

	for _, want := range []string{"app-orders", "OrdersFunction", "Api/OrdersFunction"} {
		got, err := match(remote, tpl, []string{want}, log)
		require.NoError(t, err, want)
		require.Len(t, got, 1)
		assert.Equal(t, "arn:orders", got[0].remote.ARN, want)
	}
	_, err = match(remote, tpl, []string{"NodeFunction"}, log)
	assert.ErrorContains(t, err, "NodeFunction")
	_, err = match(remote, tpl, []string{"Unknown"}, log)
	assert.ErrorContains(t, err, "is not in")
	_, err = match(remote, tpl, []string{"Nope"}, log)
	assert.ErrorContains(t, err, `no function "Nope"`)
}

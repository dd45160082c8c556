package stack_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/plldb/plldb/cloud/install"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/stack"
	"github.com/plldb/plldb/cloud/store"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

func TestTemplatePassesCfnLint(t *testing.T) {
	lint := filepath.Join(filepath.Dir(pyenv.Python(t)), "cfn-lint")
	path := filepath.Join(t.TempDir(), "template.yaml")
	require.NoError(t, writeFile(path, stack.Template))
	out, err := exec.Command(lint, "--format", "parseable", path).CombinedOutput()
	require.NoError(t, err, "cfn-lint:\n%s", out)
	assert.Empty(t, strings.TrimSpace(string(out)))
}

// The template parsed with its intrinsic-function tags dropped: enough to check properties.
type template struct {
	Parameters map[string]map[string]any `yaml:"Parameters"`
	Resources  map[string]struct {
		Type       string         `yaml:"Type"`
		Properties map[string]any `yaml:"Properties"`
	} `yaml:"Resources"`
	Outputs map[string]any `yaml:"Outputs"`
}

func parseTemplate(t *testing.T) template {
	t.Helper()
	var tm template
	require.NoError(t, yaml.Unmarshal([]byte(stack.Template), &tm))
	return tm
}

func TestTemplateHasTheRelayPieces(t *testing.T) {
	tm := parseTemplate(t)
	types := map[string]int{}
	for _, r := range tm.Resources {
		types[r.Type]++
	}
	assert.Equal(t, 1, types["AWS::ApiGatewayV2::Api"])
	assert.Equal(t, 3, types["AWS::ApiGatewayV2::Route"])
	assert.Equal(t, 1, types["AWS::ApiGatewayV2::Authorizer"])
	assert.Equal(t, 1, types["AWS::ApiGatewayV2::Stage"])
	assert.Equal(t, 4, types["AWS::DynamoDB::Table"])
	assert.Equal(t, 2, types["AWS::Lambda::LayerVersion"])

	api := tm.Resources["WebSocketApi"].Properties
	assert.Equal(t, "WEBSOCKET", api["ProtocolType"])
	auth := tm.Resources["Authorizer"].Properties
	assert.Equal(t, "REQUEST", auth["AuthorizerType"])
	assert.Equal(t, []any{"route.request.header.Authorization"}, auth["IdentitySource"])
	routes := map[string]string{}
	for _, name := range []string{"ConnectRoute", "DisconnectRoute", "DefaultRoute"} {
		p := tm.Resources[name].Properties
		routes[p["RouteKey"].(string)] = p["AuthorizationType"].(string)
	}
	assert.Equal(t, map[string]string{"$connect": "CUSTOM", "$disconnect": "NONE", "$default": "NONE"}, routes)
	assert.Equal(t, true, tm.Resources["Stage"].Properties["AutoDeploy"])

	fn := tm.Resources["RelayFunction"].Properties
	assert.Equal(t, "provided.al2023", fn["Runtime"])
	assert.Equal(t, []any{"arm64"}, fn["Architectures"])
	assert.Equal(t, "bootstrap", fn["Handler"])

	for name, arch := range map[string]string{"LayerX86": "x86_64", "LayerArm64": "arm64"} {
		assert.Equal(t, []any{arch}, tm.Resources[name].Properties["CompatibleArchitectures"], name)
	}
	// TTL exactly where cloud/store expects DynamoDB to expire items; claims must never expire.
	ttl := map[string]bool{}
	for _, table := range store.TTLTables(store.DefaultTables("x")) {
		ttl[strings.TrimPrefix(table, "x-")] = true
	}
	for _, name := range []string{"SessionsTable", "ConnectionsTable", "TicketsTable", "ClaimsTable"} {
		p := tm.Resources[name].Properties
		if ttl[strings.ToLower(strings.TrimSuffix(name, "Table"))] {
			assert.Equal(t, map[string]any{"AttributeName": store.TTLAttribute, "Enabled": true}, p["TimeToLiveSpecification"], name)
		} else {
			assert.Nil(t, p["TimeToLiveSpecification"], name)
		}
		assert.Equal(t, "PAY_PER_REQUEST", p["BillingMode"], name)
	}
	for _, k := range []string{install.OutputWebSocketURL, install.OutputAudience, install.OutputSessionsTable, install.OutputConnectionsTable,
		install.OutputTicketsTable, install.OutputClaimsTable, install.OutputLayerX86Arn, install.OutputLayerArm64Arn, install.OutputRelayFunctionArn, install.OutputProtocol} {
		assert.Contains(t, tm.Outputs, k)
	}
	assert.Equal(t, install.Protocol, tm.Outputs[install.OutputProtocol].(map[string]any)["Value"], "the template deploys the protocol this plldb speaks")
	for _, p := range []string{"InstallName", "AssetsBucket", "RelayCodeKey", "LayerX86Key", "LayerArm64Key"} {
		assert.Contains(t, tm.Parameters, p)
	}
}

// The relay role may manage connections of its own API only, and touch only functions a session tagged.
func TestTemplateRelayRoleIsLeastPrivilege(t *testing.T) {
	tm := parseTemplate(t)
	role := tm.Resources["RelayRole"].Properties
	policies := role["Policies"].([]any)
	require.Len(t, policies, 1)
	stmts := policies[0].(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any)
	bySid := map[string]map[string]any{}
	for _, s := range stmts {
		m := s.(map[string]any)
		bySid[m["Sid"].(string)] = m
		assert.NotEqual(t, "*", m["Resource"], m["Sid"])
		for _, a := range asList(m["Action"]) {
			assert.NotContains(t, a, "*", "wildcard action in %s", m["Sid"])
		}
	}
	conns := bySid["Connections"]
	assert.Equal(t, "execute-api:ManageConnections", conns["Action"])
	assert.Contains(t, conns["Resource"], "${WebSocketApi}/${StageName}/")
	assert.True(t, strings.HasSuffix(conns["Resource"].(string), "/@connections/*"))

	restore := bySid["RestoreAttachedFunctions"]
	assert.ElementsMatch(t, []string{"lambda:GetFunctionConfiguration", "lambda:UpdateFunctionConfiguration"}, asList(restore["Action"]))
	cond := restore["Condition"].(map[string]any)["Null"].(map[string]any)
	assert.Equal(t, "false", cond["aws:ResourceTag/"+instrument.SessionTag], "only functions carrying the session tag")

	// The sweep may scan the claims table and no other.
	sweep := bySid["SweepClaims"]
	assert.Equal(t, "dynamodb:Scan", sweep["Action"])
	assert.Equal(t, "ClaimsTable.Arn", sweep["Resource"], "the claims table only (!GetAtt ClaimsTable.Arn)")
	for sid, st := range bySid {
		if sid != "SweepClaims" {
			assert.NotContains(t, asList(st["Action"]), "dynamodb:Scan", sid)
		}
	}

	untag := bySid["UntagAttachedFunctions"]
	assert.Equal(t, []any{instrument.SessionTag}, untag["Condition"].(map[string]any)["ForAllValues:StringEquals"].(map[string]any)["aws:TagKeys"])
}

func asList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, e.(string))
		}
		return out
	}
	return nil
}

// TestTemplateSchedulesTheSweep: the relay function runs the dead-man sweep every 5 minutes, invoked by exactly
// that rule, and is told the grace period.
func TestTemplateSchedulesTheSweep(t *testing.T) {
	tm := parseTemplate(t)
	rule := tm.Resources["SweepSchedule"]
	assert.Equal(t, "AWS::Events::Rule", rule.Type)
	assert.Equal(t, "rate(5 minutes)", rule.Properties["ScheduleExpression"])
	assert.Equal(t, "ENABLED", rule.Properties["State"])
	assert.Len(t, rule.Properties["Targets"], 1)
	perm := tm.Resources["SweepInvokePermission"]
	assert.Equal(t, "AWS::Lambda::Permission", perm.Type)
	assert.Equal(t, "events.amazonaws.com", perm.Properties["Principal"])
	env := tm.Resources["RelayFunction"].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
	assert.Contains(t, env, "PLLDB_DEADMAN_GRACE")
	assert.Contains(t, tm.Parameters, "DeadManGraceMinutes")
	assert.Contains(t, stack.Template, "SourceArn: !GetAtt SweepSchedule.Arn", "only the schedule may invoke the relay this way")
}

package instrument_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/instrument"
)

// configJSON is a raw GetFunctionConfiguration answer as a JSON object, numbers kept as written.
func configJSON(t testing.TB, raw []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m))
	// What any update moves on Lambda (moto moves neither); everything else must match exactly.
	delete(m, "LastModified")
	delete(m, "RevisionId")
	return m
}

func (e *env) tagsOf(arn string) map[string]string {
	e.t.Helper()
	out, err := e.lambda.ListTags(context.Background(), &lambda.ListTagsInput{Resource: aws.String(arn)})
	require.NoError(e.t, err)
	return out.Tags
}

func layerEntry(t testing.TB, raw []byte, arn string) any {
	t.Helper()
	for _, l := range configJSON(t, raw)["Layers"].([]any) {
		if l.(map[string]any)["Arn"] == arn {
			return l
		}
	}
	t.Fatalf("no layer %s in %s", arn, raw)
	return nil
}

// TestRestoreAfterSomeoneElsesEditKeepsTheirsAndRemovesPlldbs: between attach and detach someone changes the
// description, adds a variable, a layer and a tag. Detach takes out exactly plldb's changes (its variables, the
// wrapper back to the function's own, the plldb layer, the 900 s timeout, the session tag) and keeps theirs:
// the whole configuration and the tags are what the edit alone would have made of the original function.
func TestRestoreAfterSomeoneElsesEditKeepsTheirsAndRemovesPlldbs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	own, theirLayer := e.userLayer("own"), e.userLayer("theirs")
	tg := e.create(fn{what: "edited", env: map[string]string{"A": "1", "AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-instrument"}, layers: []string{own}, timeout: 30})
	_, err := e.lambda.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(tg.ARN), Tags: map[string]string{"team": "orders"}})
	require.NoError(t, err)
	before := e.raw(tg.Name)
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	_, err = in.Instrument(ctx, session("s-merge"), []instrument.Target{tg})
	require.NoError(t, err)

	// Someone else edits the attached function.
	theirs := vars(e.config(tg.Name))
	theirs["FEATURE"] = "s3cr3t-value"
	_, err = e.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(tg.Name), Description: aws.String("edited by bob"),
		Environment: &types.Environment{Variables: theirs},
		Layers:      append(layerList(e.config(tg.Name)), theirLayer),
	})
	require.NoError(t, err)
	_, err = e.lambda.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(tg.ARN), Tags: map[string]string{"owner": "bob"}})
	require.NoError(t, err)
	theirLayerEntry := layerEntry(t, e.raw(tg.Name), theirLayer)

	results, err := in.Restore(ctx, "s-merge")
	require.NoError(t, err)
	require.Len(t, results, 1)
	r := results[0]
	assert.Equal(t, instrument.Merged, r.Outcome, r.Message)
	assert.True(t, contains(r.Message, "description", "variables FEATURE", "layers added "+theirLayer), "the message lists what was kept: %s", r.Message)
	assert.NotContains(t, r.Message, "s3cr3t-value", "variable values are never shown")
	assert.NotContains(t, r.Message, own, "only the layers that changed are named")

	want := configJSON(t, before)
	want["Description"] = "edited by bob"
	want["Environment"].(map[string]any)["Variables"].(map[string]any)["FEATURE"] = "s3cr3t-value"
	want["Layers"] = append(want["Layers"].([]any), theirLayerEntry)
	assert.Equal(t, want, configJSON(t, e.raw(tg.Name)), "their edit on the original configuration, nothing of plldb's")
	assert.Equal(t, map[string]string{"team": "orders", "owner": "bob"}, e.tagsOf(tg.ARN), "their tag stays, the session tag goes")
	left, err := claims.SessionSnapshots(ctx, "s-merge")
	require.NoError(t, err)
	assert.Empty(t, left, "the claim is released")
}

func TestRestoreKeepsATimeoutSomeoneElseSet(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "timeout", env: map[string]string{"A": "1"}, timeout: 30})
	before := restorable(t, e.raw(tg.Name))
	in := e.instrumenter(instrument.NewMemoryClaims())
	_, err := in.Instrument(ctx, session("s-to"), []instrument.Target{tg})
	require.NoError(t, err)
	_, err = e.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(tg.Name), Timeout: aws.Int32(45)})
	require.NoError(t, err)

	results, err := in.Restore(ctx, "s-to")
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Merged}, outcomes(results))
	assert.Contains(t, results[0].Message, "timeout 45 s")
	got := restorable(t, e.raw(tg.Name))
	assert.Equal(t, "45", got["Timeout"], "their timeout stays")
	assert.Equal(t, before["Environment"], got["Environment"])
	assert.Equal(t, before["Layers"], got["Layers"])
}

// TestRestoreThatCannotTellChangesApartKeepsTheClaim: someone removed the plldb layer and set a wrapper of
// their own. plldb cannot know what they meant, so it leaves the function, keeps the claim and the session tag,
// and says so; once they settle it, a later detach (Recover) finishes.
func TestRestoreThatCannotTellChangesApartKeepsTheClaim(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "tangled", env: map[string]string{"A": "1"}})
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	_, err := in.Instrument(ctx, session("s-tangled"), []instrument.Target{tg})
	require.NoError(t, err)
	theirs := vars(e.config(tg.Name))
	theirs["AWS_LAMBDA_EXEC_WRAPPER"] = "/opt/their-wrapper"
	_, err = e.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(tg.Name), Environment: &types.Environment{Variables: theirs}, Layers: []string{},
	})
	require.NoError(t, err)
	tangled := e.raw(tg.Name)

	results, err := in.Restore(ctx, "s-tangled")
	require.NoError(t, err)
	require.Len(t, results, 1)
	assert.Equal(t, instrument.Conflict, results[0].Outcome)
	assert.True(t, contains(results[0].Message, "AWS_LAMBDA_EXEC_WRAPPER", "/opt/their-wrapper", "keeps its claim", "plldb detach"), results[0].Message)
	assert.Equal(t, string(tangled), string(e.raw(tg.Name)), "left as it is")
	_, held, err := claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	assert.True(t, held, "the claim stays for a later detach")
	assert.Equal(t, "s-tangled", e.tagsOf(tg.ARN)[instrument.SessionTag], "the tag stays with the claim")

	// They put their wrapper back to plldb's; the next detach finishes the job.
	theirs["AWS_LAMBDA_EXEC_WRAPPER"] = instrument.WrapperPath
	_, err = e.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(tg.Name), Environment: &types.Environment{Variables: theirs}})
	require.NoError(t, err)
	claims.EndSession("s-tangled")
	results, err = in.Recover(ctx, instrument.Recovery{Session: "s-detach", FunctionARNs: []string{tg.ARN}})
	require.NoError(t, err)
	assert.Equal(t, map[string]instrument.Outcome{tg.Name: instrument.Merged}, outcomes(results), results[0].Message)
	assert.Equal(t, map[string]string{"A": "1"}, vars(e.config(tg.Name)))
	assert.Empty(t, layerList(e.config(tg.Name)))
	assert.NotContains(t, e.tagsOf(tg.ARN), instrument.SessionTag)
	_, held, err = claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	assert.False(t, held)
}

// TestRestoreOfAFunctionSomeoneAlreadyPutBack: two restores of one session race (a developer's Ctrl-C and the
// relay's sweep), or someone put the function back by hand: the later restore finds the original configuration,
// changes nothing and reports it restored.
func TestRestoreOfAFunctionSomeoneAlreadyPutBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.create(fn{what: "putback", env: map[string]string{"A": "1"}, timeout: 30})
	before := e.raw(tg.Name)
	claims := instrument.NewMemoryClaims()
	in := e.instrumenter(claims)
	_, err := in.Instrument(ctx, session("s-twice"), []instrument.Target{tg})
	require.NoError(t, err)
	snap, ok, err := claims.GetSnapshot(ctx, tg.ARN)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = e.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(tg.Name), Environment: &types.Environment{Variables: snap.Environment}, Layers: []string{}, Timeout: aws.Int32(30),
	})
	require.NoError(t, err)
	require.Equal(t, configJSON(t, before), configJSON(t, e.raw(tg.Name)))

	results, err := in.Restore(ctx, "s-twice")
	require.NoError(t, err)
	require.Len(t, results, 1)
	assert.Equal(t, instrument.Restored, results[0].Outcome, results[0].Message)
	assert.Equal(t, configJSON(t, before), configJSON(t, e.raw(tg.Name)))
}

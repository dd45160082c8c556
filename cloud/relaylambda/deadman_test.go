package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/testfixtures/awsharness"
	"github.com/plldb/plldb/testfixtures/moto"
)

// configOf is the function's GetFunctionConfiguration answer as JSON (key order normalised) and its tags.
func configOf(t *testing.T, h *awsharness.Harness, name, arn string) (map[string]any, map[string]string) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(moto.RawFunctionConfiguration(t, h.AWS, name)))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m))
	tags, err := lambda.NewFromConfig(h.AWS).ListTags(context.Background(), &lambda.ListTagsInput{Resource: aws.String(arn)})
	require.NoError(t, err)
	return m, tags.Tags
}

// TestTheScheduledSweepRestoresASessionWhoseDeveloperWentSilent: a developer attaches and then is never heard
// from again (their laptop sleeps; no detach, no disconnect the relay would act on). The relay Lambda's
// scheduled handler, run here with the store's clock moved forward instead of waiting, leaves the session alone
// within the grace period and then puts every function back byte for byte, removes the session tags and ends
// the session, with nothing on the developer's side taking part.
func TestTheScheduledSweepRestoresASessionWhoseDeveloperWentSilent(t *testing.T) {
	h := awsharness.New(t, awsharness.Options{})
	ctx := context.Background()
	app := awsharness.WriteApp(t)
	fns := h.DeployStack(t, "dm-"+h.Install.Name, []awsharness.Function{
		{LogicalID: "OrdersFunction", CodeDir: app.Deployed, Env: map[string]string{"STAGE": "dev"}, Timeout: 5},
		{LogicalID: "UsersFunction", CodeDir: app.Deployed},
	})
	type state struct {
		config map[string]any
		tags   map[string]string
	}
	before := map[string]state{}
	for id, f := range fns {
		c, tags := configOf(t, h, f.Name, f.ARN)
		before[id] = state{c, tags}
	}

	in := h.Install
	s, err := awsmode.Attach(ctx, awsmode.Options{
		StackName: "dm-" + h.Install.Name, Template: app.Template, Python: h.Python, AWS: h.AWS, Install: &in,
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	// The developer side is abandoned, never closed by the developer; the test's cleanup stops its processes.
	t.Cleanup(func() { _, _ = s.Close(context.Background()) })
	for _, f := range fns {
		_, tags := configOf(t, h, f.Name, f.ARN)
		require.Equal(t, s.ID, tags[instrument.SessionTag])
	}

	sweeper := instrument.NewSweeper(h.AWS, h.Store, 20*time.Minute, slog.New(slog.DiscardHandler))
	r := &Router{Store: h.Store, Audience: h.Install.Audience, AWS: h.AWS, Logger: slog.New(slog.DiscardHandler), Sweep: sweeper.Sweep}
	sweep := func() instrument.SweepReport {
		t.Helper()
		raw, err := json.Marshal(scheduledEvent())
		require.NoError(t, err)
		out, err := r.Handle(ctx, raw)
		require.NoError(t, err)
		return out.(instrument.SweepReport)
	}

	h.Clock.Advance(15 * time.Minute)
	assert.Empty(t, sweep().Swept, "within the grace period the session stands")
	for id, f := range fns {
		c, _ := configOf(t, h, f.Name, f.ARN)
		assert.EqualValues(t, json.Number("900"), c["Timeout"], "%s is still attached", id)
	}

	h.Clock.Advance(10 * time.Minute) // 25 minutes without a word from the developer
	report := sweep()
	require.Len(t, report.Swept, 1)
	assert.Equal(t, s.ID, report.Swept[0].Session)
	assert.Contains(t, report.Swept[0].Reason, "silent since")
	assert.Empty(t, report.Swept[0].Error)
	for id, f := range fns {
		c, tags := configOf(t, h, f.Name, f.ARN)
		assert.Equal(t, before[id].config, c, "%s is back byte for byte", id)
		assert.Equal(t, before[id].tags, tags, "%s lost the session tag", id)
	}
	_, err = h.Store.GetSession(ctx, s.ID)
	assert.Error(t, err, "the session is over")
	left, err := h.Store.Snapshots(ctx)
	require.NoError(t, err)
	assert.Empty(t, left, "no claim is left")
	assert.Empty(t, sweep().Swept, "the next run has nothing to do")
}

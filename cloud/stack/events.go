package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"go.yaml.in/yaml/v3"
)

// resourceCount is the number of resources in the template: the progress bar's total.
func resourceCount(tmpl string) (int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(tmpl), &doc); err != nil {
		return 0, fmt.Errorf("parse template: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return 0, errors.New("parse template: not a mapping")
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "Resources" && top.Content[i+1].Kind == yaml.MappingNode {
			return len(top.Content[i+1].Content) / 2, nil
		}
	}
	return 0, errors.New("parse template: no Resources")
}

// watcher streams one stack's events to out while an operation runs, with a progress bar of resources done.
type watcher struct {
	cfn   *cloudformation.Client
	stack string // stack id (name works until the stack is deleted)
	out   io.Writer
	poll  time.Duration
	total int
	tty   bool

	seen     map[string]bool   // event ids already handled
	status   map[string]string // logical id → latest resource status in this operation
	lastDone int
	barShown bool
}

func newWatcher(cfn *cloudformation.Client, stack string, out io.Writer, poll time.Duration, total int) *watcher {
	if out == nil {
		out = io.Discard
	}
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	tty := false
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &watcher{cfn: cfn, stack: stack, out: out, poll: poll, total: total, tty: tty,
		seen: map[string]bool{}, status: map[string]string{}, lastDone: -1}
}

// skipExisting marks the events already there as seen, so only the coming operation's events are shown.
func (w *watcher) skipExisting(ctx context.Context) error {
	_, err := w.fetch(ctx)
	return err
}

// fetch returns the events not seen yet, oldest first. DescribeStackEvents lists newest first, so paging stops
// at the first event already seen.
func (w *watcher) fetch(ctx context.Context) ([]cfntypes.StackEvent, error) {
	var fresh []cfntypes.StackEvent
	p := cloudformation.NewDescribeStackEventsPaginator(w.cfn, &cloudformation.DescribeStackEventsInput{StackName: aws.String(w.stack)})
pages:
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read events of stack %s: %w", w.stack, err)
		}
		for _, e := range page.StackEvents {
			id := aws.ToString(e.EventId)
			if w.seen[id] {
				break pages
			}
			w.seen[id] = true
			fresh = append(fresh, e)
		}
	}
	slices.Reverse(fresh)
	return fresh, nil
}

// show prints new events and, when it moved, the progress bar.
func (w *watcher) show(events []cfntypes.StackEvent) {
	for _, e := range events {
		logical := aws.ToString(e.LogicalResourceId)
		kind := aws.ToString(e.ResourceType)
		st := string(e.ResourceStatus)
		if kind != "AWS::CloudFormation::Stack" {
			w.status[logical] = st
		}
		if w.tty && w.barShown {
			fmt.Fprint(w.out, "\r\033[K")
		}
		line := fmt.Sprintf("  %s  %-20s %-32s %s", aws.ToTime(e.Timestamp).UTC().Format("15:04:05"), st, kind, logical)
		if r := aws.ToString(e.ResourceStatusReason); r != "" {
			line += "  " + r
		}
		fmt.Fprintln(w.out, line)
		w.barShown = false
	}
	done := w.done()
	if done != w.lastDone || (w.tty && !w.barShown && len(events) > 0) {
		w.bar(done)
	}
}

func (w *watcher) done() int {
	n := 0
	for _, st := range w.status {
		if strings.HasSuffix(st, "_COMPLETE") || st == "DELETE_SKIPPED" {
			n++
		}
	}
	return min(n, w.total)
}

// Progress renders a progress bar of done resources out of total, 30 characters wide.
func Progress(done, total int) string {
	const width = 30
	filled := width
	if total > 0 {
		filled = min(width, done*width/total)
	}
	return fmt.Sprintf("[%s%s] %d/%d resources", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total)
}

func (w *watcher) bar(done int) {
	w.lastDone = done
	if w.tty {
		fmt.Fprint(w.out, "\r\033[K"+Progress(done, w.total))
		w.barShown = true
		return
	}
	fmt.Fprintln(w.out, Progress(done, w.total))
}

// finish completes the bar's line on a terminal.
func (w *watcher) finish(complete bool) {
	if complete && (w.tty || w.lastDone != w.total) {
		w.bar(w.total)
	}
	if w.tty && w.barShown {
		fmt.Fprintln(w.out)
		w.barShown = false
	}
}

// errStackGone reports that the watched stack no longer exists (the end of a delete).
var errStackGone = errors.New("stack does not exist")

// wait streams events until the stack reaches a status that is not in progress, and returns that status.
// failure is the first failed resource's reason (or the stack's) when the operation failed.
func (w *watcher) wait(ctx context.Context) (status, failure string, err error) {
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for {
		evs, err := w.fetch(ctx)
		if err != nil && !isStackMissing(err) {
			return "", "", err
		}
		w.show(evs)
		for _, e := range evs {
			if failure == "" && strings.HasSuffix(string(e.ResourceStatus), "_FAILED") && aws.ToString(e.ResourceStatusReason) != "" {
				failure = fmt.Sprintf("%s (%s): %s", aws.ToString(e.LogicalResourceId), e.ResourceStatus, aws.ToString(e.ResourceStatusReason))
			}
		}
		s, err := describe(ctx, w.cfn, w.stack)
		if errors.Is(err, errStackGone) {
			w.finish(true)
			return "DELETE_COMPLETE", failure, nil
		}
		if err != nil {
			return "", "", err
		}
		status = string(s.StackStatus)
		if !strings.HasSuffix(status, "_IN_PROGRESS") {
			// A last look, so the events that came with the final status are shown too.
			if evs, err := w.fetch(ctx); err == nil {
				w.show(evs)
			}
			ok := status == "CREATE_COMPLETE" || status == "UPDATE_COMPLETE" || status == "DELETE_COMPLETE"
			w.finish(ok)
			if failure == "" && !ok {
				failure = aws.ToString(s.StackStatusReason)
			}
			return status, failure, nil
		}
		select {
		case <-ctx.Done():
			w.finish(false)
			return status, "", fmt.Errorf("wait for stack %s (%s): %w", w.stack, status, ctx.Err())
		case <-t.C:
		}
	}
}

// describe returns the stack, or errStackGone.
func describe(ctx context.Context, cfn *cloudformation.Client, stack string) (cfntypes.Stack, error) {
	out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		if isStackMissing(err) {
			return cfntypes.Stack{}, errStackGone
		}
		return cfntypes.Stack{}, fmt.Errorf("describe stack %s: %w", stack, err)
	}
	if len(out.Stacks) == 0 || out.Stacks[0].StackStatus == cfntypes.StackStatusDeleteComplete {
		return cfntypes.Stack{}, errStackGone
	}
	return out.Stacks[0], nil
}

// isStackMissing recognises CloudFormation's "Stack with id X does not exist" (a ValidationError).
func isStackMissing(err error) bool {
	return err != nil && strings.Contains(err.Error(), "does not exist")
}

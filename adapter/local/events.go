package local

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plldb/plldb/layer/runtimeapi"
)

// Event (asynchronous) invocations, as Lambda runs them: the caller gets 202 at once and the event waits in its
// function's queue until the function has a free slot, in arrival order. A queued event is never throttled
// away: it waits for a slot for as long as it takes. When the function fails (an error document, a timeout, a
// runtime exit), Lambda retries the same event, with the same request id, twice, about one and then two minutes
// later (EventInvokeConfig.MaximumRetryAttempts lowers that). What is left when the pipeline closes is drained
// within the close deadline, and anything still not run is reported by request id.

// DefaultEventQueueBytes bounds the payloads of the Event invocations accepted and not yet finished.
const DefaultEventQueueBytes = 256 << 20

// DefaultEventRetryDelays are Lambda's waits before the first and the second retry of a failed event.
var DefaultEventRetryDelays = []time.Duration{time.Minute, 2 * time.Minute}

// lambdaEventRetries is how often Lambda retries a failed event when EventInvokeConfig does not say.
const lambdaEventRetries = 2

// UnfinishedEventsError is what Close returns when Event invocations were accepted (202) but had not finished
// when its context ended: they are lost, and these are their request ids, in arrival order.
type UnfinishedEventsError struct {
	RequestIDs []string
}

func (e *UnfinishedEventsError) Error() string {
	return fmt.Sprintf("%d event invocation(s) accepted but not run before shutdown: %s", len(e.RequestIDs), strings.Join(e.RequestIDs, ", "))
}

type event struct {
	id      string
	sf      *servedFunction
	req     InvokeRequest
	size    int       // what it holds of the queue's byte budget
	retries int       // retries allowed after the first attempt
	attempt int       // attempts made
	due     time.Time // a retry's earliest start
	seq     uint64    // arrival order, for the report of what was left
}

// eventQueue holds the pipeline's accepted Event invocations until they have run. One goroutine (loop) starts
// them as slots free up; each runs in its own goroutine, all of them tracked by the pipeline's WaitGroup.
type eventQueue struct {
	p        *Pipeline
	log      *slog.Logger
	maxBytes int
	delays   []time.Duration
	kickc    chan struct{} // a slot was freed, an event arrived or finished: look again

	mu       sync.Mutex
	bytes    int
	seq      uint64
	ready    map[*servedFunction][]*event // per function, FIFO
	delayed  []*event                     // failed events waiting for their retry
	running  map[*event]struct{}
	next     int           // the function dispatch looks at first, so that no function starves the others
	draining bool          // Close is draining: retries wait no longer
	closed   bool          // no more events are accepted
	empty    chan struct{} // closed when draining and nothing is left
	left     []*event      // events cut off by the close
}

func newEventQueue(p *Pipeline) *eventQueue {
	return &eventQueue{
		p:        p,
		log:      p.log.With("component", "events"),
		maxBytes: p.opts.EventQueueBytes,
		delays:   p.opts.EventRetryDelays,
		kickc:    make(chan struct{}, 1),
		ready:    map[*servedFunction][]*event{},
		running:  map[*event]struct{}{},
	}
}

func (q *eventQueue) kick() {
	if q == nil {
		return
	}
	select {
	case q.kickc <- struct{}{}:
	default:
	}
}

// enqueue accepts an Event invocation and returns its request id. It is throttled only when it could never run
// or when the queue's memory budget is used up, never because the function is busy.
func (q *eventQueue) enqueue(sf *servedFunction, req InvokeRequest) (string, error) {
	if te := q.p.neverRuns(sf); te != nil {
		return "", te
	}
	retries := lambdaEventRetries
	if sf.MaxEventRetries != nil {
		retries = *sf.MaxEventRetries
	}
	id := req.RequestID // the one the 202 carries, so the caller can find the invocation in the logs
	if id == "" {
		id = runtimeapi.NewRequestID()
	}
	ev := &event{id: id, sf: sf, req: req, size: len(req.Payload) + len(req.ClientContext), retries: retries}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return "", errors.New("plldb local is shutting down: no more event invocations are accepted")
	}
	if q.bytes+ev.size > q.maxBytes {
		queued := q.bytes
		q.mu.Unlock()
		return "", &throttleError{
			Message: fmt.Sprintf("Rate Exceeded. The local event queue is full: %d bytes of event invocations are waiting to run (limit %d bytes); retry later", queued, q.maxBytes),
			detail:  fmt.Sprintf("the event queue is full (%d of %d bytes)", queued, q.maxBytes),
		}
	}
	q.seq++
	ev.seq = q.seq
	q.bytes += ev.size
	q.ready[sf] = append(q.ready[sf], ev)
	q.mu.Unlock()
	q.log.Debug("event invocation queued", "function", sf.LogicalID, "requestId", ev.id, "bytes", ev.size)
	q.kick()
	return ev.id, nil
}

// loop starts queued events whenever slots are free, and retries when they are due, until the pipeline ends.
func (q *eventQueue) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := q.dispatch(ctx)
		timer.Stop()
		var due <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			due = timer.C
		}
		select {
		case <-q.kickc:
		case <-due:
		case <-ctx.Done():
			return
		}
	}
}

// dispatch moves due retries back into their queues and starts every queued event that gets a slot. It returns
// when the earliest retry still waiting is due (zero when none is).
func (q *eventQueue) dispatch(ctx context.Context) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	var next time.Time
	waiting := q.delayed[:0]
	for _, ev := range q.delayed {
		if q.draining || !ev.due.After(now) {
			q.ready[ev.sf] = append(q.ready[ev.sf], ev)
			continue
		}
		waiting = append(waiting, ev)
		if next.IsZero() || ev.due.Before(next) {
			next = ev.due
		}
	}
	clear(q.delayed[len(waiting):])
	q.delayed = waiting
	fns := q.p.fns
	for i := range fns {
		sf := fns[(q.next+i)%len(fns)]
		for len(q.ready[sf]) > 0 {
			if err := q.p.takeSlot(sf); err != nil {
				break // the function's or the account's limit: wait for a slot to free
			}
			ev := q.ready[sf][0]
			q.ready[sf][0] = nil
			q.ready[sf] = q.ready[sf][1:]
			if len(q.ready[sf]) == 0 {
				delete(q.ready, sf)
			}
			q.running[ev] = struct{}{}
			q.p.wg.Add(1)
			go q.run(ctx, ev)
		}
	}
	if len(fns) > 0 {
		q.next = (q.next + 1) % len(fns)
	}
	return next
}

// run makes one attempt of an event, in the slot dispatch took for it.
func (q *eventQueue) run(ctx context.Context, ev *event) {
	defer q.p.wg.Done()
	resp, err := q.p.run(ctx, ev.sf, ev.id, ev.req)
	q.p.freeSlot(ev.sf)
	q.finish(ctx, ev, resp, err)
}

func (q *eventQueue) finish(ctx context.Context, ev *event, resp InvokeResponse, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.settle()
	delete(q.running, ev)
	if ctx.Err() != nil && (err != nil || resp.FunctionError != "") {
		// The pipeline stopped under it: the attempt was cut off (or failed with no time left for a retry).
		// Close reports it.
		q.left = append(q.left, ev)
		return
	}
	ev.attempt++
	attrs := []any{"function", ev.sf.LogicalID, "requestId", ev.id, "attempt", ev.attempt}
	failure := ""
	switch {
	case err != nil:
		failure = err.Error()
	case resp.FunctionError != "":
		failure = errorType(resp.Payload)
	}
	if failure == "" {
		q.bytes -= ev.size
		q.log.Info("event invocation succeeded", attrs...)
		return
	}
	if ev.attempt <= ev.retries {
		delay := time.Duration(0)
		if len(q.delays) > 0 {
			delay = q.delays[min(ev.attempt-1, len(q.delays)-1)]
		}
		ev.due = time.Now().Add(delay)
		q.delayed = append(q.delayed, ev)
		q.log.Info("event invocation failed; Lambda retries it", append(attrs, "error", failure, "retryIn", delay)...)
		q.kick()
		return
	}
	q.bytes -= ev.size
	// As in Lambda without an on-failure destination or dead-letter queue, the event is discarded: it ran, and
	// failed every time.
	q.log.Warn("event invocation failed on every attempt; discarded as Lambda discards it", append(attrs, "error", failure)...)
}

// settle tells a draining Close that nothing is left. Called with q.mu held.
func (q *eventQueue) settle() {
	if q.empty != nil && len(q.ready) == 0 && len(q.delayed) == 0 && len(q.running) == 0 {
		select {
		case <-q.empty:
		default:
			close(q.empty)
		}
	}
}

// drain stops accepting events and runs what is queued, retries without their wait, until nothing is left or
// ctx ends.
func (q *eventQueue) drain(ctx context.Context) {
	q.mu.Lock()
	q.closed, q.draining = true, true
	q.empty = make(chan struct{})
	q.settle()
	empty := q.empty
	q.mu.Unlock()
	q.kick()
	select {
	case <-empty:
	case <-ctx.Done():
	}
}

// unfinished reports the events that were accepted and did not run to the end: still queued, waiting for a
// retry, or cut off when the pipeline stopped under them. Only meaningful once nothing runs any more.
func (q *eventQueue) unfinished() *UnfinishedEventsError {
	q.mu.Lock()
	left := slices.Clone(q.left)
	for _, evs := range q.ready {
		left = append(left, evs...)
	}
	left = append(left, q.delayed...)
	q.mu.Unlock()
	if len(left) == 0 {
		return nil
	}
	slices.SortFunc(left, func(a, b *event) int { return cmp.Compare(a.seq, b.seq) })
	ids := make([]string, len(left))
	for i, ev := range left {
		ids[i] = ev.id
	}
	return &UnfinishedEventsError{RequestIDs: ids}
}

// errorType is the errorType of a Lambda error document, for the log: never the message, which may quote the
// event.
func errorType(payload []byte) string {
	var doc struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(payload, &doc) != nil || doc.ErrorType == "" {
		return "Unhandled"
	}
	return doc.ErrorType
}

package local

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/plldb/plldb/adapter/template"
)

// Lambda's concurrency model, as plldb local emulates it. A function with ReservedConcurrentExecutions owns that
// many slots: no other function can take them, and it can use no more. Every other function shares what is left
// of the account's concurrency (the unreserved pool), and plldb caps each of them at Options.MaxConcurrency as
// well, so that one runaway caller cannot start a thousand Python handlers on a laptop. An invocation that finds
// no slot is throttled: HTTP 429 TooManyRequestsException for a synchronous one; an Event invocation waits in
// its function's queue instead (events.go).

// Defaults of the concurrency options.
const (
	DefaultMaxConcurrency     = 10
	DefaultAccountConcurrency = 1000 // Lambda's default account quota per region
)

// Lambda's ThrottleReason values for exhausted concurrency.
const (
	reasonFunctionLimit = "ReservedFunctionConcurrentInvocationLimitExceeded"
	reasonAccountLimit  = "ConcurrentInvocationLimitExceeded"
)

// throttleError is Lambda's TooManyRequestsException. The Invoke API answers it with HTTP 429.
type throttleError struct {
	Reason  string // Lambda's ThrottleReason; "" when no Lambda reason fits (the local event queue is full)
	Message string // what the caller reads: Lambda says "Rate Exceeded." for concurrency throttles
	detail  string // why, for the log and for Go callers of Pipeline.Invoke
}

func (e *throttleError) Error() string { return "TooManyRequestsException: " + e.detail }

// limits counts the slots in use. Its lock is taken inside the event queue's, never the other way round.
type limits struct {
	mu     sync.Mutex
	pool   int // the unreserved pool: AccountConcurrency minus every served function's reservation
	pooled int // slots of the pool in use
}

// functionLimit is how many invocations of fn may run at once, by its own limit (reservation or
// MaxConcurrency), before the account's pool is considered.
func functionLimit(fn template.Function, opts Options) int {
	if fn.ReservedConcurrency != nil {
		return *fn.ReservedConcurrency
	}
	return opts.MaxConcurrency
}

// checkReservations refuses, as Lambda refuses the deployment, reservations that take more than the account's
// concurrency, rather than serving functions that can never run.
func checkReservations(fns []template.Function, opts Options) error {
	reserved := 0
	for _, fn := range fns {
		if fn.ReservedConcurrency != nil {
			reserved += *fn.ReservedConcurrency
		}
	}
	if reserved > opts.AccountConcurrency {
		return fmt.Errorf("the served functions reserve %d concurrent executions (ReservedConcurrentExecutions), more than the account concurrency %d: raise --account-concurrency or lower the reservations", reserved, opts.AccountConcurrency)
	}
	return nil
}

// setupLimits computes every served function's limit and the unreserved pool.
func (p *Pipeline) setupLimits() {
	p.lim.pool = p.opts.AccountConcurrency
	for _, sf := range p.fns {
		sf.limit = functionLimit(sf.Function, p.opts)
		sf.reserved = sf.ReservedConcurrency != nil
		if sf.reserved {
			p.lim.pool -= sf.limit
		}
	}
}

// Concurrency is how many invocations of a served function (logical id or name) can run at once: its
// ReservedConcurrentExecutions when the template sets it, else Options.MaxConcurrency, but no more than the
// account's unreserved pool. It is what a pool of sandboxes or executors for the function needs at most. ok is
// false for a function the pipeline does not serve.
func (p *Pipeline) Concurrency(function string) (n int, ok bool) {
	sf, ok := p.byName[function]
	if !ok {
		return 0, false
	}
	if sf.reserved {
		return sf.limit, true
	}
	return min(sf.limit, p.lim.pool), true
}

// Concurrencies is Pipeline.Concurrency, by logical id, before a pipeline runs: what each of fns, served
// together under opts (zero options take their defaults), can run at once. A pool of executors started with the
// developer side, before the pipeline's limits exist, is sized by it.
func Concurrencies(fns []template.Function, opts Options) map[string]int {
	opts.defaults()
	pool := opts.AccountConcurrency
	for _, fn := range fns {
		if fn.ReservedConcurrency != nil {
			pool -= *fn.ReservedConcurrency
		}
	}
	out := make(map[string]int, len(fns))
	for _, fn := range fns {
		if fn.ReservedConcurrency != nil {
			out[fn.LogicalID] = *fn.ReservedConcurrency
			continue
		}
		out[fn.LogicalID] = max(0, min(opts.MaxConcurrency, pool))
	}
	return out
}

// takeSlot claims one concurrent execution of sf, or says which limit is exhausted.
func (p *Pipeline) takeSlot(sf *servedFunction) error {
	p.lim.mu.Lock()
	defer p.lim.mu.Unlock()
	if sf.slots >= sf.limit {
		detail := fmt.Sprintf("%s is running %d invocations, its concurrency limit (--max-concurrency)", sf.LogicalID, sf.limit)
		switch {
		case sf.reserved && sf.limit == 0:
			detail = sf.LogicalID + " has ReservedConcurrentExecutions 0: every invocation is throttled"
		case sf.reserved:
			detail = fmt.Sprintf("%s is running %d invocations, its ReservedConcurrentExecutions", sf.LogicalID, sf.limit)
		}
		return &throttleError{Reason: reasonFunctionLimit, Message: "Rate Exceeded.", detail: detail}
	}
	if !sf.reserved {
		if p.lim.pooled >= p.lim.pool {
			return &throttleError{Reason: reasonAccountLimit, Message: "Rate Exceeded.",
				detail: fmt.Sprintf("the account's unreserved concurrency (%d, from --account-concurrency) is in use", p.lim.pool)}
		}
		p.lim.pooled++
	}
	sf.slots++
	return nil
}

// freeSlot gives back a slot of sf and lets queued events have it.
func (p *Pipeline) freeSlot(sf *servedFunction) {
	p.lim.mu.Lock()
	sf.slots--
	if !sf.reserved {
		p.lim.pooled--
	}
	p.lim.mu.Unlock()
	p.events.kick()
}

// neverRuns is the throttle of a function that can never run an invocation, or nil when it can.
func (p *Pipeline) neverRuns(sf *servedFunction) *throttleError {
	switch {
	case sf.limit == 0 && sf.reserved:
		return &throttleError{Reason: reasonFunctionLimit, Message: "Rate Exceeded.", detail: sf.LogicalID + " has ReservedConcurrentExecutions 0: every invocation is throttled"}
	case sf.limit == 0:
		return &throttleError{Reason: reasonFunctionLimit, Message: "Rate Exceeded.", detail: sf.LogicalID + "'s concurrency limit (--max-concurrency) is 0"}
	case !sf.reserved && p.lim.pool == 0:
		return &throttleError{Reason: reasonAccountLimit, Message: "Rate Exceeded.", detail: "reservations take all of the account's concurrency (--account-concurrency): functions without one cannot run"}
	}
	return nil
}

// throttled answers Lambda's TooManyRequestsException exactly as Lambda sends it: 429, the error type in
// X-Amzn-ErrorType, and {"Reason": …, "Type": "User", "message": "Rate Exceeded."}, which the SDKs read into
// TooManyRequestsException.Reason. Retry-After is the SDKs' RetryAfterSeconds.
func (a *invokeAPI) throttled(w http.ResponseWriter, fn *servedFunction, te *throttleError) {
	a.log.Info("invocation throttled", "function", fn.LogicalID, "reason", te.Reason, "why", te.detail)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", "TooManyRequestsException")
	h.Set("Retry-After", "1")
	body, _ := json.Marshal(struct {
		Reason  string `json:"Reason,omitempty"`
		Type    string `json:"Type"`
		Message string `json:"message"`
	}{te.Reason, "User", te.Message})
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write(body)
}

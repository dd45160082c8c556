package dap

import "sync"

// ref names an id in one debuggee's own id space.
type ref struct {
	d  *debuggee
	id int
}

// handles maps the ids of several debuggees into one adapter id space, both ways. Like Delve's handlesMap,
// adapter ids start at 1 and are never reused, so a stale id from the IDE can never reach the wrong debuggee.
type handles[K comparable] struct {
	mu   sync.Mutex
	next int
	fwd  map[K]int
	back map[int]K
}

func newHandles[K comparable]() *handles[K] {
	return &handles[K]{next: 1, fwd: map[K]int{}, back: map[int]K{}}
}

// get returns the adapter id for k, creating one on first sight.
func (h *handles[K]) get(k K) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id, ok := h.fwd[k]; ok {
		return id
	}
	id := h.next
	h.next++
	h.fwd[k] = id
	h.back[id] = k
	return id
}

// peek returns the adapter id for k without creating one.
func (h *handles[K]) peek(k K) (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.fwd[k]
	return id, ok
}

// lookup returns what an adapter id stands for.
func (h *handles[K]) lookup(id int) (K, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k, ok := h.back[id]
	return k, ok
}

// bind makes k stand for an existing adapter id (several debuggees' breakpoints share one IDE breakpoint).
func (h *handles[K]) bind(k K, id int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fwd[k] = id
}

// drop forgets every key for which del is true (a debuggee that went away).
func (h *handles[K]) drop(del func(K) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, id := range h.fwd {
		if del(k) {
			delete(h.fwd, k)
			if h.back[id] == k {
				delete(h.back, id)
			}
		}
	}
}

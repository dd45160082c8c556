package rie

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Function is a handler to run: a folder and "module.function".
type Function struct {
	Dir     string
	Handler string
	Timeout int      // seconds; default 30
	Env     []string // the function's own environment variables
}

// Instance is a function started one way, ready for invocations.
type Instance interface {
	Invoke(ctx context.Context, ev Event) (Reply, error)
	// Logs is what the function wrote (CloudWatch's view) so far, with the runner's own lines left out.
	Logs() string
}

// Way is one way of running a function: AWS's runtime alone under RIE, the plldb layer in front of it, and
// later `plldb local`. Start runs fn and stops it when the test ends.
type Way struct {
	Name  string
	Start func(t testing.TB, fn Function) Instance
}

// Direct runs the function under RIE with awslambdaric alone: the reference.
func Direct() Way {
	return Way{Name: "rie", Start: func(t testing.TB, fn Function) Instance {
		return &emuInstance{Start(t, Options{Dir: fn.Dir, Handler: fn.Handler, Timeout: fn.Timeout, Env: fn.Env})}
	}}
}

// Wrapped runs the function under RIE with wrapper as AWS_LAMBDA_EXEC_WRAPPER and extra added to the
// function's environment (what attaching adds).
func Wrapped(name, wrapper string, extra ...string) Way {
	return Way{Name: name, Start: func(t testing.TB, fn Function) Instance {
		env := append(slices.Clone(fn.Env), extra...)
		return &emuInstance{Start(t, Options{Dir: fn.Dir, Handler: fn.Handler, Timeout: fn.Timeout, Env: env, Wrapper: wrapper})}
	}}
}

type emuInstance struct{ e *Emulator }

// Emulator is the RIE process behind an instance started by Direct or Wrapped.
func (i *emuInstance) Emulator() *Emulator { return i.e }

func (i *emuInstance) Invoke(ctx context.Context, ev Event) (Reply, error) {
	return i.e.Invoke(ctx, ev.Body, ev.Header)
}

// rapidLine matches the emulator's own log lines and its START/END/REPORT lines, which are not the function's.
var rapidLine = regexp.MustCompile(`^(\d\d \w{3} \d{4} [\d:,]+ \[\w+\] \(rapid\) |START RequestId: |END RequestId: |REPORT RequestId: )`)

func (i *emuInstance) Logs() string {
	var out []string
	for _, l := range strings.Split(i.e.Output.String(), "\n") {
		if !rapidLine.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Event is one invocation's request.
type Event struct {
	Name   string
	Body   []byte
	Header http.Header // e.g. X-Amz-Client-Context
}

// Case is a function and the invocations to send it, in order.
type Case struct {
	Name     string
	Function Function
	Events   []Event
}

// Observation is everything a way of running gave for a Case: each caller's reply, and the function's logs.
type Observation struct {
	Way     string
	Replies []Reply
	Logs    string
}

// Observe runs c one way. Invocations are sent one after another, as a single caller would.
func Observe(t testing.TB, way Way, c Case) Observation {
	t.Helper()
	inst := way.Start(t, c.Function)
	obs := Observation{Way: way.Name}
	for _, ev := range c.Events {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		r, err := inst.Invoke(ctx, ev)
		cancel()
		if err != nil {
			t.Fatalf("%s: %s: %v\nlogs:\n%s", way.Name, ev.Name, err, inst.Logs())
		}
		obs.Replies = append(obs.Replies, r)
	}
	// Output written around the last answer may still be on its way through a pipe: wait until it stops
	// growing.
	obs.Logs = inst.Logs()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		time.Sleep(150 * time.Millisecond)
		l := inst.Logs()
		if l == obs.Logs {
			break
		}
		obs.Logs = l
	}
	return obs
}

// Normalizer rewrites what cannot match between two runs (request ids, timestamps) into placeholders, and
// names the differences that are expected.
type Normalizer struct {
	// Body rewrites a reply body before comparison (after the common rewrites).
	Body func(ev Event, body []byte) []byte
	// IgnoreHeaders are reply headers not compared (Date always).
	IgnoreHeaders []string
	// SkipReply names events whose replies are not compared at all (say, a timeout, which the emulator
	// reports in its own way); the replies after them and the logs still are.
	SkipReply func(ev Event) bool
	// Logs rewrites the function's logs before comparison (after the common rewrites).
	Logs func(logs string) string
}

var (
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	// awslambdaric's log lines: [LEVEL]\t2026-12-02T06:00:45.817Z\t<request id>\t...
	isoRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	// awslambdaric's error lines carry a millisecond timestamp: [ERROR] [1796191110364] LAMBDA_RUNTIME ...
	msRE = regexp.MustCompile(`\[\d{13}\]`)
)

// Common rewrites request ids and timestamps, which differ between any two runs.
func Common(b []byte) []byte {
	b = uuidRE.ReplaceAll(b, []byte("<uuid>"))
	b = isoRE.ReplaceAll(b, []byte("<time>"))
	return msRE.ReplaceAll(b, []byte("[<ms>]"))
}

// Compare fails t on every difference between want (the reference) and got beyond those n accepts.
func Compare(t testing.TB, c Case, want, got Observation, n Normalizer) {
	t.Helper()
	if len(want.Replies) != len(got.Replies) {
		t.Fatalf("%s: %d replies from %s, %d from %s", c.Name, len(want.Replies), want.Way, len(got.Replies), got.Way)
	}
	for i, ev := range c.Events {
		if n.SkipReply != nil && n.SkipReply(ev) {
			continue
		}
		w, g := want.Replies[i], got.Replies[i]
		if w.Status != g.Status {
			t.Errorf("%s/%s: status %s %d, %s %d", c.Name, ev.Name, want.Way, w.Status, got.Way, g.Status)
		}
		ignore := append([]string{"Date"}, n.IgnoreHeaders...)
		wh, gh := headerText(w.Header, ignore), headerText(g.Header, ignore)
		if wh != gh {
			t.Errorf("%s/%s: headers differ\n%s:\n%s\n%s:\n%s", c.Name, ev.Name, want.Way, wh, got.Way, gh)
		}
		if bytes.Equal(w.Body, g.Body) {
			continue // the common case, and the only affordable one for 7 MB bodies under -race
		}
		wb, gb := Common(w.Body), Common(g.Body)
		if n.Body != nil {
			wb, gb = n.Body(ev, wb), n.Body(ev, gb)
		}
		if !bytes.Equal(wb, gb) {
			t.Errorf("%s/%s: bodies differ (%d and %d bytes)\n%s:\n%s\n%s:\n%s\n%s", c.Name, ev.Name, len(w.Body), len(g.Body),
				want.Way, clip(wb), got.Way, clip(gb), firstDiff(wb, gb))
		}
	}
	wl, gl := string(Common([]byte(want.Logs))), string(Common([]byte(got.Logs)))
	if n.Logs != nil {
		wl, gl = n.Logs(wl), n.Logs(gl)
	}
	if wl != gl {
		t.Errorf("%s: logs differ\n%s", c.Name, lineDiff(want.Way, wl, got.Way, gl))
	}
}

func headerText(h http.Header, ignore []string) string {
	var lines []string
	for k, v := range h {
		if slices.Contains(ignore, k) {
			continue
		}
		lines = append(lines, k+": "+strings.Join(v, ", "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return string(b)
}

func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-80)
	return fmt.Sprintf("first difference at byte %d: %q vs %q", i, a[lo:min(len(a), i+80)], b[lo:min(len(b), i+80)])
}

// lineDiff is a unified-style diff of two short texts ("-" only in a, "+" only in b), from their longest
// common subsequence of lines; it gives up on texts over a few thousand lines.
func lineDiff(an, a, bn, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", an, bn)
	if len(al)*len(bl) > 4_000_000 {
		fmt.Fprintf(&out, "(%d and %d lines: too long to diff)\n", len(al), len(bl))
		return out.String()
	}
	// lcs[i][j] is the length of the longest common subsequence of al[i:] and bl[j:].
	lcs := make([][]int, len(al)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(bl)+1)
	}
	for i := len(al) - 1; i >= 0; i-- {
		for j := len(bl) - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(al) || j < len(bl) {
		switch {
		case i < len(al) && j < len(bl) && al[i] == bl[j]:
			i, j = i+1, j+1
		case j < len(bl) && (i == len(al) || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&out, "+%d: %s\n", j+1, clip([]byte(bl[j])))
			j++
		default:
			fmt.Fprintf(&out, "-%d: %s\n", i+1, clip([]byte(al[i])))
			i++
		}
	}
	return out.String()
}

// JSONPaths rewrites the values at the given paths ("env.AWS_LAMBDA_RUNTIME_API") of a JSON object body to a
// placeholder after checking them with ok ("<not allowed: …>" when ok refuses the value). Bodies without any
// of the paths are returned as they are, byte for byte; those with one are re-encoded (sorted keys), which is
// only meant for the handler's own dumps.
func JSONPaths(body []byte, paths map[string]func(v any) bool) []byte {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return body
	}
	changed := false
	for p, ok := range paths {
		keys := strings.Split(p, ".")
		m := doc
		for _, k := range keys[:len(keys)-1] {
			next, _ := m[k].(map[string]any)
			if next == nil {
				m = nil
				break
			}
			m = next
		}
		if m == nil {
			continue
		}
		last := keys[len(keys)-1]
		if v, present := m[last]; present {
			changed = true
			if ok(v) {
				m[last] = "<allowed>"
			} else {
				m[last] = fmt.Sprintf("<not allowed: %v>", v)
			}
		}
	}
	if !changed {
		// Compared byte for byte: key order and number formats are part of what the caller gets.
		return body
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return body
	}
	return out
}

// Package carrier finds plldb knocks (bridge/knock) in the invocations a Lambda function receives and removes them,
// so that in selective mode the layer can tell a knocked invocation from the rest and the knock never reaches the
// handler (docs/knock.md).
//
// A knock travels in one of these carriers:
//
//   - an X-Plldb-Knock header (any case) of an HTTP event: API Gateway REST (v1: headers and multiValueHeaders),
//     HTTP API and Lambda Function URLs (v2: headers, duplicates comma-joined), ALB target groups (headers or
//     multiValueHeaders);
//   - ClientContext.custom.plldbKnock of a direct Invoke, which the Runtime API hands over as JSON in the
//     Lambda-Runtime-Client-Context header;
//   - a plldbKnock message attribute (String) on SQS records;
//   - a plldbKnock field of an EventBridge event's detail.
//
// Field names are matched without regard to ASCII case. Names spelled with JSON escapes ("\u004b") are not
// recognized: AWS's event sources never escape ASCII names, and a knock not recognized is simply not honoured.
//
// Most invocations carry no knock, and they must cost next to nothing: Extract first looks for the bytes
// "plldb-knock" / "plldbknock" (any case) and returns at once, without allocating, when neither is there. Only then
// is the JSON validated and walked.
//
// Removal keeps everything else byte for byte: the knock's member is cut out of the object that held it together
// with one separating comma and the whitespace next to it. Nothing is re-encoded, so key order, spacing, escapes
// and number spellings are as they were. (SQS's md5OfMessageAttributes then no longer matches the attributes; it
// is left as SQS computed it.)
//
// The rules for more than one knock: every value found, in every carrier of the invocation, is collected (a
// comma-joined header value counts as its parts); equal values count once; two different values refuse the
// invocation (ErrConflict). In an SQS batch either every record carries the same knock or the batch is refused
// (ErrMixedBatch): a batch is one invocation, and handing it to a developer would show them messages nobody
// knocked for. Whatever is refused, every knock found is still removed.
package carrier

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/plldb/plldb/bridge/knock"
)

// Carrier is a set of places knocks were found in.
type Carrier uint8

// The carriers.
const (
	Header        Carrier = 1 << iota // X-Plldb-Knock in an HTTP event
	ClientContext                     // ClientContext.custom.plldbKnock
	SQS                               // plldbKnock message attribute of SQS records
	EventBridge                       // detail.plldbKnock
)

// The reasons a knock that is present cannot be used. The invocation then runs the deployed code.
var (
	ErrConflict   = errors.New("knock: different knocks in one invocation")
	ErrMixedBatch = errors.New("knock: SQS batch with records not all carrying the same knock")
	ErrMalformed  = errors.New("knock: knock field is not a non-empty string")
	ErrEvent      = errors.New("knock: event or client context mentions a knock but is not valid JSON")
)

// Result is what Extract found.
type Result struct {
	// Token is the knock when exactly one was found (possibly several times), "" otherwise.
	Token string
	// Found is the carriers knocks were found in (and removed from); zero when there were none.
	Found Carrier
	// Request describes the event as an HTTP request, for route- and request-bound knocks.
	Request knock.Request
	// Event and ClientContext are the invocation without its knocks: the inputs themselves when nothing was
	// removed, new copies otherwise.
	Event         []byte
	ClientContext string
}

const (
	headerName = "x-plldb-knock"
	fieldName  = "plldbknock"
)

// Extract finds and removes the knocks of one invocation: its event and its client context (JSON as the Runtime
// API gives it; "" for none). A non-nil error says why the knock cannot be used; the Result's Event and
// ClientContext are stripped of every knock found all the same.
func Extract(event []byte, clientContext string) (Result, error) {
	r := Result{Event: event, ClientContext: clientContext}
	inEvent, inCC := mayHold(event), mayHoldString(clientContext)
	if !inEvent && !inCC {
		return r, nil
	}
	var c collector
	var errs []error
	if inEvent {
		if !json.Valid(event) {
			errs = append(errs, ErrEvent)
		} else {
			r.Event, r.Request = c.event(event)
		}
	}
	if inCC {
		cc := []byte(clientContext)
		if !json.Valid(cc) {
			errs = append(errs, ErrEvent)
		} else if out := c.clientContext(cc); out != nil {
			r.ClientContext = string(out)
		}
	}
	r.Found = c.found
	errs = append(errs, c.errs...)
	switch {
	case len(errs) > 0:
	case len(c.values) > 1:
		errs = append(errs, ErrConflict)
	case len(c.values) == 1:
		r.Token = c.values[0]
	}
	if len(errs) > 0 {
		return r, errors.Join(errs...)
	}
	return r, nil
}

// Outcome is what Check decided about one invocation.
type Outcome struct {
	Event         []byte // the event without knocks
	ClientContext string // the client context without knocks
	Found         Carrier
	// Knocked: a knock was found and verified; Claims.Issuer is the session to route the invocation to.
	Knocked bool
	Claims  knock.Claims
	// Err says why the invocation is not knocked although something in it looked like a knock; nil when Knocked
	// or when nothing did. Either way the invocation then runs the deployed code.
	Err error
}

// Check extracts the invocation's knock and verifies it with v. An invocation without a knock costs one byte scan.
func Check(v *knock.Verifier, event []byte, clientContext string) Outcome {
	r, err := Extract(event, clientContext)
	o := Outcome{Event: r.Event, ClientContext: r.ClientContext, Found: r.Found}
	switch {
	case r.Found == 0 && err == nil:
		return o
	case err != nil:
		o.Err = err
	default:
		o.Claims, o.Err = v.Verify(r.Token, r.Request)
		o.Knocked = o.Err == nil
	}
	return o
}

// mayHold tells whether b contains "plldb-knock" or "plldbknock" in any case: if not, there is no knock.
//
// Most events have few 'k's, and bytes.IndexByte skips from one to the next at SIMD speed (26 GB/s on a line of
// HTTP headers). Text dense in 'k's (base64 has one byte in 32, prose more) would stop it every few dozen bytes,
// at ~15 ns a stop; past stopBudget false stops, the word-at-a-time scan, 3–3.6 GB/s whatever the text, is faster.
func mayHold(b []byte) bool {
	stops := 0
	for _, k := range [2]byte{'k', 'K'} {
		for i := 0; ; {
			j := bytes.IndexByte(b[i:], k)
			if j < 0 {
				break
			}
			i += j
			if knockAt(b, i) {
				return true
			}
			if stops++; stops > stopBudget {
				return mayHoldWords(b)
			}
			i++
		}
	}
	return false
}

// stopBudget is how many 'k's mayHold skips to before switching to mayHoldWords.
const stopBudget = 64

// knockAt tells whether "knock" starts at b[i] and "plldb" or "plldb-" ends just before it, in any case.
func knockAt(b []byte, i int) bool {
	// Most 'k's in an event are not a knock's: reject on the byte before it (ASCII 'b', 'B' or '-') first.
	if i < 5 || len(b)-i < 5 {
		return false
	}
	if p := b[i-1] | 0x20; p != 'b' && p != '-' {
		return false
	}
	if !bytes.EqualFold(b[i:i+5], []byte("knock")) {
		return false
	}
	if i >= 6 && b[i-1] == '-' && bytes.EqualFold(b[i-6:i-1], []byte("plldb")) {
		return true
	}
	return i >= 5 && bytes.EqualFold(b[i-5:i], []byte("plldb"))
}

// mayHoldString is mayHold for a string.
func mayHoldString(s string) bool {
	for _, k := range [2]byte{'k', 'K'} {
		for i := 0; ; {
			j := strings.IndexByte(s[i:], k)
			if j < 0 {
				break
			}
			i += j
			if i >= 5 && len(s)-i >= 5 && (s[i-1]|0x20 == 'b' || s[i-1] == '-') && strings.EqualFold(s[i:i+5], "knock") &&
				(i >= 6 && s[i-1] == '-' && strings.EqualFold(s[i-6:i-1], "plldb") || i >= 5 && strings.EqualFold(s[i-5:i], "plldb")) {
				return true
			}
			i++
		}
	}
	return false
}

// collector gathers the knocks found and the cuts that remove them.
type collector struct {
	values []string // distinct
	found  Carrier
	errs   []error
	cuts   []span
}

type span struct{ from, to int }

func (c *collector) add(v string) {
	if !slices.Contains(c.values, v) {
		c.values = append(c.values, v)
	}
}

func (c *collector) fail(err error) {
	if !slices.Contains(c.errs, err) {
		c.errs = append(c.errs, err)
	}
}

// event walks a valid JSON event. It returns the event with its knocks cut out and the HTTP request it is.
func (c *collector) event(b []byte) ([]byte, knock.Request) {
	c.cuts = c.cuts[:0]
	i := skipWS(b, 0)
	if b[i] != '{' {
		return b, knock.Request{}
	}
	top, _ := members(b, i)
	var req knock.Request
	var method, path, rawPath string
	http, eventBridge := false, false
	for _, m := range top {
		switch string(m.key(b)) {
		case "headers", "multiValueHeaders":
			http = true
		case "detail-type":
			eventBridge = true
		case "httpMethod":
			method = stringValue(b, m)
		case "path":
			path = stringValue(b, m)
		case "rawPath":
			rawPath = stringValue(b, m)
		case "requestContext":
			if method == "" {
				if h, ok := field(b, m, "http"); ok {
					if mm, ok := field(b, h, "method"); ok {
						method = stringValue(b, mm)
					}
				}
			}
		}
	}
	if rawPath != "" {
		path = rawPath
	}
	if http && method != "" && path != "" {
		req = knock.Request{HTTP: true, Method: method, Path: path}
	}
	for _, m := range top {
		switch k := string(m.key(b)); {
		case http && (k == "headers" || k == "multiValueHeaders"):
			c.headers(b, m)
		case eventBridge && k == "detail":
			c.field(b, m, EventBridge)
		case k == "Records":
			c.sqs(b, m)
		}
	}
	return cut(b, c.cuts), req
}

// headers collects and cuts the X-Plldb-Knock members of a headers or multiValueHeaders object.
func (c *collector) headers(b []byte, obj member) {
	if b[obj.v0] != '{' {
		return
	}
	ms, _ := members(b, obj.v0)
	drop := make([]bool, len(ms))
	hit := false
	for i, m := range ms {
		if !bytes.EqualFold(m.key(b), []byte(headerName)) {
			continue
		}
		drop[i], hit = true, true
		c.found |= Header
		var vals []string
		switch b[m.v0] {
		case '"':
			vals = []string{stringValue(b, m)}
		case '[':
			if err := json.Unmarshal(b[m.v0:m.v1], &vals); err != nil {
				vals = nil
			}
		}
		n := 0
		for _, v := range vals {
			// A token has no commas or spaces, so a comma-joined header value splits back into its knocks.
			for p := range strings.SplitSeq(v, ",") {
				if p = strings.Trim(p, " \t"); p != "" {
					c.add(p)
					n++
				}
			}
		}
		if n == 0 {
			c.fail(ErrMalformed)
		}
	}
	if hit {
		c.cuts = cutMembers(ms, drop, c.cuts)
	}
}

// field collects and cuts the plldbKnock members (a string each) of the object obj's value.
func (c *collector) field(b []byte, obj member, carrier Carrier) {
	if b[obj.v0] != '{' {
		return
	}
	ms, _ := members(b, obj.v0)
	var drop []bool
	for i, m := range ms {
		if !bytes.EqualFold(m.key(b), []byte(fieldName)) {
			continue
		}
		if drop == nil {
			drop = make([]bool, len(ms))
		}
		drop[i] = true
		c.found |= carrier
		if v := stringValue(b, m); v != "" {
			c.add(v)
		} else {
			c.fail(ErrMalformed)
		}
	}
	if drop != nil {
		c.cuts = cutMembers(ms, drop, c.cuts)
	}
}

// sqs collects and cuts the plldbKnock message attributes of an SQS event's records, each of which must carry
// the same knock once any does.
func (c *collector) sqs(b []byte, recs member) {
	if b[recs.v0] != '[' {
		return
	}
	records, knocked := 0, 0
	for _, el := range elements(b, recs.v0) {
		if b[el] != '{' {
			continue
		}
		ms, _ := members(b, el)
		isSQS := false
		var attrs []member // all of them, should the record repeat the key
		for _, m := range ms {
			switch string(m.key(b)) {
			case "eventSource":
				isSQS = stringValue(b, m) == "aws:sqs"
			case "messageAttributes":
				if b[m.v0] == '{' {
					attrs = append(attrs, m)
				}
			}
		}
		if !isSQS {
			continue
		}
		records++
		var mine []string
		hit := false
		for _, at := range attrs {
			if c.attributes(b, at, &mine) {
				hit = true
			}
		}
		if !hit {
			continue
		}
		knocked++
		// Different knocks across records or within one are collected here and refused as a conflict.
		for _, v := range mine {
			c.add(v)
		}
	}
	if knocked > 0 && knocked != records {
		c.fail(ErrMixedBatch)
	}
}

// attributes collects (into mine) and cuts the plldbKnock members of one SQS messageAttributes object and reports
// whether there were any.
func (c *collector) attributes(b []byte, attrs member, mine *[]string) bool {
	am, _ := members(b, attrs.v0)
	var drop []bool
	for j, a := range am {
		if !bytes.EqualFold(a.key(b), []byte(fieldName)) {
			continue
		}
		if drop == nil {
			drop = make([]bool, len(am))
		}
		drop[j] = true
		c.found |= SQS
		// {"stringValue": "…", "dataType": "String", …}
		v := ""
		if sv, ok := field(b, a, "stringValue"); ok {
			v = stringValue(b, sv)
		}
		if v == "" {
			c.fail(ErrMalformed)
			continue
		}
		if !slices.Contains(*mine, v) {
			*mine = append(*mine, v)
		}
	}
	if drop == nil {
		return false
	}
	c.cuts = cutMembers(am, drop, c.cuts)
	return true
}

// clientContext collects and cuts custom.plldbKnock of a valid JSON client context; nil when nothing was cut.
func (c *collector) clientContext(b []byte) []byte {
	c.cuts = c.cuts[:0]
	i := skipWS(b, 0)
	if b[i] != '{' {
		return nil
	}
	top, _ := members(b, i)
	for _, m := range top {
		if string(m.key(b)) == "custom" {
			c.field(b, m, ClientContext)
		}
	}
	if len(c.cuts) == 0 {
		return nil
	}
	return cut(b, c.cuts)
}

package dap

import (
	"encoding/json"
	"sort"
	"time"

	godap "github.com/google/go-dap"

	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/bridge/knock"
)

// Two custom requests give an editor what `plldb knock` gives a terminal (docs/dap.md): plldbFunctions lists the
// functions a knock can be bound to, and plldbKnock mints a knock of the session's own key. They exist because an
// IDE session is often the only thing that knows the session (a launch writes the key file, but an editor on
// another machine, or one of several sessions, cannot tell which file is its own), and because a command in the
// editor saves the developer a terminal round trip.
//
// The plldbKnock response carries a bearer credential: it goes to the IDE and nowhere else. Nothing here logs
// the arguments' route or the body, errors never quote the token, and the session's request log names only the
// command.

// knockArgs are plldbKnock's arguments.
type knockArgs struct {
	Function string `json:"function"` // logical id or name; "" binds the knock to every function of the session
	For      string `json:"for"`      // a Go duration ("10m", "1h30m"); "" is knock.DefaultTTL
	Route    string `json:"route"`    // optional "METHOD /path/glob"
	Format   string `json:"format"`   // "" or header, curl, awsCli, boto3
	URL      string `json:"url"`      // format curl: the URL to call
}

// knockBody is plldbKnock's response body.
type knockBody struct {
	Header   string `json:"header"`         // X-Plldb-Knock
	Value    string `json:"value"`          // the token
	Line     string `json:"line"`           // "X-Plldb-Knock: <token>", ready for a clipboard
	Expires  string `json:"expires"`        // RFC 3339, UTC
	Audience string `json:"audience"`       // what the knock is bound to: "orders", "orders/CreateOrder", "local/Hello"
	Session  string `json:"session"`        // the knock session id (the token's issuer), not a secret
	Text     string `json:"text,omitempty"` // the line Format asked for
}

type knockResponse struct {
	godap.Response
	Body knockBody `json:"body"`
}

// knockFunction is one entry of plldbFunctions' answer.
type knockFunction struct {
	LogicalID string `json:"logicalId"`
	Name      string `json:"name"` // the physical name in mode aws, the template's FunctionName (or logical id) in mode local
}

type functionsBody struct {
	Selective bool            `json:"selective"`
	Audience  string          `json:"audience,omitempty"` // the stack name, or "local"; only when selective
	Functions []knockFunction `json:"functions"`
}

type functionsResponse struct {
	godap.Response
	Body functionsBody `json:"body"`
}

// knockBackend is the backend the session launched or attached to, with its knock session (nil when the session
// is not selective) and the functions a knock can name.
func (s *session) knockBackend() (started bool, ks *knockkey.Session, fns []knockFunction) {
	s.mu.Lock()
	b := s.pipeline
	if b == nil {
		b = s.shared
	}
	s.mu.Unlock()
	switch b := b.(type) {
	case localBackend:
		for _, f := range b.p.Functions() {
			fns = append(fns, knockFunction{LogicalID: f.LogicalID, Name: f.Name})
		}
		return true, b.p.KnockSession(), fns
	case awsBackend:
		for _, f := range b.s.Functions() {
			fns = append(fns, knockFunction{LogicalID: f.LogicalID, Name: f.Name})
		}
		return true, b.s.KnockSession(), fns
	}
	return false, nil, nil
}

// errNotSelective says how to get a session knocks work with.
const errNotSelective = `this debug session is not selective, so every invocation already reaches the debugger and a knock would mean nothing: launch with "selective": true (plldb local --selective, plldb attach --selective) to stop only on knocked invocations`

func (s *session) functionsRequest(req request) {
	started, ks, fns := s.knockBackend()
	if !started {
		s.respondErr(req, "%s: nothing is launched yet", req.command)
		return
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].LogicalID < fns[j].LogicalID })
	body := functionsBody{Functions: fns}
	if body.Functions == nil {
		body.Functions = []knockFunction{}
	}
	if ks != nil {
		body.Selective, body.Audience = true, ks.Audience
	}
	s.sendMsg(&functionsResponse{Response: s.newResponse(req), Body: body})
}

func (s *session) knockRequest(req request) {
	started, ks, _ := s.knockBackend()
	switch {
	case !started:
		s.respondErr(req, "%s: nothing is launched yet: launch with \"selective\": true first", req.command)
		return
	case ks == nil:
		s.respondErr(req, "%s: %s", req.command, errNotSelective)
		return
	}
	var a knockArgs
	if len(req.args) > 0 && string(req.args) != "null" {
		if err := json.Unmarshal(req.args, &a); err != nil {
			s.respondErr(req, "%s: arguments must be an object of strings: function, for, route, format, url", req.command)
			return
		}
	}
	ttl := time.Duration(0)
	if a.For != "" {
		d, err := time.ParseDuration(a.For)
		if err != nil || d < time.Second || d > knock.MaxTTL {
			s.respondErr(req, "%s: \"for\" must be a duration between 1s and %s, like \"10m\" or \"1h30m\"", req.command, knock.MaxTTL)
			return
		}
		ttl = d
	}
	if a.Function != "" {
		// The knock session lists the backend's functions, as the file `plldb knock --function` checks does.
		if err := ks.CheckFunction(a.Function); err != nil {
			s.respondErr(req, "%s: %v", req.command, err)
			return
		}
	}
	format := knockkey.Format(a.Format)
	if a.Route != "" && !knockkey.RouteApplies(format) {
		s.respondErr(req, "%s: \"route\" goes with the formats header and curl: the awsCli and boto3 lines invoke the function with the event {}, which is no HTTP request, so a knock bound to a route would be refused there", req.command)
		return
	}
	line := ""
	if a.Format != "" {
		// Checked before minting: no token is made for a request that cannot be answered.
		if _, err := knockkey.FormatLine(format, "", knockkey.LineOptions{URL: a.URL}); err != nil {
			s.respondErr(req, "%s: %v", req.command, err)
			return
		}
	}
	tok, exp, err := ks.Issue(knockkey.MintOptions{Function: a.Function, TTL: ttl, Route: a.Route})
	if err != nil {
		s.respondErr(req, "%s: %v", req.command, err) // knock's errors name the claim at fault, never the token
		return
	}
	if a.Format != "" {
		fn := a.Function
		if fn != "" {
			fn = ks.InvokeName(fn) // "function" may be a logical id; Lambda knows the deployed name
		}
		line, err = knockkey.FormatLine(format, tok, knockkey.LineOptions{URL: a.URL, Function: fn, Endpoint: ks.Endpoint})
		if err != nil {
			s.respondErr(req, "%s: %v", req.command, err)
			return
		}
	}
	aud := ks.Audience
	if a.Function != "" {
		aud += "/" + a.Function
	}
	s.sendMsg(&knockResponse{Response: s.newResponse(req), Body: knockBody{
		Header: knockkey.Header, Value: tok, Line: knockkey.Header + ": " + tok,
		Expires: exp.UTC().Format(time.RFC3339), Audience: aud, Session: ks.ID, Text: line,
	}})
}

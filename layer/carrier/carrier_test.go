package carrier_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/layer/carrier"
)

// Two knocks that differ. They need not verify for Extract; Check's tests mint real ones.
const (
	tokA = knock.Header + ".eyJpc3MiOiJhIn0.c2lnQQ"
	tokB = knock.Header + ".eyJpc3MiOiJiIn0.c2lnQg"
)

func load(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "events", name))
	require.NoError(t, err)
	return b
}

// insert puts member as the first member of the object that is the value of the first "key" in ev, followed by
// ", " (or nothing if the object is empty), so that cutting the member out gives ev back exactly.
func insert(t testing.TB, ev []byte, key, member string) []byte {
	t.Helper()
	i := bytes.Index(ev, []byte(`"`+key+`"`))
	require.GreaterOrEqual(t, i, 0, key)
	j := bytes.IndexByte(ev[i:], '{')
	require.GreaterOrEqual(t, j, 0)
	j += i + 1
	k := j
	for k < len(ev) && strings.ContainsRune(" \t\r\n", rune(ev[k])) {
		k++
	}
	sep := ", "
	if ev[k] == '}' {
		sep = ""
	} else {
		j = k
	}
	out := append([]byte{}, ev[:j]...)
	out = append(out, member+sep...)
	return append(out, ev[j:]...)
}

func hdr(name, tok string) string { return fmt.Sprintf(`%q: %q`, name, tok) }
func mhdr(name string, toks ...string) string {
	b, _ := json.Marshal(toks)
	return fmt.Sprintf(`%q: %s`, name, b)
}
func sqsAttr(name, tok string) string {
	return fmt.Sprintf(`%q: {"stringValue": %q, "stringListValues": [], "binaryListValues": [], "dataType": "String"}`, name, tok)
}

func extract(t *testing.T, ev []byte, cc string) (carrier.Result, error) {
	t.Helper()
	r, err := carrier.Extract(ev, cc)
	if json.Valid(ev) {
		assert.True(t, json.Valid(r.Event), "stripped event is JSON: %s", r.Event)
	}
	assert.NotContains(t, string(r.Event), tokA)
	assert.NotContains(t, string(r.Event), tokB)
	assert.NotContains(t, r.ClientContext, tokA)
	assert.NotContains(t, r.ClientContext, tokB)
	if err != nil {
		for _, tok := range []string{tokA, tokB} {
			assert.NotContains(t, err.Error(), tok)
		}
	}
	return r, err
}

var fixtures = []string{"apigw-rest-v1.json", "apigw-http-v2.json", "function-url.json", "alb.json", "alb-multivalue.json", "sqs.json", "eventbridge.json", "s3.json"}

func TestNoKnockIsUntouchedAndFree(t *testing.T) {
	for _, name := range fixtures {
		ev := load(t, name)
		r, err := carrier.Extract(ev, `{"custom":{"k":"v"}}`)
		require.NoError(t, err, name)
		assert.Zero(t, r.Found)
		assert.Empty(t, r.Token)
		assert.Same(t, &ev[0], &r.Event[0], "%s: the event itself, not a copy", name)
		allocs := testing.AllocsPerRun(100, func() { _, _ = carrier.Extract(ev, `{"custom":{"k":"v"}}`) })
		assert.Zero(t, allocs, name)
	}
}

func TestHTTPCarriers(t *testing.T) {
	for _, tc := range []struct {
		file, key string
		multi     bool
		req       knock.Request
	}{
		{"apigw-rest-v1.json", "headers", false, knock.Request{HTTP: true, Method: "POST", Path: "/hello/world"}},
		{"apigw-rest-v1.json", "multiValueHeaders", true, knock.Request{HTTP: true, Method: "POST", Path: "/hello/world"}},
		{"apigw-http-v2.json", "headers", false, knock.Request{HTTP: true, Method: "GET", Path: "/"}},
		{"function-url.json", "headers", false, knock.Request{HTTP: true, Method: "POST", Path: "/my/path"}},
		{"alb.json", "headers", false, knock.Request{HTTP: true, Method: "GET", Path: "/"}},
		{"alb-multivalue.json", "multiValueHeaders", true, knock.Request{HTTP: true, Method: "GET", Path: "/"}},
	} {
		for _, name := range []string{"X-Plldb-Knock", "x-plldb-knock", "X-PLLDB-KNOCK", "x-PlLdB-kNoCk"} {
			t.Run(tc.file+"/"+tc.key+"/"+name, func(t *testing.T) {
				orig := load(t, tc.file)
				member := hdr(name, tokA)
				if tc.multi {
					member = mhdr(name, tokA)
				}
				r, err := extract(t, insert(t, orig, tc.key, member), "")
				require.NoError(t, err)
				assert.Equal(t, tokA, r.Token)
				assert.Equal(t, carrier.Header, r.Found)
				assert.Equal(t, tc.req, r.Request)
				assert.Equal(t, string(orig), string(r.Event), "everything but the knock byte for byte")
			})
		}
	}
}

func TestHTTPDuplicates(t *testing.T) {
	v1 := load(t, "apigw-rest-v1.json")
	v2 := load(t, "apigw-http-v2.json")
	both := func(a, b string) []byte {
		return insert(t, insert(t, v1, "headers", hdr("X-Plldb-Knock", a)), "multiValueHeaders", mhdr("X-Plldb-Knock", b))
	}
	for name, tc := range map[string]struct {
		ev    []byte
		token string
		err   error
		orig  []byte
	}{
		// API Gateway REST puts a header in both maps: one knock.
		"v1 headers and multiValueHeaders": {both(tokA, tokA), tokA, nil, v1},
		"v1 both maps, different":          {both(tokA, tokB), "", carrier.ErrConflict, v1},
		"v1 multi, same twice":             {insert(t, v1, "multiValueHeaders", mhdr("x-plldb-knock", tokA, tokA)), tokA, nil, v1},
		"v1 multi, different":              {insert(t, v1, "multiValueHeaders", mhdr("x-plldb-knock", tokA, tokB)), "", carrier.ErrConflict, v1},
		"v1 two spellings, same":           {insert(t, insert(t, v1, "headers", hdr("x-plldb-knock", tokA)), "headers", hdr("X-Plldb-Knock", tokA)), tokA, nil, v1},
		"v1 two spellings, different":      {insert(t, insert(t, v1, "headers", hdr("x-plldb-knock", tokA)), "headers", hdr("X-Plldb-Knock", tokB)), "", carrier.ErrConflict, v1},
		"v2 comma-joined, same":            {insert(t, v2, "headers", hdr("x-plldb-knock", tokA+","+tokA)), tokA, nil, v2},
		"v2 comma-joined with space":       {insert(t, v2, "headers", hdr("x-plldb-knock", tokA+", "+tokA)), tokA, nil, v2},
		"v2 comma-joined, different":       {insert(t, v2, "headers", hdr("x-plldb-knock", tokA+","+tokB)), "", carrier.ErrConflict, v2},
		"v2 two spellings, different":      {insert(t, insert(t, v2, "headers", hdr("X-PLLDB-KNOCK", tokB)), "headers", hdr("x-plldb-knock", tokA)), "", carrier.ErrConflict, v2},
		"v2 empty":                         {insert(t, v2, "headers", hdr("x-plldb-knock", "")), "", carrier.ErrMalformed, v2},
		"v2 only commas":                   {insert(t, v2, "headers", hdr("x-plldb-knock", ", ,")), "", carrier.ErrMalformed, v2},
		"v2 not a string":                  {insert(t, v2, "headers", `"x-plldb-knock": 42`), "", carrier.ErrMalformed, v2},
		"v1 multi not strings":             {insert(t, v1, "multiValueHeaders", `"x-plldb-knock": [1]`), "", carrier.ErrMalformed, v1},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := extract(t, tc.ev, "")
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.token, r.Token)
			assert.Equal(t, carrier.Header, r.Found)
			assert.Equal(t, string(tc.orig), string(r.Event), "every knock is removed, even when refused")
		})
	}
}

func TestClientContext(t *testing.T) {
	ev := []byte(`{"order": 42}`)
	cc := `{"client":{"installation_id":"i-1","app_title":"t"},"custom":{"plldbKnock":"` + tokA + `","k":"v"},"env":{"platform":"x"}}`
	r, err := extract(t, ev, cc)
	require.NoError(t, err)
	assert.Equal(t, tokA, r.Token)
	assert.Equal(t, carrier.ClientContext, r.Found)
	assert.Equal(t, `{"client":{"installation_id":"i-1","app_title":"t"},"custom":{"k":"v"},"env":{"platform":"x"}}`, r.ClientContext)
	assert.Same(t, &ev[0], &r.Event[0])
	assert.False(t, r.Request.HTTP)

	for name, tc := range map[string]struct {
		cc, want string
		err      error
	}{
		"only member":     {`{"custom": {"PLLDBKNOCK": "` + tokA + `"}}`, `{"custom": {}}`, nil},
		"last member":     {`{"custom": {"a": "b", "plldbknock": "` + tokA + `"}}`, `{"custom": {"a": "b"}}`, nil},
		"duplicate same":  {`{"custom": {"plldbKnock": "` + tokA + `", "plldbknock": "` + tokA + `"}}`, `{"custom": {}}`, nil},
		"duplicate other": {`{"custom": {"plldbKnock": "` + tokA + `", "plldbknock": "` + tokB + `"}}`, `{"custom": {}}`, carrier.ErrConflict},
		"not a string":    {`{"custom": {"plldbKnock": {"t": "x"}}}`, `{"custom": {}}`, carrier.ErrMalformed},
		"outside custom":  {`{"env": {"plldbKnock": "` + tokA + `"}}`, `{"env": {"plldbKnock": "` + tokA + `"}}`, nil},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := carrier.Extract(ev, tc.cc)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.want, r.ClientContext)
		})
	}

	// A knock in a header and in the client context: the same one is fine, two different ones are refused.
	v2 := load(t, "apigw-http-v2.json")
	r, err = extract(t, insert(t, v2, "headers", hdr("x-plldb-knock", tokA)), `{"custom":{"plldbKnock":"`+tokA+`"}}`)
	require.NoError(t, err)
	assert.Equal(t, carrier.Header|carrier.ClientContext, r.Found)
	assert.Equal(t, tokA, r.Token)
	assert.Equal(t, `{"custom":{}}`, r.ClientContext)
	assert.Equal(t, string(v2), string(r.Event))
	r, err = extract(t, insert(t, v2, "headers", hdr("x-plldb-knock", tokA)), `{"custom":{"plldbKnock":"`+tokB+`"}}`)
	require.ErrorIs(t, err, carrier.ErrConflict)
	assert.Empty(t, r.Token)
}

// sqsBatch builds an SQS event of n copies of the fixture's record, attrs[i] inserted into record i's
// messageAttributes ("" for none). It returns the event and the same event without the knocks.
func sqsBatch(t *testing.T, attrs ...string) (ev, want []byte) {
	orig := load(t, "sqs.json")
	var env struct{ Records []json.RawMessage }
	require.NoError(t, json.Unmarshal(orig, &env))
	rec := env.Records[0]
	var with, without [][]byte
	for _, a := range attrs {
		without = append(without, rec)
		if a == "" {
			with = append(with, rec)
		} else {
			with = append(with, insert(t, rec, "messageAttributes", a))
		}
	}
	join := func(rs [][]byte) []byte {
		return append(append([]byte(`{"Records": [`), bytes.Join(rs, []byte(", "))...), "]}"...)
	}
	return join(with), join(without)
}

func TestSQS(t *testing.T) {
	for name, tc := range map[string]struct {
		attrs []string
		token string
		err   error
	}{
		"one record":           {[]string{sqsAttr("plldbKnock", tokA)}, tokA, nil},
		"every record, same":   {[]string{sqsAttr("plldbKnock", tokA), sqsAttr("PlldbKnock", tokA), sqsAttr("plldbknock", tokA)}, tokA, nil},
		"mixed batch":          {[]string{sqsAttr("plldbKnock", tokA), ""}, "", carrier.ErrMixedBatch},
		"mixed batch, last":    {[]string{"", "", sqsAttr("plldbKnock", tokA)}, "", carrier.ErrMixedBatch},
		"different knocks":     {[]string{sqsAttr("plldbKnock", tokA), sqsAttr("plldbKnock", tokB)}, "", carrier.ErrConflict},
		"two in one record":    {[]string{sqsAttr("plldbKnock", tokA) + ", " + sqsAttr("PLLDBKNOCK", tokB)}, "", carrier.ErrConflict},
		"binary attribute":     {[]string{`"plldbKnock": {"binaryValue": "MTEwMA==", "dataType": "Binary"}`}, "", carrier.ErrMalformed},
		"empty string":         {[]string{sqsAttr("plldbKnock", "")}, "", carrier.ErrMalformed},
		"string attr, ignored": {[]string{sqsAttr("other", tokA)}, "", nil},
	} {
		t.Run(name, func(t *testing.T) {
			ev, want := sqsBatch(t, tc.attrs...)
			r, err := carrier.Extract(ev, "")
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.token, r.Token)
			if name == "string attr, ignored" {
				assert.Zero(t, r.Found)
				assert.Equal(t, string(ev), string(r.Event))
				return
			}
			assert.Equal(t, carrier.SQS, r.Found)
			assert.Equal(t, string(want), string(r.Event), "every knock removed, even when refused")
			assert.False(t, r.Request.HTTP)
		})
	}
	// Records from another source (S3) are never read for knocks.
	s3 := load(t, "s3.json")
	ev := insert(t, s3, "s3", `"plldbKnock": "`+tokA+`"`)
	r, err := carrier.Extract(ev, "")
	require.NoError(t, err)
	assert.Zero(t, r.Found)
}

func TestEventBridge(t *testing.T) {
	orig := load(t, "eventbridge.json")
	for _, name := range []string{"plldbKnock", "PLLDBKNOCK"} {
		r, err := extract(t, insert(t, orig, "detail", fmt.Sprintf(`%q: %q`, name, tokA)), "")
		require.NoError(t, err)
		assert.Equal(t, tokA, r.Token)
		assert.Equal(t, carrier.EventBridge, r.Found)
		assert.Equal(t, string(orig), string(r.Event))
	}
	r, err := extract(t, insert(t, orig, "detail", `"plldbKnock": ["x"]`), "")
	require.ErrorIs(t, err, carrier.ErrMalformed)
	assert.Equal(t, string(orig), string(r.Event))
	r, err = extract(t, insert(t, insert(t, orig, "detail", `"plldbKnock": "`+tokA+`"`), "detail", `"plldbKnock": "`+tokB+`"`), "")
	require.ErrorIs(t, err, carrier.ErrConflict)
	assert.Equal(t, string(orig), string(r.Event))
	// Elsewhere in an EventBridge event, plldbKnock is just data.
	ev := []byte(`{"detail-type": "x", "source": "s", "plldbKnock": "` + tokA + `", "detail": {}}`)
	r, err = carrier.Extract(ev, "")
	require.NoError(t, err)
	assert.Zero(t, r.Found)
	assert.Equal(t, string(ev), string(r.Event))
}

func TestWhitespaceAndPosition(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"{\"headers\": {\n  \"a\": \"1\",\n  \"X-Plldb-Knock\": \"" + tokA + "\",\n  \"b\": \"2\"\n}, \"httpMethod\": \"GET\", \"path\": \"/\"}",
			"{\"headers\": {\n  \"a\": \"1\",\n  \"b\": \"2\"\n}, \"httpMethod\": \"GET\", \"path\": \"/\"}"},
		{"{\"headers\": {\n  \"a\": \"1\",\n  \"X-Plldb-Knock\": \"" + tokA + "\"\n}}", "{\"headers\": {\n  \"a\": \"1\"\n}}"},
		{"{\"headers\": { \"X-Plldb-Knock\" : \"" + tokA + "\" }}", "{\"headers\": {  }}"},
		{"{\"headers\":{\"x-plldb-knock\":\"" + tokA + "\",\"X-Plldb-Knock\":\"" + tokA + "\"}}", "{\"headers\":{}}"},
		{"{\"headers\":{\"a\":1,\"x-plldb-knock\":\"" + tokA + "\",\"b\":2,\"X-Plldb-Knock\":\"" + tokA + "\"}}", "{\"headers\":{\"a\":1,\"b\":2}}"},
		{"{\"headers\":{\"x-plldb-knock\":\"" + tokA + "\",\"a\":1,\"X-Plldb-Knock\":\"" + tokA + "\",\"b\":2}}", "{\"headers\":{\"a\":1,\"b\":2}}"},
		{"{\"headers\":{\"a\":\"\\u00e9\\\"\",\"x-plldb-knock\":\"" + tokA + "\",\"n\":1.50e3}}", "{\"headers\":{\"a\":\"\\u00e9\\\"\",\"n\":1.50e3}}"},
		// A repeated top-level headers member: both are read and cleaned.
		{"{\"headers\":{\"x-plldb-knock\":\"" + tokA + "\"},\"headers\":{\"X-PLLDB-KNOCK\":\"" + tokA + "\"}}", "{\"headers\":{},\"headers\":{}}"},
	} {
		r, err := extract(t, []byte(tc.in), "")
		require.NoError(t, err, tc.in)
		assert.Equal(t, tokA, r.Token)
		assert.Equal(t, tc.want, string(r.Event))
	}
}

func TestMentionsThatAreNotCarriers(t *testing.T) {
	v2 := load(t, "apigw-http-v2.json")
	for _, ev := range [][]byte{
		insert(t, v2, "requestContext", `"x-plldb-knock": "`+tokA+`"`), // not the headers
		[]byte(`{"body": "{\"X-Plldb-Knock\": \"` + tokA + `\"}", "headers": {}}`),
		[]byte(`{"plldbKnock": "` + tokA + `"}`), // a direct invocation's payload: use the client context
		[]byte(`"x-plldb-knock"`),
		[]byte(`{"headers": {"X-Plldb-\u004bnock": "` + tokA + `"}}`), // escaped names are not recognized
	} {
		r, err := carrier.Extract(ev, "")
		require.NoError(t, err, string(ev))
		assert.Zero(t, r.Found, string(ev))
		assert.Equal(t, string(ev), string(r.Event))
	}
	// Not JSON, but mentions a knock: refused, and passed on as it is (the runtime will refuse it too).
	bad := []byte(`{"headers": {"x-plldb-knock": "` + tokA + `"`)
	r, err := carrier.Extract(bad, "")
	require.ErrorIs(t, err, carrier.ErrEvent)
	assert.Zero(t, r.Found)
	assert.Equal(t, string(bad), string(r.Event))
	r, err = carrier.Extract([]byte(`{}`), `{"custom":{"plldbKnock":`)
	require.ErrorIs(t, err, carrier.ErrEvent)
	assert.Empty(t, r.Token)
}

// The layer's whole decision: extract, verify, strip.
func TestCheck(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	now := time.Now()
	v, err := knock.NewVerifier(knock.Config{
		Keys:      map[string]ed25519.PublicKey{"s-alice": priv.Public().(ed25519.PublicKey)},
		Audiences: knock.Audiences("orders", "CreateOrder"),
		Now:       func() time.Time { return now },
	})
	require.NoError(t, err)
	mint := func(c knock.Claims) string {
		c.Issuer = "s-alice"
		if c.IssuedAt.IsZero() {
			c.IssuedAt = now
		}
		if c.Audience == "" {
			c.Audience = "orders/CreateOrder"
		}
		tok, err := knock.Mint(priv, c)
		require.NoError(t, err)
		return tok
	}
	stranger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
	forged, err := knock.Mint(stranger, knock.Claims{Issuer: "s-alice", Audience: "orders", IssuedAt: now})
	require.NoError(t, err)

	v2 := load(t, "function-url.json") // POST /my/path
	for name, tc := range map[string]struct {
		tok string
		err error
	}{
		"valid":           {mint(knock.Claims{}), nil},
		"route matches":   {mint(knock.Claims{Route: "POST /my/*"}), nil},
		"request matches": {mint(knock.Claims{Request: &knock.RequestBinding{Method: "POST", Path: "/my/path", Time: now}}), nil},
		"forged":          {forged, knock.ErrSignature},
		"other route":     {mint(knock.Claims{Route: "GET /my/*"}), knock.ErrRoute},
		"other request":   {mint(knock.Claims{Request: &knock.RequestBinding{Method: "POST", Path: "/my/other", Time: now}}), knock.ErrRequest},
		"other function":  {mint(knock.Claims{Audience: "orders/ListOrders"}), knock.ErrAudience},
		"expired":         {mint(knock.Claims{IssuedAt: now.Add(-time.Hour), Expires: now.Add(-30 * time.Minute)}), knock.ErrExpired},
		"garbage":         {"not-a-knock", knock.ErrMalformed},
		"oversize":        {strings.Repeat("A", knock.MaxTokenLen+1), knock.ErrOversize},
	} {
		t.Run(name, func(t *testing.T) {
			o := carrier.Check(v, insert(t, v2, "headers", hdr("X-Plldb-Knock", tc.tok)), "")
			assert.Equal(t, string(v2), string(o.Event), "stripped whether or not it verifies")
			assert.Equal(t, carrier.Header, o.Found)
			if tc.err != nil {
				require.ErrorIs(t, o.Err, tc.err)
				assert.False(t, o.Knocked)
				assert.NotContains(t, o.Err.Error(), tc.tok)
				return
			}
			require.NoError(t, o.Err)
			assert.True(t, o.Knocked)
			assert.Equal(t, "s-alice", o.Claims.Issuer)
		})
	}
	o := carrier.Check(v, v2, "")
	assert.Equal(t, carrier.Outcome{Event: v2}, o, "no knock: nothing to decide")
	// An SQS batch with a valid knock on every record goes to the developer; a route-bound one does not.
	ev, want := sqsBatch(t, sqsAttr("plldbKnock", mint(knock.Claims{})), sqsAttr("plldbKnock", mint(knock.Claims{})))
	o = carrier.Check(v, ev, "")
	require.ErrorIs(t, o.Err, carrier.ErrConflict, "two different knocks, even from the same developer")
	assert.Equal(t, string(want), string(o.Event))
	tok := mint(knock.Claims{})
	ev, _ = sqsBatch(t, sqsAttr("plldbKnock", tok), sqsAttr("plldbKnock", tok))
	o = carrier.Check(v, ev, "")
	require.NoError(t, o.Err)
	assert.True(t, o.Knocked)
	ev, _ = sqsBatch(t, sqsAttr("plldbKnock", mint(knock.Claims{Route: "POST /**"})))
	o = carrier.Check(v, ev, "")
	require.ErrorIs(t, o.Err, knock.ErrRoute)
}

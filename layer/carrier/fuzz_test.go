package carrier_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/plldb/plldb/layer/carrier"
)

// check holds for any invocation: Extract never panics; what it finds it removes (a second pass finds nothing);
// with nothing found the input comes back as it was; valid JSON stays valid; and the stripped event means what
// the original meant with the knock fields deleted, as encoding/json (last duplicate wins, like Python's json)
// reads both.
func check(t *testing.T, ev []byte, cc string) {
	r, err := carrier.Extract(ev, cc)
	if r.Found == 0 {
		if !bytes.Equal(r.Event, ev) || r.ClientContext != cc {
			t.Fatalf("nothing found, yet the invocation changed")
		}
		if err != nil && !strings.Contains(err.Error(), "not valid JSON") {
			t.Fatalf("nothing found, yet refused: %v", err)
		}
		return
	}
	if len(r.Event) > len(ev) || len(r.ClientContext) > len(cc) {
		t.Fatalf("stripping grew the invocation")
	}
	if json.Valid(ev) && !json.Valid(r.Event) {
		t.Fatalf("stripped event is not JSON: %q", r.Event)
	}
	if json.Valid([]byte(cc)) && !json.Valid([]byte(r.ClientContext)) {
		t.Fatalf("stripped client context is not JSON: %q", r.ClientContext)
	}
	if err == nil && r.Token == "" {
		t.Fatalf("found a knock but returned neither a token nor an error")
	}
	again, _ := carrier.Extract(r.Event, r.ClientContext)
	if again.Found != 0 {
		t.Fatalf("a second pass found knocks in %v", again.Found)
	}
	if json.Valid(ev) {
		want, got := decode(ev), decode(r.Event)
		strip(want)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("stripped event means something else:\n got %#v\nwant %#v", got, want)
		}
	}
	if json.Valid([]byte(cc)) && r.ClientContext != cc {
		want, got := decode([]byte(cc)), decode([]byte(r.ClientContext))
		if m, ok := want.(map[string]any); ok {
			if c, ok := m["custom"].(map[string]any); ok {
				dropFold(c, "plldbknock")
			}
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("stripped client context means something else:\n got %#v\nwant %#v", got, want)
		}
	}
}

func decode(b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	_ = d.Decode(&v)
	return v
}

func dropFold(m map[string]any, name string) {
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
}

// strip is the reference: the knock fields deleted from a decoded event, per the carrier rules.
func strip(v any) {
	top, ok := v.(map[string]any)
	if !ok {
		return
	}
	_, h1 := top["headers"]
	_, h2 := top["multiValueHeaders"]
	if h1 || h2 {
		for _, k := range []string{"headers", "multiValueHeaders"} {
			if m, ok := top[k].(map[string]any); ok {
				dropFold(m, "x-plldb-knock")
			}
		}
	}
	if _, ok := top["detail-type"]; ok {
		if m, ok := top["detail"].(map[string]any); ok {
			dropFold(m, "plldbknock")
		}
	}
	if recs, ok := top["Records"].([]any); ok {
		for _, r := range recs {
			if m, ok := r.(map[string]any); ok && m["eventSource"] == "aws:sqs" {
				if a, ok := m["messageAttributes"].(map[string]any); ok {
					dropFold(a, "plldbknock")
				}
			}
		}
	}
}

func seedEvents(f *testing.F, files []string, key string, members ...string) {
	for _, name := range files {
		ev := load(f, name)
		f.Add(ev, "")
		for _, m := range members {
			f.Add(insert(f, ev, key, m), "")
		}
	}
}

func FuzzExtractHTTP(f *testing.F) {
	seedEvents(f, []string{"apigw-http-v2.json", "alb.json"}, "headers",
		hdr("X-Plldb-Knock", tokA), hdr("x-plldb-knock", tokA+","+tokB), `"x-PLLDB-knock": 7`)
	seedEvents(f, []string{"apigw-rest-v1.json", "alb-multivalue.json"}, "multiValueHeaders",
		mhdr("X-Plldb-Knock", tokA), mhdr("x-plldb-knock", tokA, tokB))
	f.Add([]byte(`{"headers":{"x-plldb-knock":"a","x-plldb-knock":"b"},"headers":null}`), "")
	f.Fuzz(check)
}

func FuzzExtractClientContext(f *testing.F) {
	f.Add([]byte(`{}`), `{"custom":{"plldbKnock":"`+tokA+`"}}`)
	f.Add([]byte(`{}`), `{"client":{"installation_id":"i"},"custom":{"k":"v","PLLDBKNOCK":"`+tokA+`"},"env":{}}`)
	f.Add([]byte(`{}`), `{"custom":{"plldbKnock":"a"},"custom":{"plldbknock":"b"}}`)
	f.Add([]byte(`{"headers":{"x-plldb-knock":"a"}}`), `{"custom":{"plldbKnock":"a"}}`)
	f.Fuzz(check)
}

func FuzzExtractSQS(f *testing.F) {
	seedEvents(f, []string{"sqs.json"}, "messageAttributes",
		sqsAttr("plldbKnock", tokA), sqsAttr("PlldbKnock", ""), `"plldbKnock": {"binaryValue": "AA==", "dataType": "Binary"}`)
	f.Add([]byte(`{"Records":[{"eventSource":"aws:sqs","messageAttributes":{"plldbKnock":{"stringValue":"a"}}},{"eventSource":"aws:sqs"}]}`), "")
	f.Add([]byte(`{"Records":[{"eventSource":"aws:sqs","messageAttributes":{"plldbKnock":{"stringValue":"a"}},"messageAttributes":{"plldbknock":{"stringValue":"a"}}}]}`), "")
	f.Fuzz(check)
}

func FuzzExtractEventBridge(f *testing.F) {
	seedEvents(f, []string{"eventbridge.json"}, "detail", `"plldbKnock": "`+tokA+`"`, `"PLLDBKNOCK": null`)
	f.Add([]byte(`{"detail-type":"x","detail":{"plldbKnock":"a","plldbknock":"a"}}`), "")
	f.Fuzz(check)
}

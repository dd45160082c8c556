package wire

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A mirror copy and what the deployed code answered cross the relay and come out as they went in: the mirror
// flag, the payload byte for byte (large ones through the fast decoder, which encoding/json must agree with), the
// error document as awslambdaric wrote it.
func TestMirrorInvokeAndDeployedRoundTrip(t *testing.T) {
	inv := Invoke{RequestID: "r-1", Function: FunctionIdentity{Name: "orders-fn"}, Deadline: time.Unix(1700000000, 0).UTC(),
		Event: []byte(`{"a":1}`), Mirror: true}
	env, err := NewEnvelope(TypeInvoke, "r-1", inv)
	require.NoError(t, err)
	msg, err := Marshal(env)
	require.NoError(t, err)
	got, err := Unmarshal(msg)
	require.NoError(t, err)
	var back Invoke
	require.NoError(t, got.DecodeBody(&back))
	assert.Equal(t, inv, back)
	assert.True(t, back.Mirror)

	var plain Invoke
	require.NoError(t, (&Envelope{V: Version, T: TypeInvoke, Body: []byte(`{"requestId":"r"}`)}).DecodeBody(&plain))
	assert.False(t, plain.Mirror, "an invoke without the flag is not a copy")

	for name, d := range map[string]Deployed{
		"result": {RequestID: "r-1", Payload: []byte(`{"statusCode": 200, "body": "<&>"}`), ContentType: "application/json", DurationMs: 12},
		"bytes":  {RequestID: "r-1", Payload: []byte{0, 0xff, 'x'}, ContentType: "application/unknown"},
		"error": {RequestID: "r-1", Error: true, ErrorType: "ValueError",
			Payload: []byte(`{"errorMessage": "boom", "errorType": "ValueError", "requestId": "", "stackTrace": []}`), ContentType: "application/json"},
		"large": {RequestID: "r-1", Payload: bytes.Repeat([]byte("0123456789"), 100000), DurationMs: 3},
	} {
		env, err := NewEnvelope(TypeDeployed, "r-1", d)
		require.NoError(t, err, name)
		msg, err := Marshal(env)
		require.NoError(t, err, name)
		got, err := Unmarshal(msg)
		require.NoError(t, err, name)
		assert.Equal(t, TypeDeployed, got.T)
		var back, ref Deployed
		require.NoError(t, got.DecodeBody(&back), name)
		require.NoError(t, json.Unmarshal(got.Body, &ref), name)
		assert.Equal(t, d, back, name)
		assert.Equal(t, ref, back, name)
		assert.NoError(t, back.Check(got.ID), name)
	}
}

func TestDeployedCheckRefusesWhatCannotBeShown(t *testing.T) {
	ok := Deployed{RequestID: "r-1", Payload: []byte(`1`), ContentType: "application/json"}
	require.NoError(t, ok.Check("r-1"))
	errDoc := Deployed{RequestID: "r-1", Error: true, ErrorType: "E", Payload: []byte(` {"errorType": "E"} `)}
	require.NoError(t, errDoc.Check("r-1"))
	require.NoError(t, (&Deployed{RequestID: "r-1", Error: true}).Check("r-1"), "an error without a document")

	for name, c := range map[string]struct {
		d    Deployed
		id   string
		want string
	}{
		"no request id":       {Deployed{}, "", "without a request id"},
		"another envelope":    {Deployed{RequestID: "r-1"}, "r-2", `arrived in envelope "r-2"`},
		"header injection":    {Deployed{RequestID: "r-1", ContentType: "a/b\r\nX-Evil: 1"}, "r-1", "content type"},
		"not a media type":    {Deployed{RequestID: "r-1", ContentType: "json"}, "r-1", "content type"},
		"control in type":     {Deployed{RequestID: "r-1", Error: true, ErrorType: "E\x1b[2J", Payload: []byte(`{}`)}, "r-1", "control character"},
		"long type":           {Deployed{RequestID: "r-1", Error: true, ErrorType: strings.Repeat("E", MaxErrorTypeLen+1)}, "r-1", "longer than"},
		"invalid utf-8 type":  {Deployed{RequestID: "r-1", Error: true, ErrorType: "\xff"}, "r-1", "UTF-8"},
		"type without error":  {Deployed{RequestID: "r-1", ErrorType: "E"}, "r-1", "not an error"},
		"document not object": {Deployed{RequestID: "r-1", Error: true, Payload: []byte(`[1]`)}, "r-1", "not a JSON object"},
		"document not json":   {Deployed{RequestID: "r-1", Error: true, Payload: []byte(`{"a":`)}, "r-1", "not valid JSON"},
		"negative duration":   {Deployed{RequestID: "r-1", DurationMs: -1}, "r-1", "negative duration"},
	} {
		err := c.d.Check(c.id)
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), c.want, name)
		}
	}
}

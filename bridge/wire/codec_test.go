package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewEnvelopeDecodeBodyRoundTrip(t *testing.T) {
	in := Invoke{
		RequestID: "req-1",
		Function:  FunctionIdentity{Name: "fn", MemoryMB: 128},
		Deadline:  time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC),
		Event:     []byte(`{"hello":"<world>"}`),
		Env:       map[string]string{"A": "b"},
	}
	e, err := NewEnvelope(TypeInvoke, "req-1", in)
	require.NoError(t, err)
	assert.Equal(t, Version, e.V)
	assert.Equal(t, TypeInvoke, e.T)

	msg, err := Marshal(e)
	require.NoError(t, err)
	got, err := Unmarshal(msg)
	require.NoError(t, err)
	assert.Equal(t, e, got)

	var out Invoke
	require.NoError(t, got.DecodeBody(&out))
	assert.Equal(t, in, out)
}

func TestNewEnvelopeNilBodyIsAbsent(t *testing.T) {
	e, err := NewEnvelope(TypeBye, "", nil)
	require.NoError(t, err)
	assert.Nil(t, e.Body)
	msg, err := Marshal(e)
	require.NoError(t, err)
	assert.JSONEq(t, `{"v":1,"t":"bye"}`, string(msg))

	var bye Bye
	require.NoError(t, e.DecodeBody(&bye), "an absent body decodes like {}")
	assert.Equal(t, Bye{}, bye)
}

func TestNewEnvelopeRefusesNonObjectBody(t *testing.T) {
	_, err := NewEnvelope(TypeLog, "x", "just a string")
	require.ErrorContains(t, err, "does not encode to a JSON object")
	_, err = NewEnvelope(TypeLog, "x", []int{1})
	require.ErrorContains(t, err, "does not encode to a JSON object")
	_, err = NewEnvelope(TypeLog, "x", map[string]any{"f": func() {}})
	require.ErrorContains(t, err, "encode log body")
}

func TestDecodeBodyErrorNamesType(t *testing.T) {
	e := &Envelope{V: Version, T: TypeResult, ID: "r1", Body: json.RawMessage(`{"requestId":5}`)}
	var r Result
	err := e.DecodeBody(&r)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "decode result body")
	assert.Contains(t, err.Error(), `"r1"`)
}

func TestMarshalRejects(t *testing.T) {
	long := strings.Repeat("p", MaxPeerLen+1)
	cases := []struct {
		name string
		e    *Envelope
		want string
	}{
		{"nil", nil, "nil envelope"},
		{"version zero", &Envelope{T: TypePing}, "unsupported protocol version 0"},
		{"no type", &Envelope{V: Version}, `missing message type`},
		{"long to", &Envelope{V: Version, T: TypePing, To: long}, `"to" is 129 bytes`},
		{"long from", &Envelope{V: Version, T: TypePing, From: long}, `"from" is 129 bytes`},
		{"long id", &Envelope{V: Version, T: TypePing, ID: strings.Repeat("i", MaxIDLen+1)}, `"id" is 257 bytes`},
		{"invalid UTF-8 to", &Envelope{V: Version, T: TypePing, To: "fn\xff"}, "not valid UTF-8"},
		{"array body", &Envelope{V: Version, T: TypePing, Body: json.RawMessage(`[1]`)}, "body is not a JSON object"},
		{"invalid body", &Envelope{V: Version, T: TypePing, Body: json.RawMessage(`{"a":`)}, "marshal ping envelope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Marshal(tc.e)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestUnmarshalErrors(t *testing.T) {
	long := strings.Repeat("p", MaxPeerLen+1)
	cases := []struct {
		name, msg, want string
	}{
		{"empty", ``, "empty message"},
		{"whitespace", " \n\t", "empty message"},
		{"array", `[1,2]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"number", `1`, "not a JSON object"},
		{"invalid json", `{"v":1,"t":"ping"`, "unmarshal envelope"},
		{"trailing garbage", `{"v":1,"t":"ping"} x`, "unmarshal envelope"},
		{"wrong version", `{"v":2,"t":"ping"}`, "unsupported protocol version 2 (want 1)"},
		{"missing version", `{"t":"ping"}`, "unsupported protocol version 0"},
		{"version as string", `{"v":"1","t":"ping"}`, "unmarshal envelope"},
		{"missing type", `{"v":1}`, "missing message type"},
		{"empty type", `{"v":1,"t":""}`, "missing message type"},
		{"body array", `{"v":1,"t":"ping","body":[1]}`, "body is not a JSON object"},
		{"body string", `{"v":1,"t":"ping","body":"x"}`, "body is not a JSON object"},
		{"body number", `{"v":1,"t":"ping","body":3}`, "body is not a JSON object"},
		{"long id", `{"v":1,"t":"ping","id":"` + strings.Repeat("i", MaxIDLen+1) + `"}`, `"id" is 257 bytes`},
		{"long to", `{"v":1,"t":"ping","to":"` + long + `"}`, `"to" is 129 bytes`},
		{"long from", `{"v":1,"t":"ping","from":"` + long + `"}`, `"from" is 129 bytes`},
		{"long type", `{"v":1,"t":"` + strings.Repeat("t", MaxTypeLen+1) + `"}`, `"t" is 65 bytes`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Unmarshal([]byte(tc.msg))
			require.ErrorContains(t, err, tc.want)
			assert.Nil(t, e)
		})
	}
}

func TestUnmarshalRefusesOversize(t *testing.T) {
	msg := []byte(`{"v":1,"t":"ping","body":{"x":"` + strings.Repeat("a", MaxEnvelopeBytes) + `"}}`)
	_, err := Unmarshal(msg)
	require.ErrorContains(t, err, "exceeds the 10485760-byte limit")
}

func TestUnmarshalAccepts(t *testing.T) {
	e, err := Unmarshal([]byte(` {"v":1,"t":"future","id":"a","to":"b","from":"c","extra":[1,{"y":2}],"body":null} `))
	require.NoError(t, err)
	assert.Equal(t, &Envelope{V: 1, T: "future", ID: "a", To: "b", From: "c"}, e, "null body is absent, unknown fields ignored")

	msg := []byte(`{"v":1,"t":"log","body": {"text" : "a<b"} }`)
	e, err = Unmarshal(msg)
	require.NoError(t, err)
	assert.Equal(t, `{"text" : "a<b"}`, string(e.Body), "body bytes are kept as sent")
	msg[len(msg)-5] = 'X'
	assert.Equal(t, `{"text" : "a<b"}`, string(e.Body), "the envelope does not alias the message")
}

func TestMarshalSmallMessageShape(t *testing.T) {
	e, err := NewEnvelope(TypeAck, "req", Ack{RequestID: "req"})
	require.NoError(t, err)
	e.To = "fn-1"
	msg, err := Marshal(e)
	require.NoError(t, err)
	assert.Equal(t, `{"v":1,"t":"ack","id":"req","to":"fn-1","body":{"requestId":"req"}}`, string(msg))
}

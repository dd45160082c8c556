package wire

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPeekHeader(t *testing.T) {
	cases := []struct {
		name string
		msg  string
		want Header
	}{
		{"plain", `{"v":1,"t":"invoke","id":"r1","to":"fn","from":"dev","body":{"a":1}}`,
			Header{V: 1, T: TypeInvoke, ID: "r1", To: "fn", From: "dev"}},
		{"whitespace and order", " {\n \"body\" : {\"t\":\"nested\"} , \"to\":\"fn\", \"t\" :\"ack\",\"v\": 1 }\r\n",
			Header{V: 1, T: TypeAck, To: "fn"}},
		{"case-insensitive keys like encoding/json", `{"V":1,"T":"ack","To":"fn","FROM":"x"}`,
			Header{V: 1, T: TypeAck, To: "fn", From: "x"}},
		{"escaped keys", `{"\u0076":1,"t":"ack","\u0074o":"fn"}`, Header{V: 1, T: TypeAck, To: "fn"}},
		{"last duplicate wins", `{"v":1,"t":"ack","to":"a","to":"b"}`, Header{V: 1, T: TypeAck, To: "b"}},
		{"null leaves the earlier value", `{"v":1,"t":"ack","to":"a","to":null}`, Header{V: 1, T: TypeAck, To: "a"}},
		{"escaped values", `{"v":1,"t":"ack","to":"f\u006e\n"}`, Header{V: 1, T: TypeAck, To: "fn\n"}},
		{"brackets inside strings", `{"v":1,"t":"ack","x":{"s":"}]\"{"},"to":"fn"}`, Header{V: 1, T: TypeAck, To: "fn"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := PeekHeader([]byte(tc.msg))
			require.NoError(t, err)
			assert.Equal(t, tc.want, h)
			// The relay and the receiving peer must agree on the header.
			e, err := Unmarshal([]byte(tc.msg))
			require.NoError(t, err)
			assert.Equal(t, h, headerOf(e))
		})
	}
}

func TestPeekHeaderDoesNotValidateBody(t *testing.T) {
	msg := []byte(`{"v":1,"t":"chunk","to":"fn","body":{"data":tru, "x":[1 2]}}`)
	h, err := PeekHeader(msg)
	require.NoError(t, err)
	assert.Equal(t, Header{V: 1, T: TypeChunk, To: "fn"}, h)
	_, err = Unmarshal(msg)
	require.Error(t, err, "the receiving peer still rejects the invalid body")
}

func TestPeekHeaderErrors(t *testing.T) {
	long := strings.Repeat("p", MaxPeerLen+1)
	cases := []struct{ name, msg, want string }{
		{"empty", ``, "empty message"},
		{"array", `[{"v":1}]`, "not a JSON object"},
		{"string", `"v"`, "not a JSON object"},
		{"unterminated object", `{"v":1,"t":"ack"`, "unexpected end of message"},
		{"unterminated string", `{"v":1,"t":"ack`, "unterminated string"},
		{"unterminated body", `{"v":1,"t":"ack","body":{"a":[1}`, "mismatched"},
		{"unclosed body", `{"v":1,"t":"ack","body":{"a":[1]`, "unterminated"},
		{"missing colon", `{"v" 1}`, "expected ':'"},
		{"missing comma", `{"v":1 "t":"ack"}`, "expected ',' or '}'"},
		{"non-string key", `{v:1}`, "expected a string key"},
		{"missing value", `{"v":}`, "expected a value"},
		{"trailing data", `{"v":1,"t":"ack"}{}`, "data after the top-level object"},
		{"control character", "{\"v\":1,\"t\":\"a\x01ck\"}", "control character"},
		{"version type", `{"v":"1","t":"ack"}`, `field "v"`},
		{"to type", `{"v":1,"t":"ack","to":5}`, `field "to"`},
		{"bad escape in value", `{"v":1,"t":"ack","to":"\x"}`, `field "to"`},
		{"wrong version", `{"v":3,"t":"ack"}`, "unsupported protocol version 3"},
		{"no type", `{"v":1}`, "missing message type"},
		{"long to", `{"v":1,"t":"ack","to":"` + long + `"}`, `"to" is 129 bytes`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PeekHeader([]byte(tc.msg))
			require.ErrorContains(t, err, tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "peek header: "), err.Error())
		})
	}
}

func TestPeekHeaderReturnsHeaderWithValidationError(t *testing.T) {
	h, err := PeekHeader([]byte(`{"v":2,"t":"invoke","id":"r9"}`))
	require.ErrorContains(t, err, "unsupported protocol version 2")
	assert.Equal(t, "r9", h.ID, "the relay can still name the message in a nack")
}

func TestRestamp(t *testing.T) {
	body := `{ "z" : "a<b>&c" ,"a":[1, 2] }`
	cases := []struct{ name, msg string }{
		{"no from", `{"v":1,"t":"log","to":"fn","body":` + body + `}`},
		{"sender from", `{"v":1,"t":"log","from":"spoof","to":"fn","body":` + body + `}`},
		{"upper-case from", `{"v":1,"t":"log","FROM":"spoof","to":"fn","body":` + body + `}`},
		{"escaped from", `{"v":1,"t":"log","\u0066rom":"spoof","to":"fn","body":` + body + `}`},
		{"several froms", `{"from":"a","v":1,"From":"b","t":"log","to":"fn","body":` + body + `,"fRoM":"c"}`},
		{"over-long sender from", `{"v":1,"t":"log","from":"` + strings.Repeat("s", 500) + `","to":"fn","body":` + body + `}`},
	}
	peer := strings.Repeat("P", MaxPeerLen)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Restamp([]byte(tc.msg), peer)
			require.NoError(t, err)
			e, err := Unmarshal(out)
			require.NoError(t, err, string(out))
			assert.Equal(t, peer, e.From)
			assert.Equal(t, "fn", e.To)
			assert.Equal(t, body, string(e.Body), "body bytes pass through unchanged")
			assert.Equal(t, 1, strings.Count(strings.ToLower(string(out)), `"from"`))
			assert.NotContains(t, string(out), "spoof")

			h, err := PeekHeader(out)
			require.NoError(t, err)
			assert.Equal(t, peer, h.From)

			again, err := Restamp(out, "other")
			require.NoError(t, err)
			e2, err := Unmarshal(again)
			require.NoError(t, err)
			assert.Equal(t, "other", e2.From)
		})
	}
}

func TestRestampCanonicalOrder(t *testing.T) {
	out, err := Restamp([]byte(`{"v":1,"t":"result","id":"r","body":{"requestId":"r"}}`), "fn-1")
	require.NoError(t, err)
	assert.Equal(t, `{"v":1,"t":"result","id":"r","from":"fn-1","body":{"requestId":"r"}}`, string(out))

	out, err = Restamp([]byte(`{"v":1,"t":"ping"}`), "fn-1")
	require.NoError(t, err)
	assert.Equal(t, `{"v":1,"t":"ping","from":"fn-1"}`, string(out))

	out, err = Restamp([]byte(`{}`), "fn-1")
	require.ErrorContains(t, err, "unsupported protocol version 0")
	assert.Nil(t, out)
}

func TestRestampEscapesPeer(t *testing.T) {
	out, err := Restamp([]byte(`{"v":1,"t":"ping"}`), "a\"b\\c\n")
	require.NoError(t, err)
	e, err := Unmarshal(out)
	require.NoError(t, err)
	assert.Equal(t, "a\"b\\c\n", e.From)
}

func TestRestampErrors(t *testing.T) {
	valid := []byte(`{"v":1,"t":"ping"}`)
	_, err := Restamp(valid, "")
	require.ErrorContains(t, err, "empty peer id")
	_, err = Restamp(valid, strings.Repeat("p", MaxPeerLen+1))
	require.ErrorContains(t, err, "peer id is 129 bytes, longer than 128")
	_, err = Restamp(valid, "fn-\xff")
	require.ErrorContains(t, err, "peer id is not valid UTF-8")

	for _, msg := range []string{``, `[]`, `{"v":1,"t":"ping"`, `{"v":2,"t":"ping"}`, `{"v":1}`, `{"v":1,"t":"x"} x`,
		`{"v":1,"t":"x","to":"` + strings.Repeat("p", MaxPeerLen+1) + `"}`} {
		out, err := Restamp([]byte(msg), "fn")
		require.Error(t, err, msg)
		assert.True(t, strings.HasPrefix(err.Error(), "restamp: "), err.Error())
		assert.Nil(t, out)
	}
}

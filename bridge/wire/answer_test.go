package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// awslambdaric's error document crosses the relay byte for byte: its separators, its empty requestId and
// stackTrace, and characters encoding/json would escape (<, >, &) if the document were re-encoded.
func TestErrorDocumentCrossesUnchanged(t *testing.T) {
	doc := []byte(`{"errorMessage": "a < b & c > d \u00fc", "errorType": "ValueError", "requestId": "", "stackTrace": []}`)
	env, err := NewEnvelope(TypeError, "r", Error{RequestID: "r", ErrorType: "ValueError", ErrorMessage: "a < b & c > d ü", Document: doc})
	require.NoError(t, err)
	msg, err := Marshal(env)
	require.NoError(t, err)
	got, err := Unmarshal(msg)
	require.NoError(t, err)
	var e Error
	require.NoError(t, got.DecodeBody(&e))
	assert.Equal(t, string(doc), string(e.Document))
	assert.NoError(t, e.CheckDocument())
}

func TestOlderPeerErrorHasNoDocument(t *testing.T) {
	var e Error
	env := &Envelope{V: Version, T: TypeError, Body: []byte(`{"requestId":"r","errorMessage":"m","errorType":"E"}`)}
	require.NoError(t, env.DecodeBody(&e))
	assert.Empty(t, e.Document)
	assert.NoError(t, e.CheckDocument())
}

func TestCheckDocumentRefusesWhatIsNotAnObject(t *testing.T) {
	for name, doc := range map[string]string{
		"array": `[1]`, "string": `"boom"`, "number": `1`, "null": `null`, "truncated": `{"a":`, "two values": `{} {}`,
		"not json": "\xff",
	} {
		e := Error{RequestID: "r-1", Document: []byte(doc)}
		err := e.CheckDocument()
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), `error document of "r-1"`, name)
		}
	}
	e := Error{Document: []byte(" {\"errorType\": \"E\"} \n")}
	assert.NoError(t, e.CheckDocument())
}

func TestValidContentType(t *testing.T) {
	for _, ct := range []string{"", "application/json", "application/unknown", `text/plain; charset="utf-8"`} {
		assert.NoError(t, ValidContentType(ct), ct)
	}
	for _, ct := range []string{"json", "a/b\r\nX-Evil: 1", "application/jsön", "a/b; c", string(make([]byte, MaxContentTypeLen+1))} {
		assert.Error(t, ValidContentType(ct), "%q", ct)
	}
}

func TestInvokeAndResultCarryTenantAndContentType(t *testing.T) {
	env, err := NewEnvelope(TypeInvoke, "r", Invoke{RequestID: "r", Event: []byte(`{}`), TenantID: "tenant-ü"})
	require.NoError(t, err)
	var inv Invoke
	require.NoError(t, env.DecodeBody(&inv))
	assert.Equal(t, "tenant-ü", inv.TenantID)

	env, err = NewEnvelope(TypeResult, "r", Result{RequestID: "r", Payload: []byte{0, 0xff}, ContentType: "application/unknown"})
	require.NoError(t, err)
	var r Result
	require.NoError(t, env.DecodeBody(&r))
	assert.Equal(t, "application/unknown", r.ContentType)
	assert.Equal(t, []byte{0, 0xff}, r.Payload)
}

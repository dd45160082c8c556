package wire

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func bigInvoke() Invoke {
	return Invoke{
		RequestID: "req-fast",
		Function:  FunctionIdentity{Name: "fn", LogicalID: "Fn", MemoryMB: 256},
		Deadline:  time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC),
		Event:     bytes.Repeat([]byte(`{"k":"v"},`), 2000),
		Env:       map[string]string{"A": "b"},
	}
}

func TestFastDecodeMatchesEncodingJSON(t *testing.T) {
	in := bigInvoke()
	e, err := NewEnvelope(TypeInvoke, in.RequestID, in)
	require.NoError(t, err)
	var fast, slow Invoke
	require.NoError(t, e.DecodeBody(&fast))
	require.NoError(t, json.Unmarshal(e.Body, &slow))
	assert.Equal(t, slow, fast)
	assert.Equal(t, in, fast)

	res := Result{RequestID: "r", Payload: bytes.Repeat([]byte("x"), 10000)}
	e, err = NewEnvelope(TypeResult, "r", res)
	require.NoError(t, err)
	var got Result
	require.NoError(t, e.DecodeBody(&got))
	assert.Equal(t, res, got)
}

func TestFastDecodeFallsBackOnUnusualBodies(t *testing.T) {
	in := bigInvoke()
	raw, err := json.Marshal(in)
	require.NoError(t, err)
	// A second spelling of the key: encoding/json lets the last one win, and so must DecodeBody.
	other := []byte(`,"Event":"AAEC"}`)
	dup := append(append([]byte{}, raw[:len(raw)-1]...), other...)
	var got Invoke
	require.NoError(t, (&Envelope{V: Version, T: TypeInvoke, Body: dup}).DecodeBody(&got))
	assert.Equal(t, []byte{0, 1, 2}, got.Event)

	// Escaped base64 (valid JSON) decodes as encoding/json decodes it.
	esc := bytes.Replace(raw, []byte(`"event":"`), []byte(`"event":"\u0065`), 1)
	var want Invoke
	if json.Unmarshal(esc, &want) == nil {
		got = Invoke{}
		require.NoError(t, (&Envelope{V: Version, T: TypeInvoke, Body: esc}).DecodeBody(&got))
		assert.Equal(t, want, got)
	}
}

// FuzzDecodeBodyInvoke checks DecodeBody's direct path against encoding/json on arbitrary bodies.
func FuzzDecodeBodyInvoke(f *testing.F) {
	raw, _ := json.Marshal(bigInvoke())
	f.Add(raw)
	f.Add([]byte(`{"event":"AAEC","requestId":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) < 4096 { // the direct path only takes large bodies
			body = append(bytes.Repeat([]byte(" "), 4096), body...)
		}
		var slow, fast Invoke
		slowErr := json.Unmarshal(body, &slow)
		fastErr := (&Envelope{V: Version, T: TypeInvoke, Body: body}).DecodeBody(&fast)
		if slowErr != nil {
			return // DecodeBody may or may not notice: Unmarshal validates bodies before anyone decodes them
		}
		require.NoError(t, fastErr)
		assert.Equal(t, slow, fast)
	})
}

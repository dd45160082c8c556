package wire

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package if anything is left running: nothing in wire is asynchronous.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestMarshalKeepsBodyBytes(t *testing.T) {
	body := `{ "text" : "a<b>&c", "n": [1, 2] }`
	msg, err := Marshal(&Envelope{V: Version, T: TypeLog, Body: json.RawMessage(body)})
	require.NoError(t, err)
	assert.Equal(t, `{"v":1,"t":"log","body":`+body+`}`, string(msg), "the body is copied, not re-encoded")

	// Header strings are escaped exactly as encoding/json escapes them.
	e := &Envelope{V: Version, T: "t\"<", ID: "é\n", To: "a&b", From: "\u2028"}
	msg, err = Marshal(e)
	require.NoError(t, err)
	ref, err := json.Marshal(e)
	require.NoError(t, err)
	assert.Equal(t, string(ref), string(msg))
}

func TestMarshalChunkMatchesGenericEncoding(t *testing.T) {
	c := Chunk{Msg: "m<1>", Seq: 3, Count: 9, Size: 12345, Sum: "ab", Enc: EncZstd, Data: []byte{0, 1, 2, 250, 251}}
	msg, err := marshalChunk("fn&1", c)
	require.NoError(t, err)
	e, err := Unmarshal(msg)
	require.NoError(t, err)

	ref, err := NewEnvelope(TypeChunk, e.ID, c)
	require.NoError(t, err)
	ref.To = "fn&1"
	want, err := Marshal(ref)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(msg))
}

func TestChunkBodyFastPathAgreesWithEncodingJSON(t *testing.T) {
	bodies := []string{
		`{"msg":"m","seq":1,"count":2,"size":3,"sum":"s","enc":"zstd","data":"AAEC"}`,
		`{"msg":"m","seq":-0,"count":0,"size":-7,"data":""}`,
		`{}`,
		// Anything unusual takes encoding/json's path, with its semantics.
		`{"MSG":"m","Seq":1}`,
		`{"msg":"a","msg":"b"}`,
		`{"msg":"\u006d","data":"AA\u003d\u003d"}`,
		`{"msg":"m","seq":1.0}`,
		`{"msg":"m","seq":1e2}`,
		`{"msg":"m","data":null}`,
		`{"msg":"m","extra":{"x":[1]}}`,
		`{"msg":"m","data":"!!"}`,
		`{"msg":"m","seq":00}`,
		`{"msg":"\xff"}`,
	}
	for _, body := range bodies {
		e := &Envelope{V: Version, T: TypeChunk, Body: json.RawMessage(body)}
		got, err := decodeChunkBody(e)
		var want Chunk
		wantErr := json.Unmarshal([]byte(body), &want)
		if wantErr != nil {
			assert.Error(t, err, body)
			continue
		}
		require.NoError(t, err, body)
		assert.Equal(t, want, got, body)
	}
}

func TestNoGoroutinesLeft(t *testing.T) {
	e := invokeEnvelope(t, randomEvent(400_000, 77))
	msgs, err := Split(e)
	require.NoError(t, err)
	r := NewReassembler(ReassemblerOptions{MaxEnvelope: 2 << 20})
	var out *Envelope
	for _, m := range msgs {
		env, err := Unmarshal(m)
		require.NoError(t, err)
		out, err = r.Add(env)
		require.NoError(t, err)
	}
	require.NotNil(t, out)
	// Nothing here is asynchronous (concurrency 1, EncodeAll/DecodeAll only), so no goroutine may remain. No
	// IgnoreCurrent: the package's zstd coders are built once and cached, maybe by an earlier test, and must
	// not be running anything either.
	goleak.VerifyNone(t)
}

// TestCompressionIsLazy runs the test binary again so that package state is fresh: a process that only
// passes small envelopes through (the layer proxy without a session) must never build a zstd coder.
func TestCompressionIsLazy(t *testing.T) {
	if os.Getenv("WIRE_LAZY_CHILD") == "1" {
		e, err := NewEnvelope(TypeAck, "r", Ack{RequestID: "r"})
		require.NoError(t, err)
		msgs, err := Split(e)
		require.NoError(t, err)
		stamped, err := Restamp(msgs[0], "fn")
		require.NoError(t, err)
		back, err := Unmarshal(stamped)
		require.NoError(t, err)
		_, err = NewReassembler(ReassemblerOptions{}).Add(back)
		require.NoError(t, err)
		if encZ != nil || decZ != nil {
			t.Fatal("a zstd coder was created without anything to compress")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCompressionIsLazy$", "-test.v")
	cmd.Env = append(os.Environ(), "WIRE_LAZY_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "--- PASS: TestCompressionIsLazy")
}

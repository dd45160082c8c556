package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/runtimeapi"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/rie"
)

// Frame types of awslambdaric (lambda_runtime_log_utils.py).
const (
	frameTextInfo  = 0xA55A000F
	frameTextError = 0xA55A0017
	frameJSONWarn  = 0xA55A0012
)

// testFrame is one frame as awslambdaric's FramedTelemetryLogSink writes it.
type testFrame struct {
	Type    uint32
	Time    int64 // µs
	Message string
}

// parseFrames splits a telemetry stream into frames; rest is an incomplete frame at the end.
func parseFrames(b []byte) (fs []testFrame, rest []byte) {
	for len(b) >= 16 {
		n := int(binary.BigEndian.Uint32(b[4:8]))
		if len(b) < 16+n {
			break
		}
		fs = append(fs, testFrame{binary.BigEndian.Uint32(b[0:4]), int64(binary.BigEndian.Uint64(b[8:16])), string(b[16 : 16+n])})
		b = b[16+n:]
	}
	return fs, b
}

// recordingWriter counts Write calls: each frame must be one write(2).
type recordingWriter struct{ writes [][]byte }

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

// relayedLogs are what a developer's executor sends for a handler that prints two lines and an unfinished
// one, logs a two-line record, and fails.
func relayedLogs(rid string, at time.Time) []wire.Log {
	info := "[INFO]\t2026-01-02T03:04:05.678Z\t" + rid + "\tinfo one\ninfo two\n"
	return []wire.Log{
		{RequestID: rid, Time: at, Stream: "stdout", Text: "printed one\nprinted two\n"},
		{RequestID: rid, Time: at.Add(time.Millisecond), Stream: "stdout", Text: "unfinished " + info, Lead: len("unfinished "),
			Frame: frameTextInfo, Record: info},
		{RequestID: rid, Time: at.Add(2 * time.Millisecond), Stream: "stdout",
			Text:  "[ERROR] ValueError: bad\nthing\rTraceback (most recent call last):\r\u00a0\u00a0File \"/x/app.py\", line 3, in handler\n",
			Frame: frameTextError, Record: "[ERROR] ValueError: bad\nthing\nTraceback (most recent call last):\n\u00a0\u00a0File \"/x/app.py\", line 3, in handler"},
	}
}

func TestWriteLogWithoutTelemetryIsPlainStdout(t *testing.T) {
	var out bytes.Buffer
	for _, l := range relayedLogs("r-1", time.Now()) {
		require.NoError(t, writeLog(&out, nil, &l))
	}
	// Byte for byte what the proxy printed before frames existed: each Text, newline-terminated.
	want := ""
	for _, l := range relayedLogs("r-1", time.Now()) {
		want += l.Text
	}
	assert.Equal(t, want, out.String())
}

func TestWriteLogFramesRecords(t *testing.T) {
	var out bytes.Buffer
	tel := &recordingWriter{}
	at := time.UnixMicro(1_767_000_000_123_456)
	logs := relayedLogs("r-1", at)
	for _, l := range logs {
		require.NoError(t, writeLog(&out, tel, &l))
	}
	assert.Equal(t, "printed one\nprinted two\nunfinished ", out.String(), "plain output and the unfinished line stay on stdout")
	require.Len(t, tel.writes, 2, "one write per frame")
	for i, w := range tel.writes {
		l := logs[i+1]
		fs, rest := parseFrames(w)
		require.Empty(t, rest)
		require.Len(t, fs, 1)
		assert.Equal(t, testFrame{l.Frame, l.Time.UnixMicro(), l.Record}, fs[0])
	}
	// The header byte for byte: type, length, timestamp, big-endian.
	assert.Equal(t, []byte{0xA5, 0x5A, 0x00, 0x0F, 0, 0, 0, byte(len(logs[1].Record))}, tel.writes[0][:8])

	// A record that is its text comes without Record: the frame is the same.
	tel.writes = nil
	short := logs[1]
	short.Record = ""
	require.NoError(t, writeLog(&out, tel, &short))
	require.Len(t, tel.writes, 1)
	fs, _ := parseFrames(tel.writes[0])
	assert.Equal(t, []testFrame{{short.Frame, short.Time.UnixMicro(), logs[1].Record}}, fs)

	// An empty message (context.log("")) is still a frame, as awslambdaric writes it.
	tel.writes = nil
	require.NoError(t, writeLog(&out, tel, &wire.Log{Time: at, Frame: frameJSONWarn}))
	require.Len(t, tel.writes, 1)
	assert.Len(t, tel.writes[0], 16)
}

func TestBadFramingIsRefused(t *testing.T) {
	for _, l := range []wire.Log{
		{Text: "x", Frame: 0xA55A0004},
		{Text: "x", Frame: 0xA55A001C},
		{Text: "x", Frame: 1},
		{Text: "x", Frame: frameTextInfo, Lead: 2},
		{Text: "x", Frame: frameTextInfo, Lead: -1},
		{Text: "x", Record: "y"},
		{Text: "x", Lead: 1},
	} {
		assert.Error(t, l.CheckFrame(), "%+v", l)
	}
	for _, typ := range []uint32{0xA55A0002, 0xA55A0003, 0xA55A000A, 0xA55A000B, 0xA55A000E, 0xA55A000F,
		0xA55A0012, 0xA55A0013, 0xA55A0016, 0xA55A0017, 0xA55A001A, 0xA55A001B} {
		l := wire.Log{Text: "x", Frame: typ, Record: "x", Lead: 1}
		assert.NoError(t, l.CheckFrame(), "%#x", typ)
	}
}

// telemetryPipe is a stand-in for Lambda's telemetry pipe: w is the end to hand the sandbox (as fd 3), pipe
// gathers what is written to it. Its cleanup, registered now, runs after those registered later.
func telemetryPipe(t *testing.T) (w *os.File, pipe *logbuf.Buffer) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	pipe = &logbuf.Buffer{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(pipe, r)
	}()
	t.Cleanup(func() { r.Close(); <-copied })
	return w, pipe
}

// TestRelayedLogsFramedOnTheTelemetryPipe runs the layer in a sandbox that has Lambda's telemetry pipe: the
// records a developer relays arrive there as awslambdaric's frames, plain output on stdout, and the original
// runtime the proxy falls back to still has the pipe and its variable.
func TestRelayedLogsFramedOnTheTelemetryPipe(t *testing.T) {
	// Before the sandbox starts, so that the pipe's cleanup runs after the sandbox has stopped.
	w, pipe := telemetryPipe(t)

	rig := startRelay(t)
	sb := startSandbox(t, sandboxOpts{
		handler:    "telemetry.handler",
		env:        rig.env("PLLDB_ACK_TIMEOUT=300ms", "_LAMBDA_TELEMETRY_LOG_FD=3"),
		extraFiles: []*os.File{w},
	})
	require.NoError(t, w.Close()) // the sandbox has its copy
	rig.waitHello(t)

	// Relayed: the developer's logs.
	answer := asyncInvoke(sb, runtimeapi.Invocation{RequestID: "req-framed", Deadline: time.Now().Add(time.Minute), Event: []byte(`{}`)})
	inv := rig.expect(t, wire.TypeInvoke)
	var body wire.Invoke
	require.NoError(t, inv.DecodeBody(&body))
	assert.NotContains(t, body.Env, "_LAMBDA_TELEMETRY_LOG_FD", "the pipe's fd means nothing on the developer's machine")
	rig.reply(t, inv.From, wire.TypeAck, "req-framed", wire.Ack{RequestID: "req-framed"})
	at := time.UnixMicro(1_767_000_000_123_456)
	logs := relayedLogs("req-framed", at)
	for _, l := range logs {
		rig.reply(t, inv.From, wire.TypeLog, "req-framed", l)
	}
	rig.reply(t, inv.From, wire.TypeResult, "req-framed", wire.Result{RequestID: "req-framed", Payload: []byte(`"ok"`)})
	select {
	case resp := <-answer:
		require.False(t, resp.Error, "%s", resp.Payload)
	case <-time.After(30 * time.Second):
		t.Fatal("no answer")
	}
	want := []testFrame{
		{frameTextInfo, at.Add(time.Millisecond).UnixMicro(), logs[1].Record},
		{frameTextError, at.Add(2 * time.Millisecond).UnixMicro(), logs[2].Record},
	}
	require.Eventually(t, func() bool { fs, _ := parseFrames([]byte(pipe.String())); return len(fs) >= 2 },
		10*time.Second, 10*time.Millisecond, "frames on the telemetry pipe")
	fs, rest := parseFrames([]byte(pipe.String()))
	assert.Equal(t, want, fs)
	assert.Empty(t, rest)
	assert.Contains(t, sb.stdout.String(), "printed one\nprinted two\nunfinished ")
	assert.NotContains(t, sb.stdout.String(), "info one", "a framed record is not on stdout too")
	assert.NotContains(t, sb.stdout.String(), "ValueError")

	// Fallback: the developer does not ack, the original runtime answers and writes to the same pipe.
	answer = asyncInvoke(sb, runtimeapi.Invocation{RequestID: "req-child", Deadline: time.Now().Add(time.Minute), Event: []byte(`{}`)})
	rig.expect(t, wire.TypeInvoke)
	select {
	case resp := <-answer:
		require.False(t, resp.Error, "%s", resp.Payload)
		assert.JSONEq(t, `{"fd":"3"}`, string(resp.Payload), "the child has the variable unchanged")
	case <-time.After(30 * time.Second):
		t.Fatal("no answer")
	}
	require.Eventually(t, func() bool { fs, _ := parseFrames([]byte(pipe.String())); return len(fs) >= 3 },
		10*time.Second, 10*time.Millisecond, "the child's frame on the telemetry pipe")
	fs, _ = parseFrames([]byte(pipe.String()))
	assert.Equal(t, "from the runtime req-child", fs[2].Message)
	assert.Equal(t, uint32(0xA55A0003), fs[2].Type)
	assert.False(t, strings.Contains(sb.stderr.String(), "not writing framed logs"), "%s", sb.stderr)
}

// FuzzRelayedLog: whatever log body the developer side sends, the proxy writes either exactly one well-formed
// frame holding the record (and the lead on stdout) or the text on stdout, never both, never a broken frame.
func FuzzRelayedLog(f *testing.F) {
	f.Add([]byte(`{"text":"plain\n"}`))
	f.Add([]byte(`{"text":"half [INFO]\tx\n","frame":2774138895,"record":"[INFO]\tx\n","lead":5,"time":"2026-01-02T03:04:05.123456Z"}`))
	f.Add([]byte(`{"text":"x","frame":2774138884}`))
	f.Add([]byte(`{"text":"x","frame":2774138895,"lead":9}`))
	f.Add([]byte(`{"text":"x","record":"y"}`))
	f.Add([]byte(`{"text":"","frame":2774138898,"time":"0001-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var l wire.Log
		if json.Unmarshal(body, &l) != nil {
			return
		}
		var out bytes.Buffer
		tel := &recordingWriter{}
		if err := writeLog(&out, tel, &l); err != nil {
			t.Fatal(err)
		}
		if l.Frame == 0 || l.CheckFrame() != nil {
			if len(tel.writes) != 0 {
				t.Fatalf("unframed or badly framed %+v reached the telemetry pipe", l)
			}
			if !strings.HasPrefix(out.String(), l.Text) {
				t.Fatalf("stdout %q lost text %q", out.String(), l.Text)
			}
			return
		}
		if len(tel.writes) != 1 {
			t.Fatalf("%d writes for one record", len(tel.writes))
		}
		fs, rest := parseFrames(tel.writes[0])
		if len(fs) != 1 || len(rest) != 0 || fs[0].Type != l.Frame || fs[0].Message != l.FrameMessage() {
			t.Fatalf("frame %+v (rest %q) for %+v", fs, rest, l)
		}
		if out.String() != l.Text[:l.Lead] {
			t.Fatalf("stdout %q, want the lead %q", out.String(), l.Text[:l.Lead])
		}
	})
}

// TestTelemetryPipeReachesAWSLambdaRICThroughTheLayer: under AWS's Runtime Interface Emulator, which passes
// _LAMBDA_TELEMETRY_LOG_FD and the inherited fd to the runtime as Lambda does, awslambdaric behind the layer
// writes the same frames to the pipe as awslambdaric alone: the proxy leaves the runtime both.
func TestTelemetryPipeReachesAWSLambdaRICThroughTheLayer(t *testing.T) {
	var got [][]testFrame
	for _, wrapper := range []string{"", filepath.Join(layerDir, "plldb", "wrapper")} {
		// Before the emulator starts, so that the pipe's cleanup runs after it has stopped.
		w, pipe := telemetryPipe(t)
		emu := rie.Start(t, rie.Options{
			Dir: rieHandlers(), Handler: "cases.handler", Wrapper: wrapper,
			Env: []string{"_LAMBDA_TELEMETRY_LOG_FD=3", "PLLDB_LOGICAL_ID=CasesFunction"}, ExtraFiles: []*os.File{w},
		})
		require.NoError(t, w.Close())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		for _, body := range []string{`{"case":"logs"}`, `{"case":"fail","why":"two\nlines"}`} {
			_, err := emu.Invoke(ctx, []byte(body), nil)
			require.NoError(t, err)
		}
		cancel()
		require.Eventually(t, func() bool {
			fs, _ := parseFrames([]byte(pipe.String()))
			return len(fs) >= 5 && strings.Contains(pipe.String(), "[ERROR] ValueError")
		}, 10*time.Second, 10*time.Millisecond, "frames on the pipe; output:\n%s", emu.Output)
		fs, rest := parseFrames([]byte(pipe.String()))
		require.Empty(t, rest)
		for i := range fs {
			fs[i].Time = 0
			fs[i].Message = frameTimes.ReplaceAllString(fs[i].Message, "<ts>")
		}
		got = append(got, fs)
		out := emu.Output.String()
		assert.Contains(t, out, "print: two\nlines\n", "print() stays on stdout")
		assert.NotContains(t, out, "logging: warning", "records go to the pipe, not stdout")
		assert.NotContains(t, out, "ValueError", "so does the error report")
	}
	require.Len(t, got, 2)
	assert.Equal(t, got[0], got[1], "the same frames with and without the layer")
	var types []uint32
	for _, f := range got[1] {
		types = append(types, f.Type)
	}
	assert.Contains(t, types, uint32(0xA55A0003), "records of the text format without a level")
	assert.Contains(t, types, uint32(frameTextError), "the error report")
	assert.Contains(t, got[1][len(got[1])-1].Message, "[ERROR] ValueError: boom: two\nlines\nTraceback (most recent call last):\n")
}

// frameTimes are the timestamps and request ids inside records, which differ between two runs.
var frameTimes = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

package executor

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/pyenv"
)

// framesHandler logs multi-line records, a traceback, context.log output and print()s multi-line text, then
// fails: every kind of output awslambdaric writes either to the telemetry pipe or to stdout.
const framesHandler = `import logging
logger = logging.getLogger()
def handler(event, context):
    print("printed one\nprinted two")
    print("unfinished ", end="")
    logger.info("info one\ninfo two")
    logger.warning("warned one\nwarned two")
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("caught")
    context.log("via context\nsecond line\n")
    raise ValueError("bad\nthing")
`

// frame is one record as awslambdaric's FramedTelemetryLogSink writes it, without its timestamp.
type frame struct {
	Type    uint32
	Message string
}

// readFrames parses FramedTelemetryLogSink's stream: type, length, timestamp (µs), message.
func readFrames(t *testing.T, b []byte) ([]frame, []time.Time) {
	t.Helper()
	var fs []frame
	var ts []time.Time
	for len(b) > 0 {
		require.GreaterOrEqual(t, len(b), 16, "truncated frame header")
		n := int(binary.BigEndian.Uint32(b[4:8]))
		require.GreaterOrEqual(t, len(b), 16+n, "truncated frame")
		fs = append(fs, frame{binary.BigEndian.Uint32(b[0:4]), string(b[16 : 16+n])})
		ts = append(ts, time.UnixMicro(int64(binary.BigEndian.Uint64(b[8:16]))))
		b = b[16+n:]
	}
	return fs, ts
}

// timestamps are the parts of a record that differ between two runs.
var timestamps = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z`)

func normalize(s string) string { return timestamps.ReplaceAllString(s, "<ts>") }

// awslambdaricFrames runs the handler once through awslambdaric's bootstrap.run with a telemetry pipe, and
// returns the frames it wrote there and what it printed on stdout.
func awslambdaricFrames(t *testing.T, py, codeDir, rid string, env map[string]string) ([]frame, string) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	cmd := exec.Command(py, filepath.Join("testdata", "framed_reference.py"), "app.handler", codeDir, rid)
	cmd.Env = append(os.Environ(), "_LAMBDA_TELEMETRY_LOG_FD=3", "AWS_LAMBDA_LOG_FORMAT=", "AWS_LAMBDA_LOG_LEVEL=")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.ExtraFiles = []*os.File{w}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	w.Close()
	raw, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, cmd.Wait(), "awslambdaric: %s", stderr.String())
	fs, _ := readFrames(t, raw)
	for i := range fs {
		fs[i].Message = normalize(fs[i].Message)
	}
	return fs, stdout.String()
}

// TestLogFramesMatchAWSLambdaRIC: the executor marks each record awslambdaric would write to Lambda's telemetry
// pipe with the frame type and message awslambdaric writes there, for each log format and level setting, and
// its plain output is what awslambdaric prints to stdout beside the pipe.
func TestLogFramesMatchAWSLambdaRIC(t *testing.T) {
	py := pyenv.Python(t)
	if err := exec.Command(py, "-c", "import awslambdaric").Run(); err != nil {
		t.Skipf("awslambdaric is not installed in %s: %v", py, err)
	}
	for _, c := range []struct {
		name string
		env  map[string]string
	}{
		{"text", nil},
		{"text with a level", map[string]string{"AWS_LAMBDA_LOG_LEVEL": "INFO"}},
		{"json", map[string]string{"AWS_LAMBDA_LOG_FORMAT": "JSON"}},
		{"json with a level", map[string]string{"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			e, sink := start(t, Spec{CodeDir: dir, Env: c.env}, map[string]string{"app.py": framesHandler})
			const rid = "r-frames"
			before := time.Now()
			out := invoke(t, e, Invocation{RequestID: rid})
			require.NotNil(t, out.Err)
			assert.Equal(t, "ValueError", out.Err.ErrorType)

			want, wantStdout := awslambdaricFrames(t, py, dir, rid, c.env)
			require.NotEmpty(t, want)

			var got []frame
			var plain strings.Builder
			sink.mu.Lock()
			for _, l := range sink.lines {
				if l.RequestID != rid {
					continue
				}
				if l.Frame == 0 {
					plain.WriteString(l.Text)
					continue
				}
				got = append(got, frame{l.Frame, normalize(l.Record)})
				plain.WriteString(l.Text[:l.Lead])
				assert.False(t, l.Time.Before(before.Add(-time.Second)), "a frame carries the record's time")
			}
			sink.mu.Unlock()
			assert.Equal(t, want, got, "frames as awslambdaric's FramedTelemetryLogSink writes them")
			assert.Equal(t, wantStdout, plain.String(), "stdout beside the telemetry pipe")
		})
	}
}

// TestLogFramesKeepStdoutText: marking records does not change what goes to stdout without a telemetry pipe
// (RIE, plldb local): a record's Text is still the unfinished line before it plus the record, and the error
// report's lines are joined with \r.
func TestLogFramesKeepStdoutText(t *testing.T) {
	e, sink := start(t, Spec{}, map[string]string{"app.py": framesHandler})
	out := invoke(t, e, Invocation{RequestID: "r-text"})
	require.NotNil(t, out.Err)
	text := sink.text("r-text", "stdout")
	assert.Contains(t, text, "printed one\nprinted two\nunfinished [WARNING]\t")
	assert.Contains(t, text, "\tr-text\twarned one\nwarned two\n")
	assert.Contains(t, text, "via context\nsecond line\n")
	assert.Regexp(t, `\[ERROR\] ValueError: bad\nthing\rTraceback \(most recent call last\):\r.*\n$`, text)
}

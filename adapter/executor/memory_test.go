package executor

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Max Memory Used is the sandbox process's peak: it rises with what the handler allocates and stays at the peak
// once the memory is freed.
func TestReportMemoryIsTheSandboxPeak(t *testing.T) {
	files := map[string]string{"mem.py": `
def handler(event, context):
    block = bytearray(event["mb"] * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1  # touch every page so it is resident
    return len(block)
`}
	e, _ := start(t, Spec{Handler: "mem.handler"}, files)
	peak := func(mb int) int {
		out := invoke(t, e, Invocation{Event: fmt.Appendf(nil, `{"mb": %d}`, mb)})
		assert.Positive(t, out.PID)
		return PeakMemoryMB(out.PID)
	}
	small := peak(1)
	assert.Greater(t, small, 5, "a Python process takes several MB")
	big := peak(80)
	assert.GreaterOrEqual(t, big, small+75)
	assert.GreaterOrEqual(t, peak(1), big, "the peak of the sandbox, as Lambda reports it")
	assert.Zero(t, PeakMemoryMB(1<<30), "a process that is not there")
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tpython3\nVmPeak:\t  300000 kB\nVmHWM:\t   38913 kB\nVmRSS:\t   30000 kB\n"
	assert.Equal(t, 39, parseVmHWM([]byte(status)), "38913 kB rounds up to 39 MB")
	assert.Equal(t, 1, parseVmHWM([]byte("VmHWM:\t1024 kB\n")))
	for _, bad := range []string{"", "VmHWM:\t12 MB\n", "VmHWM:\tx kB\n", "VmHWM:\n", "VmHWM:\t-5 kB\n"} {
		assert.Zero(t, parseVmHWM([]byte(bad)), "%q", bad)
	}
}

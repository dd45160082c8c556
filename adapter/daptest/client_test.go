package daptest

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"bufio"
	godap "github.com/google/go-dap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBacklog: messages that arrive before the test waits for them, or while it waits for something else, are
// kept for later Expect calls; a missing message ends in an error naming it, not a hang.
func TestBacklog(t *testing.T) {
	a, b := net.Pipe()
	c := NewT(t, a)
	c.Timeout = 200 * time.Millisecond
	go func() {
		br := bufio.NewReader(b)
		raw, err := godap.ReadBaseMessage(br)
		if err != nil {
			return
		}
		var req struct {
			Seq int `json:"seq"`
		}
		_ = json.Unmarshal(raw, &req)
		for _, m := range []string{
			`{"seq":1,"type":"event","event":"output","body":{"output":"first line\n"}}`,
			`{"seq":2,"type":"event","event":"stopped","body":{"reason":"breakpoint","threadId":7}}`,
			`{"seq":3,"type":"response","request_seq":` + itoa(req.Seq) + `,"command":"threads","success":true,"body":{"threads":[]}}`,
		} {
			if godap.WriteBaseMessage(b, []byte(m)) != nil {
				return
			}
		}
	}()
	c.Request(t, "threads", nil)
	st := c.ExpectStoppedEvent(t)
	assert.Equal(t, 7, st.ThreadID)
	assert.Equal(t, "first line\n", c.ExpectOutputEventContaining(t, "first"))
	_, err := c.Next("an event that never comes", IsEvent("terminated"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "an event that never comes")
	require.NoError(t, b.Close())
	<-c.Done()
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

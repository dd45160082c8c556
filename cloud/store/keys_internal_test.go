package store

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
)

// FuzzIndexKeys checks the two properties the connection index relies on, for any peer names and times: the
// Query prefix of one peer never matches another peer's entries, and key order is age order.
func FuzzIndexKeys(f *testing.F) {
	f.Add("a", "a#b", int64(0), int64(1), int64(5), int64(5))
	f.Add("a%23b", "a#b", int64(-1), int64(1), int64(1), int64(0))
	f.Add("#", "%", int64(1<<62), int64(-1<<62), int64(2), int64(3))
	f.Add("", "#", int64(0), int64(0), int64(0), int64(1))
	f.Fuzz(func(t *testing.T, peerA, peerB string, atA, atB, putA, putB int64) {
		a := relay.Connection{ID: "x#1", Session: "S", Peer: peerA, ConnectedAt: time.Unix(0, atA)}
		b := relay.Connection{ID: "y", Session: "S", Peer: peerB, ConnectedAt: time.Unix(0, atB)}
		prefixA := "p#" + escapeKey(peerA) + "#"
		if peerA != peerB {
			require.False(t, strings.HasPrefix(peerSK(b, putB), prefixA), "peer %q's prefix matches %q", peerA, peerB)
		}
		require.True(t, strings.HasPrefix(peerSK(a, putA), prefixA))

		oa, ob := order(a.ConnectedAt, putA), order(b.ConnectedAt, putB)
		want := 0
		switch {
		case atA < atB, atA == atB && putA < putB:
			want = -1
		case atA > atB, atA == atB && putA > putB:
			want = 1
		}
		require.Equal(t, want, strings.Compare(oa, ob), "order(%d,%d) vs order(%d,%d)", atA, putA, atB, putB)
	})
}

func TestUnixNanoClamps(t *testing.T) {
	assert.Less(t, order(time.Time{}, 0), order(time.Unix(0, -1<<62), 0), "the zero time sorts first")
	assert.Less(t, order(time.Unix(0, 1<<62), 0), order(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 0))
	assert.Equal(t, int64(1), ttlSeconds(time.Unix(0, 1)))
	assert.Equal(t, int64(1), ttlSeconds(time.Unix(1, 0)))
}

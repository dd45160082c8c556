package proxy

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/testfixtures/pyenv"
	"github.com/plldb/plldb/testfixtures/rie"
)

// selectiveWay is the layer attached selectively with two developers' keys, its relay endpoint at relay. No
// invocation of the benchmark carries a knock, so the relay must never be called.
func selectiveWay(relay string) rie.Way {
	keys := selenv.FormatKnockKeys(map[string]ed25519.PublicKey{"s-rie": testPub(1), "s-other": testPub(2)})
	return rie.Wrapped("rie+layer(selective)", filepath.Join(layerDir, "plldb", "wrapper"),
		"PLLDB_LOGICAL_ID=CasesFunction", "PLLDB_LOG_LEVEL=info",
		"PLLDB_ENDPOINT=ws://"+relay+"/plldb", "PLLDB_SESSION=s-rie",
		"PLLDB_FUNCTION_KEY=cGxsZGItcmllLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmM=",
		"PLLDB_SELECTIVE=true", "PLLDB_KNOCK_STACK=shop", "PLLDB_KNOCK_KEYS="+keys)
}

// selectiveLinksWay is a function attached selectively by n developers, as attach --selective sets it up for
// several: one PLLDB_SESSIONS entry and one knock key each (the first with credentials, the last a mirror one),
// no PLLDB_SESSION.
func selectiveLinksWay(relay string, n int) rie.Way {
	keys := map[string]ed25519.PublicKey{}
	var links []selenv.Link
	for i := range n {
		id := fmt.Sprintf("s-dev%d", i)
		keys[id] = testPub(byte(i + 1))
		links = append(links, selenv.Link{Session: id, FunctionKey: bytes.Repeat([]byte{byte('a' + i)}, 32),
			Credentials: i == 0, Mirror: i == n-1})
	}
	return rie.Wrapped(fmt.Sprintf("rie+layer(selective, %d links)", n), filepath.Join(layerDir, "plldb", "wrapper"),
		"PLLDB_LOGICAL_ID=CasesFunction", "PLLDB_LOG_LEVEL=info", "PLLDB_ENDPOINT=ws://"+relay+"/plldb",
		"PLLDB_SELECTIVE=true", "PLLDB_KNOCK_STACK=shop", "PLLDB_KNOCK_KEYS="+selenv.FormatKnockKeys(keys),
		"PLLDB_SESSIONS="+selenv.FormatSessions(links))
}

// BenchmarkSelectiveUnknockedRIE measures an unknocked invocation through a selectively attached function against
// awslambdaric alone under AWS's Runtime Interface Emulator, and against the layer with no session (pass-through),
// interleaved as BenchmarkPassThroughRIE does, with one link (an older attach's PLLDB_SESSION, "selective") and with
// five developers' links (PLLDB_SESSIONS, "selective5"). The event is AWS's sample HTTP API (v2) event. It
// reports the connections made to the relay's endpoint (selective-relay-dials), which must be 0.
func BenchmarkSelectiveUnknockedRIE(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var dials atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			_ = c.Close()
		}
	}()
	body, err := os.ReadFile(filepath.Join(pyenv.RepoRoot(), "layer", "carrier", "testdata", "events", "apigw-http-v2.json"))
	if err != nil {
		b.Fatal(err)
	}
	fn := rie.Function{Dir: rieHandlers(), Handler: "noop.handler"}
	sel := &rieColumn{name: "selective", inst: selectiveWay(ln.Addr().String()).Start(b, fn)}
	sel5 := &rieColumn{name: "selective5", inst: selectiveLinksWay(ln.Addr().String(), 5).Start(b, fn)}
	cols := []*rieColumn{
		{name: "direct", inst: rie.Direct().Start(b, fn)},
		{name: "layer", inst: layerWay().Start(b, fn)},
		sel,
		sel5,
	}
	benchRIEColumns(b, rie.Event{Body: body}, cols)
	for _, c := range []*rieColumn{sel, sel5} {
		if logs := c.inst.Logs(); !strings.Contains(logs, "selective mode: only invocations with a valid knock") {
			b.Fatalf("the %s column is not in selective mode:\n%s", c.name, logs)
		}
	}
	if logs := sel5.inst.Logs(); !strings.Contains(logs, "linked_sessions=s-dev0,s-dev1,s-dev2,s-dev3,s-dev4") {
		b.Fatalf("the selective5 column does not have five links:\n%s", logs)
	}
	time.Sleep(10 * time.Millisecond)
	b.ReportMetric(float64(dials.Load()), "selective-relay-dials")
	if dials.Load() != 0 {
		b.Fatalf("unknocked invocations dialled the relay %d times", dials.Load())
	}
}

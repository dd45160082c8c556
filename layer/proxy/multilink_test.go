package proxy

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
	"github.com/plldb/plldb/layer/carrier"
	"github.com/plldb/plldb/layer/runtimeapi"
	"github.com/plldb/plldb/testfixtures/logbuf"
)

// attached is one developer attached selectively: a session in the relay's store, the developer's connection
// to the relay, and the knock key pair.
type attached struct {
	developer
	sess relay.Session
	dev  *wsclient.Client
}

// multiRig is one selectively attached function with several developers, each with a session of their own in
// the relay and a link of their own in the sandbox (PLLDB_SESSIONS), as attach --selective sets it up for
// several developers.
type multiRig struct {
	relay     *relayRig
	front     *countingFront
	sb        *sandbox
	relayLogs *logbuf.Buffer
	devs      map[string]*attached
}

// linkOpt is a PLLDB_SESSIONS entry's options for one developer ("", "creds", "mirror", "creds;mirror").
type linkOpt struct {
	name, opts string
	// keyOnly: a knock key but no link.
	keyOnly bool
}

func startMulti(t *testing.T, handler string, links []linkOpt, extraEnv ...string) *multiRig {
	t.Helper()
	logs := &logbuf.Buffer{}
	rig := startRelayLogged(t, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	gwURL, err := url.Parse(rig.gw.URL())
	require.NoError(t, err)
	front := startCountingFront(t, gwURL.Host)
	m := &multiRig{relay: rig, front: front, relayLogs: logs, devs: map[string]*attached{}}
	keys := map[string]ed25519.PublicKey{}
	var sessions []selenv.Link
	for _, l := range links {
		s := relay.NewSession("s-"+l.name, l.name+"@host", time.Time{})
		rig.store.PutSession(s)
		a := &attached{developer: newDeveloper(t, s.ID), sess: s, dev: rig.dialDeveloper(t, s)}
		m.devs[l.name] = a
		keys[s.ID] = a.pub()
		if l.keyOnly {
			continue
		}
		sessions = append(sessions, selenv.Link{Session: s.ID, FunctionKey: ticket.FunctionKey(s.Keys[wire.RoleFunction], "fn-under-test"),
			Credentials: strings.Contains(l.opts, "creds"), Mirror: strings.Contains(l.opts, "mirror")})
	}
	u := *gwURL
	u.Host = front.ln.Addr().String()
	env := []string{
		"PLLDB_ENDPOINT=" + u.String(),
		"PLLDB_AUDIENCE=" + rig.audience,
		"PLLDB_LOGICAL_ID=EchoFunction",
		"PLLDB_SELECTIVE=true",
		"PLLDB_KNOCK_STACK=orders",
		"PLLDB_KNOCK_KEYS=" + selenv.FormatKnockKeys(keys),
		"PLLDB_SESSIONS=" + selenv.FormatSessions(sessions),
		"PLLDB_LOG_LEVEL=debug",
		"AWS_ACCESS_KEY_ID=AKIAFUNCTIONROLE",
		"AWS_SECRET_ACCESS_KEY=function-role-secret",
		"AWS_SESSION_TOKEN=function-role-token",
	}
	m.sb = startSandbox(t, sandboxOpts{handler: handler, env: append(env, extraEnv...)})
	return m
}

// knocked sends an invocation carrying a knock of developer name in an HTTP header.
func (m *multiRig) knocked(name, id string) (<-chan runtimeapi.Response, []byte, string) {
	d := m.devs[name]
	tok, _ := knock.Mint(d.priv, knock.Claims{Issuer: d.session, Audience: "orders"})
	ev := httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": tok, "accept": "*/*"})
	return asyncInvoke(m.sb, runtimeapi.Invocation{RequestID: id, Deadline: time.Now().Add(time.Minute), Event: ev}), ev, tok
}

// answer has developer name take the invocation it was sent and answer it, and returns the invoke.
func (m *multiRig) answer(t *testing.T, name string, answer <-chan runtimeapi.Response, id string) wire.Invoke {
	t.Helper()
	d := m.devs[name]
	env := expectOn(t, d.dev, wire.TypeInvoke)
	var body wire.Invoke
	require.NoError(t, env.DecodeBody(&body))
	require.Equal(t, id, body.RequestID)
	replyOn(t, d.dev, env.From, wire.TypeAck, id, wire.Ack{RequestID: id})
	replyOn(t, d.dev, env.From, wire.TypeResult, id, wire.Result{RequestID: id, Payload: []byte(`{"from":"` + name + `"}`)})
	select {
	case res := <-answer:
		require.False(t, res.Error, "%s", res.Payload)
		assert.JSONEq(t, `{"from":"`+name+`"}`, string(res.Payload), "%s's developer answered", name)
	case <-time.After(30 * time.Second):
		t.Fatal("no answer")
	}
	return body
}

// nothingFor asserts that developer name received nothing but hellos so far.
func (m *multiRig) nothingFor(t *testing.T, name string) {
	t.Helper()
	for {
		select {
		case e := <-m.devs[name].dev.Recv():
			require.Equal(t, wire.TypeHello, e.T, "%s received a %s envelope meant for nobody or someone else", name, e.T)
		default:
			return
		}
	}
}

// deployedAnswer waits for the deployed code's (echo) answer and returns the event it ran with.
func deployedAnswer(t *testing.T, answer <-chan runtimeapi.Response) []byte {
	t.Helper()
	select {
	case res := <-answer:
		raw, err := base64.StdEncoding.DecodeString(decodeEcho(t, res).Raw)
		require.NoError(t, err)
		return raw
	case <-time.After(30 * time.Second):
		t.Fatal("no answer")
		return nil
	}
}

func TestSelectiveTwoDevelopersEachGetOnlyTheirOwnKnocks(t *testing.T) {
	m := startMulti(t, "echo.handler", []linkOpt{{name: "alice"}, {name: "bob", opts: "creds"}, {name: "carol"}, {name: "dave", keyOnly: true}})

	// Unknocked: the deployed code, and no link dialled.
	plain := httpV2("/orders/1", "GET", map[string]any{"accept": "*/*"})
	assert.Equal(t, plain, deployedAnswer(t, asyncInvoke(m.sb, runtimeapi.Invocation{Deadline: time.Now().Add(time.Minute), Event: plain})))
	require.Zero(t, m.front.conns.Load(), "unknocked invocations make no network call")

	// alice's knock: alice's link, alice's developer.
	ans, _, aliceTok := m.knocked("alice", "req-alice-1")
	inv := m.answer(t, "alice", ans, "req-alice-1")
	require.NotNil(t, inv.Knock)
	assert.Equal(t, "s-alice", inv.Knock.Session)
	assert.Nil(t, inv.Credentials, "alice's link has no creds option")
	assert.NotContains(t, inv.Env, "PLLDB_SESSIONS", "no developer sees the other sessions' function keys")
	assert.Contains(t, inv.Redacted, "PLLDB_SESSIONS")
	assert.NotContains(t, fmt.Sprint(inv.Env), "AKIAFUNCTIONROLE")
	assert.EqualValues(t, 1, m.front.conns.Load(), "alice's link only")
	m.nothingFor(t, "bob")

	// bob's knock: bob's own link (a second connection), bob's developer, with the role's credentials.
	ans, _, bobTok := m.knocked("bob", "req-bob-1")
	inv = m.answer(t, "bob", ans, "req-bob-1")
	require.NotNil(t, inv.Knock)
	assert.Equal(t, "s-bob", inv.Knock.Session)
	require.NotNil(t, inv.Credentials, "bob's link sends the function's credentials")
	assert.Equal(t, "AKIAFUNCTIONROLE", inv.Credentials.AccessKeyID)
	assert.EqualValues(t, 2, m.front.conns.Load(), "one link per knocked session")
	m.nothingFor(t, "alice")

	// Both links are up now: each knock still goes over its own session's link only, and no more dials.
	for i := range 2 {
		for _, name := range []string{"bob", "alice"} {
			id := fmt.Sprintf("req-%s-again-%d", name, i)
			ans, _, _ := m.knocked(name, id)
			m.answer(t, name, ans, id)
			m.nothingFor(t, map[string]string{"alice": "bob", "bob": "alice"}[name])
		}
	}
	assert.EqualValues(t, 2, m.front.conns.Load())

	// A knock key without a link: refused with the reason of a sandbox without that session's link.
	ans, ev, daveTok := m.knocked("dave", "req-dave")
	assert.Equal(t, string(httpV2("/orders/42", "POST", map[string]any{"accept": "*/*"})), string(deployedAnswer(t, ans)))
	require.Eventually(t, func() bool { return strings.Contains(m.sb.stderr.String(), "no relay link to session s-dave") },
		5*time.Second, 10*time.Millisecond)
	assert.NotEqual(t, ev, plain)

	// carol detached before knocking (her session is gone from the store, her developer disconnected): her link
	// cannot get a ticket accepted, and the knock runs the deployed code once the connect wait is over.
	m.relay.store.DeleteSession("s-carol")
	require.NoError(t, m.devs["carol"].dev.Close())
	ans, _, carolTok := m.knocked("carol", "req-carol")
	assert.Equal(t, string(httpV2("/orders/42", "POST", map[string]any{"accept": "*/*"})), string(deployedAnswer(t, ans)))

	// bob detaches while his link is up: the relay nacks his knocked invocation, which runs the deployed code;
	// alice is not affected.
	m.relay.store.DeleteSession("s-bob")
	require.NoError(t, m.devs["bob"].dev.Close())
	require.Eventually(t, func() bool {
		return strings.Count(m.relayLogs.String(), `msg="relay disconnected"`) >= 2
	}, 10*time.Second, 10*time.Millisecond, "the relay saw bob's and carol's developers go")
	ans, _, bobTok2 := m.knocked("bob", "req-bob-gone")
	assert.Equal(t, string(httpV2("/orders/42", "POST", map[string]any{"accept": "*/*"})), string(deployedAnswer(t, ans)))
	ans, _, aliceTok2 := m.knocked("alice", "req-alice-after")
	m.answer(t, "alice", ans, "req-alice-after")

	assert.Contains(t, m.sb.stderr.String(), "linked_sessions=s-alice,s-bob,s-carol")
	for _, out := range []string{m.sb.stdout.String(), m.sb.stderr.String(), m.relayLogs.String()} {
		noKnockLeft(t, out, aliceTok, bobTok, daveTok, carolTok, bobTok2, aliceTok2)
		assert.NotContains(t, out, "function-role-secret")
	}
}

// expectMirror waits for developer name's mirrored invoke and then its deployed envelope, and returns both.
func (m *multiRig) expectMirror(t *testing.T, name, id string) (wire.Invoke, wire.Deployed) {
	t.Helper()
	d := m.devs[name]
	e := expectOn(t, d.dev, wire.TypeInvoke)
	var inv wire.Invoke
	require.NoError(t, e.DecodeBody(&inv))
	require.Equal(t, id, inv.RequestID)
	e = expectOn(t, d.dev, wire.TypeDeployed)
	assert.Equal(t, id, e.ID)
	var dep wire.Deployed
	require.NoError(t, e.DecodeBody(&dep))
	return inv, dep
}

func awaitAnswer(t *testing.T, answer <-chan runtimeapi.Response) runtimeapi.Response {
	t.Helper()
	select {
	case res := <-answer:
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("no answer")
		return runtimeapi.Response{}
	}
}

// A mirror session's knocked invocation: the deployed code answers the caller, the developer gets a copy without
// the knock and then exactly what the caller got. The developer never acks or answers, and the ack timeout is ten
// minutes: the caller's answer cannot have waited for the developer.
func TestSelectiveMirrorDeployedCodeAnswersAndTheDeveloperGetsBoth(t *testing.T) {
	m := startMulti(t, "echo.handler", []linkOpt{{name: "alice", opts: "mirror"}, {name: "bob"}}, "PLLDB_ACK_TIMEOUT=10m")

	ans, ev, tok := m.knocked("alice", "req-mirror-1")
	res := awaitAnswer(t, ans)
	require.False(t, res.Error, "%s", res.Payload)
	raw, err := base64.StdEncoding.DecodeString(decodeEcho(t, res).Raw)
	require.NoError(t, err)
	want, err := carrier.Extract(ev, "")
	require.NoError(t, err)
	assert.Equal(t, string(want.Event), string(raw), "the deployed code ran it without the knock")

	inv, dep := m.expectMirror(t, "alice", "req-mirror-1")
	assert.True(t, inv.Mirror, "the developer's copy is marked as one")
	assert.Equal(t, string(want.Event), string(inv.Event), "the copy has no knock either")
	require.NotNil(t, inv.Knock)
	assert.Equal(t, "s-alice", inv.Knock.Session)
	assert.Equal(t, "req-mirror-1", dep.RequestID)
	assert.False(t, dep.Error)
	assert.Equal(t, string(res.Payload), string(dep.Payload), "the developer gets exactly the bytes the caller got")
	assert.Equal(t, res.Header.Get("Content-Type"), dep.ContentType)
	assert.Equal(t, "yes", res.Header.Get("X-Echo"), "the runtime's request, read for mirror, reached the API as it was posted")
	assert.GreaterOrEqual(t, dep.DurationMs, int64(0))
	assert.EqualValues(t, 1, m.front.conns.Load())

	// A large answer: the deployed envelope is chunked as any large envelope is, and still exact.
	big := httpV2("/orders/42", "POST", map[string]any{"x-plldb-knock": tok, "pad": strings.Repeat("x", 700<<10)})
	ans = asyncInvoke(m.sb, runtimeapi.Invocation{RequestID: "req-mirror-big", Deadline: time.Now().Add(time.Minute), Event: big})
	res = awaitAnswer(t, ans)
	require.False(t, res.Error)
	require.Greater(t, len(res.Payload), 900<<10)
	_, dep = m.expectMirror(t, "alice", "req-mirror-big")
	assert.Equal(t, res.Payload, dep.Payload)

	// Unknocked traffic afterwards: byte for byte, and the child's requests are spliced again.
	plain := httpV2("/orders/7", "GET", map[string]any{"accept": "*/*"})
	for range 3 {
		assert.Equal(t, plain, deployedAnswer(t, asyncInvoke(m.sb, runtimeapi.Invocation{Deadline: time.Now().Add(time.Minute), Event: plain})))
	}
	// bob's link is not a mirror one: his knock still goes to him alone, and he answers it.
	ans, _, _ = m.knocked("bob", "req-bob")
	got := m.answer(t, "bob", ans, "req-bob")
	assert.False(t, got.Mirror)
	m.nothingFor(t, "alice")
	m.nothingFor(t, "bob")
	assert.EqualValues(t, 2, m.front.conns.Load())
	assert.NotContains(t, m.sb.stderr.String(), "cannot be followed", "the answers were read on the connection they came on")
	assert.Equal(t, 2, strings.Count(m.sb.stderr.String(), "mirror: copy sent to the developer"))
	for _, out := range []string{m.sb.stdout.String(), m.sb.stderr.String(), m.relayLogs.String()} {
		noKnockLeft(t, out, tok)
	}
}

func TestSelectiveMirrorErrorAnswer(t *testing.T) {
	m := startMulti(t, "fail.handler", []linkOpt{{name: "alice", opts: "mirror"}})
	ans, _, _ := m.knocked("alice", "req-mirror-err")
	res := awaitAnswer(t, ans)
	require.True(t, res.Error, "the deployed code raised")
	_, dep := m.expectMirror(t, "alice", "req-mirror-err")
	assert.True(t, dep.Error)
	assert.Equal(t, string(res.Payload), string(dep.Payload), "the error document exactly as posted")
	assert.Equal(t, res.ErrorType, dep.ErrorType)
	assert.Equal(t, res.Header.Get("Content-Type"), dep.ContentType)
	assert.Contains(t, string(dep.Payload), "boom")
}

// With the mirror session's developer gone, the copy is dropped and the caller still gets the deployed code's
// answer, every time.
func TestSelectiveMirrorWithoutDeveloperLeavesTheCallerAlone(t *testing.T) {
	m := startMulti(t, "echo.handler", []linkOpt{{name: "alice", opts: "mirror"}}, "PLLDB_ACK_TIMEOUT=10m")
	require.NoError(t, m.devs["alice"].dev.Close())
	require.Eventually(t, func() bool { return strings.Contains(m.relayLogs.String(), `msg="relay disconnected"`) },
		10*time.Second, 10*time.Millisecond)
	for i := range 3 {
		ans, ev, _ := m.knocked("alice", fmt.Sprintf("req-mirror-alone-%d", i))
		want, err := carrier.Extract(ev, "")
		require.NoError(t, err)
		assert.Equal(t, string(want.Event), string(deployedAnswer(t, ans)))
	}
}

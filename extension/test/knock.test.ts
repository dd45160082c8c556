// "plldb: Copy Knock Header" (src/knock.ts) against the real `plldb dap`, driven by @vscode/debugadapter-testsupport's
// DebugClient as VS Code drives it: in a selective launch of the hello app the command asks which function, copies
// `X-Plldb-Knock: <token>`, and says when it expires without showing the token; the token verifies with the
// session's public key (read from the session file the launch writes) for the function chosen, and an invocation
// carrying it stops at the breakpoint. A session that is not selective gets an error and nothing is copied; with
// several plldb sessions and none focused the command asks which one.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { after, before, test } from 'node:test';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import { DebugProtocol } from '@vscode/debugprotocol';
import { KnockSession, KnockUI, PickItem, copyKnockHeader, when } from '../src/knock';
import { ROOT, breakpointLine, post, testPython } from './util';

const HELLO = path.join(ROOT, 'testfixtures', 'apps', 'hello');
const APP = path.join(HELLO, 'src', 'app.py');
const TIMEOUT = 90_000;
let plldb = process.env.PLLDB_BIN ?? '';
const knockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'plldb-knock-'));
const clients: DebugClient[] = [];

before(() => {
  if (!plldb) {
    plldb = path.join(ROOT, 'build', 'plldb');
    execFileSync('go', ['build', '-o', plldb, './cmd/plldb'], { cwd: ROOT, stdio: 'inherit' });
  }
});

/** stop disconnects and ends the adapter process, whose executors end with it. */
async function stop(dc: DebugClient): Promise<void> {
  const i = clients.indexOf(dc);
  if (i >= 0) {
    clients.splice(i, 1);
    await dc.stop();
  }
}

after(async () => {
  await Promise.all([...clients].map(stop));
  fs.rmSync(knockDir, { recursive: true, force: true });
});

/** launched starts `plldb dap`, launches the hello app's fns with extra attributes, and returns the Invoke API. */
async function launched(fns: string[], extra: Record<string, unknown>): Promise<{ dc: DebugClient; url: string }> {
  const dc = new DebugClient(plldb, 'dap', 'plldb', { cwd: HELLO, env: { ...process.env, PLLDB_KNOCK_DIR: knockDir } }, !!process.env.PLLDB_TEST_VERBOSE);
  dc.defaultTimeout = TIMEOUT;
  clients.push(dc);
  await dc.start();
  let endpoint: (v: string) => void;
  const invokeAPI = new Promise<string>((ok) => (endpoint = ok));
  dc.on('output', (e: DebugProtocol.OutputEvent) => {
    const m = /Invoke API at (http:\/\/\S+)/.exec(e.body.output);
    if (m) endpoint(m[1]);
  });
  await dc.initializeRequest({ adapterID: 'plldb', clientID: 'vscode', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
  const args = { type: 'plldb', request: 'launch', name: 'hello', mode: 'local', template: path.join(HELLO, 'template.yaml'),
    functions: fns, invokePort: 0, python: testPython(), ...extra };
  await Promise.all([dc.waitForEvent('initialized'), dc.launchRequest(args as DebugProtocol.LaunchRequestArguments)]);
  return { dc, url: await invokeAPI };
}

/** session is the DebugClient as the command sees a vscode.DebugSession: customRequest gives the body. */
function session(dc: DebugClient, name: string): KnockSession {
  return { name, type: 'plldb', customRequest: async (command, args) => (await dc.customRequest(command, args)).body };
}

/** recordingUI answers quick picks by label and records everything the user would see. */
function recordingUI(choose: string) {
  const seen = { picks: [] as string[][], clipboard: [] as string[], infos: [] as string[], errors: [] as string[] };
  const ui: KnockUI = {
    async pick<T>(items: PickItem<T>[], _placeHolder: string) {
      seen.picks.push(items.map((i) => i.label));
      return items.find((i) => i.label === choose);
    },
    async copy(text) {
      seen.clipboard.push(text);
    },
    info: (m) => seen.infos.push(m),
    error: (m) => seen.errors.push(m),
  };
  return { ui, seen };
}

/** verifyKnock checks tok's Ed25519 signature with the session's public key (derived from the key file the
 * launch wrote for `plldb knock --local`) and returns its claims. */
function verifyKnock(tok: string): { iss: string; aud: string; exp: number } {
  const file = JSON.parse(fs.readFileSync(path.join(knockDir, 'local.json'), 'utf8'));
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(file.privateKeySeed, 'base64')]);
  const pub = crypto.createPublicKey(crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
  const [h, p, sig] = tok.split('.');
  assert.ok(crypto.verify(null, Buffer.from(`${h}.${p}`), pub, Buffer.from(sig, 'base64url')), 'signed with the session key');
  assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url').toString()), { alg: 'EdDSA', typ: 'plldb-knock+v1' });
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  assert.equal(claims.iss, file.session);
  return claims;
}

test('Copy Knock Header in a selective session copies a knock of its key for the function picked', { timeout: 4 * TIMEOUT }, async () => {
  const line = breakpointLine(APP, 'handler');
  const { dc, url } = await launched(['HelloFunction', 'PackageFunction'], { selective: true });
  await dc.setBreakpointsRequest({ source: { path: APP }, breakpoints: [{ line }] });
  await dc.configurationDoneRequest();

  const { ui, seen } = recordingUI('HelloFunction');
  const other = { name: 'Python: current file', type: 'debugpy', customRequest: () => Promise.reject(new Error('not plldb')) };
  // The focused session is another debugger's: the command finds the one plldb session itself.
  const audience = await copyKnockHeader(other, [other, session(dc, 'hello')], ui);
  assert.equal(audience, 'local/HelloFunction');
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.picks, [['Every function', 'HelloFunction', 'PackageFunction']]);
  assert.equal(seen.clipboard.length, 1);
  const m = /^X-Plldb-Knock: (\S+)$/.exec(seen.clipboard[0]);
  assert.ok(m, seen.clipboard[0]);
  const tok = m[1];
  const claims = verifyKnock(tok);
  assert.equal(claims.aud, 'local/HelloFunction');
  const minutes = (claims.exp * 1000 - Date.now()) / 60_000;
  assert.ok(minutes > 14 && minutes <= 15, `expires in ${minutes} min, want 15`);
  assert.equal(seen.infos.length, 1);
  assert.match(seen.infos[0], /^plldb: copied the X-Plldb-Knock header for local\/HelloFunction to the clipboard; it expires at .+ \(in 1[45] min\)\.$/);
  assert.ok(!seen.infos[0].includes(tok.split('.')[2]), 'the message never shows the token');

  // The copied header is what a frontend sends: the invocation carrying it stops at the breakpoint.
  const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  const answer = post(`${url}/2015-03-31/functions/HelloFunction/invocations`,
    JSON.stringify({ name: 'knocked', headers: { 'X-Plldb-Knock': tok } }));
  await dc.assertStoppedLocation('breakpoint', { path: APP, line });
  await dc.continueRequest({ threadId: (await stopped).body.threadId as number });
  const res = await answer;
  assert.equal(res.status, 200, res.body);
  assert.ok(!res.body.includes(tok), 'the handler never saw the knock');

  // "Every function": a knock for the whole session; Escape in the picker copies nothing.
  const every = recordingUI('Every function');
  assert.equal(await copyKnockHeader(session(dc, 'hello'), [], every.ui), 'local');
  assert.equal(verifyKnock(every.seen.clipboard[0].replace('X-Plldb-Knock: ', '')).aud, 'local');
  const cancelled = recordingUI('(Escape)');
  assert.equal(await copyKnockHeader(session(dc, 'hello'), [], cancelled.ui), undefined);
  assert.deepEqual(cancelled.seen.clipboard, []);
  assert.deepEqual(cancelled.seen.errors, []);
  await stop(dc);
});

test('Copy Knock Header in a session that is not selective says how to make it selective and copies nothing', { timeout: 2 * TIMEOUT }, async () => {
  const { dc } = await launched(['HelloFunction'], {});
  await dc.configurationDoneRequest();
  // Two plldb sessions and none focused: the command asks which one (here both are this adapter's).
  const { ui, seen } = recordingUI('plain');
  assert.equal(await copyKnockHeader(undefined, [session(dc, 'orders'), session(dc, 'plain')], ui), undefined);
  assert.deepEqual(seen.picks, [['orders', 'plain']]);
  assert.deepEqual(seen.clipboard, []);
  assert.equal(seen.errors.length, 1);
  assert.match(seen.errors[0], /^plldb: "plain" is not a selective session.*Add "selective": true to its launch configuration/);
  // The adapter refuses the knock request itself too, whatever the client.
  await assert.rejects(dc.customRequest('plldbKnock', {}), /launch with "selective": true/);
  await stop(dc);
});

test('when says the local time and how long is left', () => {
  const now = new Date('2026-12-02T12:00:00Z');
  assert.match(when('2026-12-02T12:15:00Z', now), /^at .+ \(in 15 min\)$/);
  assert.match(when('2026-12-02T14:30:00Z', now), /\(in 2 h 30 min\)$/);
  assert.match(when('2026-12-03T00:00:00Z', now), /\(in 12 h\)$/);
  assert.equal(when('soon', now), 'at soon');
});

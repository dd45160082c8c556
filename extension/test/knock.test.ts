// "plldb: Copy Knock Header" and "plldb: Copy Knock…" (src/knock.ts) against the real `plldb dap`, driven by
// @vscode/debugadapter-testsupport's DebugClient as VS Code drives it: in a selective launch of the hello app the
// command asks which function, copies `X-Plldb-Knock: <token>`, and says when it expires without showing the token;
// the token verifies with the session's public key (read from the session file the launch writes) for the function
// chosen, and an invocation carrying it stops at the breakpoint. A session that is not selective gets an error and
// nothing is copied; with several plldb sessions and none focused the command asks which one. Copy Knock… copies
// each format with the lifetime and route asked, which the token carries; the copied AWS CLI and boto3 lines,
// run with the real AWS CLI and boto3, stop at the breakpoint; its input boxes refuse what the adapter refuses
// (checked value by value against the adapter), the adapter refuses what gets past them, and Escape at any step
// copies nothing.
import * as assert from 'node:assert/strict';
import { execFile, execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { after, before, test } from 'node:test';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import { DebugProtocol } from '@vscode/debugprotocol';
import { InputOptions, KnockSession, KnockUI, PickItem, copyKnock, copyKnockHeader, lifetimeProblem, routeProblem, when } from '../src/knock';
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
    async input(o: InputOptions) {
      throw new Error(`Copy Knock Header asks nothing: ${o.prompt}`);
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
function verifyKnock(tok: string): { iss: string; aud: string; iat: number; nbf: number; exp: number; route?: string } {
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

/** scriptedUI plays a user of Copy Knock…: quick picks get the given labels in turn (none left: Escape); each
 * input box gets its list of tries and, as VS Code does, takes the first one its validation accepts (none: Escape,
 * after the user has seen each problem). With validating false the boxes take the first try unchecked, as a client
 * without inline validation would. */
function scriptedUI(picks: string[], inputs: string[][], validating = true) {
  const seen = { picks: [] as string[][], prompts: [] as InputOptions[], problems: [] as string[], clipboard: [] as string[],
    infos: [] as string[], errors: [] as string[] };
  const ui: KnockUI = {
    async pick<T>(items: PickItem<T>[], _placeHolder: string) {
      seen.picks.push(items.map((i) => i.label));
      const label = picks.shift();
      return items.find((i) => i.label === label);
    },
    async input(o: InputOptions) {
      seen.prompts.push(o);
      for (const v of inputs.shift() ?? []) {
        const problem = validating ? o.validate?.(v) : undefined;
        if (problem === undefined) return v;
        seen.problems.push(problem);
      }
      return undefined;
    },
    async copy(text) {
      seen.clipboard.push(text);
    },
    info: (m) => seen.infos.push(m),
    error: (m) => seen.errors.push(m),
  };
  return { ui, seen };
}

type Seen = ReturnType<typeof scriptedUI>['seen'];

/** shownText is everything a user of the command saw: messages, validation problems, prompts and pick labels. */
function shownText(seen: Seen): string[] {
  return [...seen.infos, ...seen.errors, ...seen.problems, ...seen.picks.flat(),
    ...seen.prompts.flatMap((p) => [p.prompt, p.placeHolder ?? '', p.value ?? ''])];
}

const FORMAT_LABELS = ['Header line', 'curl command', 'AWS CLI command', 'boto3 snippet'];
const AWS_ENV = { AWS_ACCESS_KEY_ID: 'plldb-test', AWS_SECRET_ACCESS_KEY: 'plldb-test', AWS_DEFAULT_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };

/** sh runs a command line as a user pasting it into a terminal would, with the test venv's aws and python first
 * on PATH, and resolves with its stdout. */
function sh(line: string, cwd: string): Promise<string> {
  const env = { ...process.env, ...AWS_ENV, PATH: `${path.dirname(testPython())}:${process.env.PATH}` };
  return new Promise((ok, fail) => execFile('sh', ['-c', line], { cwd, env, timeout: TIMEOUT }, (err, stdout, stderr) =>
    err ? fail(new Error(`${line.slice(0, 40)}…: ${err.message}\n${stderr}`)) : ok(stdout)));
}

test('Copy Knock… copies the header, curl, AWS CLI and boto3 lines with the lifetime and route asked', { timeout: 6 * TIMEOUT }, async () => {
  const line = breakpointLine(APP, 'handler');
  const { dc, url } = await launched(['HelloFunction', 'PackageFunction'], { selective: true });
  await dc.setBreakpointsRequest({ source: { path: APP }, breakpoints: [{ line }] });
  await dc.configurationDoneRequest();
  const hello = session(dc, 'hello');
  const shown: string[] = [];
  const tokens: string[] = [];
  let stops = 0;
  dc.on('stopped', () => stops++);
  const invokeHello = (event: unknown) => post(`${url}/2015-03-31/functions/HelloFunction/invocations`, JSON.stringify(event));
  /** stopsAndAnswers waits for the stop at the breakpoint an invocation started by start makes, continues, and
   * resolves with start's result. */
  const stopsAndAnswers = async <T>(start: () => Promise<T>): Promise<T> => {
    const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    const done = start();
    await dc.assertStoppedLocation('breakpoint', { path: APP, line });
    await dc.continueRequest({ threadId: (await stopped).body.threadId as number });
    return done;
  };

  // The header, for one function, 1h30m, one route; the lifetime box comes prefilled with the default.
  const h = scriptedUI(['HelloFunction', 'Header line'], [['1h30m'], ['POST /orders/*']]);
  assert.equal(await copyKnock(undefined, [hello], h.ui), 'local/HelloFunction');
  shown.push(...shownText(h.seen));
  assert.deepEqual(h.seen.errors, []);
  assert.deepEqual(h.seen.picks, [['Every function', 'HelloFunction', 'PackageFunction'], FORMAT_LABELS]);
  assert.deepEqual(h.seen.prompts.map((p) => p.value), ['15m', undefined]);
  assert.equal(h.seen.clipboard.length, 1);
  const hm = /^X-Plldb-Knock: (\S+)$/.exec(h.seen.clipboard[0]);
  assert.ok(hm, h.seen.clipboard[0]);
  tokens.push(hm[1]);
  const hc = verifyKnock(hm[1]);
  assert.equal(hc.aud, 'local/HelloFunction');
  assert.equal(hc.exp - hc.iat, 90 * 60);
  assert.equal(hc.route, 'POST /orders/*');
  assert.deepEqual(h.seen.infos.length, 1);
  assert.match(h.seen.infos[0], /^plldb: copied the X-Plldb-Knock header for local\/HelloFunction, only on POST \/orders\/\*, to the clipboard; it expires at .+ \(in 1 h 30 min\)\.$/);
  // The route binds: on another route the knock is refused and the invocation runs without stopping (its answer
  // comes while the breakpoint is set); on its route it stops.
  const elsewhere = await invokeHello({ httpMethod: 'GET', path: '/orders/42', headers: { 'X-Plldb-Knock': hm[1] } });
  assert.equal(elsewhere.status, 200, elsewhere.body);
  assert.equal(stops, 0, 'a knock bound to POST /orders/* does not stop GET /orders/42');
  const onRoute = await stopsAndAnswers(() => invokeHello({ httpMethod: 'POST', path: '/orders/42', headers: { 'X-Plldb-Knock': hm[1] } }));
  assert.equal(onRoute.status, 200, onRoute.body);
  assert.ok(!onRoute.body.includes(hm[1]) && !elsewhere.body.includes(hm[1]), 'the handler never saw the knock');

  // curl, for every function, 45s, any route: the URL box refuses an empty URL and takes one with spaces around.
  const c = scriptedUI(['Every function', 'curl command'], [['', ' https://api.example.com/prod/orders/42 '], ['45s'], ['']]);
  assert.equal(await copyKnock(hello, [], c.ui), 'local');
  shown.push(...shownText(c.seen));
  assert.deepEqual(c.seen.errors, []);
  assert.equal(c.seen.problems.length, 1);
  assert.match(c.seen.problems[0], /^curl needs the URL to call/);
  assert.equal(c.seen.prompts.length, 3);
  const cm = /^curl -H 'X-Plldb-Knock: (\S+)' 'https:\/\/api\.example\.com\/prod\/orders\/42'$/.exec(c.seen.clipboard[0]);
  assert.ok(cm, c.seen.clipboard[0]);
  tokens.push(cm[1]);
  const cc = verifyKnock(cm[1]);
  assert.equal(cc.aud, 'local');
  assert.equal(cc.exp - cc.iat, 45);
  assert.equal(cc.route, undefined);
  assert.match(c.seen.infos[0], /^plldb: copied a curl command with a knock for local to the clipboard; it expires at .+ \(in 4[345] s\)\.$/);

  // The AWS CLI line, for HelloFunction, 2h: no route is asked (its event, {}, is no HTTP request, and a route-bound
  // knock never works on one). Run as it is with the real AWS CLI (the test venv's is v1: the line has no --payload,
  // so no --cli-binary-format, which v2 would need and v1 does not have), it stops at the breakpoint.
  const a = scriptedUI(['HelloFunction', 'AWS CLI command'], [['2h']]);
  assert.equal(await copyKnock(hello, [], a.ui), 'local/HelloFunction');
  shown.push(...shownText(a.seen));
  assert.deepEqual(a.seen.errors, []);
  assert.equal(a.seen.prompts.length, 1, 'only the lifetime is asked');
  const am = new RegExp(`^aws lambda invoke --endpoint-url '${url}' --function-name 'HelloFunction' --client-context ([A-Za-z0-9+/=]+) ` +
    `out\\.json$`).exec(a.seen.clipboard[0]);
  assert.ok(am, a.seen.clipboard[0]);
  const atok = JSON.parse(Buffer.from(am[1], 'base64').toString()).custom.plldbKnock;
  tokens.push(atok);
  const ac = verifyKnock(atok);
  assert.equal(ac.aud, 'local/HelloFunction');
  assert.equal(ac.exp - ac.iat, 2 * 3600);
  assert.equal(ac.route, undefined);
  assert.match(a.seen.infos[0], /^plldb: copied an AWS CLI command with a knock for local\/HelloFunction to the clipboard; it expires at .+ \(in 2 h\)\.$/);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'plldb-knock-run-'));
  try {
    await stopsAndAnswers(() => sh(a.seen.clipboard[0], work));
    const out = JSON.parse(fs.readFileSync(path.join(work, 'out.json'), 'utf8'));
    assert.equal(out.statusCode, 200, JSON.stringify(out));

    // boto3, for every function: the snippet says FUNCTION, and the message says to replace it. With the name
    // filled in, run by Python with the real boto3, it stops at the breakpoint.
    const b = scriptedUI(['Every function', 'boto3 snippet'], [['10m']]);
    assert.equal(await copyKnock(hello, [], b.ui), 'local');
    shown.push(...shownText(b.seen));
    assert.deepEqual(b.seen.errors, []);
    const snippet = b.seen.clipboard[0];
    const bm = /^import boto3\nresp = boto3\.client\("lambda", endpoint_url="([^"]+)"\)\.invoke\(FunctionName="FUNCTION", Payload=b"\{\}", ClientContext="([A-Za-z0-9+/=]+)"\)\nprint\(resp\["Payload"\]\.read\(\)\.decode\(\)\)$/.exec(snippet);
    assert.ok(bm, snippet);
    assert.equal(bm[1], url);
    const btok = JSON.parse(Buffer.from(bm[2], 'base64').toString()).custom.plldbKnock;
    tokens.push(btok);
    const bc = verifyKnock(btok);
    assert.equal(bc.aud, 'local');
    assert.equal(bc.exp - bc.iat, 600);
    assert.match(b.seen.infos[0], /^plldb: copied a boto3 snippet with a knock for local to the clipboard; it expires at .+ \(in 10 min\)\. Replace FUNCTION with the name of the function to invoke\.$/);
    fs.writeFileSync(path.join(work, 'knock.py'), snippet.replace('"FUNCTION"', '"HelloFunction"'));
    const printed = await stopsAndAnswers(() => sh(`python knock.py`, work));
    assert.equal(JSON.parse(printed).statusCode, 200, printed);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }

  // A session of one function whose deployed name is not its logical id: the AWS CLI line names it by that name
  // and the knock is bound to it; no function is asked. Run, the line stops in that function.
  await stop(dc);
  const one = await launched(['PackageFunction'], { selective: true });
  const orders = path.join(HELLO, 'src', 'pkg', 'orders.py');
  const ordersLine = breakpointLine(orders, 'handler');
  await one.dc.setBreakpointsRequest({ source: { path: orders }, breakpoints: [{ line: ordersLine }] });
  await one.dc.configurationDoneRequest();
  const fns = (await one.dc.customRequest('plldbFunctions')).body.functions;
  assert.equal(fns.length, 1);
  const o = scriptedUI(['AWS CLI command'], [['']]);
  assert.equal(await copyKnock(session(one.dc, 'package'), [], o.ui), `local/${fns[0].name}`);
  shown.push(...shownText(o.seen));
  assert.deepEqual(o.seen.picks, [FORMAT_LABELS]);
  assert.ok(o.seen.clipboard[0].includes(` --function-name '${fns[0].name}' `), o.seen.clipboard[0]);
  const otok = JSON.parse(Buffer.from(/--client-context (\S+)/.exec(o.seen.clipboard[0])![1], 'base64').toString()).custom.plldbKnock;
  tokens.push(otok);
  const oc = verifyKnock(otok);
  assert.equal(oc.exp - oc.iat, 15 * 60, 'an empty lifetime is the default');
  assert.notEqual(fns[0].name, 'PackageFunction');
  const work2 = fs.mkdtempSync(path.join(os.tmpdir(), 'plldb-knock-run-'));
  try {
    const stopped = one.dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    const done = sh(o.seen.clipboard[0], work2);
    await one.dc.assertStoppedLocation('breakpoint', { path: orders, line: ordersLine });
    await one.dc.continueRequest({ threadId: (await stopped).body.threadId as number });
    await done;
  } finally {
    fs.rmSync(work2, { recursive: true, force: true });
  }
  await stop(one.dc);

  // No token, nor its signature, in anything the user was shown.
  assert.equal(new Set(tokens).size, 5);
  for (const tok of tokens) {
    for (const text of shown) {
      assert.ok(!text.includes(tok.split('.')[2]), `a token in "${text.slice(0, 60)}…"`);
    }
  }
});

test('Copy Knock… refuses a bad lifetime or route in its boxes, as the adapter does, and copies nothing on Escape', { timeout: 4 * TIMEOUT }, async () => {
  const { dc } = await launched(['HelloFunction', 'PackageFunction'], { selective: true });
  await dc.configurationDoneRequest();
  const hello = session(dc, 'hello');

  // The boxes' checks give the adapter's verdicts: each value is sent to plldbKnock too (as the command sends it,
  // trimmed), and accepted there exactly when the box takes it.
  const adapterTakes = async (args: Record<string, string>) => {
    try {
      await dc.customRequest('plldbKnock', args);
      return true;
    } catch {
      return false;
    }
  };
  const lifetimes = ['1s', '999ms', '1000ms', '0.5s', '1.5s', '.5h', '5.s', '+1m', '-1m', '0', '-0', '1', '10 m', '1m30', 'h', '.s', '.',
    '1e3s', '1d', '1H', '1000000us', '1000000µs', '1000000μs', '999999µs', '1000000000ns', '12h', '720m', '43200s', '43201s',
    '12h0m0.001s', '11h59m59.999s', '1h30m', '2h45m30.5s', '1.5.5s', '00', '1constructor', '1__proto__', '99999999999999999999h',
    ' 10m ', ''];
  for (const v of lifetimes) {
    assert.equal(lifetimeProblem(v) === undefined, await adapterTakes({ for: v.trim() }), `lifetime ${JSON.stringify(v)}: ${lifetimeProblem(v)}`);
  }
  const routes = ['POST /orders/*', 'ANY /**', '* /', 'GET /a/**/b', 'DELETE /a%20b', 'PATCH /x?y=1', ' GET /x ', '', 'post /x', 'POST',
    'POST  /x', 'POST x', 'POST /a b', 'POST /***', 'POST /é', 'GETTINGVERYLONGMETHOD /x', 'ABCDEFGHIJKLMNOP /x', 'A /x', '*/x',
    'POST /' + 'a'.repeat(250), 'POST /' + 'a'.repeat(251), 'GET /\tx', 'Ö /x'];
  for (const v of routes) {
    const args: Record<string, string> = v.trim() ? { route: v.trim() } : {};
    assert.equal(routeProblem(v) === undefined, await adapterTakes(args), `route ${JSON.stringify(v)}: ${routeProblem(v)}`);
  }

  // Bad values in the boxes: each problem is shown under the box, the user gives up (Escape), nothing is copied
  // and no error is raised.
  const badTTL = scriptedUI(['HelloFunction', 'Header line'], [['13h', 'ten minutes', '0.5s']]);
  assert.equal(await copyKnock(hello, [], badTTL.ui), undefined);
  assert.deepEqual(badTTL.seen.problems, ['A knock works for at most 12h', 'Not a duration: write it like 90s, 10m or 1h30m (units h, m, s, ms)',
    'A knock must work for at least 1s']);
  const badRoute = scriptedUI(['HelloFunction', 'curl command'], [['http://127.0.0.1:1/x'], ['1m'], ['post /orders/*', 'POST orders', 'GET /a/***']]);
  assert.equal(await copyKnock(hello, [], badRoute.ui), undefined);
  assert.equal(badRoute.seen.problems.length, 3);
  assert.match(badRoute.seen.problems[0], /HTTP method in capitals/);
  assert.match(badRoute.seen.problems[1], /starts with \//);
  assert.match(badRoute.seen.problems[2], /two stars/);
  for (const s of [badTTL.seen, badRoute.seen]) {
    assert.deepEqual(s.clipboard, []);
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.infos, []);
  }

  // What gets past the boxes (here, a client that does not validate) the adapter refuses: its message is shown, and
  // nothing is copied.
  const unchecked = [
    { inputs: [['13h'], ['']], refusal: /^plldb: no knock: plldbKnock: "for" must be a duration between 1s and 12h0m0s/ },
    { inputs: [['15m'], ['post /orders/*']], refusal: /^plldb: no knock: plldbKnock: .*route method is not an HTTP method/ },
  ];
  for (const u of unchecked) {
    const r = scriptedUI(['HelloFunction', 'Header line'], u.inputs, false);
    assert.equal(await copyKnock(hello, [], r.ui), undefined);
    assert.deepEqual(r.seen.clipboard, []);
    assert.equal(r.seen.errors.length, 1);
    assert.match(r.seen.errors[0], u.refusal);
  }
  const noURL = scriptedUI(['HelloFunction', 'curl command'], [['  '], [''], ['']], false);
  assert.equal(await copyKnock(hello, [], noURL.ui), undefined);
  assert.deepEqual(noURL.seen.clipboard, []);
  assert.match(noURL.seen.errors[0], /^plldb: no knock: plldbKnock: a curl line needs the URL to call$/);

  // Escape at each step, with two plldb sessions and none focused: the session, the function, the format, the URL,
  // the lifetime, the route. Each asks one step further than the one before, then copies nothing.
  const all = { picks: ['hello', 'HelloFunction', 'curl command'], inputs: [['http://127.0.0.1:1/x'], ['1m'], ['GET /x']] };
  for (let step = 0; step < 6; step++) {
    const picks = all.picks.slice(0, Math.min(step, 3));
    const inputs = all.inputs.slice(0, Math.max(0, step - 3));
    const e = scriptedUI(picks, inputs);
    assert.equal(await copyKnock(undefined, [session(dc, 'other'), hello], e.ui), undefined, `Escape at step ${step}`);
    assert.equal(e.seen.picks.length + e.seen.prompts.length, step + 1, `Escape at step ${step}`);
    assert.deepEqual(e.seen.clipboard, []);
    assert.deepEqual(e.seen.errors, []);
    assert.deepEqual(e.seen.infos, []);
    assert.deepEqual(e.seen.problems, []);
  }
  // And with every answer given, the same script copies.
  const full = scriptedUI([...all.picks], all.inputs.map((i) => [...i]));
  assert.equal(await copyKnock(undefined, [session(dc, 'other'), hello], full.ui), 'local/HelloFunction');
  assert.equal(verifyKnock(/X-Plldb-Knock: (\S+)'/.exec(full.seen.clipboard[0])![1]).route, 'GET /x');
  await stop(dc);
});

test('Copy Knock… in a session that is not selective copies nothing and says how to make it selective', { timeout: 2 * TIMEOUT }, async () => {
  const { dc } = await launched(['HelloFunction'], {});
  await dc.configurationDoneRequest();
  const { ui, seen } = scriptedUI(['Header line'], [['15m'], ['']]);
  assert.equal(await copyKnock(session(dc, 'plain'), [], ui), undefined);
  assert.deepEqual(seen.picks, [], 'nothing is asked');
  assert.deepEqual(seen.clipboard, []);
  assert.match(seen.errors[0], /^plldb: "plain" is not a selective session/);
  await stop(dc);
});

test('when says the local time and how long is left', () => {
  const now = new Date('2026-12-02T12:00:00Z');
  assert.match(when('2026-12-02T12:15:00Z', now), /^at .+ \(in 15 min\)$/);
  assert.match(when('2026-12-02T14:30:00Z', now), /\(in 2 h 30 min\)$/);
  assert.match(when('2026-12-03T00:00:00Z', now), /\(in 12 h\)$/);
  assert.match(when('2026-12-02T12:00:45Z', now), /^at .+ \(in 45 s\)$/);
  assert.equal(when('soon', now), 'at soon');
});

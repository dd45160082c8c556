// End to end: @vscode/debugadapter-testsupport's DebugClient drives the real `plldb dap` on stdio, as VS Code
// does, over the hello sample app: breakpoint, stopped location, variables, continue, the caller's answer; the
// whole user scenario (a paused invocation inspected, changed, stepped, a second one beside it, terminate); and
// attaching to `plldb local --debug --listen` as the extension does for "request": "attach".
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { after, before, test } from 'node:test';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import { DebugProtocol } from '@vscode/debugprotocol';
import { resolve } from '../src/resolve';
import { ROOT, breakpointLine, launchSchema, post, testPython } from './util';

const HELLO = path.join(ROOT, 'testfixtures', 'apps', 'hello');
const APP = path.join(HELLO, 'src', 'app.py');
// Cold start of debugpy in every executor happens inside launch; generous, because the machine is shared.
const TIMEOUT = 90_000;

let plldb = process.env.PLLDB_BIN ?? '';

function newClient(): DebugClient {
  // DebugClient spawns `<runtime> <executable>`: here `plldb dap`. The adapter's logs go to stderr.
  const dc = new DebugClient(plldb, 'dap', 'plldb', { cwd: HELLO, env: { ...process.env } }, !!process.env.PLLDB_TEST_VERBOSE);
  dc.defaultTimeout = TIMEOUT;
  return dc;
}

const clients: DebugClient[] = [];
async function started(): Promise<DebugClient> {
  const dc = newClient();
  clients.push(dc);
  await dc.start();
  return dc;
}

before(() => {
  if (!plldb) {
    plldb = path.join(ROOT, 'build', 'plldb');
    execFileSync('go', ['build', '-o', plldb, './cmd/plldb'], { cwd: ROOT, stdio: 'inherit' });
  }
  assert.ok(fs.existsSync(plldb), `${plldb} missing`);
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
  // Sessions of failed tests.
  await Promise.all([...clients].map(stop));
});

test('breakpoint in the hello handler: stopped location, variables, continue, the caller\'s result', { timeout: 4 * TIMEOUT }, async () => {
  const python = testPython();
  const line = breakpointLine(APP, 'handler');
  // The configuration the extension's provider resolves from a minimal launch.json in the app's folder: it
  // finds template.yaml itself.
  const r = await resolve(
    { type: 'plldb', request: 'launch', name: 'hello', functions: ['HelloFunction'], invokePort: 0, python },
    { folder: HELLO, findTemplates: async () => [] },
  );
  assert.ok('config' in r, 'error' in r ? r.error : '');
  assert.equal(r.config.template, path.join(HELLO, 'template.yaml'));

  const dc = await started();
  const outputs: string[] = [];
  let endpoint: (v: string) => void;
  const invokeAPI = new Promise<string>((ok) => (endpoint = ok));
  dc.on('output', (e: DebugProtocol.OutputEvent) => {
    outputs.push(e.body.output);
    const m = /Invoke API at (http:\/\/\S+)/.exec(e.body.output);
    if (m) endpoint(m[1]);
  });

  const init = await dc.initializeRequest({ adapterID: 'plldb', clientID: 'vscode', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
  assert.equal(init.body?.supportsConfigurationDoneRequest, true);
  await Promise.all([dc.waitForEvent('initialized'), dc.launchRequest(r.config as DebugProtocol.LaunchRequestArguments)]);

  const bps = await dc.setBreakpointsRequest({ source: { path: APP }, breakpoints: [{ line }] });
  assert.equal(bps.body.breakpoints.length, 1);
  assert.equal(bps.body.breakpoints[0].line, line);
  await dc.configurationDoneRequest();

  // The adapter announces where the Invoke API listens (invokePort 0 picks a free port).
  const url = await invokeAPI;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  const answer = post(`${url}/2015-03-31/functions/HelloFunction/invocations`, JSON.stringify({ name: 'plldb', n: 7 }));

  const stack = await dc.assertStoppedLocation('breakpoint', { path: APP, line });
  const frame = stack.body.stackFrames[0];
  assert.equal(frame.name, 'handler');
  const scopes = await dc.scopesRequest({ frameId: frame.id });
  const locals = scopes.body.scopes.find((s) => /locals/i.test(s.name));
  assert.ok(locals, `no Locals scope in ${scopes.body.scopes.map((s) => s.name).join(', ')}`);
  const vars = await dc.variablesRequest({ variablesReference: locals.variablesReference });
  const event = vars.body.variables.find((v) => v.name === 'event');
  assert.ok(event, `no "event" among ${vars.body.variables.map((v) => v.name).join(', ')}`);
  assert.match(event.value, /'name': 'plldb'/);
  assert.ok(event.variablesReference > 0, 'event is expandable');
  const fields = await dc.variablesRequest({ variablesReference: event.variablesReference });
  const n = fields.body.variables.find((v) => v.name === "'n'");
  assert.equal(n?.value, '7');
  assert.ok(vars.body.variables.some((v) => v.name === 'context'), 'the Lambda context is a local too');

  await dc.continueRequest({ threadId: (await stopped).body.threadId as number });
  const res = await answer;
  assert.equal(res.status, 200, res.body);
  const payload = JSON.parse(res.body);
  assert.equal(payload.statusCode, 200);
  assert.deepEqual(JSON.parse(payload.body), { greeting: 'hello from dev', event: { name: 'plldb', n: 7 } });
  assert.ok(outputs.some((o) => o.includes('debugging HelloFunction')), outputs.join(''));

  await stop(dc);
});

/** processesIn lists the pids of processes whose working directory is dir (executors run in the code folder). */
function processesIn(dir: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (fs.readlinkSync(`/proc/${pid}/cwd`) === dir) out.push(pid);
    } catch {
      // gone, or not ours
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

test('the whole user scenario: paused invocation, inspect, change a value, step, two invocations, terminate', { timeout: 6 * TIMEOUT }, async () => {
  const python = testPython();
  const ORDERS = path.join(HELLO, 'src', 'pkg', 'orders.py');
  const SHARED = path.join(HELLO, 'layer', 'python', 'shared_util.py');
  const line = breakpointLine(ORDERS, 'handler');
  const r = await resolve(
    { type: 'plldb', request: 'launch', name: 'orders', functions: ['PackageFunction'], invokePort: 0, python },
    { folder: HELLO, findTemplates: async () => [] },
  );
  assert.ok('config' in r, 'error' in r ? r.error : '');
  const dc = await started();
  let endpoint: (v: string) => void;
  const invokeAPI = new Promise<string>((ok) => (endpoint = ok));
  dc.on('output', (e: DebugProtocol.OutputEvent) => {
    const m = /Invoke API at (http:\/\/\S+)/.exec(e.body.output);
    if (m) endpoint(m[1]);
  });
  await dc.initializeRequest({ adapterID: 'plldb', clientID: 'vscode', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path', supportsVariableType: true });
  // The breakpoint exists before the session starts: VS Code sends it between initialized and configurationDone.
  await Promise.all([dc.waitForEvent('initialized'), dc.launchRequest(r.config as DebugProtocol.LaunchRequestArguments)]);
  const bps = await dc.setBreakpointsRequest({ source: { path: ORDERS }, breakpoints: [{ line }] });
  assert.equal(bps.body.breakpoints[0].verified, true);
  await dc.configurationDoneRequest();
  const url = `${await invokeAPI}/2015-03-31/functions/PackageFunction/invocations`;

  // The invocation stops at the breakpoint, and stays paused: its caller waits.
  const firstStop = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  let firstDone = false;
  const first = post(url, JSON.stringify({ items: ['a', 'b'] })).finally(() => (firstDone = true));
  const stopped = (await firstStop).body;
  assert.equal(stopped.reason, 'breakpoint');
  const tid = stopped.threadId as number;
  await sleep(3000);
  assert.equal(firstDone, false, 'the caller still waits after 3 s');
  const threads = (await dc.threadsRequest()).body.threads;
  assert.deepEqual(threads.map((t) => t.id), [tid]);
  assert.match(threads[0].name, /^PackageFunction [0-9a-f]{8}$/);

  const top = async () => (await dc.stackTraceRequest({ threadId: tid })).body.stackFrames[0];
  let frame = await top();
  assert.equal(frame.name, 'handler');
  assert.equal(frame.source?.path, ORDERS);
  assert.equal(frame.line, line);
  const locals = async (frameId: number) => {
    const scopes = (await dc.scopesRequest({ frameId })).body.scopes;
    const l = scopes.find((s) => /locals/i.test(s.name));
    assert.ok(l, `no Locals scope in ${scopes.map((s) => s.name).join(', ')}`);
    return l.variablesReference;
  };
  let vars = (await dc.variablesRequest({ variablesReference: await locals(frame.id) })).body.variables;
  assert.match(vars.find((v) => v.name === 'event')?.value ?? '', /'items': \['a', 'b'\]/);
  const ev = await dc.evaluateRequest({ expression: 'len(event["items"]) * 10', frameId: frame.id, context: 'watch' });
  assert.equal(ev.body.result, '20');

  // next: items is assigned; change it, and the caller's count says so.
  const waitStep = () => dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  let step = waitStep();
  await dc.nextRequest({ threadId: tid });
  assert.equal((await step).body.reason, 'step');
  frame = await top();
  assert.equal(frame.name, 'handler');
  assert.ok(frame.line > line, `next moved on from line ${line} (at ${frame.line})`);
  const ref = await locals(frame.id);
  vars = (await dc.variablesRequest({ variablesReference: ref })).body.variables;
  assert.equal(vars.find((v) => v.name === 'items')?.value, "['a', 'b']");
  const set = await dc.setVariableRequest({ variablesReference: ref, name: 'items', value: '[1, 2, 3]' });
  assert.equal(set.body.value, '[1, 2, 3]');

  // stepIn reaches the layer's count_items (os.environ.get, library code, is stepped over: justMyCode).
  for (let i = 0; i < 8 && frame.name !== 'count_items'; i++) {
    step = waitStep();
    await dc.stepInRequest({ threadId: tid });
    assert.equal((await step).body.reason, 'step');
    frame = await top();
  }
  assert.equal(frame.name, 'count_items');
  assert.equal(frame.source?.path, SHARED);
  const inner = (await dc.variablesRequest({ variablesReference: await locals(frame.id) })).body.variables;
  assert.equal(inner.find((v) => v.name === 'items')?.value, '[1, 2, 3]');
  // stepOut: back in the handler.
  step = waitStep();
  await dc.stepOutRequest({ threadId: tid });
  assert.equal((await step).body.reason, 'step');
  frame = await top();
  assert.equal(frame.name, 'handler');
  assert.equal(frame.source?.path, ORDERS);

  // A second invocation while the first is paused: a second thread stops at the breakpoint.
  const secondStop = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  const second = post(url, JSON.stringify({ items: ['x'] }));
  const tid2 = (await secondStop).body.threadId as number;
  assert.notEqual(tid2, tid);
  assert.deepEqual((await dc.threadsRequest()).body.threads.map((t) => t.id).sort(), [tid, tid2].sort());

  // Continue the first: its caller gets the changed value; the second stays paused.
  const cont = await dc.continueRequest({ threadId: tid });
  assert.equal(cont.body.allThreadsContinued, false);
  const res1 = await first;
  assert.equal(res1.status, 200, res1.body);
  const out1 = JSON.parse(res1.body);
  assert.equal(out1.count, 3, 'setVariable changed what the handler returned');
  assert.equal(out1.shared, 'function');
  assert.equal((await dc.stackTraceRequest({ threadId: tid2 })).body.stackFrames[0].line, line);
  await dc.continueRequest({ threadId: tid2 });
  const res2 = await second;
  assert.equal(res2.status, 200, res2.body);
  assert.equal(JSON.parse(res2.body).count, 1);

  // terminate: the functions stop, and no executor process is left.
  const src = fs.realpathSync(path.join(HELLO, 'src'));
  assert.notDeepEqual(processesIn(src), [], 'the executor runs in the code folder');
  const terminated = dc.waitForEvent('terminated');
  await dc.terminateRequest({});
  await terminated;
  await stop(dc);
  for (let i = 0; i < 100 && processesIn(src).length > 0; i++) await sleep(100);
  assert.deepEqual(processesIn(src), [], 'no executor survives terminate');
});

test('the adapter type-checks every attribute the manifest declares, and names it', { timeout: TIMEOUT }, async () => {
  // A launch with every attribute of the wrong type: each must be named in the error, so none of the manifest's
  // attributes is silently ignored by `plldb dap`.
  const wrong: Record<string, unknown> = { string: 42, integer: 'x', boolean: 'yes', array: 'x', object: 'x' };
  const args: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(launchSchema())) args[k] = wrong[String(s.type)];
  const dc = await started();
  await dc.initializeRequest({ adapterID: 'plldb', clientID: 'vscode', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
  await assert.rejects(dc.launchRequest(args as DebugProtocol.LaunchRequestArguments), (err: Error) => {
    for (const k of Object.keys(args)) assert.ok(err.message.includes(`"${k}" must be`), `launch error does not name ${k}: ${err.message}`);
    return true;
  });
  await stop(dc);
});

test('a launch the adapter cannot serve fails with a message naming the problem', { timeout: TIMEOUT }, async () => {
  const dc = await started();
  await dc.initializeRequest({ adapterID: 'plldb', clientID: 'vscode', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
  // AWS mode against an endpoint where nothing answers: the error names the missing install and how to make it.
  await assert.rejects(
    dc.launchRequest({ mode: 'aws', stackName: 'demo', region: 'us-east-1', endpointUrl: 'http://127.0.0.1:9' } as DebugProtocol.LaunchRequestArguments),
    /plldb install/);
  await stop(dc);
});

test('plldb dap --listen, as LSP4IJ and nvim-dap "server" adapters use it; a noDebug launch serves without stopping', { timeout: 2 * TIMEOUT }, async (t) => {
  const python = testPython();
  const proc = spawn(plldb, ['dap', '--listen', '127.0.0.1:0'], { cwd: HELLO, stdio: ['ignore', 'pipe', process.env.PLLDB_TEST_VERBOSE ? 'inherit' : 'ignore'] });
  const exited = new Promise<number | null>((ok) => proc.on('exit', (code) => ok(code)));
  t.after(async () => {
    proc.kill('SIGTERM');
    await exited;
  });
  // LSP4IJ's ready pattern for this line is "DAP server listening at: ${address}:${port}".
  const port = await new Promise<number>((ok, fail) => {
    let out = '';
    proc.stdout.on('data', (b: Buffer) => {
      out += b.toString('utf8');
      const m = /^DAP server listening at: (127\.0\.0\.1):(\d+)\r?\n/.exec(out);
      if (m) ok(Number(m[2]));
    });
    proc.on('exit', (code) => fail(new Error(`plldb dap --listen exited (${code}) before announcing its address: ${out}`)));
  });

  const dc = newClient();
  clients.push(dc);
  await dc.start(port);
  let endpoint: (v: string) => void;
  const invokeAPI = new Promise<string>((ok) => (endpoint = ok));
  dc.on('output', (e: DebugProtocol.OutputEvent) => {
    const m = /Invoke API at (http:\/\/\S+)/.exec(e.body.output);
    if (m) endpoint(m[1]);
  });
  let stops = 0;
  dc.on('stopped', () => stops++);
  await dc.initializeRequest({ adapterID: 'plldb', clientID: 'lsp4ij', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
  await Promise.all([
    dc.waitForEvent('initialized'),
    dc.launchRequest({ mode: 'local', template: 'template.yaml', cwd: HELLO, functions: ['HelloFunction'], invokePort: 0, python, noDebug: true } as DebugProtocol.LaunchRequestArguments),
  ]);
  await dc.setBreakpointsRequest({ source: { path: APP }, breakpoints: [{ line: breakpointLine(APP, 'handler') }] });
  await dc.configurationDoneRequest();
  const res = await post(`${await invokeAPI}/2015-03-31/functions/HelloFunction/invocations`, '{"via": "server"}');
  assert.equal(res.status, 200, res.body);
  assert.deepEqual(JSON.parse(JSON.parse(res.body).body), { greeting: 'hello from dev', event: { via: 'server' } });
  assert.equal(stops, 0, 'a noDebug session never stops');
  await stop(dc);
  // One session per connection, one after another: the listener takes the next client.
  const again = newClient();
  clients.push(again);
  await again.start(port);
  const init = await again.initializeRequest({ adapterID: 'plldb', clientID: 'lsp4ij', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
  assert.equal(init.success, true);
  await stop(again);
});

test('attach to `plldb local --debug --listen`: the IDE detaches and attaches again, the Invoke API serves throughout', { timeout: 3 * TIMEOUT }, async (t) => {
  const python = testPython();
  const line = breakpointLine(APP, 'handler');
  const proc = spawn(plldb, ['local', '--template', 'template.yaml', '--port', '0', '--python', python, '--functions', 'HelloFunction', '--listen', '127.0.0.1:0'],
    { cwd: HELLO, stdio: ['ignore', 'pipe', process.env.PLLDB_TEST_VERBOSE ? 'inherit' : 'ignore'] });
  const exited = new Promise<number | null>((ok) => proc.on('exit', (code) => ok(code)));
  t.after(async () => {
    proc.kill('SIGKILL');
    await exited;
  });
  const { url, port } = await new Promise<{ url: string; port: number }>((ok, fail) => {
    let out = '';
    proc.stdout.on('data', (b: Buffer) => {
      out += b.toString('utf8');
      const ep = /^Lambda Invoke endpoint: (\S+)$/m.exec(out);
      const dap = /^DAP server listening at: 127\.0\.0\.1:(\d+)$/m.exec(out);
      if (ep && dap) ok({ url: `${ep[1]}/2015-03-31/functions/HelloFunction/invocations`, port: Number(dap[1]) });
    });
    proc.on('exit', (code) => fail(new Error(`plldb local exited (${code}): ${out}`)));
  });
  // What the extension does for "request": "attach": connect to the server (vscode.DebugAdapterServer).
  const attach = async (): Promise<DebugClient> => {
    const dc = newClient();
    clients.push(dc);
    await dc.start(port);
    await dc.initializeRequest({ adapterID: 'plldb', clientID: 'vscode', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
    await Promise.all([dc.waitForEvent('initialized'), dc.attachRequest({ host: '127.0.0.1', port } as DebugProtocol.AttachRequestArguments)]);
    await dc.setBreakpointsRequest({ source: { path: APP }, breakpoints: [{ line }] });
    await dc.configurationDoneRequest();
    return dc;
  };
  let dc = await attach();
  let stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  const paused = post(url, '{"n": 1}');
  await dc.assertStoppedLocation('breakpoint', { path: APP, line });
  await stopped;
  // Disconnect (VS Code's button for an attach): the paused invocation goes on, and nothing pauses any more.
  await stop(dc);
  assert.equal((await paused).status, 200);
  const unattended = await post(url, '{"n": 2}');
  assert.deepEqual(JSON.parse(JSON.parse(unattended.body).body), { greeting: 'hello from dev', event: { n: 2 } });

  dc = await attach();
  stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  const again = post(url, '{"n": 3}');
  await dc.continueRequest({ threadId: (await stopped).body.threadId as number });
  assert.equal((await again).status, 200);
  await stop(dc);
  proc.kill('SIGINT');
  assert.equal(await exited, 0, 'plldb local exits cleanly on Ctrl-C');
});

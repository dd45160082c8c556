// extension.ts, the VS Code glue, against a stand-in for the vscode module: what it registers, what the
// providers answer, and which command the adapter factory starts. (`make test-vscode` runs the real VS Code;
// this stand-in reaches the cases a session there cannot, quickly.)
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { test } from 'node:test';
import { manifest } from './util';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const Module = require('module');

interface Registered {
  providers: { type: string; provider: any; kind: number }[];
  factories: { type: string; factory: any }[];
  commands: Map<string, (...args: any[]) => any>;
  onStart: ((s: any) => void)[];
  onEnd: ((s: any) => void)[];
  contexts: Record<string, unknown>;
  active?: any;
}

interface FakeState {
  templates: string[];
  settings: Record<string, string>;
  errors: string[];
  infos: string[];
  picks: string[];
  clipboard: string[];
  choose?: string;
  reg: Registered;
}

function fakeVscode(state: FakeState) {
  class RelativePattern {
    constructor(public base: any, public pattern: string) {}
  }
  class DebugAdapterExecutable {
    constructor(public command: string, public args: string[], public options: any) {}
  }
  class DebugAdapterServer {
    constructor(public port: number, public host?: string) {}
  }
  return {
    DebugConfigurationProviderTriggerKind: { Initial: 1, Dynamic: 2 },
    RelativePattern,
    DebugAdapterExecutable,
    DebugAdapterServer,
    debug: {
      registerDebugConfigurationProvider(type: string, provider: any, kind: number) {
        state.reg.providers.push({ type, provider, kind });
        return { dispose() {} };
      },
      registerDebugAdapterDescriptorFactory(type: string, factory: any) {
        state.reg.factories.push({ type, factory });
        return { dispose() {} };
      },
      onDidStartDebugSession(f: (s: any) => void) {
        state.reg.onStart.push(f);
        return { dispose() {} };
      },
      onDidTerminateDebugSession(f: (s: any) => void) {
        state.reg.onEnd.push(f);
        return { dispose() {} };
      },
      get activeDebugSession() {
        return state.reg.active;
      },
    },
    commands: {
      registerCommand(id: string, f: (...args: any[]) => any) {
        state.reg.commands.set(id, f);
        return { dispose() {} };
      },
      async executeCommand(id: string, key: string, value: unknown) {
        assert.equal(id, 'setContext');
        state.reg.contexts[key] = value;
      },
    },
    env: {
      clipboard: {
        async writeText(text: string) {
          state.clipboard.push(text);
        },
      },
    },
    workspace: {
      async findFiles(include: any, exclude: string) {
        assert.ok(String(exclude).includes('node_modules'), 'build output and dependencies are excluded');
        const base = include instanceof RelativePattern ? include.base.uri.fsPath : '';
        return state.templates.filter((t) => t.startsWith(base)).map((t) => ({ fsPath: t }));
      },
      getConfiguration(section: string) {
        assert.equal(section, 'plldb');
        return { get: (key: string) => state.settings[key] };
      },
    },
    window: {
      showErrorMessage(msg: string) {
        state.errors.push(msg);
        return Promise.resolve(undefined);
      },
      showInformationMessage(msg: string) {
        state.infos.push(msg);
        return Promise.resolve(undefined);
      },
      async showQuickPick(items: any[], opts: { placeHolder: string }) {
        state.picks.push(opts.placeHolder);
        return items.find((i) => i.label === state.choose) ?? undefined;
      },
    },
  };
}

function loadExtension(state: Parameters<typeof fakeVscode>[0]) {
  const fake = fakeVscode(state);
  const orig = Module._resolveFilename;
  Module._resolveFilename = function (request: string, ...rest: unknown[]) {
    return request === 'vscode' ? 'vscode' : orig.call(this, request, ...rest);
  };
  require.cache.vscode = { id: 'vscode', filename: 'vscode', loaded: true, exports: fake } as any;
  const file = require.resolve('../src/extension');
  delete require.cache[file];
  try {
    return require(file);
  } finally {
    Module._resolveFilename = orig;
  }
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'plldb-ext-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

// A SAM app with Python functions, and a stack that has none (like plldb's own helper stack).
const PYTHON_APP = 'Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n    Runtime: python3.12\nResources:\n' +
  '  A:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src/\n      Handler: app.a\n' +
  '  B:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src/\n      Handler: app.b\n';
const OTHER_STACK = 'Resources:\n  Relay:\n    Type: AWS::Lambda::Function\n    Properties:\n      Runtime: provided.al2023\n      Handler: bootstrap\n';

function writeFile(file: string, text: string, mode = 0o644): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode });
  return file;
}

function newState(templates: string[] = [], settings: Record<string, string> = {}) {
  const reg: Registered = { providers: [], factories: [], commands: new Map(), onStart: [], onEnd: [], contexts: {} };
  return { templates, settings, errors: [] as string[], infos: [] as string[], picks: [] as string[], clipboard: [] as string[], reg } as FakeState;
}

test('activate registers the initial and dynamic configuration providers and the adapter factory for plldb', async (t) => {
  const d = tmp(t);
  const tpl = writeFile(path.join(d, 'app', 'template.yaml'), PYTHON_APP);
  // Not offered: a stack without Python functions.
  const other = writeFile(path.join(d, 'infra', 'template.yaml'), OTHER_STACK);
  // An interpreter that imports debugpy (the preflight check runs it).
  writeFile(path.join(d, '.venv', 'bin', 'python'), '#!/bin/sh\nexit 0\n', 0o755);
  const state = newState([tpl, other]);
  const ext = loadExtension(state);
  const context = { subscriptions: [] as unknown[], extensionPath: path.join(d, 'ext') };
  ext.activate(context);
  assert.equal(context.subscriptions.length, 7);
  assert.deepEqual(state.reg.providers.map((p) => [p.type, p.kind]), [['plldb', 1], ['plldb', 2]]);
  assert.deepEqual(state.reg.factories.map((f) => f.type), ['plldb']);
  assert.deepEqual([...state.reg.commands.keys()], ['plldb.copyKnockHeader', 'plldb.copyKnock']);
  const folder = { uri: { fsPath: d }, name: 'w', index: 0 };
  const [initial, dynamic] = state.reg.providers.map((p) => p.provider);

  // launch.json creation: one configuration naming the template found, with ${workspaceFolder}.
  const created = await initial.provideDebugConfigurations(folder);
  assert.deepEqual(created, [{ type: 'plldb', request: 'launch', name: 'Lambda: debug locally', mode: 'local', template: '${workspaceFolder}/app/template.yaml', invokePort: 3001 }]);
  // The Run and Debug dropdown without launch.json.
  const offered = await dynamic.provideDebugConfigurations(folder);
  assert.equal(offered.length, 1);
  assert.equal(offered[0].template, '${workspaceFolder}/app/template.yaml');
  assert.equal(offered[0].name, 'Lambda: debug app/template.yaml locally');

  // F5 without launch.json: an empty configuration becomes a plldb launch, then gets the template. (invokePort 0
  // so that a plldb someone runs on 3001 of this machine does not fail the test.)
  const filled = initial.resolveDebugConfiguration(folder, {});
  assert.equal(filled.type, 'plldb');
  const resolved = await initial.resolveDebugConfigurationWithSubstitutedVariables(folder, { ...filled, invokePort: 0 });
  assert.equal(resolved.template, tpl);
  assert.deepEqual(state.errors, []);

  // Something missing: the user is told, and the session does not start.
  const refused = await initial.resolveDebugConfigurationWithSubstitutedVariables(folder, { type: 'plldb', request: 'launch', name: 'x', mode: 'aws' });
  assert.equal(refused, undefined);
  assert.equal(state.errors.length, 1);
  assert.match(state.errors[0], /^plldb: "stackName" is missing/);
});

test('Select and Start Debugging lists each template once: nothing for the launch sources without a folder', async (t) => {
  // VS Code asks the dynamic provider once per launch source: every workspace folder, then the user settings
  // (and a multi-root workspace file) with no folder. Answering those with the workspace's templates listed
  // each template a second time, as "user settings".
  const d = tmp(t);
  const tpl = writeFile(path.join(d, 'template.yaml'), PYTHON_APP);
  const state = newState([tpl]);
  loadExtension(state).activate({ subscriptions: [], extensionPath: path.join(d, 'ext') });
  const dynamic = state.reg.providers.find((p) => p.kind === 2)!.provider;
  const folder = { uri: { fsPath: d }, name: 'w', index: 0 };
  const picks = [...(await dynamic.provideDebugConfigurations(folder)), ...(await dynamic.provideDebugConfigurations(undefined))];
  assert.deepEqual(picks.map((c: any) => c.name), ['Lambda: debug template.yaml locally']);
});

test('"Open launch.json" writes one configuration per template, not two', async (t) => {
  // VS Code writes the manifest's initialConfigurations followed by every initial provider's configurations.
  const d = tmp(t);
  const tpl = writeFile(path.join(d, 'template.yaml'), PYTHON_APP);
  const state = newState([tpl]);
  loadExtension(state).activate({ subscriptions: [], extensionPath: path.join(d, 'ext') });
  const fromManifest = manifest().contributes.debuggers[0].initialConfigurations ?? [];
  const fromProviders = (await Promise.all(state.reg.providers.filter((p) => p.kind === 1)
    .map((p) => p.provider.provideDebugConfigurations({ uri: { fsPath: d }, name: 'w', index: 0 })))).flat();
  const written = [...fromManifest, ...fromProviders];
  assert.deepEqual(written, [{ type: 'plldb', request: 'launch', name: 'Lambda: debug locally', mode: 'local', template: '${workspaceFolder}/template.yaml', invokePort: 3001 }]);
});

test('an interpreter without debugpy is reported once, not once per function', async (t) => {
  const d = tmp(t);
  const tpl = writeFile(path.join(d, 'template.yaml'), PYTHON_APP);
  const py = writeFile(path.join(d, '.venv', 'bin', 'python'),
    '#!/bin/sh\necho "ModuleNotFoundError: No module named \'debugpy\'" >&2\nexit 1\n', 0o755);
  const state = newState([tpl]);
  loadExtension(state).activate({ subscriptions: [], extensionPath: path.join(d, 'ext') });
  const initial = state.reg.providers.find((p) => p.kind === 1)!.provider;
  const folder = { uri: { fsPath: d }, name: 'w', index: 0 };
  const r = await initial.resolveDebugConfigurationWithSubstitutedVariables(folder, { type: 'plldb', request: 'launch', name: 'x', invokePort: 0 });
  assert.equal(r, undefined, 'the session does not start');
  assert.equal(state.errors.length, 1);
  assert.equal(state.errors[0].match(/debugpy is not installed/g)?.length, 1, state.errors[0]);
  assert.ok(state.errors[0].includes(`${py} -m pip install debugpy`), state.errors[0]);
  // Run Without Debugging needs no debugpy.
  state.errors.length = 0;
  const run = await initial.resolveDebugConfigurationWithSubstitutedVariables(folder, { type: 'plldb', request: 'launch', name: 'x', invokePort: 0, noDebug: true });
  assert.equal(run?.python, py);
  assert.deepEqual(state.errors, []);
});

test('a busy invokePort names the port and the attribute that moves it', async (t) => {
  const d = tmp(t);
  const tpl = writeFile(path.join(d, 'template.yaml'), PYTHON_APP);
  writeFile(path.join(d, '.venv', 'bin', 'python'), '#!/bin/sh\nexit 0\n', 0o755);
  const srv = net.createServer();
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  t.after(() => srv.close());
  const port = (srv.address() as net.AddressInfo).port;
  const state = newState([tpl]);
  loadExtension(state).activate({ subscriptions: [], extensionPath: path.join(d, 'ext') });
  const initial = state.reg.providers.find((p) => p.kind === 1)!.provider;
  const r = await initial.resolveDebugConfigurationWithSubstitutedVariables({ uri: { fsPath: d }, name: 'w', index: 0 },
    { type: 'plldb', request: 'launch', name: 'x', invokePort: port });
  assert.equal(r, undefined);
  assert.equal(state.errors.length, 1);
  assert.match(state.errors[0], new RegExp(`^plldb: Port ${port} on 127\\.0\\.0\\.1 is already in use.*Set "invokePort" in launch\\.json`));
});

test('the adapter factory starts `<plldb> dap` from the setting, and refuses a bad setting with its reason', (t) => {
  const d = tmp(t);
  const bin = path.join(d, 'plldb');
  fs.writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 });
  const state = newState([], { path: bin });
  const ext = loadExtension(state);
  ext.activate({ subscriptions: [], extensionPath: path.join(d, 'ext') });
  const factory = state.reg.factories[0].factory;
  const session = { configuration: { cwd: d }, workspaceFolder: { uri: { fsPath: '/elsewhere' } } };
  const desc = factory.createDebugAdapterDescriptor(session);
  assert.equal(desc.command, bin);
  assert.deepEqual(desc.args, ['dap']);
  assert.deepEqual(desc.options, { cwd: d });

  state.settings.path = path.join(d, 'missing');
  assert.throws(() => factory.createDebugAdapterDescriptor(session), /"plldb\.path" setting is .*missing/);
});

test('attach connects to the running plldb DAP server instead of starting `plldb dap`', async (t) => {
  const d = tmp(t);
  const state = newState([], { path: path.join(d, 'missing') });
  loadExtension(state).activate({ subscriptions: [], extensionPath: path.join(d, 'ext') });
  const factory = state.reg.factories[0].factory;
  // No plldb binary is needed: the running plldb is the adapter.
  const desc = factory.createDebugAdapterDescriptor({ configuration: { request: 'attach', host: '127.0.0.2', port: 4711 } });
  assert.equal(desc.port, 4711);
  assert.equal(desc.host, '127.0.0.2');
  assert.equal(factory.createDebugAdapterDescriptor({ configuration: { request: 'attach', port: 4711 } }).host, '127.0.0.1');

  const initial = state.reg.providers.find((p) => p.kind === 1)!.provider;
  const ok = await initial.resolveDebugConfigurationWithSubstitutedVariables({ uri: { fsPath: d }, name: 'w', index: 0 },
    { type: 'plldb', request: 'attach', name: 'a', port: 4711 });
  assert.deepEqual(ok, { type: 'plldb', request: 'attach', name: 'a', port: 4711, host: '127.0.0.1' });
  const bad = await initial.resolveDebugConfigurationWithSubstitutedVariables({ uri: { fsPath: d }, name: 'w', index: 0 },
    { type: 'plldb', request: 'attach', name: 'a' });
  assert.equal(bad, undefined);
  assert.match(state.errors[0], /"port" undefined must be the port of a running plldb DAP server: start `plldb local --debug --listen/);
});

test('"plldb: Copy Knock Header" and "plldb: Copy Knock…" are enabled while a plldb session runs, and say how to start one when none does', async (t) => {
  const d = tmp(t);
  const titles = manifest().contributes.commands.map((c: any) => [c.command, `${c.category}: ${c.title}`, c.enablement]);
  assert.deepEqual(titles, [
    ['plldb.copyKnockHeader', 'plldb: Copy Knock Header', 'plldb.sessionRunning'],
    ['plldb.copyKnock', 'plldb: Copy Knock…', 'plldb.sessionRunning'],
  ]);
  assert.deepEqual(manifest().contributes.menus.commandPalette, [
    { command: 'plldb.copyKnockHeader', when: 'plldb.sessionRunning' },
    { command: 'plldb.copyKnock', when: 'plldb.sessionRunning' },
  ]);

  const state = newState();
  loadExtension(state).activate({ subscriptions: [], extensionPath: path.join(d, 'ext') });
  const plldb = { type: 'plldb', name: 'Lambda: debug locally' };
  const other = { type: 'debugpy', name: 'Python' };
  const start = (s: any) => state.reg.onStart.forEach((f) => f(s));
  const end = (s: any) => state.reg.onEnd.forEach((f) => f(s));
  start(other);
  assert.equal(state.reg.contexts['plldb.sessionRunning'], undefined, 'another debugger\'s session changes nothing');
  start(plldb);
  assert.equal(state.reg.contexts['plldb.sessionRunning'], true);
  end(other);
  assert.equal(state.reg.contexts['plldb.sessionRunning'], true);
  end(plldb);
  assert.equal(state.reg.contexts['plldb.sessionRunning'], false);

  // Run from a keybinding with no plldb session (the palette hides them): an error that says what to do.
  state.reg.active = other;
  for (const id of ['plldb.copyKnockHeader', 'plldb.copyKnock']) {
    state.errors.length = 0;
    assert.equal(await state.reg.commands.get(id)!(), undefined);
    assert.deepEqual(state.clipboard, []);
    assert.equal(state.errors.length, 1, id);
    assert.match(state.errors[0], /^plldb: no plldb debug session is running\. Start one with "selective": true/);
  }
});

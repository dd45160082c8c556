// extension.ts, the VS Code glue, against a stand-in for the vscode module: what it registers, what the
// providers answer, and which command the adapter factory starts. (VS Code itself is not available to tests.)
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { test } from 'node:test';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const Module = require('module');

interface Registered {
  providers: { type: string; provider: any; kind: number }[];
  factories: { type: string; factory: any }[];
}

function fakeVscode(state: { templates: string[]; settings: Record<string, string>; errors: string[]; reg: Registered }) {
  class RelativePattern {
    constructor(public base: any, public pattern: string) {}
  }
  class DebugAdapterExecutable {
    constructor(public command: string, public args: string[], public options: any) {}
  }
  return {
    DebugConfigurationProviderTriggerKind: { Initial: 1, Dynamic: 2 },
    RelativePattern,
    DebugAdapterExecutable,
    debug: {
      registerDebugConfigurationProvider(type: string, provider: any, kind: number) {
        state.reg.providers.push({ type, provider, kind });
        return { dispose() {} };
      },
      registerDebugAdapterDescriptorFactory(type: string, factory: any) {
        state.reg.factories.push({ type, factory });
        return { dispose() {} };
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

test('activate registers the initial and dynamic configuration providers and the adapter factory for plldb', async (t) => {
  const d = tmp(t);
  const tpl = path.join(d, 'app', 'template.yaml');
  fs.mkdirSync(path.dirname(tpl), { recursive: true });
  fs.writeFileSync(tpl, '');
  const state = { templates: [tpl], settings: {} as Record<string, string>, errors: [] as string[], reg: { providers: [], factories: [] } as Registered };
  const ext = loadExtension(state);
  const context = { subscriptions: [] as unknown[], extensionPath: path.join(d, 'ext') };
  ext.activate(context);
  assert.equal(context.subscriptions.length, 3);
  assert.deepEqual(state.reg.providers.map((p) => [p.type, p.kind]), [['plldb', 1], ['plldb', 2]]);
  assert.deepEqual(state.reg.factories.map((f) => f.type), ['plldb']);
  const folder = { uri: { fsPath: d }, name: 'w', index: 0 };
  const [initial, dynamic] = state.reg.providers.map((p) => p.provider);

  // launch.json creation: one configuration naming the template found, with ${workspaceFolder}.
  const created = await initial.provideDebugConfigurations(folder);
  assert.deepEqual(created, [{ type: 'plldb', request: 'launch', name: 'Lambda: debug locally', mode: 'local', template: '${workspaceFolder}/app/template.yaml', invokePort: 3001 }]);
  // The Run and Debug dropdown without launch.json.
  const offered = await dynamic.provideDebugConfigurations(folder);
  assert.equal(offered.length, 1);
  assert.equal(offered[0].template, tpl);
  assert.match(offered[0].name, /app\/template\.yaml/);

  // F5 without launch.json: an empty configuration becomes a plldb launch, then gets the template.
  const filled = initial.resolveDebugConfiguration(folder, {});
  assert.equal(filled.type, 'plldb');
  const resolved = await initial.resolveDebugConfigurationWithSubstitutedVariables(folder, filled);
  assert.equal(resolved.template, tpl);
  assert.deepEqual(state.errors, []);

  // Something missing: the user is told, and the session does not start.
  const refused = await initial.resolveDebugConfigurationWithSubstitutedVariables(folder, { type: 'plldb', request: 'launch', name: 'x', mode: 'aws' });
  assert.equal(refused, undefined);
  assert.equal(state.errors.length, 1);
  assert.match(state.errors[0], /^plldb: "stackName" is missing/);
});

test('the adapter factory starts `<plldb> dap` from the setting, and refuses a bad setting with its reason', (t) => {
  const d = tmp(t);
  const bin = path.join(d, 'plldb');
  fs.writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 });
  const state = { templates: [], settings: { path: bin } as Record<string, string>, errors: [] as string[], reg: { providers: [], factories: [] } as Registered };
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

// The manifest's debugger contribution: every launch attribute described and typed, snippets valid launch
// configurations, initial configurations left to the provider, and the schema equal to what adapter/dap/config.go accepts.
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { ROOT, Schema, adapterAttributes, attachSchema, launchSchema, manifest, validate } from './util';

// Attributes VS Code itself puts in every configuration; the adapter ignores them.
const VSCODE_ATTRS: Record<string, Schema> = {
  type: { type: 'string', enum: ['plldb'] },
  request: { type: 'string', enum: ['launch'] },
  name: { type: 'string' },
};

function fullSchema(): Schema {
  return { type: 'object', properties: { ...VSCODE_ATTRS, ...launchSchema() }, required: ['type', 'request', 'name'], additionalProperties: false };
}

function fullAttachSchema(): Schema {
  const props = { ...VSCODE_ATTRS, request: { type: 'string', enum: ['attach'] }, ...attachSchema() };
  return { type: 'object', properties: props, required: ['type', 'request', 'name', 'port'], additionalProperties: false };
}

// Attributes config.go does not read: the listener's token gate takes "token" off a launch or attach
// (adapter/dap/remote.go), and an attach's "host" and "port" are where the extension connects.
const GATE_ATTRS = ['token'];
const CONNECT_ATTRS = ['host', 'port'];

function sameAsAdapter(props: Record<string, Schema>, attrs: ReturnType<typeof adapterAttributes>['attrs'], what: string) {
  const ours = Object.keys(props).filter((k) => !GATE_ATTRS.includes(k) && !CONNECT_ATTRS.includes(k));
  assert.deepEqual(ours.sort(), attrs.map((a) => a.name).sort(), `${what} attributes: package.json vs adapter/dap/config.go`);
  for (const a of attrs) {
    const s = props[a.name];
    assert.equal(s.type, a.type, `${what} ${a.name}: type`);
    const computed = a.default === '' || (Array.isArray(a.default) && a.default.length === 0) ||
      (a.type === 'object' && Object.keys(a.default as object).length === 0);
    if (!computed || a.type !== 'string') {
      assert.deepEqual(s.default, a.default, `${what} ${a.name}: default`);
    }
  }
}

/** snippetValue turns a configurationSnippets body into the configuration it inserts. */
function snippetValue(v: unknown): unknown {
  if (typeof v === 'string') {
    // "^\"…\"" inserts the JSON text literally; ${n:text} placeholders insert their text.
    // "^…" inserts the rest as JSON text, after snippet syntax: ${n:text} placeholders become their text and
    // \$ a literal $.
    const unsnippet = (x: string) => x.replace(/\$\{\d+:([^}]*)\}/g, '$1').replace(/\\\$/g, '$');
    return v.startsWith('^') ? JSON.parse(unsnippet(v.slice(1))) : unsnippet(v);
  }
  if (Array.isArray(v)) return v.map(snippetValue);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, snippetValue(x)]));
  return v;
}

test('manifest: activation, entry point, engines', () => {
  const m = manifest();
  // onDebugInitialConfigurations: the provider writes the launch.json VS Code creates, so it must be registered
  // by then.
  assert.deepEqual([...m.activationEvents].sort(), ['onDebugDynamicConfigurations:plldb', 'onDebugInitialConfigurations', 'onDebugResolve:plldb']);
  assert.match(m.engines.vscode, /^\^1\.\d+\.\d+$/);
  assert.equal(m.main, './extension/out/src/extension.js');
  assert.ok(fs.existsSync(path.join(ROOT, 'extension', 'src', 'extension.ts')), 'main is compiled from extension/src/extension.ts');
  const types = (m.contributes.debuggers as any[]).map((d) => d.type);
  assert.deepEqual(types, ['plldb']);
  assert.equal(m.contributes.configuration.properties['plldb.path'].type, 'string');
  assert.ok(m.devDependencies['@types/vscode'], '@types/vscode pins the API level');
  // engines.vscode must not be older than the API the code compiles against, or vsce refuses to package.
  const typesVer = String(m.devDependencies['@types/vscode']).replace(/^[\^~]/, '');
  assert.equal(m.engines.vscode.slice(1), typesVer);
});

test('schema: every attribute has a type, a description and a valid default; enums are well formed', () => {
  const props = launchSchema();
  assert.ok(Object.keys(props).length > 0);
  const walk = (s: Schema, where: string) => {
    assert.ok(s.type, `${where} has no type`);
    assert.ok((s.description ?? '').length >= 10, `${where} has no real description`);
    assert.deepEqual(validate(s.default ?? null, s, `${where}.default`).filter(() => s.default !== undefined), []);
    if (s.enum) {
      assert.ok(s.enum.length > 0, `${where}: empty enum`);
      assert.equal(new Set(s.enum.map((e) => JSON.stringify(e))).size, s.enum.length, `${where}: duplicate enum values`);
      for (const e of s.enum) assert.deepEqual(validate(e, { type: s.type }, `${where} enum value`), []);
      if (s.enumDescriptions) assert.equal(s.enumDescriptions.length, s.enum.length, `${where}: one enumDescription per enum value`);
    }
    for (const [k, p] of Object.entries(s.properties ?? {})) walk(p, `${where}.${k}`);
  };
  for (const [k, s] of Object.entries(props)) {
    walk(s, k);
    assert.ok(s.default !== undefined, `${k} has no default`);
  }
});

test('schema equals the attributes, types, defaults and modes of adapter/dap/config.go', () => {
  const { attrs, modes, attach } = adapterAttributes();
  assert.ok(attrs.length >= 10, `parsed only ${attrs.length} attributes from config.go`);
  assert.ok(attach.length >= 3, `parsed only ${attach.length} attach attributes from config.go`);
  const props = launchSchema();
  sameAsAdapter(props, attrs, 'launch');
  sameAsAdapter(attachSchema(), attach, 'attach');
  // The gate's token and the attach address are what the adapter and the extension read instead.
  const remote = fs.readFileSync(path.join(ROOT, 'adapter', 'dap', 'remote.go'), 'utf8');
  for (const k of GATE_ATTRS) {
    assert.ok(props[k] && attachSchema()[k], `${k} in launch and attach`);
    assert.match(remote, new RegExp(`"${k}"`), `remote.go reads ${k}`);
  }
  const ext = fs.readFileSync(path.join(ROOT, 'extension', 'src', 'extension.ts'), 'utf8');
  for (const k of CONNECT_ATTRS) {
    assert.ok(attachSchema()[k], `attach has ${k}`);
    assert.match(ext, new RegExp(`\\b${k}\\b`), `extension.ts reads ${k}`);
  }
  for (const a of attrs) {
    const s = props[a.name];
    assert.equal(s.type, a.type, `${a.name}: type`);
    // Booleans, numbers and defaults the adapter states must be the same; where the adapter computes a default
    // (an empty string or list: "find it"), the manifest may suggest a typical value instead.
    const computed = a.default === '' || (Array.isArray(a.default) && a.default.length === 0) ||
      (a.type === 'object' && Object.keys(a.default as object).length === 0);
    if (!computed) {
      assert.deepEqual(s.default, a.default, `${a.name}: default`);
    } else if (a.type !== 'string') {
      assert.deepEqual(s.default, a.default, `${a.name}: default`);
    }
  }
  assert.deepEqual(props.mode.enum, modes, 'mode enum vs the modes config.go switches on');
});

test('no initialConfigurations (the provider writes launch.json); snippets are valid launch configurations', () => {
  const dbg = manifest().contributes.debuggers[0];
  const schema = fullSchema();
  // VS Code writes the manifest's initialConfigurations followed by the provider's: with both, a new launch.json
  // ("Open launch.json" after a failed launch) held the same configuration twice.
  assert.equal(dbg.initialConfigurations, undefined);
  const labels = (dbg.configurationSnippets as any[]).map((s) => s.label);
  assert.deepEqual(labels, ['Lambda: debug a SAM app locally', 'Lambda: debug a deployed stack', 'Lambda: attach to a running plldb']);
  const modes: string[] = [];
  for (const sn of dbg.configurationSnippets) {
    if (sn.body.request === 'attach') {
      assert.deepEqual(validate(snippetValue(sn.body), fullAttachSchema(), `snippet ${sn.label}`), []);
      continue;
    }
    assert.ok(sn.description, `${sn.label}: no description`);
    // In a snippet, an unescaped ${workspaceFolder} is a snippet variable that VS Code expands to nothing; it
    // must be written \${workspaceFolder} to reach launch.json.
    for (const [k, v] of Object.entries(sn.body)) {
      if (typeof v === 'string') assert.doesNotMatch(v, /(^|[^\\])\$\{[a-zA-Z]/, `${sn.label}: ${k} has an unescaped variable`);
    }
    const c = snippetValue(sn.body) as Record<string, unknown>;
    assert.deepEqual(validate(c, schema, `snippet ${sn.label}`), []);
    modes.push(String(c.mode));
    if (c.mode === 'aws') assert.ok(c.stackName, 'the aws snippet names a stack, as the adapter requires');
  }
  assert.deepEqual(modes, ['local', 'aws']);
});

test('the validator rejects what it should', () => {
  // Without this, a validator that accepts everything would make the snippet test pass vacuously.
  const schema = fullSchema();
  const ok = { type: 'plldb', request: 'launch', name: 'x' };
  assert.deepEqual(validate(ok, schema, 'c'), []);
  assert.notDeepEqual(validate({ ...ok, invokePort: '3001' }, schema, 'c'), []);
  assert.notDeepEqual(validate({ ...ok, invokePort: 70000 }, schema, 'c'), []);
  assert.deepEqual(validate({ ...ok, maxConcurrency: 4, accountConcurrency: 100 }, schema, 'c'), []);
  assert.notDeepEqual(validate({ ...ok, maxConcurrency: 0 }, schema, 'c'), []);
  assert.notDeepEqual(validate({ ...ok, mode: 'cloud' }, schema, 'c'), []);
  assert.notDeepEqual(validate({ ...ok, templat: 'x' }, schema, 'c'), []);
  assert.notDeepEqual(validate({ ...ok, env: { A: 1 } }, schema, 'c'), []);
  assert.notDeepEqual(validate({ ...ok, pathMappings: [{ localRoot: '/a' }] }, schema, 'c'), []);
  assert.notDeepEqual(validate({ ...ok, request: 'attach' }, schema, 'c'), []);
});

// The configuration provider's defaults and explanations, and the adapter binary lookup, on real temporary
// folders.
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { test } from 'node:test';
import { bundledBinary, findPlldb } from '../src/binary';
import { LaunchConfig, Resolved, TEMPLATE_EXCLUDE, TEMPLATE_NAMES, isPythonApp, pythonApps, resolve } from '../src/resolve';
import { ROOT } from './util';

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'plldb-ext-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function write(file: string, text = '', mode = 0o644): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode });
  return file;
}

const launch = (c: Partial<LaunchConfig> = {}): LaunchConfig => ({ type: 'plldb', request: 'launch', name: 'test', ...c });
const ws = (folder: string | undefined, templates: string[] = []) => ({ folder, findTemplates: async () => templates, platform: 'linux' as const });

function config(r: Resolved): LaunchConfig {
  assert.ok('config' in r, 'error' in r ? r.error : '');
  return r.config;
}
function error(r: Resolved): string {
  assert.ok('error' in r, `expected an error, got ${JSON.stringify(r)}`);
  return r.error;
}

test('F5 without launch.json: local mode, template.yaml and .venv of the workspace', async (t) => {
  const d = tmp(t);
  const tpl = write(path.join(d, 'template.yaml'));
  const py = write(path.join(d, '.venv', 'bin', 'python'), '', 0o755);
  const c = config(await resolve({}, ws(d)));
  assert.equal(c.type, 'plldb');
  assert.equal(c.request, 'launch');
  assert.equal(c.mode, 'local');
  assert.equal(c.template, tpl);
  assert.equal(c.python, py);
  assert.equal(c.cwd, d);
});

test('the only template in the workspace is found in a subfolder, and its folder\'s venv', async (t) => {
  const d = tmp(t);
  const tpl = write(path.join(d, 'services', 'api', 'template.yml'));
  const py = write(path.join(d, 'services', 'api', 'venv', 'bin', 'python'), '', 0o755);
  const c = config(await resolve(launch(), ws(d, [tpl])));
  assert.equal(c.template, tpl);
  assert.equal(c.python, py);
});

test('several templates: the message lists them and asks for "template"', async (t) => {
  const d = tmp(t);
  const a = write(path.join(d, 'a', 'template.yaml'));
  const b = write(path.join(d, 'b', 'template.yaml'));
  const msg = error(await resolve(launch(), ws(d, [b, a])));
  assert.match(msg, /Several templates/);
  assert.match(msg, new RegExp(`${path.join('a', 'template.yaml')}, ${path.join('b', 'template.yaml')}`));
  assert.match(msg, /"template"/);
});

test('no template: the message says where it looked and what to set', async (t) => {
  const d = tmp(t);
  const msg = error(await resolve(launch(), ws(d)));
  assert.match(msg, /No template\.yaml with Python functions in /);
  assert.ok(msg.includes(d));
  assert.match(msg, /Set "template"/);
});

test('a given template is resolved against cwd and must exist', async (t) => {
  const d = tmp(t);
  const tpl = write(path.join(d, 'app', 'sam.yaml'));
  assert.equal(config(await resolve(launch({ cwd: 'app', template: 'sam.yaml' }), ws(d))).template, tpl);
  const msg = error(await resolve(launch({ template: path.join(d, 'missing.yaml') }), ws(d)));
  assert.match(msg, /"template" .*missing\.yaml does not exist/);
});

test('explicit python is kept if it exists and explained if not; no venv leaves python to the adapter', async (t) => {
  const d = tmp(t);
  write(path.join(d, 'template.yaml'));
  const py = write(path.join(d, 'py', 'python3'), '', 0o755);
  assert.equal(config(await resolve(launch({ python: py }), ws(d))).python, py);
  assert.equal(config(await resolve(launch({ python: path.join('py', 'python3') }), ws(d))).python, py, 'relative to cwd');
  assert.match(error(await resolve(launch({ python: path.join(d, 'nope') }), ws(d))), /"python" .*nope does not exist.*debugpy/);
  assert.equal(config(await resolve(launch(), ws(d))).python, undefined);
});

test('bad attributes are explained before a session starts', async (t) => {
  const d = tmp(t);
  write(path.join(d, 'template.yaml'));
  const cases: [Partial<LaunchConfig>, RegExp][] = [
    [{ request: 'attachh' }, /"request": "launch" and "attach", not "attachh"/],
    [{ request: 'attach', port: 0 }, /"port" 0 must be the port of a running plldb DAP server/],
    [{ request: 'attach', port: 4711, host: '' }, /"host" "" must be the host/],
    [{ mode: 'cloud' }, /"mode" "cloud" is not supported/],
    [{ invokePort: 70000 }, /"invokePort" 70000 is not a TCP port/],
    [{ invokePort: 1.5 }, /"invokePort" 1.5/],
    [{ functions: [''] }, /"functions" must be a list/],
    [{ cwd: path.join(d, 'nowhere') }, /"cwd" .*nowhere is not a folder/],
    [{ mode: 'aws' }, /"stackName" is missing/],
  ];
  for (const [c, want] of cases) {
    assert.match(error(await resolve(launch(c), ws(d))), want, JSON.stringify(c));
  }
});

test('aws mode with a stack passes through without a template', async (t) => {
  const d = tmp(t);
  const c = config(await resolve(launch({ mode: 'aws', stackName: 'demo', region: 'eu-west-1' }), ws(d)));
  assert.equal(c.stackName, 'demo');
  assert.equal(c.template, undefined);
});

test('plldb binary: setting, then bundled, then PATH; a bad setting is an error', (t) => {
  const d = tmp(t);
  const ext = path.join(d, 'ext');
  const onPath = write(path.join(d, 'path', 'plldb'), '#!/bin/sh\n', 0o755);
  const envPath = [path.join(d, 'empty'), path.dirname(onPath)].join(path.delimiter);
  const opts = { extensionPath: ext, envPath, platform: 'linux' as const };

  assert.deepEqual(findPlldb(opts), { path: onPath, source: 'PATH' });
  const bundled = write(bundledBinary(ext, 'linux'), '#!/bin/sh\n', 0o755);
  assert.equal(bundled, path.join(ext, 'extension', 'bin', 'plldb'));
  assert.deepEqual(findPlldb(opts), { path: bundled, source: 'bundled' });
  const custom = write(path.join(d, 'custom', 'plldb'), '#!/bin/sh\n', 0o755);
  assert.deepEqual(findPlldb({ ...opts, setting: custom }), { path: custom, source: 'setting' });

  const bad = findPlldb({ ...opts, setting: path.join(d, 'missing') });
  assert.ok('error' in bad);
  assert.match(bad.error, /"plldb\.path" setting is .*missing, which is not an executable file/);
  // A file without the execute bit is not a binary VS Code can start.
  const noExec = write(path.join(d, 'noexec', 'plldb'), '', 0o644);
  assert.ok('error' in findPlldb({ ...opts, setting: noExec }));

  const none = findPlldb({ extensionPath: path.join(d, 'none'), envPath: path.join(d, 'empty'), platform: 'linux' });
  assert.ok('error' in none);
  assert.match(none.error, /Cannot find the plldb binary/);
});

test('isPythonApp: SAM and CloudFormation apps with Python functions, in YAML or JSON; nothing else', () => {
  assert.ok(isPythonApp('Globals:\n  Function:\n    Runtime: python3.12\nResources:\n  F:\n    Type: AWS::Serverless::Function\n'));
  assert.ok(isPythonApp('{"Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": {"Runtime": "python3.9"}}}}'));
  // A runtime given as a parameter's default still names it.
  assert.ok(isPythonApp('Parameters:\n  Rt:\n    Default: python3.13\nResources:\n  F:\n    Type: AWS::Serverless::Function\n'));
  assert.ok(!isPythonApp('Resources:\n  F:\n    Type: AWS::Lambda::Function\n    Properties:\n      Runtime: provided.al2023\n'));
  assert.ok(!isPythonApp('Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: nodejs20.x\n'));
  assert.ok(!isPythonApp('Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n# python3.12\n'));
});

/** excluded says whether a workspace-relative path is under a folder TEMPLATE_EXCLUDE names (**\/{a,b}/**). */
function excluded(rel: string): boolean {
  const m = /^\*\*\/\{([^}]+)\}\/\*\*$/.exec(TEMPLATE_EXCLUDE);
  assert.ok(m, `TEMPLATE_EXCLUDE ${TEMPLATE_EXCLUDE} has a shape this test does not read`);
  const names = new Set(m[1].split(','));
  return rel.split('/').slice(0, -1).some((seg) => names.has(seg));
}

test('this checkout offers the hello app only, as docs/vscode.md says', async () => {
  // What findFiles(TEMPLATE_GLOB, TEMPLATE_EXCLUDE) sees in the repository, then the content filter: the helper
  // stack (cloud/stack, no Python function) and the AWS-mode test app (adapter/aws/testdata) are not apps to debug.
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const rel = path.relative(ROOT, p).split(path.sep).join('/');
      if (e.isDirectory() && !excluded(rel + '/x')) walk(p);
      else if (e.isFile() && TEMPLATE_NAMES.includes(e.name) && !excluded(rel)) found.push(p);
    }
  };
  walk(ROOT);
  assert.ok(found.some((f) => f.includes(path.join('cloud', 'stack'))), 'the walk sees the helper stack');
  const offered = (await pythonApps(found)).map((f) => path.relative(ROOT, f).split(path.sep).join('/'));
  assert.deepEqual(offered, ['testfixtures/apps/hello/template.yaml']);
  assert.ok(fs.readFileSync(path.join(ROOT, 'docs', 'vscode.md'), 'utf8').includes('testfixtures/apps/hello'));
});

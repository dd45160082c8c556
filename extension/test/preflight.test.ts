// The checks made just before a session starts: debugpy in the interpreter that will run the handlers, and the
// Invoke API's port, each reported once with what to change.
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { test } from 'node:test';
import { debugpyMissing, handlerPython, portInUse, preflight } from '../src/preflight';

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

const NO_DEBUGPY = '#!/bin/sh\necho "ModuleNotFoundError: No module named \'debugpy\'" >&2\nexit 1\n';

test('an interpreter without debugpy: one message with the install command and the "python" attribute', async (t) => {
  const d = tmp(t);
  const py = write(path.join(d, 'bin', 'python'), NO_DEBUGPY, 0o755);
  const msg = await debugpyMissing(py);
  assert.ok(msg);
  assert.ok(msg.includes(`"${py} -m pip install debugpy"`), msg);
  assert.match(msg, /set "python" in launch\.json/);
  // Other failures (no such file, a crash) are the adapter's to explain.
  assert.equal(await debugpyMissing(path.join(d, 'nope')), undefined);
  assert.equal(await debugpyMissing(write(path.join(d, 'bin', 'crash'), '#!/bin/sh\nexit 3\n', 0o755)), undefined);
});

test('the test interpreter, which has debugpy, passes', { skip: process.env.PLLDB_TEST_PYTHON ? false : 'PLLDB_TEST_PYTHON unset' }, async () => {
  assert.equal(await debugpyMissing(process.env.PLLDB_TEST_PYTHON), undefined);
});

test('handlerPython: the configured one, else python3 unless a function folder has its own virtualenv', (t) => {
  const d = tmp(t);
  const tpl = write(path.join(d, 'template.yaml'), 'Resources:\n  F:\n    Properties:\n      CodeUri: src/\n  G:\n    Properties:\n      CodeUri: "s3://bucket/key.zip"\n');
  assert.equal(handlerPython({ python: '/x/python', template: tpl }, 'linux'), '/x/python');
  assert.equal(handlerPython({ template: tpl }, 'linux'), 'python3');
  write(path.join(d, 'src', '.venv', 'bin', 'python'), '', 0o755);
  assert.equal(handlerPython({ template: tpl }, 'linux'), undefined, 'the adapter picks src/.venv for F');
  assert.equal(handlerPython({}, 'linux'), undefined);
});

test('a busy port names itself and "invokePort"; a free one and 0 pass', async (t) => {
  const srv = net.createServer();
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  t.after(() => srv.close());
  const port = (srv.address() as net.AddressInfo).port;
  const msg = await portInUse('127.0.0.1', port);
  assert.match(msg ?? '', new RegExp(`^Port ${port} on 127\\.0\\.0\\.1 is already in use`));
  assert.match(msg ?? '', /Set "invokePort" in launch\.json to a free port, or to 0/);
  assert.equal(await portInUse('127.0.0.1', 0), undefined);
  // The checked port is given back: a second look finds it free again.
  const free = await new Promise<number>((ok) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => ok(p));
    });
  });
  assert.equal(await portInUse('127.0.0.1', free), undefined);
  assert.equal(await portInUse('127.0.0.1', free), undefined);
});

test('preflight: local mode checks the port first, then debugpy unless noDebug; aws mode only a given python', async (t) => {
  const d = tmp(t);
  const py = write(path.join(d, 'bin', 'python'), NO_DEBUGPY, 0o755);
  const srv = net.createServer();
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  t.after(() => srv.close());
  const port = (srv.address() as net.AddressInfo).port;
  assert.match((await preflight({ mode: 'local', invokePort: port, python: py })) ?? '', /Port \d+ .* in use/);
  assert.match((await preflight({ mode: 'local', invokePort: 0, python: py })) ?? '', /debugpy is not installed/);
  assert.equal(await preflight({ mode: 'local', invokePort: 0, python: py, noDebug: true }), undefined);
  assert.match((await preflight({ mode: 'aws', stackName: 's', python: py })) ?? '', /debugpy is not installed/);
  assert.equal(await preflight({ mode: 'aws', stackName: 's' }), undefined);
});

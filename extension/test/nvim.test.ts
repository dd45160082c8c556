// The nvim-dap Lua module, run under a plain Lua interpreter with stand-ins for nvim-dap and the vim API
// (editors/nvim/test/smoke.lua). Skipped, with the reason, on machines without Lua.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { test } from 'node:test';
import { ROOT } from './util';

function findLua(): string | undefined {
  for (const name of ['lua5.1', 'luajit', 'lua']) {
    if (spawnSync(name, ['-v'], { encoding: 'utf8' }).status === 0) return name;
  }
  return undefined;
}

const lua = findLua();

test('editors/nvim/lua/plldb.lua registers the adapter and the configurations', { skip: lua ? false : 'no Lua interpreter on PATH' }, () => {
  const r = spawnSync(lua as string, [path.join(ROOT, 'editors', 'nvim', 'test', 'smoke.lua'), ROOT], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /lua smoke ok/);
});

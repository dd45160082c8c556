// The extension in a real VS Code, driven as a user drives it: code-server (VS Code in the browser) with the
// packaged .vsix installed, Debian's Chromium under playwright-core, a copy of the hello app as the workspace.
// Set a breakpoint on the "# BREAKPOINT" line, F5, invoke the function through the Invoke API, and read off the
// page what a user sees: the stopped line, Call Stack, Variables, an evaluation in the Debug Console, Continue,
// and the caller's answer. Then a selective session: plldb: Copy Knock Header from the command palette, the
// clipboard read back, and the knock it holds stopping an invocation; plldb: Copy Knock… through its real input
// boxes (a curl line, a lifetime refused under the box then one taken, a route), the clipboard read back.
//
// `make test-vscode` installs the pieces and sets the environment (see the Makefile). On failure the page's
// screenshot and text are saved in $ARTIFACTS (build/) as vscode-<step>.png / .txt.
import * as assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { test, TestContext } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { post, ROOT } from '../util';

const env = {
  node: process.env.CODE_SERVER_NODE ?? '',
  codeServer: process.env.CODE_SERVER ?? '',
  chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  vsix: process.env.PLLDB_VSIX ?? '',
  python: process.env.PLLDB_TEST_PYTHON ?? '',
  artifacts: process.env.ARTIFACTS || path.join(ROOT, 'build'),
};
const HELLO = path.join(ROOT, 'testfixtures', 'apps', 'hello');
// Everything here waits on what the page shows; the limits are generous because the machine is small and shared.
const STEP = 90_000;

/** missing names the pieces that are not there, and how to get them. */
function missing(): string | undefined {
  const want: [string, string][] = [
    [env.node, 'Node.js 24 for code-server (CODE_SERVER_NODE)'],
    [env.codeServer, 'code-server (CODE_SERVER)'],
    [env.chromium, 'Chromium (apt-get install chromium)'],
    [env.vsix, 'the packaged extension (PLLDB_VSIX, make vsix)'],
    [env.python, 'a Python with debugpy (PLLDB_TEST_PYTHON, make venv)'],
  ];
  const gone = want.filter(([p]) => !p || !fs.existsSync(p)).map(([, what]) => what);
  let pw = true;
  try {
    require.resolve('playwright-core');
  } catch {
    pw = false;
    gone.push('playwright-core (npm ci)');
  }
  return gone.length === 0 && pw ? undefined : `missing ${gone.join(', ')}: run "make test-vscode", which installs them`;
}

const why = missing();
if (why && process.env.CI === 'true') {
  // In CI the test must run: a missing piece is a failure, not a skip.
  test('VS Code test prerequisites', () => assert.fail(why));
}

/** breakpointLine is the 1-based line of the "# BREAKPOINT" marker in the hello handler. */
function breakpointLine(file: string): number {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const def = lines.findIndex((l) => l.startsWith('def handler('));
  const i = lines.findIndex((l, n) => n > def && l.includes('# BREAKPOINT'));
  assert.ok(def >= 0 && i > def, `${file}: no # BREAKPOINT in handler`);
  return i + 1;
}

/**
 * freePort finds a loopback port to write into launch.json, bound only much later (after code-server, Chromium
 * and F5). A port the kernel hands out for listen(0) is in the ephemeral range, which every outgoing connection on
 * the machine draws its local port from, so in that window one took it ("Port 46745 … is already in use", seen
 * in CI). Ports below the ephemeral range are taken only by listeners, so it picks one there at random and
 * checks it is free.
 */
async function freePort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // Not Linux: the usual bound.
  }
  const from = 10000;
  if (low <= from + 1000) {
    low = 32768; // a range starting this low leaves no room below it: the usual bound, as testfixtures/freeport
  }
  for (let i = 0; i < 100; i++) {
    const port = from + crypto.randomInt(Math.max(1, low - from));
    if (await canListen(port)) {
      return port;
    }
  }
  throw new Error(`no free port between ${from} and ${low} after 100 tries`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = net.createServer();
    s.once('error', () => ok(false));
    s.listen(port, '127.0.0.1', () => s.close(() => ok(true)));
  });
}

/** startCodeServer runs code-server on a loopback port with throwaway state; it resolves once it listens. */
async function startCodeServer(dirs: { data: string; extensions: string; config: string }, folder: string): Promise<{ url: string; proc: ChildProcess; log: () => string }> {
  const port = await freePort();
  const args = [env.codeServer, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--config', dirs.config,
    '--user-data-dir', dirs.data, '--extensions-dir', dirs.extensions, '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', '--disable-getting-started-override', '--ignore-last-opened', folder];
  // Its own process group, so that stopping it ends the extension host and the plldb it started.
  const proc = spawn(env.node, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString('utf8')));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString('utf8')));
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`code-server did not start in ${STEP} ms:\n${out}`)), STEP);
    const check = () => {
      if (/HTTP server listening on/.test(out)) {
        clearTimeout(timer);
        ok();
      }
    };
    proc.stdout!.on('data', check);
    proc.stderr!.on('data', check);
    proc.on('exit', (code) => fail(new Error(`code-server exited (${code}) during start-up:\n${out}`)));
  });
  return { url: `http://127.0.0.1:${port}/?folder=${encodeURIComponent(folder)}`, proc, log: () => out };
}

function stopGroup(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.pid === undefined) return Promise.resolve();
  const exited = new Promise<void>((ok) => proc.on('exit', () => ok()));
  try {
    process.kill(-proc.pid, 'SIGTERM');
  } catch {
    return Promise.resolve();
  }
  const kill = setTimeout(() => {
    try {
      process.kill(-(proc.pid as number), 'SIGKILL');
    } catch {
      // gone
    }
  }, 10_000);
  return exited.finally(() => clearTimeout(kill));
}

/** The workbench, as a user reads it. */
class Workbench {
  constructor(readonly page: Page) {}

  /**
   * command runs a command from the palette (F1), by the title a user types. Commands that need an extension
   * or a debugger appear only once the extension host has registered them: until then, close and look again.
   */
  async command(title: string, opts: { opensPick?: boolean } = {}): Promise<void> {
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    const row = this.page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
    const deadline = Date.now() + STEP;
    for (;;) {
      await this.page.keyboard.press('F1');
      await input.waitFor({ state: 'visible' });
      await input.fill(`>${title}`);
      try {
        await row.waitFor({ state: 'visible', timeout: 5_000 });
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await this.page.keyboard.press('Escape');
      }
    }
    await this.page.keyboard.press('Enter');
    if (!opts.opensPick) await this.page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
  }

  /** openFile opens a workspace file through Quick Open, as typing its name after Ctrl+P does. */
  async openFile(rel: string): Promise<void> {
    await this.page.keyboard.press('F1');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible' });
    await input.fill(rel);
    await this.page.locator('.quick-input-widget .monaco-list-row', { hasText: path.basename(rel) }).first().waitFor({ state: 'visible' });
    await this.page.keyboard.press('Enter');
    await this.page.locator(`.tabs-container .tab[data-resource-name="${path.basename(rel)}"]`).waitFor({ state: 'visible' });
  }

  /** goToLine puts the cursor on a line, as typing ":N" in Quick Open does. */
  async goToLine(line: number): Promise<void> {
    await this.page.keyboard.press('F1');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible' });
    await input.fill(`:${line}`);
    // Replacing ">" by ":" hands the box from the command provider to the go-to-line one, which takes a moment:
    // an Enter before it answers goes to the command list, where ":N" matches nothing, and the box stays open
    // (CI saw that once). A user presses Enter after reading "go to line N", and so does this.
    await this.page.locator('.quick-input-widget', { hasText: new RegExp(`go to line ${line}\\b`, 'i') }).waitFor({ state: 'visible' });
    await this.page.keyboard.press('Enter');
    await this.page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
  }

  /** editorLineAt answers the line number and the text of the editor row whose glyph margin shows a decoration. */
  async editorLineAt(glyph: Locator): Promise<{ line: number; text: string }> {
    // The callbacks run in the page (the compiler here has no DOM types, hence any).
    const top = await glyph.evaluate((el: any) => el.closest('[style*="top"]')?.getAttribute('style') ?? '');
    const y = /top:\s*(-?\d+(?:\.\d+)?)px/.exec(top)?.[1];
    assert.ok(y !== undefined, `no position on the glyph: ${top}`);
    return this.page.evaluate((topPx) => {
      const editor = (globalThis as any).document.querySelector('.editor-instance .monaco-editor');
      const at = (sel: string): any => [...editor.querySelectorAll(sel)].find((e: any) => e.style.top === `${topPx}px`);
      const num = at('.margin-view-overlays > div')?.querySelector('.line-numbers')?.textContent ?? '';
      const text = at('.view-lines .view-line')?.textContent ?? '';
      return { line: Number(num.trim()), text: text.replace(/\u00a0/g, ' ') };
    }, y);
  }

  /** rows answers the visible rows of a view's tree (Call Stack, Variables), as their text. */
  async rows(view: string): Promise<string[]> {
    return this.page.locator(`${view} .monaco-list-row`).evaluateAll((els) => els.map((e: any) => e.innerText.replace(/\s+/g, ' ').trim()));
  }

  async debugConsole(): Promise<string> {
    return (await this.page.locator('.repl .monaco-list').first().innerText()).replace(/\u00a0/g, ' ');
  }

  async saveArtifacts(name: string): Promise<void> {
    fs.mkdirSync(env.artifacts, { recursive: true });
    const base = path.join(env.artifacts, `vscode-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`);
    try {
      await this.page.screenshot({ path: `${base}.png`, fullPage: true });
      fs.writeFileSync(`${base}.txt`, await this.page.evaluate(() => (globalThis as any).document.body.innerText));
      console.error(`saved ${base}.png and .txt`);
    } catch (e) {
      console.error(`could not save the page for ${name}: ${e}`);
    }
  }
}

test('VS Code: breakpoint in the hello handler, F5, invoke, stopped line, Call Stack, Variables, Debug Console, Continue, result',
  { skip: why ?? false, timeout: 12 * STEP }, async (t) => {
    const { chromium } = await import('playwright-core');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'plldb-vscode-'));
    const cleanups: (() => Promise<void> | void)[] = [() => fs.rmSync(tmp, { recursive: true, force: true })];
    t.after(async () => {
      for (const c of cleanups.reverse()) await c();
    });

    // The workspace: a copy of the hello app with a launch.json a user would write (a free invokePort, since
    // other sessions on this machine may hold 3001), and the interpreter with debugpy.
    const ws = path.join(tmp, 'hello');
    fs.cpSync(HELLO, ws, { recursive: true });
    const invokePort = await freePort();
    const selectivePort = await freePort();
    fs.mkdirSync(path.join(ws, '.vscode'));
    fs.writeFileSync(path.join(ws, '.vscode', 'launch.json'), JSON.stringify({
      version: '0.2.0',
      configurations: [
        { type: 'plldb', request: 'launch', name: 'Lambda: debug hello', mode: 'local', invokePort, python: env.python },
        { type: 'plldb', request: 'launch', name: 'Lambda: hello, knocked only', mode: 'local', invokePort: selectivePort, python: env.python, selective: true },
      ],
    }, null, 2));
    // Where the selective session keeps its key (code-server's extension host, and so plldb dap, inherit it).
    const knockDir = path.join(tmp, 'knock');
    process.env.PLLDB_KNOCK_DIR = knockDir;
    const line = breakpointLine(path.join(ws, 'src', 'app.py'));

    const dirs = { data: path.join(tmp, 'data'), extensions: path.join(tmp, 'extensions'), config: path.join(tmp, 'config.yaml') };
    fs.mkdirSync(path.join(dirs.data, 'User'), { recursive: true });
    fs.writeFileSync(dirs.config, 'auth: none\n');
    fs.writeFileSync(path.join(dirs.data, 'User', 'settings.json'), JSON.stringify({
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'telemetry.telemetryLevel': 'off',
      'extensions.ignoreRecommendations': true,
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'security.workspace.trust.enabled': false,
      'window.restoreWindows': 'none',
      'debug.toolBarLocation': 'floating',
      'chat.disableAIFeatures': true,
      'remote.autoForwardPorts': false,
    }, null, 2));
    execFileSync(env.node, [env.codeServer, '--config', dirs.config, '--user-data-dir', dirs.data, '--extensions-dir', dirs.extensions,
      '--install-extension', env.vsix, '--force'], { stdio: 'pipe', timeout: STEP });

    const server = await startCodeServer(dirs, ws);
    cleanups.push(() => stopGroup(server.proc));
    const browser: Browser = await chromium.launch({
      executablePath: env.chromium,
      // No network beyond loopback here: keep Chromium from trying.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    });
    cleanups.push(() => browser.close());
    // Clipboard permissions: Copy Knock Header writes the clipboard, and the test reads it back.
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 }, permissions: ['clipboard-read', 'clipboard-write'] });
    page.setDefaultTimeout(STEP);
    const wb = new Workbench(page);

    // Each step saves the page when it fails, and the next steps still run where they can.
    let broken = false;
    const step = async (name: string, fn: () => Promise<void>, opts: { needs?: boolean } = {}) => {
      await t.test(name, { skip: opts.needs !== false && broken ? 'an earlier step failed' : false }, async () => {
        try {
          await fn();
        } catch (e) {
          await wb.saveArtifacts(name);
          if (opts.needs !== false) broken = true;
          throw e;
        }
      });
    };

    let answer: Promise<{ status: number; body: string }> | undefined;
    const editorGlyphs = page.locator('.editor-instance .monaco-editor .glyph-margin-widgets');

    await step('the workbench opens the hello folder', async () => {
      await page.goto(server.url);
      await page.locator('.monaco-workbench .part.statusbar').waitFor({ state: 'visible' });
      await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'template.yaml' }).waitFor({ state: 'visible' });
    });

    await step('Select and Start Debugging lists the plldb template once', async () => {
      // The dynamic configurations sit behind the debugger's entry; each template must appear once (it used
      // to appear a second time under "user settings").
      await wb.command('Debug: Select and Start Debugging', { opensPick: true });
      const rows = page.locator('.quick-input-widget .monaco-list-row');
      await rows.filter({ hasText: 'Lambda: debug hello' }).first().waitFor({ state: 'visible' });
      await rows.filter({ hasText: /plldb: AWS Lambda/ }).first().click();
      await rows.filter({ hasText: 'Lambda: debug template.yaml locally' }).first().waitFor({ state: 'visible' });
      const offered = await rows.evaluateAll((els) => els.map((e: any) => e.innerText.replace(/\s+/g, ' ').trim()));
      assert.equal(offered.filter((r) => r.includes('Lambda: debug template.yaml locally')).length, 1, offered.join('\n'));
      assert.ok(!offered.some((r) => /user settings/i.test(r)), offered.join('\n'));
      await page.keyboard.press('Escape');
      await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
    }, { needs: false });

    await step('a breakpoint on the # BREAKPOINT line of src/app.py', async () => {
      await wb.openFile('src/app.py');
      await wb.goToLine(line);
      await wb.command('Debug: Toggle Breakpoint');
      const bp = editorGlyphs.locator('.codicon-debug-breakpoint');
      await bp.waitFor({ state: 'visible' });
      const at = await wb.editorLineAt(bp);
      assert.equal(at.line, line);
      assert.match(at.text, /# BREAKPOINT/);
    });

    await step('F5 starts the plldb session: debug toolbar, Invoke API in the Debug Console', async () => {
      await page.locator('.editor-instance .monaco-editor').first().click();
      await page.keyboard.press('F5');
      await page.locator('.debug-toolbar').waitFor({ state: 'visible' });
      await page.locator('.repl .monaco-list-row', { hasText: `Invoke API at http://127.0.0.1:${invokePort}` }).first().waitFor({ state: 'visible' });
      // Invoke at once, as a client polling during start-up does: VS Code may still be sending breakpoints, and
      // the adapter must hold the invocation until configurationDone instead of running it straight through.
      answer = post(`http://127.0.0.1:${invokePort}/2015-03-31/functions/HelloFunction/invocations`, JSON.stringify({ name: 'plldb', n: 7 }));
      // Awaited by the Continue step; a step that fails first must not leave it unhandled.
      answer.catch(() => undefined);
      await editorGlyphs.locator('.codicon-debug-breakpoint-unverified').waitFor({ state: 'detached' });
      await editorGlyphs.locator('.codicon-debug-breakpoint').waitFor({ state: 'visible' });
      // The session runs: Pause while the invocation is on its way, or Continue once it has already stopped (on a
      // fast machine it can stop before this line looks).
      await page.locator('.debug-toolbar .codicon-debug-pause, .debug-toolbar .codicon-debug-continue').first().waitFor({ state: 'visible' });
    });

    await step('the invocation sent during start-up stops on the breakpoint line, highlighted in the editor', async () => {
      const frame = editorGlyphs.locator('.codicon-debug-stackframe');
      await frame.waitFor({ state: 'visible' });
      const at = await wb.editorLineAt(frame);
      assert.equal(at.line, line, `stopped at ${at.line}: ${at.text}`);
      assert.match(at.text, /greeting = "hello from "/);
      await page.locator('.editor-instance .monaco-editor .debug-top-stack-frame-line').first().waitFor({ state: 'attached' });
    });

    await step('Call Stack: paused on breakpoint, with the handler frame at app.py:' + line, async () => {
      // With one thread VS Code lists its frames directly under the Call Stack header, which says why it paused;
      // a thread row appears once a second invocation pauses too (the step after the Debug Console).
      await page.locator('.debug-call-stack, .pane-header', { hasText: /paused on breakpoint/i }).first().waitFor({ state: 'visible' });
      const frame = page.locator('.debug-call-stack .monaco-list-row', { has: page.locator('.stack-frame') }).filter({ hasText: 'handler' }).first();
      await frame.waitFor({ state: 'visible' });
      const text = (await frame.innerText()).replace(/\s+/g, ' ');
      assert.match(text, new RegExp(`handler.*app\\.py.*\\b${line}\\b`), text);
      const rows = await wb.rows('.debug-call-stack');
      assert.ok(!rows.some((r) => /\b(MainThread|plldb-data)\b/.test(r)), `Call Stack: ${rows.join(' | ')}`);
      await frame.click();
    });

    await step('Variables: event with the payload, and context', async () => {
      const vars = page.locator('.debug-variables');
      const locals = vars.locator('.monaco-list-row', { hasText: /^\s*Locals\s*$/ }).first();
      await locals.waitFor({ state: 'visible' });
      if ((await locals.getAttribute('aria-expanded')) === 'false') await locals.locator('.monaco-tl-twistie').click();
      await vars.locator('.monaco-list-row', { hasText: /^\s*event\b/ }).first().waitFor({ state: 'visible' });
      const rows = await wb.rows('.debug-variables');
      const event = rows.find((r) => /^event\b/.test(r));
      assert.ok(event, rows.join('\n'));
      assert.match(event, /'name': 'plldb'/);
      assert.match(event, /'n': 7/);
      assert.ok(rows.some((r) => /^context\b/.test(r)), rows.join('\n'));
    });

    await step('Debug Console: an expression is evaluated in the stopped frame', async () => {
      await wb.command('Debug Console: Focus on Debug Console View');
      const input = page.locator('.repl .repl-input-wrapper .monaco-editor');
      await input.click();
      await page.keyboard.type('event["n"] * 6');
      await page.keyboard.press('Enter');
      await page.locator('.repl .monaco-list-row', { hasText: /^\s*42\s*$/ }).first().waitFor({ state: 'visible' });
    });

    let second: Promise<{ status: number; body: string }> | undefined;
    await step('a second invocation while the first is paused: two HelloFunction threads, no executor threads', async () => {
      second = post(`http://127.0.0.1:${invokePort}/2015-03-31/functions/HelloFunction/invocations`, JSON.stringify({ name: 'again', n: 8 }));
      second.catch(() => undefined);
      // Each invocation's thread is named after the function and its request id (and its sandbox, after the
      // first); the executor's own threads (MainThread, plldb-data) never appear.
      const paused = page.locator('.debug-call-stack .monaco-list-row', { has: page.locator('.thread') })
        .filter({ hasText: /HelloFunction/ }).filter({ hasText: /paused on breakpoint/i });
      await paused.nth(1).waitFor({ state: 'visible' });
      const threads = await page.locator('.debug-call-stack .monaco-list-row .thread .name').allInnerTexts();
      assert.equal(threads.length, 2, `Call Stack threads: ${threads.join(', ')}`);
      assert.ok(threads.every((n) => /^HelloFunction [0-9a-f]{8}( \(sandbox \d+\))?$/.test(n.trim())), `Call Stack threads: ${threads.join(', ')}`);
      // Two concurrent invocations of one function run in two sandboxes, as in Lambda, and the names say so.
      assert.equal(threads.filter((n) => /\(sandbox \d+\)$/.test(n.trim())).length, 1, `Call Stack threads: ${threads.join(', ')}`);
      assert.notEqual(threads[0], threads[1], 'two invocations, two names');
    });

    await step('Continue (F5), twice: each caller gets its handler\'s result', async () => {
      assert.ok(answer && second, 'no invocations in flight');
      // Continue acts on the focused thread only, so one F5 answers one caller and the other stays paused.
      type Answer = { status: number; body: string };
      const results: Answer[] = [];
      const pending = new Map<number, Promise<{ k: number; r: Answer }>>();
      for (const [k, p] of [[1, answer], [2, second]] as [number, Promise<Answer>][]) pending.set(k, p.then((r) => { results.push(r); return { k, r }; }));
      for (let round = 0; round < 2; round++) {
        await page.locator('.debug-call-stack, .pane-header', { hasText: /paused on breakpoint/i }).first().waitFor({ state: 'visible' });
        await page.locator('.editor-instance .monaco-editor').first().click();
        await page.keyboard.press('F5');
        const { k } = await Promise.race(pending.values());
        pending.delete(k);
        if (round === 0) {
          await new Promise((ok) => setTimeout(ok, 2000));
          assert.equal(results.length, 1, 'one F5 answered both callers');
        }
      }
      const events = results.map((r) => {
        assert.equal(r.status, 200, r.body);
        const payload = JSON.parse(r.body);
        assert.equal(payload.statusCode, 200);
        const body = JSON.parse(payload.body);
        assert.equal(body.greeting, 'hello from dev');
        return body.event;
      });
      assert.deepEqual(events.sort((a, b) => a.n - b.n), [{ name: 'plldb', n: 7 }, { name: 'again', n: 8 }]);
      await editorGlyphs.locator('.codicon-debug-stackframe').waitFor({ state: 'detached' });
    });

    await step('Stop (Shift+F5) ends the session', async () => {
      await page.keyboard.press('Shift+F5');
      await page.locator('.debug-toolbar').waitFor({ state: 'hidden' });
    });

    await step('F5 with the invokePort taken: one message naming the port and "invokePort", no session', async () => {
      const squatter = net.createServer();
      await new Promise<void>((ok) => squatter.listen(invokePort, '127.0.0.1', ok));
      try {
        await page.locator('.editor-instance .monaco-editor').first().click();
        await page.keyboard.press('F5');
        const toast = page.locator('.notifications-toasts .notification-toast', { hasText: `Port ${invokePort} on 127.0.0.1 is already in use` });
        await toast.waitFor({ state: 'visible' });
        assert.match(await toast.innerText(), /Set "invokePort" in launch\.json/);
        assert.equal(await page.locator('.debug-toolbar').isVisible(), false, 'no session started');
      } finally {
        await new Promise<void>((ok) => squatter.close(() => ok()));
      }
    });

    await step('a selective session: Select and Start Debugging "Lambda: hello, knocked only"', async () => {
      await wb.command('Debug: Select and Start Debugging', { opensPick: true });
      await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Lambda: hello, knocked only' }).first().click();
      await page.locator('.debug-toolbar').waitFor({ state: 'visible' });
      await page.locator('.repl .monaco-list-row', { hasText: `Invoke API at http://127.0.0.1:${selectivePort}` }).first().waitFor({ state: 'visible' });
    });

    let knock = '';
    await step('plldb: Copy Knock Header, HelloFunction picked: the clipboard holds the header, the message its expiry', async () => {
      await wb.command('plldb: Copy Knock Header', { opensPick: true });
      const rows = page.locator('.quick-input-widget .monaco-list-row');
      await rows.filter({ hasText: 'Every function' }).first().waitFor({ state: 'visible' });
      const offered = await rows.evaluateAll((els) => els.map((e: any) => e.innerText.replace(/\s+/g, ' ').trim()));
      assert.ok(['HelloFunction', 'PackageFunction', 'FailingFunction'].every((f) => offered.some((r) => r.startsWith(f))), offered.join('\n'));
      await rows.filter({ hasText: /^\s*HelloFunction/ }).first().click();
      const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'copied the X-Plldb-Knock header for local/HelloFunction' });
      await toast.waitFor({ state: 'visible' });
      const said = await toast.innerText();
      assert.match(said, /it expires at .+ \(in 1[45] min\)/, said);
      const copied: string = await page.evaluate(() => (globalThis as any).navigator.clipboard.readText());
      const m = /^X-Plldb-Knock: (\S+)$/.exec(copied);
      assert.ok(m, `the clipboard holds ${JSON.stringify(copied.slice(0, 40))}`);
      knock = m[1];
      assert.ok(!said.includes(knock.split('.')[2]), 'the message never shows the token');
    });

    await step('plldb: Copy Knock…: a curl line, a lifetime refused under the box then 1h, a route; the clipboard holds them', async () => {
      await wb.command('plldb: Copy Knock…', { opensPick: true });
      const rows = page.locator('.quick-input-widget .monaco-list-row');
      await rows.filter({ hasText: /^\s*HelloFunction/ }).first().click();
      await rows.filter({ hasText: 'curl command' }).first().click();
      const input = page.locator('.quick-input-widget .quick-input-box input');
      const message = (text: string) => page.locator('.quick-input-widget .quick-input-message', { hasText: text }).first().waitFor({ state: 'visible' });
      await message('The URL curl calls');
      await input.fill('http://127.0.0.1:1/orders/42');
      await page.keyboard.press('Enter');
      await message('How long the knock works');
      assert.equal(await input.inputValue(), '15m', 'the lifetime box holds the default');
      await input.fill('13h');
      await message('A knock works for at most 12h');
      await page.keyboard.press('Enter'); // refused: the box stays
      await input.fill('1h');
      await message('How long the knock works');
      await page.keyboard.press('Enter');
      await message('Only HTTP requests on this route');
      await input.fill('POST /orders/*');
      await page.keyboard.press('Enter');
      const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'copied a curl command with a knock for local/HelloFunction, only on POST /orders/*' });
      await toast.waitFor({ state: 'visible' });
      const said = await toast.innerText();
      assert.match(said, /it expires at .+ \(in (59 min|1 h)\)/, said);
      const copied: string = await page.evaluate(() => (globalThis as any).navigator.clipboard.readText());
      const m = /^curl -H 'X-Plldb-Knock: (\S+)' 'http:\/\/127\.0\.0\.1:1\/orders\/42'$/.exec(copied);
      assert.ok(m, `the clipboard holds ${JSON.stringify(copied.slice(0, 40))}`);
      assert.ok(!said.includes(m[1].split('.')[2]), 'the message never shows the token');
      const claims = JSON.parse(Buffer.from(m[1].split('.')[1], 'base64url').toString());
      assert.equal(claims.aud, 'local/HelloFunction');
      assert.equal(claims.exp - claims.iat, 3600);
      assert.equal(claims.route, 'POST /orders/*');
    });

    await step('the copied knock is signed with the session key for HelloFunction, and stops an invocation', async () => {
      const file = JSON.parse(fs.readFileSync(path.join(knockDir, 'local.json'), 'utf8'));
      const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(file.privateKeySeed, 'base64')]);
      const pub = crypto.createPublicKey(crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
      const [h, p, sig] = knock.split('.');
      assert.ok(crypto.verify(null, Buffer.from(`${h}.${p}`), pub, Buffer.from(sig, 'base64url')), 'signed with the session key');
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
      assert.equal(claims.iss, file.session);
      assert.equal(claims.aud, 'local/HelloFunction');
      // Unknocked, the invocation runs through; knocked, it stops at the breakpoint.
      const url = `http://127.0.0.1:${selectivePort}/2015-03-31/functions/HelloFunction/invocations`;
      const plain = await post(url, JSON.stringify({ name: 'plain', n: 1 }));
      assert.equal(plain.status, 200, plain.body);
      const knocked = post(url, JSON.stringify({ name: 'knocked', n: 2, headers: { 'X-Plldb-Knock': knock } }));
      knocked.catch(() => undefined);
      const frame = editorGlyphs.locator('.codicon-debug-stackframe');
      await frame.waitFor({ state: 'visible' });
      assert.equal((await wb.editorLineAt(frame)).line, line);
      await page.locator('.editor-instance .monaco-editor').first().click();
      await page.keyboard.press('F5');
      const r = await knocked;
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(JSON.parse(JSON.parse(r.body).body).event, { name: 'knocked', n: 2, headers: {} }, 'the knock is gone from the event');
      await page.keyboard.press('Shift+F5');
      await page.locator('.debug-toolbar').waitFor({ state: 'hidden' });
    });
  });

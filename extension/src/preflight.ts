// Checks made just before a session starts, on a resolved configuration, for the two failures whose adapter
// error reads badly in VS Code's launch dialog: an interpreter without debugpy (the adapter reports it once per
// function, so the dialog repeats the same advice) and a busy Invoke API port (the adapter reports the socket
// error, which does not say that "invokePort" moves it). Kept free of the vscode module so node's test runner can
// exercise it.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { LaunchConfig, venvPython } from './resolve';

/** DEFAULT_INVOKE_PORT and DEFAULT_INVOKE_HOST are the adapter's defaults (adapter/dap/config.go). */
export const DEFAULT_INVOKE_PORT = 3001;
export const DEFAULT_INVOKE_HOST = '127.0.0.1';

/**
 * preflight answers the one message to show instead of starting a session that would fail, or undefined when
 * the configuration looks startable. Anything it cannot tell for sure is left to the adapter.
 */
export async function preflight(c: LaunchConfig, platform: NodeJS.Platform = process.platform): Promise<string | undefined> {
  if ((c.mode ?? 'local') === 'local') {
    const busy = await portInUse(c.invokeHost || DEFAULT_INVOKE_HOST, c.invokePort ?? DEFAULT_INVOKE_PORT);
    if (busy) {
      return busy;
    }
    if (!c.noDebug) {
      return debugpyMissing(handlerPython(c, platform));
    }
  } else if (c.python && !c.noDebug) {
    return debugpyMissing(c.python);
  }
  return undefined;
}

/**
 * handlerPython is the interpreter the adapter will run every function with, if the extension can tell: the
 * configured one, else python3 on PATH when no function folder has a virtualenv of its own (the adapter prefers
 * one there). undefined: the adapter picks per function.
 */
export function handlerPython(c: LaunchConfig, platform: NodeJS.Platform = process.platform): string | undefined {
  if (c.python) {
    return c.python;
  }
  if (!c.template) {
    return undefined;
  }
  const dir = path.dirname(c.template);
  let text: string;
  try {
    text = fs.readFileSync(c.template, 'utf8');
  } catch {
    return undefined;
  }
  // CodeUri: src/   "CodeUri": "src/"   CodeUri: 's3://…' is not a folder here.
  for (const m of text.matchAll(/["']?CodeUri["']?\s*:\s*["']?([^"'\s,}#]+)/g)) {
    if (!/^[a-z0-9]+:\/\//i.test(m[1]) && venvPython(path.resolve(dir, m[1]), platform)) {
      return undefined;
    }
  }
  return platform === 'win32' ? 'python' : 'python3';
}

/** debugpyMissing runs the interpreter once to import debugpy and explains the fix if it cannot. */
export async function debugpyMissing(python: string | undefined): Promise<string | undefined> {
  if (!python) {
    return undefined;
  }
  const r = await run(python, ['-c', 'import debugpy'], 30_000);
  if (r.code === 0 || !/No module named '?debugpy/.test(r.stderr)) {
    // Started and imported it, or failed some other way: the adapter's own error says more about that.
    return undefined;
  }
  return `debugpy is not installed for ${python}, which would run the handlers. Install it with "${python} -m pip install debugpy", ` +
    'or set "python" in launch.json to an interpreter that has it (plldb uses the .venv or venv beside the template or in the workspace, else python3 on PATH).';
}

/** portInUse tries the Invoke API's address and explains a busy port; 0 (a free port) never is. */
export async function portInUse(host: string, port: number): Promise<string | undefined> {
  if (port === 0) {
    return undefined;
  }
  const err = await new Promise<NodeJS.ErrnoException | undefined>((ok) => {
    const srv = net.createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => ok(e));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => ok(undefined)));
  });
  if (err?.code === 'EADDRINUSE') {
    return `Port ${port} on ${host} is already in use, so the Invoke API cannot listen there (another plldb session, or sam local start-lambda?). ` +
      'Set "invokePort" in launch.json to a free port, or to 0 to pick one (the Debug Console shows "Invoke API at …").';
  }
  if (err?.code === 'EACCES') {
    return `Port ${port} on ${host} needs privileges this user does not have. Set "invokePort" in launch.json to a port above 1023, or to 0 to pick a free one.`;
  }
  return undefined;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((ok) => {
    let stderr = '';
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs });
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    p.on('error', (e) => ok({ code: null, stderr: String(e) }));
    p.on('close', (code) => ok({ code, stderr }));
  });
}

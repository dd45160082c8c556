// Filling in and checking plldb launch configurations before a session starts. Kept free of the vscode module
// so node's test runner can exercise it outside the editor; extension.ts adapts it to VS Code's provider API.
import * as fs from 'fs';
import * as path from 'path';

/** LaunchConfig is a plldb launch configuration as launch.json holds it (see package.json for each attribute). */
export interface LaunchConfig {
  type?: string;
  request?: string;
  name?: string;
  mode?: string;
  template?: string;
  invokeHost?: string;
  invokePort?: number;
  maxConcurrency?: number;
  accountConcurrency?: number;
  functions?: string[];
  python?: string;
  cwd?: string;
  env?: Record<string, string>;
  justMyCode?: boolean;
  pathMappings?: { localRoot: string; remoteRoot: string }[];
  subProcess?: boolean;
  redirectOutput?: boolean;
  strict?: boolean;
  noDebug?: boolean;
  stackName?: string;
  region?: string;
  profile?: string;
  // attach: the plldb DAP server (`plldb local --debug --listen`, `plldb attach --listen`)
  host?: string;
  port?: number;
  token?: string;
  [key: string]: unknown;
}

/** Workspace is what resolution needs to know about the editor's workspace. */
export interface Workspace {
  /** The workspace folder the configuration belongs to, if any. */
  folder?: string;
  /**
   * The templates in the workspace worth offering (absolute paths): template.yaml / .yml / .json outside
   * TEMPLATE_EXCLUDE that declare Python functions.
   */
  findTemplates(): Promise<string[]>;
  platform?: NodeJS.Platform;
}

export type Resolved = { config: LaunchConfig } | { error: string };

/** TEMPLATE_NAMES are sam's default template names, in the order the adapter looks for them. */
export const TEMPLATE_NAMES = ['template.yaml', 'template.yml', 'template.json'];

/**
 * TEMPLATE_GLOB finds templates in a workspace; TEMPLATE_EXCLUDE skips what is not the user's app: build output
 * (.aws-sam, cdk.out), dependencies and tools (node_modules, virtualenvs, .vscode-test), version control, and
 * test data (testdata, Go's convention for fixtures that tools ignore).
 */
export const TEMPLATE_GLOB = '**/template.{yaml,yml,json}';
export const TEMPLATE_EXCLUDE = '**/{node_modules,.aws-sam,cdk.out,.venv,venv,.git,.vscode-test,testdata}/**';

/**
 * isPythonApp tells from a template's text whether it declares Lambda functions with a Python runtime: the
 * templates plldb can debug. A helper stack whose only function is a custom runtime, or a Node.js app, is not
 * offered. It reads text rather than parsing YAML (short-form tags, JSON) because it only has to tell apps apart,
 * and the adapter parses the chosen template for real.
 */
export function isPythonApp(text: string): boolean {
  return /AWS::(Serverless|Lambda)::Function\b/.test(text) && /\bpython[23]\.\d+\b/.test(text);
}

/** pythonApps keeps the templates that declare Python functions (see isPythonApp), in the order given. */
export async function pythonApps(files: string[]): Promise<string[]> {
  const keep = await Promise.all(files.map(async (f) => {
    try {
      return isPythonApp(await fs.promises.readFile(f, 'utf8'));
    } catch {
      return false;
    }
  }));
  return files.filter((_, i) => keep[i]);
}

const MODES = ['local', 'aws'];

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** venvPython is the interpreter of a virtualenv folder, if there is one. */
export function venvPython(dir: string, platform: NodeJS.Platform = process.platform): string | undefined {
  for (const venv of ['.venv', 'venv']) {
    const py = platform === 'win32' ? path.join(dir, venv, 'Scripts', 'python.exe') : path.join(dir, venv, 'bin', 'python');
    if (isFile(py)) {
      return py;
    }
  }
  return undefined;
}

/**
 * defaultConfig is the configuration used when the user presses F5 without a launch.json: debug the template
 * the workspace has, locally.
 */
export function defaultConfig(): LaunchConfig {
  return { type: 'plldb', request: 'launch', name: 'Lambda: debug locally', mode: 'local' };
}

/**
 * resolve fills defaults into a configuration whose variables (${workspaceFolder}, …) are already substituted,
 * and checks what the adapter would otherwise reject only after starting. It answers an error, phrased for the
 * user, instead of a configuration that cannot work.
 */
export async function resolve(input: LaunchConfig, ws: Workspace): Promise<Resolved> {
  const platform = ws.platform ?? process.platform;
  const c: LaunchConfig = { ...input };
  if (!c.type && !c.request && !c.name) {
    Object.assign(c, defaultConfig(), c);
  }
  if (c.request === 'attach') {
    return resolveAttach(c);
  }
  if (c.request !== 'launch') {
    return { error: `plldb supports "request": "launch" and "attach", not ${JSON.stringify(c.request)}. For plain debugpy attach see docs/headless.md.` };
  }
  c.mode = c.mode ?? 'local';
  if (!MODES.includes(c.mode)) {
    return { error: `"mode" ${JSON.stringify(c.mode)} is not supported: use "local" (run functions on this machine) or "aws" (a deployed stack).` };
  }
  if (c.invokePort !== undefined && (!Number.isInteger(c.invokePort) || c.invokePort < 0 || c.invokePort > 65535)) {
    return { error: `"invokePort" ${JSON.stringify(c.invokePort)} is not a TCP port: use 0–65535 (0 picks a free port).` };
  }
  if (c.functions !== undefined && (!Array.isArray(c.functions) || c.functions.some((f) => typeof f !== 'string' || f.trim() === ''))) {
    return { error: '"functions" must be a list of the template\'s logical ids, for example ["HelloFunction"].' };
  }
  if (c.cwd !== undefined && c.cwd !== '') {
    if (ws.folder && !path.isAbsolute(c.cwd)) {
      c.cwd = path.join(ws.folder, c.cwd);
    }
    if (!isDir(c.cwd)) {
      return { error: `"cwd" ${c.cwd} is not a folder.` };
    }
  } else if (ws.folder) {
    c.cwd = ws.folder;
  }

  if (c.mode === 'aws') {
    if (!c.stackName) {
      return { error: '"stackName" is missing: "mode": "aws" debugs the functions of a deployed stack; name it in launch.json.' };
    }
    return { config: c };
  }

  // Local mode needs a template: the given one, one of sam's default names in cwd, or the only one in the
  // workspace.
  if (c.template) {
    const t = c.cwd && !path.isAbsolute(c.template) ? path.join(c.cwd, c.template) : c.template;
    if (!isFile(t)) {
      return { error: `"template" ${t} does not exist. Point it at your SAM or CloudFormation template.` };
    }
    c.template = t;
  } else {
    const inCwd = c.cwd ? TEMPLATE_NAMES.map((n) => path.join(c.cwd as string, n)).find(isFile) : undefined;
    if (inCwd) {
      c.template = inCwd;
    } else {
      const found = (await ws.findTemplates()).sort();
      if (found.length === 0) {
        return { error: `No template.yaml with Python functions in ${ws.folder ?? 'the workspace'}. Set "template" in launch.json to your SAM or CloudFormation template.` };
      }
      if (found.length > 1) {
        const shown = found.slice(0, 5).map((f) => (ws.folder ? path.relative(ws.folder, f) : f));
        return { error: `Several templates in the workspace (${shown.join(', ')}${found.length > 5 ? ', …' : ''}). Set "template" in launch.json to the one to debug.` };
      }
      c.template = found[0];
    }
  }

  if (c.python) {
    // The adapter resolves a relative interpreter against its own working directory, not "cwd": hand it an
    // absolute path so both agree with what launch.json means.
    if (c.cwd && !path.isAbsolute(c.python) && c.python.includes(path.sep)) {
      c.python = path.join(c.cwd, c.python);
    }
    if (!isFile(c.python)) {
      return { error: `"python" ${c.python} does not exist. Point it at an interpreter with debugpy installed (pip install debugpy).` };
    }
  } else {
    // The project's virtualenv, beside the template or at the workspace root; otherwise the adapter falls back
    // to python3 on PATH.
    const dirs = [path.dirname(c.template), c.cwd, ws.folder].filter((d): d is string => !!d);
    for (const d of dirs) {
      const py = venvPython(d, platform);
      if (py) {
        c.python = py;
        break;
      }
    }
  }
  return { config: c };
}

/**
 * resolveAttach checks an attach configuration: it connects to a running plldb DAP server (`plldb local --debug
 * --listen HOST:PORT` or `plldb attach --listen HOST:PORT`), which owns the functions, so only the address is
 * the extension's business.
 */
export function resolveAttach(input: LaunchConfig): Resolved {
  const c: LaunchConfig = { ...input, host: input.host ?? '127.0.0.1' };
  if (typeof c.host !== 'string' || c.host === '') {
    return { error: `"host" ${JSON.stringify(c.host)} must be the host of the plldb DAP server ("DAP server listening at: HOST:PORT").` };
  }
  if (!Number.isInteger(c.port) || (c.port as number) < 1 || (c.port as number) > 65535) {
    return {
      error: `"port" ${JSON.stringify(c.port)} must be the port of a running plldb DAP server: start \`plldb local --debug --listen 127.0.0.1:4711\` ` +
        `(or \`plldb attach --stack-name STACK --listen 127.0.0.1:4711\`) and use the port it prints ("DAP server listening at: HOST:PORT").`,
    };
  }
  return { config: c };
}

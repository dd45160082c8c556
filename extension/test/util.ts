// Helpers shared by the extension's tests.
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';

/** ROOT is the repository root, which is also the extension's root (it holds package.json). */
export const ROOT = path.resolve(__dirname, '..', '..', '..');

export type Schema = {
  type?: string | string[];
  enum?: unknown[];
  enumDescriptions?: string[];
  description?: string;
  markdownDescription?: string;
  default?: unknown;
  items?: Schema;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  required?: string[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  uniqueItems?: boolean;
};

export function manifest(): any {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
}

export function launchSchema(): Record<string, Schema> {
  const dbg = manifest().contributes.debuggers.find((d: any) => d.type === 'plldb');
  return dbg.configurationAttributes.launch.properties;
}

export function attachSchema(): Record<string, Schema> {
  const dbg = manifest().contributes.debuggers.find((d: any) => d.type === 'plldb');
  return dbg.configurationAttributes.attach.properties;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/**
 * validate checks a value against the subset of JSON schema the manifest uses and returns the problems found,
 * each naming where. It is small on purpose: the test must fail if the manifest starts using a keyword this
 * does not understand, so unknown keywords are reported too.
 */
export function validate(v: unknown, s: Schema, where: string): string[] {
  const known = new Set(['type', 'enum', 'enumDescriptions', 'description', 'markdownDescription', 'default', 'items',
    'properties', 'additionalProperties', 'required', 'minimum', 'maximum', 'minLength', 'uniqueItems']);
  const errs: string[] = [];
  for (const k of Object.keys(s)) {
    if (!known.has(k)) errs.push(`${where}: schema keyword ${k} is not understood by the test validator`);
  }
  const t = typeOf(v);
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const ok = types.some((want) => want === t || (want === 'number' && t === 'integer'));
    if (!ok) {
      errs.push(`${where}: ${JSON.stringify(v)} is ${t}, want ${types.join('|')}`);
      return errs;
    }
  }
  if (s.enum && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) {
    errs.push(`${where}: ${JSON.stringify(v)} is not one of ${JSON.stringify(s.enum)}`);
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) errs.push(`${where}: ${v} < minimum ${s.minimum}`);
    if (s.maximum !== undefined && v > s.maximum) errs.push(`${where}: ${v} > maximum ${s.maximum}`);
  }
  if (typeof v === 'string' && s.minLength !== undefined && v.length < s.minLength) {
    errs.push(`${where}: ${JSON.stringify(v)} is shorter than ${s.minLength}`);
  }
  if (Array.isArray(v)) {
    if (s.uniqueItems && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) errs.push(`${where}: items are not unique`);
    if (s.items) v.forEach((x, i) => errs.push(...validate(x, s.items as Schema, `${where}[${i}]`)));
  }
  if (t === 'object') {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) {
      if (!(r in o)) errs.push(`${where}: missing required ${r}`);
    }
    for (const [k, x] of Object.entries(o)) {
      const ps = s.properties?.[k];
      if (ps) {
        errs.push(...validate(x, ps, `${where}.${k}`));
      } else if (s.additionalProperties === false) {
        errs.push(`${where}: unknown property ${k}`);
      } else if (typeof s.additionalProperties === 'object') {
        errs.push(...validate(x, s.additionalProperties, `${where}.${k}`));
      }
    }
  }
  return errs;
}

/** AdapterAttr is one launch attribute as adapter/dap/config.go reads it. */
export interface AdapterAttr {
  name: string;
  field: string;
  /** The JSON type parseLaunch's Go destination accepts. */
  type: string;
  default: unknown;
}

/**
 * adapterAttributes reads the launch attributes, their types and their defaults from the adapter's source
 * (adapter/dap/config.go), so the manifest cannot drift from what `plldb dap` accepts.
 */
export function adapterAttributes(): { attrs: AdapterAttr[]; modes: string[]; attach: AdapterAttr[] } {
  const all = fs.readFileSync(path.join(ROOT, 'adapter', 'dap', 'config.go'), 'utf8');
  const at = all.indexOf('\nfunc parseAttach(');
  if (at < 0) throw new Error('config.go: func parseAttach not found');
  // The launch attributes are read before parseAttach; parseAttach reads the attach attributes.
  return { ...readAttributes(all, all.slice(0, at)), attach: readAttributes(all, all.slice(at)).attrs };
}

function readAttributes(all: string, src: string): { attrs: AdapterAttr[]; modes: string[] } {
  // Go field types from the LaunchConfig struct.
  const structBody = /type LaunchConfig struct \{([\s\S]*?)\n\}/.exec(all);
  if (!structBody) throw new Error('config.go: type LaunchConfig struct not found');
  const goTypes = new Map<string, string>();
  for (const line of structBody[1].split('\n')) {
    const m = /^\s*([A-Z]\w*(?:,\s*[A-Z]\w*)*)\s+(\S+)/.exec(line);
    if (!m) continue;
    for (const name of m[1].split(',').map((s) => s.trim())) goTypes.set(name, m[2]);
  }
  const jsonType = (goType: string): string => {
    if (goType === 'string') return 'string';
    if (goType === 'int') return 'integer';
    if (goType === 'bool') return 'boolean';
    if (goType.startsWith('[]')) return 'array';
    if (goType.startsWith('map[')) return 'object';
    throw new Error(`config.go: no JSON type for Go type ${goType}`);
  };
  // Defaults from the literal parseLaunch starts from; everything else is Go's zero value.
  const lit = /c := &LaunchConfig\{([^}]*)\}/.exec(src);
  if (!lit) throw new Error('config.go: the LaunchConfig literal holding the defaults was not found');
  const consts = new Map<string, string>();
  for (const m of all.matchAll(/const (\w+) = (\S+)/g)) consts.set(m[1], m[2]);
  const defaults = new Map<string, unknown>();
  for (const m of lit[1].matchAll(/(\w+):\s*([^,]+)/g)) {
    let v = m[2].trim();
    v = consts.get(v) ?? v;
    defaults.set(m[1], JSON.parse(v));
  }
  const zero: Record<string, unknown> = { string: '', integer: 0, boolean: false, array: [], object: {} };
  const attrs: AdapterAttr[] = [];
  for (const m of src.matchAll(/field\("(\w+)", &c\.(\w+),/g)) {
    const goType = goTypes.get(m[2]);
    if (!goType) throw new Error(`config.go: attribute ${m[1]} reads field ${m[2]}, which LaunchConfig does not declare`);
    const type = jsonType(goType);
    attrs.push({ name: m[1], field: m[2], type, default: defaults.has(m[2]) ? defaults.get(m[2]) : zero[type] });
  }
  const sw = /switch c\.Mode \{([\s\S]*?)\n\t\}/.exec(src);
  if (!sw) return { attrs, modes: [] }; // parseAttach has no modes
  const modes = [...sw[1].matchAll(/case "(\w+)":/g)].map((m) => m[1]);
  return { attrs, modes };
}

/** testPython is the interpreter with debugpy that `make venv` creates (or PLLDB_TEST_PYTHON). */
export function testPython(): string {
  const p = process.env.PLLDB_TEST_PYTHON || path.join(ROOT, '.venv', 'bin', 'python');
  if (!fs.existsSync(p)) {
    throw new Error(`no test Python at ${p}: run "make venv" (creates .venv with debugpy) or set PLLDB_TEST_PYTHON`);
  }
  return p;
}

/** breakpointLine is the line of the "# BREAKPOINT" marker inside a function of a Python file. */
export function breakpointLine(file: string, fn: string): number {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const def = lines.findIndex((l) => l.startsWith(`def ${fn}(`));
  assert.ok(def >= 0, `${file}: no def ${fn}`);
  for (let i = def + 1; i < lines.length && !lines[i].startsWith('def '); i++) {
    if (lines[i].includes('# BREAKPOINT')) return i + 1;
  }
  throw new Error(`${file}: no # BREAKPOINT in ${fn}`);
}

/** post sends body to url and resolves with the status and body of the answer. */
export function post(url: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(body);
  });
}

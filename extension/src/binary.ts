// Finding the plldb binary that serves the debug adapter. Kept free of the vscode module so node's test runner
// can exercise it outside the editor.
import * as fs from 'fs';
import * as path from 'path';

export type BinarySource = 'setting' | 'bundled' | 'PATH';

export interface FoundBinary {
  path: string;
  source: BinarySource;
}

export interface BinaryLookup {
  /** The `plldb.path` setting; empty or undefined when unset. */
  setting?: string;
  /** The extension's install folder (the one holding package.json). */
  extensionPath: string;
  /** The PATH to search; defaults to process.env.PATH. */
  envPath?: string;
  platform?: NodeJS.Platform;
}

/** binaryName is the executable's file name on a platform. */
export function binaryName(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'plldb.exe' : 'plldb';
}

/** bundledBinary is where `make vsix` puts the binary for the platform it packages on. */
export function bundledBinary(extensionPath: string, platform: NodeJS.Platform = process.platform): string {
  return path.join(extensionPath, 'extension', 'bin', binaryName(platform));
}

function isExecutableFile(p: string, platform: NodeJS.Platform): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) {
      return false;
    }
    if (platform !== 'win32') {
      fs.accessSync(p, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * findPlldb picks the binary in the documented order: the `plldb.path` setting, the binary shipped in the
 * extension, then plldb on PATH. A setting that points nowhere is an error rather than a silent fall-through,
 * so the user learns their setting is wrong instead of debugging with some other plldb.
 */
export function findPlldb(opts: BinaryLookup): FoundBinary | { error: string } {
  const platform = opts.platform ?? process.platform;
  const setting = (opts.setting ?? '').trim();
  if (setting !== '') {
    if (isExecutableFile(setting, platform)) {
      return { path: setting, source: 'setting' };
    }
    return { error: `The "plldb.path" setting is ${setting}, which is not an executable file. Fix the setting or clear it to use the plldb shipped with the extension.` };
  }
  const bundled = bundledBinary(opts.extensionPath, platform);
  if (isExecutableFile(bundled, platform)) {
    return { path: bundled, source: 'bundled' };
  }
  const envPath = opts.envPath ?? process.env.PATH ?? '';
  for (const dir of envPath.split(path.delimiter)) {
    if (dir === '') {
      continue;
    }
    const candidate = path.join(dir, binaryName(platform));
    if (isExecutableFile(candidate, platform)) {
      return { path: candidate, source: 'PATH' };
    }
  }
  return {
    error: 'Cannot find the plldb binary: the "plldb.path" setting is empty, this extension has no bundled binary, ' +
      'and plldb is not on PATH. Install plldb (go install github.com/plldb/plldb/cmd/plldb@latest) or set "plldb.path".',
  };
}

// The plldb VS Code extension: debug type "plldb", served by `plldb dap` over stdio (launch), or by a running
// `plldb local --debug --listen` / `plldb attach --listen` over TCP (attach).
import * as path from 'path';
import * as vscode from 'vscode';
import { findPlldb } from './binary';
import { COMMAND as COPY_KNOCK, COMMAND_WITH_OPTIONS as COPY_KNOCK_WITH_OPTIONS, KnockUI, copyKnock, copyKnockHeader } from './knock';
import { preflight } from './preflight';
import { LaunchConfig, TEMPLATE_EXCLUDE, TEMPLATE_GLOB, defaultConfig, pythonApps, resolve } from './resolve';

const DEBUG_TYPE = 'plldb';

export function activate(context: vscode.ExtensionContext): void {
  const provider = new ConfigurationProvider();
  context.subscriptions.push(
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, provider, vscode.DebugConfigurationProviderTriggerKind.Initial),
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new DynamicProvider(), vscode.DebugConfigurationProviderTriggerKind.Dynamic),
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, new AdapterFactory(context)),
  );
  // The plldb sessions running, for the knock commands when the active session is not one of them (VS Code has
  // no list of sessions, only these events).
  const running = new Set<vscode.DebugSession>();
  const ui: KnockUI = {
    pick: (items, placeHolder) => vscode.window.showQuickPick(items, { placeHolder }),
    // ignoreFocusOut: the user may look up a URL or a route in another window before typing it.
    input: (o) => vscode.window.showInputBox({ prompt: o.prompt, value: o.value, placeHolder: o.placeHolder, validateInput: o.validate, ignoreFocusOut: true }),
    copy: (text) => vscode.env.clipboard.writeText(text),
    info: (msg) => void vscode.window.showInformationMessage(msg),
    error: (msg) => void vscode.window.showErrorMessage(msg),
  };
  // plldb.sessionRunning enables the commands (package.json) while any plldb session runs, focused or not.
  const changed = () => void vscode.commands.executeCommand('setContext', 'plldb.sessionRunning', running.size > 0);
  context.subscriptions.push(
    vscode.debug.onDidStartDebugSession((s) => {
      if (s.type === DEBUG_TYPE) {
        running.add(s);
        changed();
      }
    }),
    vscode.debug.onDidTerminateDebugSession((s) => {
      if (running.delete(s)) changed();
    }),
    vscode.commands.registerCommand(COPY_KNOCK, () => copyKnockHeader(vscode.debug.activeDebugSession, [...running], ui)),
    vscode.commands.registerCommand(COPY_KNOCK_WITH_OPTIONS, () => copyKnock(vscode.debug.activeDebugSession, [...running], ui)),
  );
}

export function deactivate(): void {}

// The templates worth offering in a folder (or the whole workspace): SAM/CloudFormation apps with Python
// functions, outside dependencies, build output and test data (see TEMPLATE_EXCLUDE and isPythonApp).
async function findTemplates(folder?: vscode.WorkspaceFolder): Promise<string[]> {
  const include = folder ? new vscode.RelativePattern(folder, TEMPLATE_GLOB) : TEMPLATE_GLOB;
  const uris = await vscode.workspace.findFiles(include, TEMPLATE_EXCLUDE, 50);
  return (await pythonApps(uris.map((u) => u.fsPath))).sort();
}

function localConfig(name: string, template?: string): vscode.DebugConfiguration {
  const c: vscode.DebugConfiguration = { ...defaultConfig(), name, type: DEBUG_TYPE, request: 'launch' };
  if (template) {
    c.template = template;
  }
  c.invokePort = 3001;
  return c;
}

class ConfigurationProvider implements vscode.DebugConfigurationProvider {
  // The launch.json a user creates: one local configuration per template found, or the generic one. This is
  // the only source of initial configurations: VS Code writes package.json's initialConfigurations followed by
  // these, so the manifest has none (with both, "Open launch.json" wrote the same configuration twice).
  async provideDebugConfigurations(folder: vscode.WorkspaceFolder | undefined): Promise<vscode.DebugConfiguration[]> {
    const templates = await findTemplates(folder);
    if (templates.length === 0 || !folder) {
      return [localConfig('Lambda: debug locally', '${workspaceFolder}/template.yaml')];
    }
    return templates.map((t) => {
      const rel = path.relative(folder.uri.fsPath, t).split(path.sep).join('/');
      return localConfig(templates.length === 1 ? 'Lambda: debug locally' : `Lambda: debug ${rel} locally`, '${workspaceFolder}/' + rel);
    });
  }

  // F5 without a launch.json: VS Code hands over an empty configuration.
  resolveDebugConfiguration(_folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): vscode.DebugConfiguration {
    if (!config.type && !config.request && !config.name) {
      return { ...defaultConfig(), ...config } as vscode.DebugConfiguration;
    }
    return config;
  }

  async resolveDebugConfigurationWithSubstitutedVariables(
    folder: vscode.WorkspaceFolder | undefined,
    config: vscode.DebugConfiguration,
  ): Promise<vscode.DebugConfiguration | undefined> {
    const r = await resolve(config as LaunchConfig, { folder: folder?.uri.fsPath, findTemplates: () => findTemplates(folder) });
    // A busy port or an interpreter without debugpy is reported here, once, rather than by the adapter. An attach
    // starts nothing: the plldb it connects to already runs the functions.
    const problem = 'error' in r ? r.error : config.request === 'attach' ? undefined : await preflight(r.config);
    if (problem !== undefined || 'error' in r) {
      // undefined aborts the launch quietly; the message says what to fix.
      void vscode.window.showErrorMessage(`plldb: ${problem}`);
      return undefined;
    }
    return r.config as vscode.DebugConfiguration;
  }
}

// Offers "Lambda: debug <template>" entries in the Run and Debug view without any launch.json. VS Code asks once
// per launch source: each workspace folder, and also the user settings and a multi-root workspace file, with no
// folder. Templates live in folders, so those get nothing; otherwise every template was listed twice, once under
// the folder and once under "user settings".
class DynamicProvider implements vscode.DebugConfigurationProvider {
  async provideDebugConfigurations(folder: vscode.WorkspaceFolder | undefined): Promise<vscode.DebugConfiguration[]> {
    if (!folder) {
      return [];
    }
    const templates = await findTemplates(folder);
    return templates.map((t) => {
      const rel = path.relative(folder.uri.fsPath, t).split(path.sep).join('/');
      return localConfig(`Lambda: debug ${rel} locally`, '${workspaceFolder}/' + rel);
    });
  }
}

class AdapterFactory implements vscode.DebugAdapterDescriptorFactory {
  constructor(private readonly context: vscode.ExtensionContext) {}

  createDebugAdapterDescriptor(session: vscode.DebugSession): vscode.ProviderResult<vscode.DebugAdapterDescriptor> {
    if (session.configuration.request === 'attach') {
      // The running plldb is the debug adapter: `plldb local --debug --listen` or `plldb attach --listen`.
      const { host, port } = session.configuration as LaunchConfig;
      return new vscode.DebugAdapterServer(port as number, host ?? '127.0.0.1');
    }
    const setting = vscode.workspace.getConfiguration('plldb', session.workspaceFolder).get<string>('path');
    const found = findPlldb({ setting, extensionPath: this.context.extensionPath });
    if ('error' in found) {
      // VS Code shows a thrown error's message and ends the session before it starts.
      throw new Error(found.error);
    }
    const cwd = (session.configuration.cwd as string | undefined) ?? session.workspaceFolder?.uri.fsPath;
    return new vscode.DebugAdapterExecutable(found.path, ['dap'], cwd ? { cwd } : {});
  }
}

// The "plldb: Copy Knock Header" command: asks the running plldb debug session for a knock (the adapter's
// plldbFunctions and plldbKnock requests, docs/dap.md) and puts `X-Plldb-Knock: <token>` on the clipboard, so a
// developer in a selective session can mark the one request they want to stop on without a terminal.
//
// The token is a bearer credential for its lifetime: it goes to the clipboard and nowhere else, never into a
// message, a log or an error. This module talks to VS Code only through the small interfaces below, so that its
// tests can drive it against the real adapter.

export const COMMAND = 'plldb.copyKnockHeader';

/** KnockSession is the part of vscode.DebugSession the command uses. */
export interface KnockSession {
  readonly name: string;
  readonly type: string;
  /** Resolves to the response body; rejects with the adapter's message. */
  customRequest(command: string, args?: unknown): Thenable<any>;
}

/** PickItem is a quick pick entry; value is what choosing it means. */
export interface PickItem<T> {
  label: string;
  description?: string;
  value: T;
}

/** KnockUI is the part of VS Code's window and clipboard the command uses. */
export interface KnockUI {
  pick<T>(items: PickItem<T>[], placeHolder: string): Thenable<PickItem<T> | undefined>;
  copy(text: string): Thenable<void>;
  info(message: string): void;
  error(message: string): void;
}

interface Functions {
  selective: boolean;
  audience?: string;
  functions: { logicalId: string; name: string }[];
}

interface Knock {
  line: string;
  expires: string;
  audience: string;
}

/**
 * copyKnockHeader runs the command: it picks the plldb session (the active one, else the only one, else asks),
 * asks which function the knock is for when the session debugs several, and copies the header line. It returns
 * what was copied for (the audience), or undefined when nothing was (cancelled, or an error the user was shown).
 */
export async function copyKnockHeader(active: KnockSession | undefined, running: KnockSession[], ui: KnockUI,
  now: () => Date = () => new Date()): Promise<string | undefined> {
  const session = await chooseSession(active, running, ui);
  if (!session) {
    return undefined;
  }
  try {
    const fns: Functions = await session.customRequest('plldbFunctions');
    if (!fns.selective) {
      ui.error(`plldb: "${session.name}" is not a selective session, so every invocation already stops at your breakpoints. ` +
        'Add "selective": true to its launch configuration to stop only on invocations that carry a knock.');
      return undefined;
    }
    let fn: string | undefined;
    if (fns.functions.length > 1) {
      const items: PickItem<string | undefined>[] = [
        { label: 'Every function', description: `the knock works for all of ${fns.audience ?? 'the session'}`, value: undefined },
        ...fns.functions.map((f) => ({ label: f.logicalId, description: f.name !== f.logicalId ? f.name : undefined, value: f.logicalId })),
      ];
      const picked = await ui.pick(items, 'Which function should the knock work for?');
      if (!picked) {
        return undefined;
      }
      fn = picked.value;
    }
    const k: Knock = await session.customRequest('plldbKnock', fn ? { function: fn } : {});
    await ui.copy(k.line);
    ui.info(`plldb: copied the X-Plldb-Knock header for ${k.audience} to the clipboard; it expires ${when(k.expires, now())}.`);
    return k.audience;
  } catch (e) {
    // The adapter's messages never hold a token (docs/dap.md).
    ui.error(`plldb: no knock: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}

async function chooseSession(active: KnockSession | undefined, running: KnockSession[], ui: KnockUI): Promise<KnockSession | undefined> {
  if (active?.type === 'plldb') {
    return active;
  }
  const plldb = running.filter((s) => s.type === 'plldb');
  if (plldb.length === 0) {
    ui.error('plldb: no plldb debug session is running. Start one with "selective": true in its launch configuration, then copy a knock.');
    return undefined;
  }
  if (plldb.length === 1) {
    return plldb[0];
  }
  const picked = await ui.pick(plldb.map((s) => ({ label: s.name, value: s })), 'Which plldb debug session should the knock be for?');
  return picked?.value;
}

/** when says when an RFC 3339 time comes, in the user's local time and relative to now. */
export function when(expires: string, now: Date): string {
  const t = new Date(expires);
  if (Number.isNaN(t.getTime())) {
    return `at ${expires}`;
  }
  const mins = Math.round((t.getTime() - now.getTime()) / 60_000);
  const rel = mins < 60 ? `${mins} min` : `${Math.floor(mins / 60)} h${mins % 60 ? ` ${mins % 60} min` : ''}`;
  const hhmm = t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return `at ${hhmm} (in ${rel})`;
}

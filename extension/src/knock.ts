// The "plldb: Copy Knock Header" command: asks the running plldb debug session for a knock (the adapter's
// plldbFunctions and plldbKnock requests, docs/dap.md) and puts `X-Plldb-Knock: <token>` on the clipboard, so a
// developer in a selective session can mark the one request they want to stop on without a terminal. Its sibling
// "plldb: Copy Knock…" asks for more, as `plldb knock` takes it: a curl, AWS CLI or boto3 line instead of the
// header, a lifetime and a route.
//
// The token is a bearer credential for its lifetime: it goes to the clipboard and nowhere else, never into a
// message, a log or an error. This module talks to VS Code only through the small interfaces below, so that its
// tests can drive it against the real adapter.

export const COMMAND = 'plldb.copyKnockHeader';
export const COMMAND_WITH_OPTIONS = 'plldb.copyKnock';

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

/** InputOptions describe an input box. */
export interface InputOptions {
  prompt: string;
  value?: string;
  placeHolder?: string;
  /** Says what is wrong with a value, or undefined when it will do; VS Code shows it under the box and does not
   * take the value until it is fixed. */
  validate?: (value: string) => string | undefined;
}

/** KnockUI is the part of VS Code's window and clipboard the commands use. */
export interface KnockUI {
  pick<T>(items: PickItem<T>[], placeHolder: string): Thenable<PickItem<T> | undefined>;
  /** Resolves to the value entered, or undefined on Escape. */
  input(options: InputOptions): Thenable<string | undefined>;
  copy(text: string): Thenable<void>;
  info(message: string): void;
  error(message: string): void;
}

interface KnockFunction {
  logicalId: string;
  name: string; // the physical name in mode aws
}

interface Functions {
  selective: boolean;
  audience?: string;
  functions: KnockFunction[];
}

interface Knock {
  line: string;
  text?: string; // the line format asked for
  expires: string;
  audience: string;
}

/** Target is what both commands ask first: the session, its functions, and the one the knock is for (none: all). */
interface Target {
  session: KnockSession;
  functions: KnockFunction[];
  fn?: KnockFunction;
}

/**
 * copyKnockHeader runs the command: it picks the plldb session (the active one, else the only one, else asks),
 * asks which function the knock is for when the session debugs several, and copies the header line. It returns
 * what was copied for (the audience), or undefined when nothing was (cancelled, or an error the user was shown).
 */
export async function copyKnockHeader(active: KnockSession | undefined, running: KnockSession[], ui: KnockUI,
  now: () => Date = () => new Date()): Promise<string | undefined> {
  return withTarget(active, running, ui, async ({ session, fn }) => {
    const k: Knock = await session.customRequest('plldbKnock', fn ? { function: fn.logicalId } : {});
    await ui.copy(k.line);
    ui.info(`plldb: copied the X-Plldb-Knock header for ${k.audience} to the clipboard; it expires ${when(k.expires, now())}.`);
    return k.audience;
  });
}

/** KnockFormat is what plldbKnock's format argument takes. */
export type KnockFormat = 'header' | 'curl' | 'awsCli' | 'boto3';

/** FORMATS are the choices of what to copy, the header first: Enter takes it. */
export const FORMATS: PickItem<KnockFormat>[] = [
  { label: 'Header line', description: 'X-Plldb-Knock: …, for your frontend, Postman or any HTTP client', value: 'header' },
  { label: 'curl command', description: 'calls a URL of your API with the header', value: 'curl' },
  { label: 'AWS CLI command', description: 'aws lambda invoke, the knock in the client context', value: 'awsCli' },
  { label: 'boto3 snippet', description: 'Python invoking the function, the knock in the client context', value: 'boto3' },
];

const WHAT: Record<KnockFormat, string> = {
  header: 'the X-Plldb-Knock header', curl: 'a curl command with a knock', awsCli: 'an AWS CLI command with a knock',
  boto3: 'a boto3 snippet with a knock',
};

/** DEFAULT_LIFETIME prefills the lifetime box: the adapter's default (knock.DefaultTTL). */
export const DEFAULT_LIFETIME = '15m';

/**
 * copyKnock runs "plldb: Copy Knock…": the session and function as copyKnockHeader asks them, then what to copy
 * (the header line, or a curl, AWS CLI or boto3 line as `plldb knock` prints it), the URL for curl, the lifetime
 * and, for the header and curl, a route. Escape at any step copies nothing. The values are checked as the adapter
 * checks them, so a mistake is shown under the box while it can still be fixed; the adapter refuses whatever gets
 * past that, and its message is shown. It returns the audience copied for, or undefined when nothing was copied.
 */
export async function copyKnock(active: KnockSession | undefined, running: KnockSession[], ui: KnockUI,
  now: () => Date = () => new Date()): Promise<string | undefined> {
  return withTarget(active, running, ui, async ({ session, functions, fn }) => {
    const picked = await ui.pick(FORMATS, 'What should be copied?');
    if (!picked) {
      return undefined;
    }
    const format = picked.value;
    const args: { format: KnockFormat; function?: string; for?: string; route?: string; url?: string } = { format };
    if (format === 'curl') {
      const url = await ui.input({
        prompt: 'The URL curl calls: your API Gateway, Function URL or load balancer endpoint, with the path',
        placeHolder: 'https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders/42',
        validate: urlProblem,
      });
      if (url === undefined) {
        return undefined;
      }
      args.url = url.trim();
    }
    const ttl = await ui.input({
      prompt: 'How long the knock works: 1s to 12h, like 90s, 10m or 1h30m',
      value: DEFAULT_LIFETIME,
      validate: lifetimeProblem,
    });
    if (ttl === undefined) {
      return undefined;
    }
    if (ttl.trim() !== '') {
      args.for = ttl.trim();
    }
    // The AWS CLI and boto3 lines invoke the function directly with an event of {}, which is not an HTTP request,
    // and the layer refuses a route-bound knock on those: asking for a route would only make a line that never
    // stops.
    const invokes = format === 'awsCli' || format === 'boto3';
    if (!invokes) {
      const route = await ui.input({
        prompt: 'Only HTTP requests on this route, as METHOD /path (* within a segment, ** across, * or ANY for any method); empty: any request',
        placeHolder: 'POST /orders/*',
        validate: routeProblem,
      });
      if (route === undefined) {
        return undefined;
      }
      if (route.trim() !== '') {
        args.route = route.trim();
      }
    }
    // A line that invokes the function names it as the Invoke API knows it (the physical name in mode aws; plldb
    // local takes either), and the knock is bound to the same name. With a single function there is no question
    // which one to invoke.
    const target = invokes ? fn ?? (functions.length === 1 ? functions[0] : undefined) : fn;
    if (target) {
      args.function = invokes ? target.name : target.logicalId;
    }
    const k: Knock = await session.customRequest('plldbKnock', args);
    // Without the newline the adapter ends the line with, so that pasting a command into a terminal does not run
    // it before the user has looked at it.
    const text = format === 'header' ? k.line : (k.text ?? '').replace(/\n$/, '');
    if (text === '') {
      throw new Error(`the adapter sent no ${format} line; is it older than this extension?`);
    }
    await ui.copy(text);
    const only = args.route ? `, only on ${args.route},` : '';
    const fill = invokes && !args.function ? ' Replace FUNCTION with the name of the function to invoke.' : '';
    ui.info(`plldb: copied ${WHAT[format]} for ${k.audience}${only} to the clipboard; it expires ${when(k.expires, now())}.${fill}`);
    return k.audience;
  });
}

/**
 * withTarget asks what both commands ask first (the session, and the function when the session debugs several),
 * then runs then. An error on the way, the adapter's included, is shown and nothing is returned.
 */
async function withTarget<T>(active: KnockSession | undefined, running: KnockSession[], ui: KnockUI,
  then: (t: Target) => Promise<T | undefined>): Promise<T | undefined> {
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
    let fn: KnockFunction | undefined;
    if (fns.functions.length > 1) {
      const items: PickItem<KnockFunction | undefined>[] = [
        { label: 'Every function', description: `the knock works for all of ${fns.audience ?? 'the session'}`, value: undefined },
        ...fns.functions.map((f) => ({ label: f.logicalId, description: f.name !== f.logicalId ? f.name : undefined, value: f })),
      ];
      const picked = await ui.pick(items, 'Which function should the knock work for?');
      if (!picked) {
        return undefined;
      }
      fn = picked.value;
    }
    return await then({ session, functions: fns.functions, fn });
  } catch (e) {
    // The adapter's messages never hold a token (docs/dap.md), and nothing thrown here does.
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
  const secs = Math.round((t.getTime() - now.getTime()) / 1000);
  if (secs < 60) {
    return `at ${t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })} (in ${secs} s)`;
  }
  const mins = Math.round(secs / 60);
  const rel = mins < 60 ? `${mins} min` : `${Math.floor(mins / 60)} h${mins % 60 ? ` ${mins % 60} min` : ''}`;
  const hhmm = t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return `at ${hhmm} (in ${rel})`;
}

// The checks below are the adapter's (adapter/dap/knockreq.go, bridge/knock), so that the input boxes refuse
// what the adapter would refuse while the user can still fix it. knock.test.ts holds them to the adapter's
// verdicts on the same values.

// Go's units, in nanoseconds ("µs" is U+00B5, "μs" U+03BC). A Map, so that no unit finds Object's properties.
const NS_PER = new Map<string, bigint>([
  ['ns', 1n], ['us', 1_000n], ['\u00b5s', 1_000n], ['\u03bcs', 1_000n], ['ms', 1_000_000n],
  ['s', 1_000_000_000n], ['m', 60_000_000_000n], ['h', 3_600_000_000_000n],
]);
const SECOND = 1_000_000_000n;
const MAX_LIFETIME = 12n * 3_600_000_000_000n; // knock.MaxTTL

/**
 * parseDuration reads a Go duration (time.ParseDuration: "300ms", "-1.5h", "2h45m") into nanoseconds, or
 * undefined when Go would refuse it. Fractions are truncated to the nanosecond as Go does; values Go would find
 * out of range come back as they are (the caller's bounds refuse them too).
 */
export function parseDuration(s: string): bigint | undefined {
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') {
    return 0n;
  }
  if (s === '') {
    return undefined;
  }
  let total = 0n;
  while (s !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!;
    const [whole, int, frac] = m;
    if (int === '' && !frac) {
      return undefined; // no digits before the unit: "", ".", ".s"
    }
    s = s.slice(whole.length);
    const unit = /^[^0-9.]*/.exec(s)![0];
    const per = NS_PER.get(unit);
    if (per === undefined) {
      return undefined; // missing or unknown unit
    }
    s = s.slice(unit.length);
    total += BigInt(int || '0') * per;
    if (frac) {
      total += (BigInt(frac) * per) / 10n ** BigInt(frac.length);
    }
  }
  return neg ? -total : total;
}

/** lifetimeProblem says what is wrong with a lifetime as plldbKnock's "for" takes it; empty is the default. */
export function lifetimeProblem(value: string): string | undefined {
  const s = value.trim();
  if (s === '') {
    return undefined;
  }
  const ns = parseDuration(s);
  if (ns === undefined) {
    return 'Not a duration: write it like 90s, 10m or 1h30m (units h, m, s, ms)';
  }
  if (ns < SECOND) {
    return 'A knock must work for at least 1s';
  }
  if (ns > MAX_LIFETIME) {
    return 'A knock works for at most 12h';
  }
  return undefined;
}

/** routeProblem says what is wrong with a route as a knock's route claim takes it (knock.ParseRoute); empty is
 * any request. */
export function routeProblem(value: string): string | undefined {
  const s = value.trim();
  if (s === '') {
    return undefined;
  }
  if (new TextEncoder().encode(s).length > 256) {
    return 'A route is at most 256 bytes long';
  }
  const sp = s.indexOf(' ');
  if (sp < 0) {
    return 'Write the route as METHOD /path, like POST /orders/* (or * /orders/** for any method)';
  }
  const method = s.slice(0, sp);
  const path = s.slice(sp + 1);
  if (method !== '*' && !/^[A-Z]{1,16}$/.test(method)) {
    return 'The method is an HTTP method in capitals (GET, POST…), or * or ANY for any method';
  }
  if (!path.startsWith('/')) {
    return 'The path starts with /, after a single space: POST /orders/*';
  }
  if (/[^\x21-\x7e]/.test(path)) {
    return 'The path is matched as the request carries it: printable ASCII without spaces (percent-encode the rest)';
  }
  if (path.includes('***')) {
    return 'At most two stars in a row: * matches within one path segment, ** across segments';
  }
  return undefined;
}

/** urlProblem says what is wrong with the URL of a curl line. */
export function urlProblem(value: string): string | undefined {
  const s = value.trim();
  if (s === '') {
    return 'curl needs the URL to call, like https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders/42';
  }
  if (/\s/.test(s)) {
    return 'A URL has no spaces: percent-encode them (%20)';
  }
  return undefined;
}

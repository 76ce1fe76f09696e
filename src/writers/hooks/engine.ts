// Script-hook writers: writers declared as JSON files in the daemon's config directory, with
// a command per event. A hook that exits non-zero or times out vetoes unless its file says
// otherwise, and once a freeze hook has started, the thaw (or abort) hook always runs: on
// Thaw, on Abort, when the freeze hook itself fails, or when the freeze window ends.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import {
  ComponentType,
  RestoreMethod,
  restoreMethodCodec,
  SourceType,
  sourceTypeCodec,
  UsageType,
  usageTypeCodec,
  VssError,
  WriterMetadataBuilder,
  WriterRestore,
  writerRestoreCodec,
  type WriterFailureCode,
  type WriterIdentityInput,
  type WriterMetadata,
} from '../../vss/index.js';

export const HOOK_EVENTS = [
  'prepareBackup',
  'prepareSnapshot',
  'freeze',
  'thaw',
  'postSnapshot',
  'abort',
  'backupComplete',
  'backupShutdown',
  'preRestore',
  'postRestore',
] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

export interface HookCommand {
  /** argv (run directly) or a string (run by /bin/sh -c). */
  command: string[] | string;
  timeoutMs: number;
  /** A failure vetoes (fails the event) unless false. */
  vetoOnFailure: boolean;
  /** The writer failure a veto reports. */
  failureCode: WriterFailureCode;
}

export interface HookFileSet {
  path: string;
  filespec: string;
  recursive: boolean;
}

export interface HookComponent {
  logicalPath: string;
  name: string;
  caption: string;
  files: HookFileSet[];
}

export interface HookWriterDefinition {
  /** The file it came from. */
  source: string;
  identity: WriterIdentityInput;
  restoreMethod: { method: RestoreMethod; service: string; writerRestore: WriterRestore };
  components: HookComponent[];
  excludeFiles: HookFileSet[];
  hooks: Partial<Record<HookEvent, HookCommand>>;
  /** Extra environment for every hook. */
  env: Record<string, string>;
  freezeWindowMs: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

type Json = Record<string, unknown>;

function bad(source: string, message: string): never {
  throw new VssError('E_INVALIDARG', `${source}: ${message}`);
}

function str(o: Json, key: string, source: string, required: boolean, def = ''): string {
  const v = o[key];
  if (v === undefined) return required ? bad(source, `"${key}" is required`) : def;
  if (typeof v !== 'string') bad(source, `"${key}" must be a string`);
  return v;
}

function fileSets(v: unknown, where: string, source: string): HookFileSet[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) bad(source, `${where} must be a list of {path, filespec, recursive}`);
  return v.map((f: Json, i) => {
    const path = str(f, 'path', source, true);
    if (!isAbsolute(path)) bad(source, `${where}[${i}].path "${path}" must be absolute`);
    return { path, filespec: str(f, 'filespec', source, false, '*'), recursive: f.recursive === true };
  });
}

function enumValue<V extends number>(codec: { fromName(s: string): V | undefined; enumName: string }, v: unknown, what: string, source: string, def: V): V {
  if (v === undefined) return def;
  const value = typeof v === 'string' ? codec.fromName(v) : undefined;
  if (value === undefined) bad(source, `"${what}" must be a ${codec.enumName} name (e.g. with or without its VSS_ prefix), not ${JSON.stringify(v)}`);
  return value;
}

/** Parses one hook writer file's JSON text; errors name the file and the field. */
export function parseHookWriter(text: string, source: string): HookWriterDefinition {
  let o: Json;
  try {
    o = JSON.parse(text) as Json;
  } catch (e) {
    return bad(source, `not valid JSON: ${(e as Error).message}`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) bad(source, 'must hold a JSON object');
  const identity: WriterIdentityInput = {
    writerId: str(o, 'writerId', source, true),
    writerName: str(o, 'writerName', source, true),
    instanceName: str(o, 'instanceName', source, false),
    usage: enumValue(usageTypeCodec, o.usage, 'usage', source, UsageType.USERDATA),
    source: enumValue(sourceTypeCodec, o.source, 'source', source, SourceType.OTHER),
  };
  const rm = (o.restoreMethod ?? {}) as Json;
  const restoreMethod = {
    method: enumValue(restoreMethodCodec, rm.method, 'restoreMethod.method', source, RestoreMethod.RESTORE_IF_CAN_REPLACE),
    service: str(rm, 'service', source, false),
    writerRestore: enumValue(writerRestoreCodec, rm.writerRestore, 'restoreMethod.writerRestore', source, WriterRestore.NEVER),
  };
  if (!Array.isArray(o.components) || o.components.length === 0) bad(source, '"components" must list at least one component');
  const components = (o.components as Json[]).map((c, i) => ({
    logicalPath: str(c, 'logicalPath', source, false),
    name: str(c, 'name', source, true),
    caption: str(c, 'caption', source, false),
    files: fileSets(c.files, `components[${i}].files`, source),
  }));
  const hooks: Partial<Record<HookEvent, HookCommand>> = {};
  const h = (o.hooks ?? {}) as Json;
  for (const key of Object.keys(h)) {
    if (!(HOOK_EVENTS as readonly string[]).includes(key)) bad(source, `hooks.${key} is not an event; use one of ${HOOK_EVENTS.join(', ')}`);
    const e = h[key] as Json;
    const command = e.command;
    const okCommand = typeof command === 'string' ? command !== '' : Array.isArray(command) && command.length > 0 && command.every((a) => typeof a === 'string');
    if (!okCommand) bad(source, `hooks.${key}.command must be a non-empty string or list of strings`);
    const timeoutMs = e.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : Number(e.timeoutMs);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) bad(source, `hooks.${key}.timeoutMs must be a positive whole number of milliseconds`);
    const failureCode = e.failure === 'nonretryable' ? 'VSS_E_WRITERERROR_NONRETRYABLE' : e.failure === undefined || e.failure === 'retryable' ? 'VSS_E_WRITERERROR_RETRYABLE' : bad(source, `hooks.${key}.failure must be "retryable" or "nonretryable"`);
    hooks[key as HookEvent] = { command: command as string[] | string, timeoutMs, vetoOnFailure: e.vetoOnFailure !== false, failureCode };
  }
  const env = (o.env ?? {}) as Record<string, string>;
  if (typeof env !== 'object' || Object.values(env).some((v) => typeof v !== 'string')) bad(source, '"env" must map names to strings');
  const freezeWindowMs = o.freezeWindowMs === undefined ? 60_000 : Number(o.freezeWindowMs);
  if (!Number.isInteger(freezeWindowMs) || freezeWindowMs <= 0) bad(source, '"freezeWindowMs" must be a positive whole number');
  const def: HookWriterDefinition = { source, identity, restoreMethod, components, excludeFiles: fileSets(o.excludeFiles, 'excludeFiles', source), hooks, env, freezeWindowMs };
  // Build the metadata once now, so a bad GUID or path fails at load, not at Identify.
  try {
    new HookWriterEngine(def).metadata();
  } catch (e) {
    bad(source, (e as Error).message);
  }
  return def;
}

/** Every *.json file of the config directory, sorted by name; one bad file fails the load. */
export function loadHookWriters(dir: string): HookWriterDefinition[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    throw new VssError('E_INVALIDARG', `cannot read the hook writer directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
  return names.map((n) => parseHookWriter(readFileSync(join(dir, n), 'utf8'), join(dir, n)));
}

export interface HookResult {
  event: HookEvent;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  ok: boolean;
  durationMs: number;
  /** Last 4 KiB of each stream, for the writer's failure message and the trace. */
  stdout: string;
  stderr: string;
}

const KEEP = 4096;

/** Runs a command in its own process group; on timeout the whole group is killed. */
export function runHook(event: HookEvent, hook: HookCommand, env: Record<string, string>): Promise<HookResult> {
  const [cmd, args] = typeof hook.command === 'string' ? ['/bin/sh', ['-c', hook.command]] : [hook.command[0]!, hook.command.slice(1)];
  const t0 = performance.now();
  return new Promise((resolve) => {
    // detached: a new process group, so a timeout kills what the hook started as well.
    const p = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, SHADOWCOPY_EVENT: event } });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    p.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-KEEP)));
    p.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-KEEP)));
    const killGroup = () => {
      try {
        if (p.pid) process.kill(-p.pid, 'SIGKILL');
      } catch {
        /* the group is already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, hook.timeoutMs);
    let settled = false;
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // A hook's background children must not outlive it either.
      killGroup();
      resolve({ event, exitCode, signal, timedOut, ok: !timedOut && exitCode === 0, durationMs: performance.now() - t0, stdout, stderr });
    };
    p.on('error', (e) => {
      stderr += String(e);
      finish(null, null);
    });
    // 'exit', not 'close': a grandchild holding the pipes open must not delay the result.
    p.on('exit', finish);
  });
}

export class HookWriterEngine {
  readonly def: HookWriterDefinition;
  /** Every hook run, in order (what the trace shows). */
  readonly history: HookResult[] = [];
  private freezeStarted = false;
  private released = false;
  private windowTimer: NodeJS.Timeout | undefined;
  private releasing: Promise<void> | undefined;

  constructor(def: HookWriterDefinition) {
    this.def = def;
  }

  describe(builder: WriterMetadataBuilder): WriterMetadataBuilder {
    const rm = this.def.restoreMethod;
    builder.setRestoreMethod(rm.method, rm.service || undefined, undefined, rm.writerRestore, false);
    for (const c of this.def.components) {
      builder.addComponent({ type: ComponentType.FILEGROUP, logicalPath: c.logicalPath, componentName: c.name, caption: c.caption, selectable: true, selectableForRestore: true });
      for (const f of c.files) builder.addFilesToFileGroup(c.logicalPath, c.name, f.path, f.filespec, f.recursive);
    }
    for (const x of this.def.excludeFiles) builder.addExcludeFiles(x.path, x.filespec, x.recursive);
    return builder;
  }

  metadata(): WriterMetadata {
    return this.describe(new WriterMetadataBuilder(this.def.identity)).build();
  }

  /** True from the start of the freeze hook until its thaw/abort hook has run. */
  get frozen(): boolean {
    return this.freezeStarted && !this.released;
  }

  /**
   * Runs the event's hook if the file declares one. Resolves with its result (undefined when
   * none); rejects with the hook's failure code when it failed and vetoes.
   */
  async run(event: Exclude<HookEvent, 'freeze' | 'thaw' | 'abort'>, env: Record<string, string> = {}): Promise<HookResult | undefined> {
    // A new backup (or the end of one) starts the freeze bookkeeping afresh.
    if (event === 'prepareBackup' || event === 'backupShutdown') {
      if (this.frozen) await this.release('thaw', env).catch(() => undefined);
      this.freezeStarted = false;
      this.released = false;
    }
    return this.runChecked(event, env);
  }

  /** Freeze: from here on a thaw or abort hook is owed, whatever happens. */
  async freeze(env: Record<string, string> = {}): Promise<HookResult | undefined> {
    if (this.frozen) throw new VssError('VSS_E_BAD_STATE', `${this.def.source}: already frozen; thaw or abort first`);
    this.freezeStarted = true;
    this.released = false;
    this.windowTimer = setTimeout(() => void this.release('thaw', env).catch(() => undefined), this.def.freezeWindowMs);
    this.windowTimer.unref();
    try {
      return await this.runChecked('freeze', env);
    } catch (e) {
      // The coordinator will send Abort too, but cleanup must not depend on it.
      await this.release('thaw', env).catch(() => undefined);
      throw e;
    }
  }

  /** Thaw: the thaw hook, once per freeze. A failing thaw hook vetoes like any other. */
  async thaw(env: Record<string, string> = {}): Promise<HookResult | undefined> {
    if (!this.freezeStarted || this.released) return undefined;
    return this.release('thaw', env);
  }

  /**
   * Abort: the abort hook (or, when the file has none, the thaw hook) if a freeze is owed its
   * release; else the abort hook alone. Idempotent and never throws: Abort may come twice.
   */
  async abort(env: Record<string, string> = {}): Promise<HookResult | undefined> {
    try {
      if (this.freezeStarted && !this.released) return await this.release(this.def.hooks.abort ? 'abort' : 'thaw', env);
      // Released already (thawed, or the freeze hook failed): what was owed has run.
      if (this.freezeStarted) return void (await this.releasing);
      if (this.def.hooks.abort) return await this.runRecorded('abort', this.def.hooks.abort, env);
    } catch {
      /* recorded in history; Abort cannot fail */
    }
    return undefined;
  }

  private async release(event: 'thaw' | 'abort', env: Record<string, string>): Promise<HookResult | undefined> {
    if (this.released) return undefined;
    this.released = true;
    if (this.windowTimer) clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
    const p = this.runChecked(event, env);
    this.releasing = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  private async runChecked(event: HookEvent, env: Record<string, string>): Promise<HookResult | undefined> {
    const hook = this.def.hooks[event];
    if (!hook) return undefined;
    const r = await this.runRecorded(event, hook, env);
    if (!r.ok && hook.vetoOnFailure) {
      const why = r.timedOut ? `did not finish within ${hook.timeoutMs} ms and was killed` : r.signal ? `was killed by ${r.signal}` : `exited with status ${r.exitCode}`;
      const tail = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');
      throw new VssError(r.timedOut ? 'VSS_E_WRITERERROR_TIMEOUT' : hook.failureCode, `${this.def.source}: the ${event} hook ${why}${tail ? `: ${tail}` : ''}; fix the hook, or set "vetoOnFailure": false if its failure must not fail the backup`);
    }
    return r;
  }

  private async runRecorded(event: HookEvent, hook: HookCommand, env: Record<string, string>): Promise<HookResult> {
    const r = await runHook(event, hook, { ...this.def.env, ...env });
    this.history.push(r);
    return r;
  }
}

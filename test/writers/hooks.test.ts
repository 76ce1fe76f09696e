// Script-hook writers with real shell scripts: loading definition files, vetoes, the
// owed thaw after a freeze, and killing a hanging hook's whole process group.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VssError } from '../../src/vss/index.js';
import { HookWriterEngine, loadHookWriters, parseHookWriter } from '../../src/writers/hooks/engine.js';

let dir: string;
let log: string;

/** A definition whose hooks append "<event>" to the log; overrides replace single hooks. */
function definition(hooks: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const record = (event: string) => ({ command: `echo ${event} >> '${log}'`, timeoutMs: 5000 });
  return JSON.stringify({
    writerId: '0b6f3c7e-2d41-4a8b-9e55-7c1d2f3a4b5c',
    writerName: 'My App',
    components: [{ name: 'data', logicalPath: 'app', files: [{ path: join(dir, 'data'), filespec: '*', recursive: true }] }],
    hooks: { freeze: record('freeze'), thaw: record('thaw'), ...hooks },
    ...extra,
  });
}

function events(): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : [];
}

describe('script-hook writers', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'shadowcopy-hooks-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads definition files from a directory and publishes their components', () => {
    log = join(dir, 'load.log');
    const conf = join(dir, 'conf');
    mkdirSync(conf);
    writeFileSync(join(conf, '10-app.json'), definition({}, { excludeFiles: [{ path: join(dir, 'data'), filespec: '*.tmp' }] }));
    writeFileSync(join(conf, 'README'), 'not a definition');
    const [def, ...rest] = loadHookWriters(conf);
    assert.equal(rest.length, 0);
    const wmd = new HookWriterEngine(def!).metadata();
    assert.equal(wmd.identity.writerName, 'My App');
    assert.deepEqual(
      wmd.components.map((c) => [c.logicalPath, c.componentName, c.files.map((f) => [f.path, f.filespec, f.recursive])]),
      [['app', 'data', [[join(dir, 'data'), '*', true]]]],
    );
    assert.deepEqual(wmd.excludeFiles, [{ path: join(dir, 'data'), filespec: '*.tmp', recursive: false }]);
    assert.equal(wmd.getRestoreMethod().method, 2 /* RESTORE_IF_CAN_REPLACE */);
  });

  it('rejects bad definition files, naming the file and the field', () => {
    log = join(dir, 'bad.log');
    const cases: [string, RegExp][] = [
      ['{', /x\.json: not valid JSON/],
      [definition({ frezee: { command: 'true' } }), /hooks\.frezee is not an event/],
      [definition({ thaw: { command: [], timeoutMs: 10 } }), /hooks\.thaw\.command must be/],
      [definition({ thaw: { command: 'true', timeoutMs: -1 } }), /hooks\.thaw\.timeoutMs/],
      [definition({}, { writerId: 'nope' }), /x\.json: .*not a GUID/],
      [definition({}, { usage: 'SOMETIMES' }), /"usage" must be a VSS_USAGE_TYPE name/],
      [definition({}, { components: [] }), /"components" must list at least one/],
    ];
    for (const [text, re] of cases) {
      assert.throws(() => parseHookWriter(text, 'x.json'), (e) => VssError.is(e, 'E_INVALIDARG') && re.test((e as Error).message), `${re}`);
    }
  });

  it('a failing freeze hook vetoes the backup, and the thaw hook still runs (once)', async () => {
    log = join(dir, 'veto.log');
    const engine = new HookWriterEngine(parseHookWriter(definition({ freeze: { command: `echo freeze >> '${log}'; echo cannot quiesce >&2; exit 3` } }), 'veto.json'));
    await assert.rejects(engine.freeze(), (e) => VssError.is(e, 'VSS_E_WRITERERROR_RETRYABLE') && /exited with status 3: cannot quiesce/.test((e as Error).message));
    assert.deepEqual(events(), ['freeze', 'thaw']);
    // The coordinator's Abort after the veto must not run the thaw hook a second time.
    await engine.abort();
    await engine.thaw();
    assert.deepEqual(events(), ['freeze', 'thaw']);
    assert.equal(engine.frozen, false);
  });

  it('a failure that does not veto is reported, and the backup goes on', async () => {
    log = join(dir, 'noveto.log');
    const engine = new HookWriterEngine(parseHookWriter(definition({ postSnapshot: { command: 'exit 1', vetoOnFailure: false } }), 'noveto.json'));
    const r = await engine.run('postSnapshot');
    assert.equal(r?.ok, false);
    assert.equal(r?.exitCode, 1);
    assert.equal(await engine.run('backupComplete'), undefined, 'an event without a hook runs nothing');
  });

  it('kills a hanging hook and everything it started at its timeout, and reports a timeout veto', async () => {
    log = join(dir, 'hang.log');
    const pidFile = join(dir, 'hang.pid');
    // The hook starts a background sleeper (same process group) and then hangs itself.
    const engine = new HookWriterEngine(
      parseHookWriter(definition({ prepareSnapshot: { command: `sleep 300 & echo $! > '${pidFile}'; sleep 300`, timeoutMs: 300 } }), 'hang.json'),
    );
    await assert.rejects(engine.run('prepareSnapshot'), (e) => VssError.is(e, 'VSS_E_WRITERERROR_TIMEOUT'));
    const r = engine.history.at(-1)!;
    assert.equal(r.timedOut, true);
    console.log(`# hooks: hanging hook killed after ${r.durationMs.toFixed(0)} ms (timeout 300 ms)`);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    // SIGKILL is delivered at once, but the zombie is reaped by init; wait until it is gone.
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      alive = isAlive(pid);
      if (alive) await new Promise((res) => setTimeout(res, 20));
    }
    assert.equal(alive, false, `the hook's background process ${pid} survived the timeout`);
  });

  it('a hanging freeze hook is killed, vetoes with a timeout, and the thaw hook runs', async () => {
    log = join(dir, 'hangfreeze.log');
    const engine = new HookWriterEngine(parseHookWriter(definition({ freeze: { command: `echo freeze >> '${log}'; sleep 300`, timeoutMs: 200 } }), 'hf.json'));
    await assert.rejects(engine.freeze(), (e) => VssError.is(e, 'VSS_E_WRITERERROR_TIMEOUT'));
    assert.deepEqual(events(), ['freeze', 'thaw']);
  });

  it('Abort after a good freeze runs the abort hook instead of thaw; without one, the thaw hook', async () => {
    log = join(dir, 'abort.log');
    const withAbort = new HookWriterEngine(parseHookWriter(definition({ abort: { command: `echo abort >> '${log}'` } }), 'a.json'));
    await withAbort.freeze();
    assert.equal(withAbort.frozen, true);
    await withAbort.abort();
    await withAbort.abort();
    assert.deepEqual(events(), ['freeze', 'abort']);
    const withoutAbort = new HookWriterEngine(parseHookWriter(definition({}), 'b.json'));
    await withoutAbort.freeze();
    await withoutAbort.abort();
    assert.deepEqual(events(), ['freeze', 'abort', 'freeze', 'thaw']);
    // Abort with no freeze runs the abort hook alone.
    await withAbort.run('prepareBackup');
    await withAbort.abort();
    assert.deepEqual(events(), ['freeze', 'abort', 'freeze', 'thaw', 'abort']);
  });

  it('runs the thaw hook by itself when the freeze window ends', async () => {
    log = join(dir, 'window.log');
    const engine = new HookWriterEngine(parseHookWriter(definition({}, { freezeWindowMs: 100 }), 'w.json'));
    await engine.freeze();
    for (let i = 0; i < 200 && events().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events(), ['freeze', 'thaw']);
    assert.equal(await engine.thaw(), undefined, 'Thaw after the window must not run the hook again');
    assert.deepEqual(events(), ['freeze', 'thaw']);
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); it is dead for our purpose.
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

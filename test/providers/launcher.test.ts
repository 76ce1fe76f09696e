import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { launch, launcherOutputDir, launcherShellPid } from '../../src/os/launcher.js';
import { run } from '../../src/providers/system.js';

test('launch passes every argument literally, with what the tool printed and its status', async () => {
  const odd = [`it's`, 'two words', '$HOME', '`id`', '"q"', '\\', 'a\nb', '*', ''];
  const r = await launch('printf', ['%s|', ...odd]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, odd.map((s) => `${s}|`).join(''));
  const e = await launch('sh', ['-c', 'echo out; echo err >&2; exit 3']);
  assert.deepEqual([e.code, e.signal, e.stdout, e.stderr, e.notFound], [3, null, 'out\n', 'err\n', false]);
});

test('launch: a missing tool, a tool killed by a signal, stdin empty', async () => {
  const missing = await launch('shadowcopy-no-such-tool', []);
  assert.equal(missing.notFound, true);
  const killed = await launch('sh', ['-c', 'kill -TERM $$']);
  assert.deepEqual([killed.code, killed.signal], [null, 'SIGTERM']);
  const cat = await launch('cat', []);
  assert.deepEqual([cat.code, cat.stdout], [0, '']);
});

test('launch runs tools at once, in the working directory and with the PATH of the call', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'launcher-test-'));
  const path = process.env.PATH;
  const cwd = process.cwd();
  try {
    writeFileSync(join(dir, 'mytool'), '#!/bin/sh\necho "mine $1"\n');
    chmodSync(join(dir, 'mytool'), 0o755);
    process.env.PATH = `${dir}:${path}`;
    process.chdir(dir);
    const [a, b] = await Promise.all([launch('mytool', ['x']), launch('pwd', [])]);
    assert.equal(a.stdout, 'mine x\n');
    assert.equal(b.stdout.trim(), dir);
    // The first waits for a file the second makes: run one after another, the first would
    // give up (status 1) before the second started.
    const flag = join(dir, 'flag');
    const [waiter, maker] = await Promise.all([
      launch('sh', ['-c', 'for i in $(seq 1000); do [ -e "$1" ] && exit 0; sleep 0.01; done; exit 1', 'sh', flag]),
      launch('touch', [flag]),
    ]);
    assert.deepEqual([waiter.code, maker.code], [0, 0]);
  } finally {
    process.env.PATH = path;
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run turns failures into VSS errors that say what to do', async () => {
  await assert.rejects(run('shadowcopy-no-such-tool', [], 'testing'), (e: Error & { vssError?: string }) => /not installed/.test(e.message));
  await assert.rejects(run('sh', ['-c', 'echo "No space left on device" >&2; exit 1'], 'testing'), /VSS_E_INSUFFICIENT_STORAGE|free space/);
  await assert.rejects(run('sh', ['-c', 'exit 2'], 'testing'), /exit status 2/);
  assert.equal((await run('echo', ['hi'], 'testing')).stdout, 'hi\n');
});

test('the launcher shell outlives the INT, TERM and HUP that interrupt a backup; a shell that dies is replaced', async () => {
  await launch('true', []);
  const pid = launcherShellPid()!;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.kill(pid, sig);
  assert.equal((await launch('echo', ['still here'])).stdout, 'still here\n');
  assert.equal(launcherShellPid(), pid);
  process.kill(pid, 'SIGKILL');
  // Until its exit is seen, a command may go to the dead shell: it fails, and the next starts a new one.
  await launch('true', []).catch(() => undefined);
  assert.equal((await launch('echo', ['again'])).stdout, 'again\n');
  assert.notEqual(launcherShellPid(), pid);
});

test('a process killed with SIGKILL leaves no launcher directory behind: its shell removes it on the way out', async () => {
  // The child starts the shell (so the directory is made after it) and leaves a tool running.
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    import { launch, launcherOutputDir, startLauncher } from ${JSON.stringify(new URL('../../src/os/launcher.ts', import.meta.url).href)};
    startLauncher();
    void launch('sleep', ['3']);
    console.log(launcherOutputDir());
    setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
  assert.ok(existsSync(dir), dir);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  for (let i = 0; i < 100 && existsSync(dir); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(existsSync(dir), false, `${dir} is still there`);
  assert.equal(launcherOutputDir() === dir, false);
});

// The progress reporter: a bar on a terminal, counted in bytes when their total is known and
// in files when only the files' count is (a walk that has not stat'ed them); plain lines otherwise.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { ProgressReporter } from '../../src/cli/progress.js';

function terminal(): { stream: NodeJS.WriteStream; text: () => string } {
  const s = new PassThrough();
  let out = '';
  s.on('data', (d: Buffer) => (out += d.toString()));
  Object.assign(s, { isTTY: true, columns: 200, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  return { stream: s as unknown as NodeJS.WriteStream, text: () => out };
}

test('a bar counted in files when only the files\' total is known', () => {
  const t = terminal();
  const p = new ProgressReporter('bar', t.stream);
  p.update({ phase: 'copy', files: 0, bytes: 0, totalFiles: 400 });
  p.update({ phase: 'copy', files: 100, bytes: 2048, totalFiles: 400 });
  p.done();
  assert.match(t.text(), /copy \[[^\]]*\] 25% \| 100\/400 files \| 2\.0 KiB \|/);
});

test('a bar counted in bytes when their total is known', () => {
  const t = terminal();
  const p = new ProgressReporter('bar', t.stream);
  p.update({ phase: 'restore', files: 1, bytes: 0, totalFiles: 4, totalBytes: 4096 });
  p.update({ phase: 'restore', files: 3, bytes: 3072, totalFiles: 4, totalBytes: 4096 });
  p.done();
  assert.match(t.text(), /restore \[[^\]]*\] 75% \| 3\/4 files \| 3\.0 KiB of 4\.0 KiB \|/);
});

test('without a terminal, a line per phase', () => {
  const t = terminal();
  const p = new ProgressReporter('lines', t.stream);
  p.update({ phase: 'verify', files: 0, bytes: 0, totalFiles: 10 });
  p.update({ phase: 'verify', files: 5, bytes: 0, totalFiles: 10 });
  p.update({ phase: 'restore', files: 0, bytes: 0, totalFiles: 10, totalBytes: 1024 });
  p.done();
  assert.equal(t.text(), 'verify: 0 of 10 files, 0 B\nrestore: 0 of 10 files, 0 B of 1.0 KiB\n');
});

#!/usr/bin/env node
// `npm test`: lint and type-check, then every test/**/*.test.ts under node's test runner.
// Node 20's runner takes no globs, so the files are found here. Pass paths to run a subset.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const only = process.argv.slice(2);
if (only.length === 0 && !process.env.SKIP_LINT) {
  run('npx', ['eslint', '.']);
  run('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
}
const files = only.length ? only : find('test');
run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files]);

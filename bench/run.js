#!/usr/bin/env node
// `npm run bench`: runs every `bench:*` script of package.json in turn, output passed through.
// Exits non-zero if any of them failed (after running the rest). `BENCH_ONLY=e2e,codec` runs
// just those.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const pkg = require(path.join(__dirname, '..', 'package.json'));
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((s) => `bench:${s.trim()}`) : null;
const names = Object.keys(pkg.scripts).filter((s) => s.startsWith('bench:') && (!only || only.includes(s)));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const failed = [];
for (const name of names) {
  console.log(`\n=== npm run ${name} ===`);
  const r = spawnSync(npm, ['run', '--silent', name], { stdio: 'inherit', cwd: path.join(__dirname, '..') });
  if (r.status !== 0) failed.push(name);
}
console.log(`\n=== bench: ${names.length - failed.length} of ${names.length} ran cleanly${failed.length ? `; failed: ${failed.join(', ')}` : ''} ===`);
process.exitCode = failed.length ? 1 : 0;

#!/usr/bin/env node
// `npm test`: builds what changed, runs every check and test, and ends with one line
// `N passed, N failed` adding up Rust tests, jest tests and the lint checks (one each).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
let passed = 0;
let failed = 0;
const failures = [];

function run(label, cmd, args, opts = {}) {
  console.log(`\n=== ${label}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, {
    cwd: root,
    stdio: opts.capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, ...(opts.env || {}) },
  });
  if (opts.capture && r.stdout) process.stdout.write(r.stdout);
  if (r.error) console.error(`${label}: ${r.error.message}`);
  return { ok: !r.error && r.status === 0, stdout: r.stdout || '' };
}

function check(label, cmd, args) {
  const { ok } = run(label, cmd, args);
  if (ok) passed += 1;
  else {
    failed += 1;
    failures.push(label);
  }
  return ok;
}

// Build first so the tests exercise the sources as they are now (incremental: seconds when clean).
const built =
  check('build typescript', bin('tsc'), ['-p', 'tsconfig.build.json']) &&
  check('build native (release)', bin('napi'), [
    'build', '--platform', '--release',
    '--manifest-path', 'crates/perp-signal-node/Cargo.toml',
    '--output-dir', '.', '--no-js',
  ]);

check('cargo fmt', 'cargo', ['fmt', '--all', '--check']);
check('cargo clippy', 'cargo', ['clippy', '--workspace', '--all-targets', '--', '-D', 'warnings']);
check('tsc strict', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']);
check('eslint', bin('eslint'), ['--no-error-on-unmatched-pattern', 'ts', '__tests__', 'bench', 'scripts']);

// Rust tests: sum every "test result:" line (unit, integration and doc tests).
{
  const r = run('cargo test', 'cargo', ['test', '--workspace', '--release'], { capture: true });
  let seen = false;
  for (const m of r.stdout.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
    seen = true;
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
  if (!r.ok) {
    // A build failure or crash runs no test: count it so it can never pass silently.
    failed += 1;
    failures.push('cargo test');
  } else if (!seen) {
    failed += 1;
    failures.push('cargo test (no test ran)');
  }
}

// The NATS tests start a real nats-server: install Debian's package first if it is missing.
function ensureNatsServer() {
  console.log('\n=== nats-server for the NATS tests');
  try {
    console.log(require('./ensure-nats-server.js').ensureNatsServer(console.log));
  } catch (e) {
    console.error(e.message); // the NATS tests then fail, naming the same cause
  }
}

// jest: read counts from its JSON report.
if (built) {
  ensureNatsServer();
  const out = path.join(root, '.test-results', 'jest.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.rmSync(out, { force: true });
  const r = run('jest', bin('jest'), ['--json', `--outputFile=${out}`, ...process.argv.slice(2)]);
  let report = null;
  try {
    report = JSON.parse(fs.readFileSync(out, 'utf8'));
  } catch {
    /* handled below */
  }
  if (report) {
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    // A suite that fails to load (syntax error, crash) has no failed tests of its own.
    failed += report.numRuntimeErrorTestSuites;
    if (!r.ok && report.numFailedTests === 0 && report.numRuntimeErrorTestSuites === 0) {
      failed += 1;
      failures.push('jest');
    }
  } else {
    failed += 1;
    failures.push('jest (no report)');
  }
} else {
  failed += 1;
  failures.push('jest (not run: build failed)');
}

if (failures.length) console.log(`\nfailed steps: ${failures.join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

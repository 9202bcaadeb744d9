#!/usr/bin/env node
// npm "install" hook. In a checkout: compile TypeScript and build the addon in release mode (so
// `npm ci` on a fresh clone needs no other step). In an installed package: use the prebuilt
// binary when one matches, build from source only when none does and cargo exists, and never
// download anything.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const isCheckout = fs.existsSync(path.join(root, 'tsconfig.build.json')) && fs.existsSync(bin('napi'));

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    console.error(`perp-signal-native: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status}).`);
    process.exit(r.status || 1);
  }
}

function hasCargo() {
  const r = spawnSync('cargo', ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

if (isCheckout) {
  run(bin('tsc'), ['-p', 'tsconfig.build.json']);
  run(bin('napi'), [
    'build', '--platform', '--release',
    '--manifest-path', 'crates/perp-signal-node/Cargo.toml',
    '--output-dir', '.', '--no-js',
  ]);
  process.exit(0);
}

const { platformTriple, localBinaryFile, prebuiltPackage } = require('../dist/platform.js');
const triple = platformTriple();
const local = path.join(root, localBinaryFile(triple));
const force = process.env.PERP_SIGNAL_BUILD_FROM_SOURCE === '1';

function prebuiltResolves() {
  try {
    require.resolve(prebuiltPackage(triple), { paths: [root] });
    return true;
  } catch {
    return false;
  }
}

if (!force && (fs.existsSync(local) || prebuiltResolves())) process.exit(0);

if (!hasCargo()) {
  console.error(
    `perp-signal-native: no prebuilt binary for ${triple} (package ${prebuiltPackage(triple)}) and no cargo on PATH.\n` +
      'Install Rust (https://rustup.rs), then run `npm rebuild perp-signal-native`.',
  );
  process.exit(1);
}

console.error(`perp-signal-native: no prebuilt binary for ${triple}; building from source with cargo (release).`);
run('cargo', ['build', '--release', '--manifest-path', 'crates/perp-signal-node/Cargo.toml']);
const lib = { darwin: 'libperp_signal_node.dylib', win32: 'perp_signal_node.dll' }[process.platform] || 'libperp_signal_node.so';
fs.copyFileSync(path.join(root, 'target', 'release', lib), local);

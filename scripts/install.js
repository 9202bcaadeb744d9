#!/usr/bin/env node
// npm "install" hook, and the documented way to build from source in an installed package.
// - In a checkout: compile TypeScript and build the addon in release mode, so `npm ci` on a fresh
//   clone needs no other step.
// - In an installed package: do nothing when a prebuilt binary (the optional dependency
//   perp-signal-native-<triple>) or a local build is present; otherwise build from source with
//   cargo when it is on PATH; otherwise fail with what to do. It never downloads a binary.
// npm 11 skips dependencies' install scripts unless the user allows them (allowScripts), so the
// prebuilt path must not need this script: the loader (dist/native.js) finds the package itself.
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
const pkg = prebuiltPackage(triple);
const local = path.join(root, localBinaryFile(triple));
const force = process.env.PERP_SIGNAL_BUILD_FROM_SOURCE === '1';

function prebuiltResolves() {
  try {
    require.resolve(pkg, { paths: [root] });
    return true;
  } catch {
    return false;
  }
}

if (!force) {
  if (fs.existsSync(local)) {
    console.log(`perp-signal-native: using the local build ${local}; nothing to build.`);
    process.exit(0);
  }
  if (prebuiltResolves()) {
    console.log(`perp-signal-native: using the prebuilt binary from ${pkg}; nothing to build.`);
    process.exit(0);
  }
}

const why = force ? 'PERP_SIGNAL_BUILD_FROM_SOURCE=1' : `no prebuilt binary for ${triple} (package ${pkg} is not installed)`;
if (!hasCargo()) {
  console.error(
    `perp-signal-native: ${why}, and cargo is not on PATH, so it cannot be built from source.\n` +
      `Install Rust (https://rustup.rs), then run \`node ${path.join(root, 'scripts', 'install.js')}\`.`,
  );
  process.exit(1);
}

// cargo fetches the crates named in Cargo.lock from crates.io (or your cargo mirror/vendor config);
// nothing else is fetched.
console.error(`perp-signal-native: ${why}; building from source with cargo (release).`);
run('cargo', ['build', '--release', '--locked', '--manifest-path', 'crates/perp-signal-node/Cargo.toml']);
const lib = { darwin: 'libperp_signal_node.dylib', win32: 'perp_signal_node.dll' }[process.platform] || 'libperp_signal_node.so';
fs.copyFileSync(path.join(root, 'target', 'release', lib), local);
console.log(`perp-signal-native: built ${local}.`);

/**
 * The prebuilt-binary path, end to end, as a user meets it: the release steps (`napi artifacts`,
 * `napi pre-publish`, `npm pack`) run on a staged copy of the package with this machine's release
 * build as the host's binary; then an empty project installs the packed main package with cargo
 * off PATH, from a registry on 127.0.0.1 that holds only the packed platform package (plus the
 * other platforms' manifests) and the runtime dependencies (taken from this checkout's
 * node_modules), so nothing can come from the
 * network and nothing can be compiled. The installed package must load the prebuilt binary,
 * encode and decode, and run its CLI.
 */
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { localBinaryFile, platformTriple, prebuiltPackage } from '../ts/platform';
import { LocalRegistry, type Manifest } from './support/local-registry';

const repoRoot = path.resolve(__dirname, '..');
const host = platformTriple();
const hostPackage = prebuiltPackage(host);
const rootPkg = readJson(path.join(repoRoot, 'package.json')) as Manifest;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** Runs a command asynchronously (the in-process registry must keep serving) with a deadline. */
function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

async function ok(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  const r = await run(cmd, args, opts);
  if (r.status !== 0) {
    throw new Error(`\`${cmd} ${args.join(' ')}\` in ${opts.cwd} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

/** `npm pack` into `dest`; returns the tarball path and the packed file list. */
async function pack(dir: string, dest: string, env: NodeJS.ProcessEnv): Promise<{ file: string; files: string[] }> {
  const r = await ok('npm', ['pack', '--json', '--pack-destination', dest], { cwd: dir, env });
  const [info] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
  return { file: path.join(dest, info.filename), files: info.files.map((f) => f.path) };
}

/** Lists `tar -tzf` entries with the leading `package/` removed. */
async function tarList(file: string): Promise<string[]> {
  const r = await ok('tar', ['-tzf', file], { cwd: path.dirname(file) });
  return r.stdout.split('\n').filter(Boolean).map((p) => p.replace(/^package\//, ''));
}

/**
 * The runtime closure of the main package's dependencies, as installed in this checkout: each
 * `package-lock.json` path (e.g. `node_modules/yargs/node_modules/yargs-parser`) once.
 */
function runtimeClosure(): string[] {
  const lock = readJson(path.join(repoRoot, 'package-lock.json')).packages as Record<
    string,
    { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; peerDependencies?: Record<string, string> }
  >;
  const locate = (from: string, name: string): string | undefined => {
    for (let dir = from; ; ) {
      const key = `${dir ? `${dir}/` : ''}node_modules/${name}`;
      if (lock[key]) return key;
      if (!dir) return undefined;
      const i = dir.lastIndexOf('/node_modules/');
      dir = i < 0 ? '' : dir.slice(0, i);
    }
  };
  const seen = new Set<string>();
  const queue: [string, string[]][] = [['', Object.keys((rootPkg.dependencies as Record<string, string>) ?? {})]];
  for (let guard = 0; queue.length > 0 && guard < 10_000; guard++) {
    const [from, names] = queue.pop() as [string, string[]];
    for (const name of names) {
      const key = locate(from, name);
      if (!key || seen.has(key)) continue; // absent: an optional or peer dependency not installed here
      seen.add(key);
      const e = lock[key];
      queue.push([key, Object.keys({ ...e.dependencies, ...e.optionalDependencies, ...e.peerDependencies })]);
    }
  }
  return [...seen];
}

/** PATH without any directory that holds cargo, so nothing can be built from source. */
function pathWithoutCargo(): string {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => dir && !fs.existsSync(path.join(dir, 'cargo')))
    .join(path.delimiter);
}

const hostBinary = path.join(repoRoot, localBinaryFile(host));

describe(`prebuilt distribution (${host})`, () => {
  let tmp = '';
  let registry: LocalRegistry;
  let env: NodeJS.ProcessEnv;
  let app = '';
  let mainTarball: { file: string; files: string[] };
  let platformTarball: { file: string; files: string[] };
  let packedMain: Manifest & { optionalDependencies?: Record<string, string> };
  let npmDirs: string[];
  let install: Run;

  beforeAll(async () => {
    if (!fs.existsSync(hostBinary)) {
      throw new Error(`${hostBinary} is missing: run \`npm run build:native\` (npm ci and npm test do) first.`);
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'perp-signal-dist-'));
    const stage = path.join(tmp, 'stage');
    const artifacts = path.join(stage, 'artifacts');
    const tarballs = path.join(tmp, 'tarballs');
    app = path.join(tmp, 'app');
    for (const d of [artifacts, tarballs, app]) fs.mkdirSync(d, { recursive: true });

    // npm's own settings: a fresh cache (nothing pre-fetched), no user/global npmrc, the local
    // registry, no cargo. Inherited npm_config_* (set when run under `npm test`) would override.
    registry = new LocalRegistry();
    const registryUrl = await registry.listen();
    const userconfig = path.join(tmp, 'npmrc');
    const globalconfig = path.join(tmp, 'npmrc-global');
    fs.writeFileSync(userconfig, '');
    fs.writeFileSync(globalconfig, '');
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
    Object.assign(env, {
      PATH: pathWithoutCargo(),
      npm_config_registry: registryUrl,
      npm_config_cache: path.join(tmp, 'npm-cache'),
      npm_config_userconfig: userconfig,
      npm_config_globalconfig: globalconfig,
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
      npm_config_fetch_retries: '0',
      // A CI proxy (HTTP_PROXY) must not sit between npm and the registry on 127.0.0.1.
      npm_config_noproxy: '127.0.0.1,localhost',
      NO_UPDATE_NOTIFIER: '1',
    });

    // Packing gets its own cache: npm keeps what it packs in its cache, and the install below must
    // fetch the platform package from the registry like a user's would.
    const packEnv = { ...env, npm_config_cache: path.join(tmp, 'pack-cache') };

    // Stage exactly what `npm pack` would ship, plus the npm/ platform dirs (manifests only).
    const dryRun = await ok('npm', ['pack', '--dry-run', '--json'], { cwd: repoRoot, env: packEnv });
    const [listing] = JSON.parse(dryRun.stdout) as { files: { path: string }[] }[];
    // A local build packed from a checkout (for `npm install -g ./tarball` on this platform) is not
    // part of a release: the prebuilt path must be proven without it.
    for (const f of listing.files.filter((x) => !x.path.endsWith('.node'))) {
      fs.mkdirSync(path.dirname(path.join(stage, f.path)), { recursive: true });
      fs.copyFileSync(path.join(repoRoot, f.path), path.join(stage, f.path));
    }
    npmDirs = fs.readdirSync(path.join(repoRoot, 'npm')).sort();
    for (const dir of npmDirs) {
      fs.mkdirSync(path.join(stage, 'npm', dir), { recursive: true });
      for (const f of ['package.json', 'README.md']) {
        fs.copyFileSync(path.join(repoRoot, 'npm', dir, f), path.join(stage, 'npm', dir, f));
      }
    }
    // The release workflow downloads one binary per target; here only the host's can be built, so
    // the others are stand-in files that are never packed nor installed (the test checks that).
    for (const dir of npmDirs) {
      // Laid out as actions/download-artifact leaves the release workflow's per-target uploads.
      const dest = path.join(artifacts, `bindings-${dir}`, localBinaryFile(dir));
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      if (dir === host) fs.copyFileSync(hostBinary, dest);
      else fs.writeFileSync(dest, `stand-in for ${dir}: not a binary\n`);
    }
    const napi = path.join(repoRoot, 'node_modules', '.bin', 'napi');
    await ok(napi, ['artifacts', '--cwd', stage, '--output-dir', 'artifacts'], { cwd: stage, env: packEnv });
    // As the release workflow does: binaries belong in their platform packages, not in the main one
    // (`files` ships a root-level local build only for `npm pack` from a checkout).
    for (const f of fs.readdirSync(stage)) if (f.endsWith('.node')) fs.rmSync(path.join(stage, f));
    await ok(napi, ['pre-publish', '--cwd', stage, '-t', 'npm', '--no-gh-release', '--skip-optional-publish'], {
      cwd: stage,
      env: packEnv,
    });

    mainTarball = await pack(stage, tarballs, packEnv);
    platformTarball = await pack(path.join(stage, 'npm', host), tarballs, packEnv);
    packedMain = readJson(path.join(stage, 'package.json')) as typeof packedMain;

    // Serve: the host's platform package (the packed tarball), the other platforms' manifests
    // without bytes, and the runtime dependencies packed from this checkout's node_modules.
    for (const dir of npmDirs) {
      const manifest = readJson(path.join(stage, 'npm', dir, 'package.json')) as Manifest;
      registry.add(manifest, dir === host ? platformTarball.file : undefined);
    }
    for (const key of runtimeClosure()) {
      const src = path.join(repoRoot, key);
      const manifest = readJson(path.join(src, 'package.json')) as Manifest;
      const file = path.join(tmp, 'deps', `${key.replace(/[/@]/g, '_')}.tgz`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      await ok('tar', ['-czf', file, '--owner=0', '--group=0', '--transform', 's,^\\.,package,', '-C', src, '.'], {
        cwd: tmp,
      });
      registry.add(manifest, file);
    }

    // Allow our install script (npm 11 blocks dependencies' scripts by default) so that it runs:
    // with cargo absent it can succeed only by finding the prebuilt.
    const appManifest = { name: 'app', version: '1.0.0', private: true, allowScripts: { 'perp-signal-native': true } };
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify(appManifest));
    install = await run(
      'npm',
      ['install', mainTarball.file, '--foreground-scripts', '--no-audit', '--no-fund'],
      { cwd: app, env, timeoutMs: 90_000 },
    );
  }, 150_000);

  afterAll(async () => {
    await registry?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Runs `node -e script` in the installed project; prints JSON on stdout. */
  async function inApp(script: string): Promise<Run> {
    return run(process.execPath, ['-e', script], { cwd: app, env });
  }

  it('has an npm/ package per release platform, named and versioned like the main package', () => {
    expect(npmDirs).toEqual(
      expect.arrayContaining(['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl', 'darwin-arm64', 'darwin-x64']),
    );
    for (const dir of npmDirs) {
      const m = readJson(path.join(repoRoot, 'npm', dir, 'package.json'));
      expect({ dir, name: m.name, version: m.version, main: m.main }).toEqual({
        dir,
        name: prebuiltPackage(dir),
        version: rootPkg.version,
        main: localBinaryFile(dir),
      });
    }
  });

  it('packs a main package that lists every platform package as an optional dependency at its version', async () => {
    const expected = Object.fromEntries(npmDirs.map((d) => [prebuiltPackage(d), rootPkg.version]));
    expect(packedMain.optionalDependencies).toEqual(expected);
    // What is inside the tarball, not just the staged file:
    const r = await ok('tar', ['-xzOf', mainTarball.file, 'package/package.json'], { cwd: tmp });
    expect((JSON.parse(r.stdout) as typeof packedMain).optionalDependencies).toEqual(expected);
    // The repo itself must not list them: unpublished optional deps break `npm ci` on a clone.
    expect(rootPkg.optionalDependencies).toBeUndefined();
    expect(mainTarball.files.filter((f) => f.endsWith('.node'))).toEqual([]);
    expect(mainTarball.files).toEqual(expect.arrayContaining(['dist/index.js', 'bin/perp-signal.js', 'scripts/install.js']));
  });

  it('packs the platform package with the release build as its only binary', async () => {
    expect(platformTarball.files.filter((f) => f.endsWith('.node'))).toEqual([localBinaryFile(host)]);
    const entries = await tarList(platformTarball.file);
    expect(entries).toContain(localBinaryFile(host));
    const r = await ok('tar', ['-xzf', platformTarball.file, '-C', tmp, `package/${localBinaryFile(host)}`], { cwd: tmp });
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(tmp, 'package', localBinaryFile(host))).equals(fs.readFileSync(hostBinary))).toBe(true);
  });

  it('installs into an empty project without cargo, taking only the host platform package', async () => {
    const cargo = await run('sh', ['-c', 'command -v cargo || echo none'], { cwd: app, env });
    expect(cargo.stdout.trim()).toBe('none');
    expect(install.status === 0 ? 'exit 0' : `exit ${install.status}\n${install.stdout}\n${install.stderr}`).toBe('exit 0');
    expect(install.stdout + install.stderr).toContain(`using the prebuilt binary from ${hostPackage}`);
    const modules = path.join(app, 'node_modules');
    expect(fs.existsSync(path.join(modules, hostPackage, localBinaryFile(host)))).toBe(true);
    for (const dir of npmDirs.filter((d) => d !== host)) {
      expect(fs.existsSync(path.join(modules, prebuiltPackage(dir)))).toBe(false);
    }
    // npm read the other platforms' manifests but fetched only the host's bytes.
    expect(registry.tarballRequests().filter((p) => p.includes('perp-signal-native'))).toEqual([
      `/-/tarballs/${hostPackage}-${rootPkg.version}.tgz`,
    ]);
    expect(fs.existsSync(path.join(modules, 'perp-signal-native', localBinaryFile(host)))).toBe(false);
    // ...and what it installed is byte for byte the tarball packed above.
    const lock = readJson(path.join(app, 'package-lock.json')).packages as Record<string, { integrity?: string }>;
    const sha512 = crypto.createHash('sha512').update(fs.readFileSync(platformTarball.file)).digest('base64');
    expect(lock[`node_modules/${hostPackage}`]?.integrity).toBe(`sha512-${sha512}`);
  });

  it("require('perp-signal-native') loads the prebuilt binary and encodes and decodes", async () => {
    const r = await inApp(`
      const lib = require('perp-signal-native');
      const values = [0n, 127n, 128n, 2n ** 64n - 1n];
      const buf = lib.encodeUvarints(values);
      const back = lib.decodeUvarints(buf);
      let code = null;
      try { lib.decodeUvarints(Buffer.from('80', 'hex')); } catch (e) { code = e.code; }
      const loaded = Object.keys(require.cache).filter((k) => k.endsWith('.node'));
      console.log(JSON.stringify({ hex: buf.toString('hex'), back: back.map(String), code, loaded }));
    `);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { hex: string; back: string[]; code: string; loaded: string[] };
    expect(out.hex).toBe('007f8001ffffffffffffffffff01');
    expect(out.back).toEqual(['0', '127', '128', String(2n ** 64n - 1n)]);
    expect(out.code).toBe('E_TRUNCATED');
    expect(out.loaded).toEqual([fs.realpathSync(path.join(app, 'node_modules', hostPackage, localBinaryFile(host)))]);
  });

  it('runs `npx perp-signal --version`', async () => {
    const r = await run('npx', ['--no-install', 'perp-signal', '--version'], { cwd: app, env });
    expect({ status: r.status, out: r.stdout.trim() }).toEqual({ status: 0, out: rootPkg.version });
  });

  it('prefers a local build at the package root over the prebuilt package', async () => {
    const local = path.join(app, 'node_modules', 'perp-signal-native', localBinaryFile(host));
    fs.copyFileSync(hostBinary, local);
    try {
      const r = await inApp(
        `require('perp-signal-native'); console.log(JSON.stringify(Object.keys(require.cache).filter((k) => k.endsWith('.node'))))`,
      );
      expect(JSON.parse(r.stdout)).toEqual([fs.realpathSync(local)]);
    } finally {
      fs.rmSync(local, { force: true });
    }
  });

  it('without any binary, says which platform it looked for and how to build from source', async () => {
    const installed = path.join(app, 'node_modules', hostPackage);
    const hidden = `${installed}.hidden`;
    fs.renameSync(installed, hidden);
    try {
      const r = await inApp(
        `try { require('perp-signal-native'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`,
      );
      const err = JSON.parse(r.stdout) as { code: string; message: string };
      expect(err.code).toBe('E_NO_NATIVE_BINARY');
      expect(err.message).toContain(`platform ${host}`);
      expect(err.message).toContain(hostPackage);
      expect(err.message).toMatch(/install Rust .*scripts[/\\]install\.js/);

      // The install script, with no prebuilt and no cargo, fails and says so rather than fetching.
      const script = path.join(app, 'node_modules', 'perp-signal-native', 'scripts', 'install.js');
      const inst = await run(process.execPath, [script], { cwd: app, env });
      expect(inst.status).toBe(1);
      expect(inst.stderr).toContain(`no prebuilt binary for ${host}`);
      expect(inst.stderr).toContain('cargo is not on PATH');
    } finally {
      fs.renameSync(hidden, installed);
    }
  });
});

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PerpSignalError, assertShmSupported, platformTriple } from '../ts/index';

const repoRoot = path.resolve(__dirname, '..');

describe('platformTriple', () => {
  it('names platforms the way napi-rs names its npm/ packages', () => {
    expect(platformTriple('linux', 'x64', false)).toBe('linux-x64-gnu');
    expect(platformTriple('linux', 'arm64', false)).toBe('linux-arm64-gnu');
    expect(platformTriple('linux', 'x64', true)).toBe('linux-x64-musl');
    expect(platformTriple('darwin', 'arm64')).toBe('darwin-arm64');
    expect(platformTriple('darwin', 'x64')).toBe('darwin-x64');
    expect(platformTriple('win32', 'x64')).toBe('win32-x64-msvc');
  });

  it('maps each npm/ package back to its own directory from its os, cpu and libc', () => {
    const dirs = fs.readdirSync(path.join(repoRoot, 'npm'));
    expect(dirs.length).toBeGreaterThanOrEqual(5);
    for (const dir of dirs) {
      const m = JSON.parse(fs.readFileSync(path.join(repoRoot, 'npm', dir, 'package.json'), 'utf8')) as {
        os: NodeJS.Platform[];
        cpu: string[];
        libc?: string[];
      };
      expect(platformTriple(m.os[0], m.cpu[0], m.libc?.[0] === 'musl')).toBe(dir);
    }
  });

  it('detects this machine: the triple of the addon that npm ci built', () => {
    // npm ci builds `perp-signal-native.<triple>.node` with napi's own platform naming.
    expect(fs.existsSync(path.join(repoRoot, `perp-signal-native.${platformTriple()}.node`))).toBe(true);
  });
});

describe('assertShmSupported', () => {
  function caught(fn: () => void): PerpSignalError {
    try {
      fn();
    } catch (e) {
      return e as PerpSignalError;
    }
    throw new Error('expected a throw');
  }

  it('passes on Linux with /dev/shm', () => {
    expect(() => assertShmSupported('/dev/shm', 'linux')).not.toThrow();
  });

  it('says the ring is Linux-only on macOS and points to TCP', () => {
    const e = caught(() => assertShmSupported('/dev/shm', 'darwin'));
    expect(e).toBeInstanceOf(PerpSignalError);
    expect(e.code).toBe('E_SHM_UNSUPPORTED');
    expect(e.message).toMatch(/Linux-only.*darwin/);
    expect(e.message).toMatch(/TCP/);
  });

  it('names the missing directory on a Linux without it', () => {
    const missing = path.join(os.tmpdir(), `perp-signal-no-shm-${process.pid}`);
    const e = caught(() => assertShmSupported(missing, 'linux'));
    expect(e.code).toBe('E_SHM_UNSUPPORTED');
    expect(e.message).toContain(missing);
  });
});

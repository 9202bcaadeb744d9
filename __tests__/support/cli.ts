/** Runs the real `perp-signal` executable (bin/ -> dist/) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const cliBin = path.join(repoRoot, 'bin', 'perp-signal.js');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const live = new Set<ChildProcess>();

/** Kills every child still running (call from afterEach). */
export function killChildren(): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  live.clear();
}

export interface Spawned {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<RunResult>;
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): Spawned {
  const child = spawn(process.execPath, [cliBin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (err += d));
  const exited = new Promise<RunResult>((resolve) =>
    child.on('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal, stdout: out, stderr: err });
    }),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Runs to completion, killing it after `timeoutMs`. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<RunResult> {
  const s = spawnCli(args, env);
  const t = setTimeout(() => s.child.kill('SIGKILL'), timeoutMs);
  const r = await s.exited;
  clearTimeout(t);
  if (r.signal === 'SIGKILL') throw new Error(`perp-signal ${args.join(' ')} timed out; stderr: ${r.stderr}`);
  return r;
}

export async function waitForOutput(s: Spawned, re: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(s.stdout()) ?? re.exec(s.stderr());
    if (m) return m;
    if (s.child.exitCode !== null) throw new Error(`exited (${s.child.exitCode}) before ${re}: ${s.stderr()}`);
    if (Date.now() > until) throw new Error(`no ${re} within ${timeoutMs} ms; stderr: ${s.stderr()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A TCP port free on 127.0.0.1 right now (for a child server to listen on). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

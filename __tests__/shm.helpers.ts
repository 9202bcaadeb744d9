/**
 * What the /dev/shm ring tests share: unique queue names, cleanup of everything a test opened
 * (consumers, publishers, child processes, /dev/shm files), child processes that say when they
 * are ready, and a bounded read from an async iterator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

export class ShmScene {
  private seq = 0;
  private readonly made: string[] = [];
  private readonly open: { close(): unknown }[] = [];
  private readonly children: ChildProcess[] = [];

  constructor(private readonly prefix: string) {}

  /** A queue name unique to this test run, removed from /dev/shm by cleanup(). */
  qname(tag: string): string {
    const n = `${this.prefix}-${process.pid}-${tag}-${this.seq++}`;
    this.made.push(n);
    return n;
  }

  /** Closed by cleanup(). */
  track<T extends { close(): unknown }>(x: T): T {
    this.open.push(x);
    return x;
  }

  /** Runs `script` in a Node child process; resolves once it prints `ready`. Killed by cleanup(). */
  node(script: string, what: string): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.children.push(child);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${what} did not start`)), 15000);
      child.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(t);
          resolve(child);
        }
      });
      child.on('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
    });
  }

  async cleanup(): Promise<void> {
    for (const x of this.open.splice(0)) x.close();
    for (const c of this.children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await exited(c);
    }
    for (const n of this.made.splice(0)) fs.rmSync(`/dev/shm/${n}`, { force: true });
  }
}

export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** The next `n` values of `it` (fewer if it ends); rejects after `ms`. */
export async function take<T>(it: AsyncIterableIterator<T>, n: number, ms = 10000): Promise<T[]> {
  const out: T[] = [];
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${out.length} of ${n}`)), ms).unref());
  while (out.length < n) {
    const r = await Promise.race([it.next(), timer]);
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

/**
 * A real `nats-server` for tests: started on a free loopback port (the server picks it: `-p -1`),
 * stoppable and restartable on the same port (to test client reconnects), always killed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ensureNatsServer } = require('../../scripts/ensure-nats-server.js') as {
  ensureNatsServer(log?: (s: string) => void): string;
};

const LISTEN_RE = /Listening for client connections on 127\.0\.0\.1:(\d+)/;
const READY_RE = /Server is ready/;
const START_TIMEOUT_MS = 10_000;

export class NatsServer {
  private child?: ChildProcess;
  private log = '';

  private constructor(
    private readonly bin: string,
    public port: number,
  ) {}

  /** Starts a server on 127.0.0.1; `port` 0 (default) lets the server pick a free one. */
  static async start(port = 0): Promise<NatsServer> {
    const server = new NatsServer(ensureNatsServer(), port);
    await server.spawn();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** What the server wrote to stderr so far, for failure messages. */
  output(): string {
    return this.log;
  }

  private spawn(): Promise<void> {
    const args = ['-a', '127.0.0.1', '-p', this.port === 0 ? '-1' : String(this.port)];
    const child = spawn(this.bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    return new Promise<void>((resolve, reject) => {
      let port = 0;
      let settled = false;
      const timer = setTimeout(() => fail(new Error(`nats-server did not start in ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const fail = (e: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        child.kill('SIGKILL');
        if (this.child === child) this.child = undefined;
        reject(new Error(`${e.message}\n${this.log}`));
      };
      child.once('error', fail);
      child.once('exit', (code) => {
        if (this.child === child) this.child = undefined;
        if (!port || !READY_RE.test(this.log)) fail(new Error(`nats-server exited with ${code} before it was ready`));
      });
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (s: string) => {
        if (this.log.length < 100_000) this.log += s;
        const m = LISTEN_RE.exec(this.log);
        if (m) port = Number(m[1]);
        if (port && READY_RE.test(this.log) && !settled) {
          settled = true;
          clearTimeout(timer);
          this.port = port;
          resolve();
        }
      });
    });
  }

  /** Stops the server (SIGTERM, then SIGKILL after 5 s); resolves when the process has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGCONT');
      child.kill('SIGTERM');
    });
  }

  /** Freezes the server process (SIGSTOP): its connections stay open, nothing on them is read. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a paused server run again (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Starts a stopped server again on the same port (its clients reconnect to it). */
  async startAgain(): Promise<void> {
    if (this.child) return;
    this.log = '';
    await this.spawn();
  }
}

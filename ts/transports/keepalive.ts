/**
 * TCP keepalive timing on a Node socket. Node 20 (libuv) sets only the idle time, so a peer that
 * vanished without a FIN would be probed on the system's schedule (75 s x 9 on Linux, ~11 min).
 * The native side sets the probe interval and count, and TCP_USER_TIMEOUT so that unacknowledged
 * data ends the connection just as soon (see crates/perp-signal-core/src/keepalive.rs).
 */
import type * as net from 'node:net';
import { nativeCall, PerpSignalError } from '../errors';
import { binding } from '../native';

/** A socket's keepalive timing as the kernel has it. */
export interface TcpKeepalive {
  enabled: boolean;
  /** First probe after this many idle seconds. */
  idleSecs: number;
  /** Seconds between probes. */
  intervalSecs: number;
  /** Unanswered probes before the connection is dropped. */
  count: number;
  /** Unacknowledged data ends the connection after this many ms (0 = system default). */
  userTimeoutMs: number;
}

export interface KeepaliveTiming {
  /** Idle time before the first probe, ms (rounded up to whole seconds); default 10 000. */
  idleMs?: number;
  /** Time between probes, ms (rounded up to whole seconds); default 1000. */
  intervalMs?: number;
  /** Unanswered probes before the peer is taken as gone; default 3. */
  probes?: number;
}

export const KEEPALIVE_DEFAULTS = { idleMs: 10_000, intervalMs: 1000, probes: 3 };

interface KeepaliveBinding {
  setTcpKeepalive(fd: number, idleMs: number, intervalMs: number, count: number): TcpKeepalive;
  tcpKeepalive(fd: number): TcpKeepalive;
}

const native = binding<KeepaliveBinding>();

/** The OS file descriptor of a connected socket (libuv's handle), or -1 if it has none (closed). */
function fdOf(socket: net.Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  return typeof handle?.fd === 'number' ? handle.fd : -1;
}

function fdOrThrow(socket: net.Socket): number {
  const fd = fdOf(socket);
  if (fd < 0) throw new PerpSignalError('E_NO_FD', 'the socket has no file descriptor (closed, or not a TCP socket of this process)');
  return fd;
}

/**
 * Turns keepalive on for `socket` with this timing; returns what the kernel now has. Throws
 * `E_UNSUPPORTED` off Linux, `E_PIDFD` where the kernel or a seccomp profile refuses pidfds.
 */
export function setSocketKeepalive(socket: net.Socket, timing: KeepaliveTiming = {}): TcpKeepalive {
  const { idleMs = KEEPALIVE_DEFAULTS.idleMs, intervalMs = KEEPALIVE_DEFAULTS.intervalMs, probes = KEEPALIVE_DEFAULTS.probes } = timing;
  for (const [name, v] of Object.entries({ idleMs, intervalMs, probes })) {
    if (!Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) {
      throw new PerpSignalError('E_USAGE', `keepalive ${name} must be a positive integer, got ${v}`);
    }
  }
  const fd = fdOrThrow(socket);
  return nativeCall(() => native.setTcpKeepalive(fd, idleMs, intervalMs, probes));
}

/**
 * The keepalive timing of `socket` (or of file descriptor `fd` of this process) as the kernel has
 * it (Linux).
 */
export function socketKeepalive(socket: net.Socket | number): TcpKeepalive {
  const fd = typeof socket === 'number' ? socket : fdOrThrow(socket);
  return nativeCall(() => native.tcpKeepalive(fd));
}

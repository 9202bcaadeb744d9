/**
 * The RFC 6455 opening handshake over Node's own http/https client: GET with Upgrade, checked
 * Sec-WebSocket-Accept, no extension and no subprotocol. What comes back is the raw socket, which
 * the connection then reads with its own frame reader.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface Upgraded {
  socket: Socket;
  /** Bytes the server sent after its 101 response in the same read: the first frames. */
  head: Buffer;
}

/**
 * Opens `url` (ws: or wss:); rejects with a one-line reason when the server refuses, is too slow,
 * or `signal` aborts first.
 */
export function upgrade(url: string, timeoutMs: number, signal?: AbortSignal): Promise<Upgraded> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new Error(`invalid WebSocket URL ${url}`));
      return;
    }
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
      reject(new Error(`a WebSocket URL starts with ws:// or wss://, not ${u.protocol}`));
      return;
    }
    const key = randomBytes(16).toString('base64');
    const expect = createHash('sha1').update(key + GUID).digest('base64');
    const secure = u.protocol === 'wss:';
    const opts: http.RequestOptions = {
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port || (secure ? 443 : 80),
      path: `${u.pathname}${u.search}`,
      method: 'GET',
      // Our own socket for this stream: never a pooled one.
      agent: false,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Version': '13',
        Host: u.host,
      },
    };
    // https.request sends SNI from `host` itself (and, as RFC 6066 asks, none for an IP address).
    const req = secure ? https.request(opts) : http.request(opts);
    let settled = false;
    const done = (err: Error | null, up?: Upgraded): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(up as Upgraded);
    };
    const timer = setTimeout(() => done(new Error(`opening handshake timed out after ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener('abort', () => done(new Error('closed before open')), { once: true });
    req.on('error', (e) => done(e));
    req.on('response', (res) => {
      res.resume();
      done(new Error(`handshake refused: HTTP ${res.statusCode}`));
    });
    req.on('upgrade', (res, socket: Socket, head: Buffer) => {
      const why =
        res.headers['sec-websocket-accept'] !== expect
          ? 'a wrong Sec-WebSocket-Accept'
          : String(res.headers.upgrade).toLowerCase() !== 'websocket'
            ? `Upgrade: ${String(res.headers.upgrade)}`
            : res.headers['sec-websocket-extensions'] !== undefined
              ? 'an extension we did not offer'
              : res.headers['sec-websocket-protocol'] !== undefined
                ? 'a subprotocol we did not offer'
                : undefined;
      if (why !== undefined) {
        socket.destroy();
        done(new Error(`handshake refused: the server answered with ${why}`));
        return;
      }
      if (settled) {
        socket.destroy();
        return;
      }
      socket.setNoDelay(true);
      socket.setTimeout(0);
      done(null, { socket, head });
    });
    req.end();
  });
}

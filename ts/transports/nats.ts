/**
 * NATS publisher: the pipeline's framed batches go out as one NATS message per v2 frame, on
 * `<prefix>.trades.<SYMBOL>` (trades and gap notices of that symbol) and `<prefix>.heartbeat`.
 * Consumers bootstrap and resync by request/reply on `<prefix>.snapshot`; the reply is a v2 header
 * holding the encoder's state at the point between two published frames (docs/wire-format.md, "NATS").
 *
 * Core NATS delivers at most once: nothing here retries. While the connection is down, frames are
 * counted as drops instead of piling up in the client's buffer; consumers see the hole in the
 * per-asset sequence numbers (or their own reconnect) and resync from a fresh snapshot. The same
 * holds when the connection stays up but the server stops reading it (stopped, swapping, its own
 * slow consumers): what the server has not confirmed (a PING answered after it) is bounded by
 * `maxUnconfirmedBytes`; past it, frames are dropped and counted until the server catches up, so
 * a stalled server cannot make the forwarder's memory grow without bound.
 */
import { randomUUID } from 'node:crypto';
import { headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import type { Encoder } from '../codec';
import { frameAssets, NO_ASSET } from './nats-route';
import { PerpSignalError } from '../errors';
import { noopLogger, RateLimitedLog, type Logger } from '../observe/logger';
import type { Transport } from '../pipeline';
import type { GapEvent } from '../types';
import {
  encodePresence,
  natsSubjects,
  PRESENCE_TTL_MS,
  parsePresence,
  PUBLISHER_HEADER,
  SEQ_HEADER,
  SEQS_HEADER,
  type NatsSubjects,
} from './nats-subjects';

export interface NatsPublisherOptions {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222`; several for a cluster. */
  url: string | string[];
  /** Subject prefix; default `perp`. */
  prefix?: string;
  /** The pipeline's encoder (wire v2): snapshot replies read its state. */
  encoder: Encoder;
  logger?: Logger;
  /** Give up the first connect after this long; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /**
   * Bytes published that the server may not have read yet (no PING sent after them has been
   * answered); past this, frames are dropped (counted, and seen by consumers as a hole) until it
   * catches up. Default 8 MiB.
   */
  maxUnconfirmedBytes?: number;
}

export interface NatsPublisherStats {
  /** NATS messages published (one per frame). */
  published: number;
  /** Frames not published: connection down, or a frame that could not be routed. */
  dropped: number;
  /** Snapshot requests answered. */
  snapshots: number;
  /** Reconnects of the NATS client since connect. */
  reconnects: number;
  /** Times publishing stopped because the server left `maxUnconfirmedBytes` unconfirmed. */
  stalls: number;
  /** Bytes published and not yet confirmed by the server (approximate: payload, subject, headers). */
  unconfirmedBytes: number;
  connected: boolean;
}

const DEFAULT_MAX_UNCONFIRMED = 8 * 1024 * 1024;
/** Per-message bytes besides payload and subject: the PUB/HPUB line and the sequence header. */
const MSG_OVERHEAD = 64;

export class NatsPublisher implements Transport {
  readonly name = 'nats';
  readonly subjects: NatsSubjects;
  /** This publisher's identity (one per encoder): a consumer resyncs when another one takes over. */
  readonly id = randomUUID();
  private readonly logger: Logger;
  private readonly rateLog: RateLimitedLog;
  /** Subject of each asset's frames, by asset index. */
  private readonly tradeSubjects: string[];
  /** Frames routed to each asset so far (published or dropped): the `Perp-Seq` of its last one. */
  private readonly seqs: number[];
  private readonly seqHeader: MsgHdrs = headers();
  private readonly seqOpts = { headers: this.seqHeader };
  private readonly presence = new Map<string, number>();
  private readonly subs: Subscription[] = [];
  private up = true;
  private closing?: Promise<void>;
  private readonly counters = { published: 0, dropped: 0, snapshots: 0, reconnects: 0, stalls: 0 };
  /** Bytes handed to the client so far, and how many of them the server has confirmed. */
  private sentBytes = 0;
  private confirmedBytes = 0;
  private probing = false;
  private stalled = false;
  private readonly probeEvery: number;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly encoder: Encoder,
    subjects: NatsSubjects,
    logger: Logger,
    private readonly maxUnconfirmed: number,
  ) {
    // A PING per quarter of the bound: a live server confirms long before the bound is reached.
    this.probeEvery = Math.max(1, Math.floor(maxUnconfirmed / 4));
    this.logger = logger;
    this.rateLog = new RateLimitedLog(logger);
    this.subjects = subjects;
    this.tradeSubjects = encoder.symbols.map((s) => subjects.trades(s));
    this.seqs = encoder.symbols.map(() => 0);
    this.subs.push(
      nc.subscribe(this.subjects.snapshot, { callback: (_err, msg) => this.answerSnapshot(msg) }),
      nc.subscribe(this.subjects.presence, {
        callback: (_err, msg) => {
          const p = parsePresence(msg.data);
          if (!p) return;
          if (p.bye) this.presence.delete(p.id);
          else this.presence.set(p.id, Date.now());
        },
      }),
    );
    // Sent before any frame of this encoder: consumers of an earlier publisher (a restarted
    // forwarder starts its sequences afresh) resync instead of decoding against the old state.
    nc.publish(this.subjects.publisher, encodePresence({ id: this.id }));
    void this.watchStatus();
  }

  /**
   * Connects to NATS and starts answering snapshot requests. An unreachable server fails with
   * `E_NATS_CONNECT` naming the URL; later outages are ridden out by the client's reconnects.
   */
  static async connect(opts: NatsPublisherOptions): Promise<NatsPublisher> {
    const logger = opts.logger ?? noopLogger;
    const subjects = natsSubjects(opts.prefix ?? 'perp');
    if (opts.encoder.wire !== 'v2') {
      throw new PerpSignalError('E_NATS_WIRE', 'NATS carries wire v2 only (per-asset sequence numbers): use --wire v2');
    }
    const maxUnconfirmed = opts.maxUnconfirmedBytes ?? DEFAULT_MAX_UNCONFIRMED;
    if (!(maxUnconfirmed > 0)) {
      throw new PerpSignalError('E_USAGE', `maxUnconfirmedBytes ${maxUnconfirmed} must be a positive number of bytes`);
    }
    const nc = await connectOrExplain(opts.url, {
      name: opts.name ?? 'perp-signal publisher',
      timeout: opts.connectTimeoutMs ?? 5000,
    });
    try {
      const pub = new NatsPublisher(nc, opts.encoder, subjects, logger, maxUnconfirmed);
      // The snapshot responder must be registered on the server before anyone is told we are up.
      await nc.flush();
      logger.info('nats publisher connected', { server: nc.getServer(), prefix: pub.subjects.prefix });
      return pub;
    } catch (e) {
      await nc.close();
      throw e;
    }
  }

  /**
   * Publishes every frame of `framed` on its subject. The NATS client keeps references to the
   * frames until it writes them (the next microtask): `framed` must not be modified afterwards.
   */
  publish(framed: Buffer): void {
    let assets: Int32Array;
    try {
      assets = frameAssets(framed);
    } catch (e) {
      this.counters.dropped += countFrames(framed);
      // Which assets lost frames is unknown: every consumer must see a hole and resync.
      for (let a = 0; a < this.seqs.length; a++) this.seqs[a] += 1;
      this.logger.error('nats publisher got a batch it cannot split into frames; dropped', {
        error: e instanceof Error ? e.message : String(e),
      });
      return;
    }
    if (!this.stalled && this.sentBytes - this.confirmedBytes > this.maxUnconfirmed) {
      this.stalled = true;
      this.counters.stalls += 1;
      this.logger.warn('nats server is not reading what we publish; frames are dropped until it catches up', {
        server: this.nc.getServer(),
        unconfirmedBytes: this.sentBytes - this.confirmedBytes,
      });
    }
    if (!this.up || this.closing || this.stalled) {
      // Counted all the same: the next frame a consumer gets shows the hole, whatever its size.
      for (let i = 0; i < assets.length; i++) if (assets[i] >= 0 && assets[i] < this.seqs.length) this.seqs[assets[i]] += 1;
      this.counters.dropped += assets.length;
      return;
    }
    let off = 0;
    for (let i = 0; i < assets.length; i++) {
      const len = framed.readUInt32LE(off);
      const payload = framed.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      const a = assets[i];
      const subject = a >= 0 ? this.tradeSubjects[a] : a === NO_ASSET ? this.subjects.heartbeat : undefined;
      if (subject === undefined) {
        this.counters.dropped += 1;
        this.rateLog.warn('route', 'nats publisher dropped a frame it cannot route', { asset: a, bytes: len });
        continue;
      }
      // One headers object for all: the client encodes it within publish().
      if (a >= 0) this.seqHeader.set(SEQ_HEADER, String(++this.seqs[a]));
      try {
        this.nc.publish(subject, payload, a >= 0 ? this.seqOpts : undefined);
        this.counters.published += 1;
        this.sentBytes += len + subject.length + MSG_OVERHEAD;
      } catch (e) {
        this.counters.dropped += 1;
        this.rateLog.warn('publish', 'nats publish failed', { subject, error: e instanceof Error ? e.message : String(e) });
      }
    }
    this.probe();
  }

  /**
   * Trades of `g.symbol` are missing and no gap notice carries it (the pipeline could not write
   * one): skip a number of the asset's `Perp-Seq`, so its consumers see a hole at its next frame,
   * say lost and resync, as for a dropped message.
   */
  uncarriedGap(g: GapEvent): void {
    const a = this.encoder.symbols.indexOf(g.symbol);
    if (a >= 0) this.seqs[a] += 1;
    else for (let i = 0; i < this.seqs.length; i++) this.seqs[i] += 1;
  }

  /**
   * Asks the server to confirm everything sent so far (PING/PONG) once a quarter of the bound is
   * unconfirmed; one request at a time.
   */
  private probe(): void {
    if (this.probing || this.closing || this.sentBytes - this.confirmedBytes < this.probeEvery) return;
    this.probing = true;
    const mark = this.sentBytes;
    this.nc.flush().then(
      () => {
        this.probing = false;
        this.confirm(mark);
        this.probe();
      },
      // The connection dropped: the status watcher takes it from here.
      () => {
        this.probing = false;
      },
    );
  }

  private confirm(mark: number): void {
    this.confirmedBytes = Math.max(this.confirmedBytes, mark);
    // A PONG for a PING sent long before the stall does not end it: only one that leaves the
    // unconfirmed bytes within the bound (the probe that follows covers the rest).
    if (this.stalled && this.sentBytes - this.confirmedBytes <= this.maxUnconfirmed) {
      this.stalled = false;
      this.logger.info('nats server reads again; publishing resumes', { server: this.nc.getServer() });
    }
  }

  /** For the forwarder's start-up log line. */
  get where(): string {
    return `nats ${this.nc.getServer()} subjects ${this.subjects.prefix}.trades.<SYMBOL>`;
  }

  consumers(): number {
    const cutoff = Date.now() - PRESENCE_TTL_MS;
    for (const [id, at] of this.presence) if (at < cutoff) this.presence.delete(id);
    return this.presence.size;
  }

  drops(): number {
    return this.counters.dropped;
  }

  stats(): NatsPublisherStats {
    return { ...this.counters, unconfirmedBytes: this.sentBytes - this.confirmedBytes, connected: this.up && !this.nc.isClosed() };
  }

  /** Sends what is buffered, then closes the connection. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const s of this.subs) s.unsubscribe();
      try {
        await this.nc.drain();
      } catch {
        await this.nc.close();
      }
    })();
    return this.closing;
  }

  /**
   * Runs between two `publish` calls (the pipeline encodes and publishes in one synchronous step), so
   * the encoder's state is exactly the state after the last frame handed to NATS: frames the consumer
   * gets after this reply continue from it.
   */
  private answerSnapshot(msg: Msg): void {
    if (!msg.reply) return;
    // header(), not snapshot(): a snapshot frame takes a stream sequence number, and this reply is
    // not part of the stream the other transports carry.
    const h = headers();
    h.set(PUBLISHER_HEADER, this.id);
    h.set(SEQS_HEADER, this.seqs.join(','));
    msg.respond(this.encoder.header(), { headers: h });
    this.counters.snapshots += 1;
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.up = false;
          this.logger.warn('nats publisher disconnected; frames are dropped until it reconnects', { server: s.server });
          break;
        case 'reconnect':
          this.up = true;
          this.counters.reconnects += 1;
          // A new connection: nothing of ours is waiting in the old one's buffers.
          this.confirm(this.sentBytes);
          this.logger.info('nats publisher reconnected', { server: s.server });
          break;
        case 'error':
          this.logger.warn('nats error', { error: s.error.message });
          break;
        default:
          break;
      }
    }
  }
}

function countFrames(framed: Buffer): number {
  let n = 0;
  for (let off = 0; off + 4 <= framed.length; off += 4 + framed.readUInt32LE(off)) n += 1;
  return n;
}

/** Connects with endless reconnects; a first connect that fails says which URL and what to do. */
export async function connectOrExplain(
  url: string | string[],
  opts: { name: string; timeout: number },
): Promise<NatsConnection> {
  const servers = Array.isArray(url) ? url : [url];
  try {
    return await connect({
      servers,
      name: opts.name,
      timeout: opts.timeout,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      pingInterval: 10_000,
      maxPingOut: 2,
    });
  } catch (e) {
    throw new PerpSignalError(
      'E_NATS_CONNECT',
      `cannot connect to NATS at ${servers.join(', ')}: ${e instanceof Error ? e.message : String(e)}; ` +
        'start nats-server there or pass the right --url',
    );
  }
}

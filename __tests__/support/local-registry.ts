/**
 * A minimal npm registry on 127.0.0.1 for install tests: it serves packuments and tarballs that the
 * test registers, answers 404 for everything else, and records every request, so a test can install
 * a package the way a user does (by name, optional dependencies chosen by npm) with no network.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** The parts of a package.json that npm reads from a packument version. */
export interface Manifest {
  name: string;
  version: string;
  [field: string]: unknown;
}

const MANIFEST_FIELDS = [
  'dependencies',
  'optionalDependencies',
  'peerDependencies',
  'peerDependenciesMeta',
  'bin',
  'engines',
  'os',
  'cpu',
  'libc',
  'main',
];

export class LocalRegistry {
  /** Every request path, in order (URL-decoded). */
  readonly requests: string[] = [];
  private readonly versions = new Map<string, Map<string, Record<string, unknown>>>();
  private readonly tarballs = new Map<string, string>();
  private readonly server: http.Server;
  private base = '';

  constructor() {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return `${this.base}/`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Publishes `manifest` at its version. With a tarball file, npm can install it; without one, its
   * tarball URL answers 404 (npm may read the manifest, e.g. to skip another platform's package,
   * but must never need the bytes).
   */
  add(manifest: Manifest, tarballFile?: string): void {
    if (!this.base) throw new Error('LocalRegistry.add before listen()');
    const id = `${manifest.name.replace('/', '__')}-${manifest.version}.tgz`;
    const version: Record<string, unknown> = { name: manifest.name, version: manifest.version };
    for (const field of MANIFEST_FIELDS) {
      if (manifest[field] !== undefined) version[field] = manifest[field];
    }
    const dist: Record<string, string> = { tarball: `${this.base}/-/tarballs/${id}` };
    if (tarballFile) {
      const bytes = fs.readFileSync(tarballFile);
      dist.integrity = `sha512-${crypto.createHash('sha512').update(bytes).digest('base64')}`;
      dist.shasum = crypto.createHash('sha1').update(bytes).digest('hex');
      this.tarballs.set(`/-/tarballs/${id}`, tarballFile);
    }
    version.dist = dist;
    const byVersion = this.versions.get(manifest.name) ?? new Map<string, Record<string, unknown>>();
    byVersion.set(manifest.version, version);
    this.versions.set(manifest.name, byVersion);
  }

  /** Paths of tarballs that were requested (served or not). */
  tarballRequests(): string[] {
    return this.requests.filter((p) => p.startsWith('/-/tarballs/'));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    this.requests.push(pathname);
    const file = this.tarballs.get(pathname);
    if (req.method === 'GET' && file) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
      return;
    }
    const byVersion = req.method === 'GET' ? this.versions.get(pathname.slice(1)) : undefined;
    if (!byVersion) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not found' }));
      return;
    }
    const versions = Object.fromEntries(byVersion);
    const latest = [...byVersion.keys()].pop() as string;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name: pathname.slice(1), 'dist-tags': { latest }, versions }));
  }
}

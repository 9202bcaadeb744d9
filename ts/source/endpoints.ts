/** Where every command connects: flags, then environment, then Binance mainnet. */
import type { Options } from 'yargs';
import { PerpSignalError } from '../errors';

export const DEFAULT_WS_URL = 'wss://fstream.binance.com/public';
export const DEFAULT_REST_URL = 'https://fapi.binance.com';

export interface Endpoints {
  /** WebSocket base; the client appends `/stream?streams=...`. */
  wsUrl: string;
  /** REST base, e.g. `https://fapi.binance.com`. */
  restUrl: string;
}

/** The yargs options `--ws-url` and `--rest-url`, shared by every command that connects. */
export const endpointOptions = {
  'ws-url': {
    type: 'string',
    describe: `WebSocket base URL (env PERP_SIGNAL_WS_URL; default ${DEFAULT_WS_URL}); /stream?streams=... is appended`,
  },
  'rest-url': {
    type: 'string',
    describe: `REST base URL (env PERP_SIGNAL_REST_URL; default ${DEFAULT_REST_URL})`,
  },
} satisfies Record<string, Options>;

export const WS_PROTOCOLS = ['ws:', 'wss:'];
export const REST_PROTOCOLS = ['http:', 'https:'];

/**
 * Resolves the endpoints from parsed argv (`ws-url`/`wsUrl`, `rest-url`/`restUrl`) and env. A
 * value that is not a URL of the right protocol throws PerpSignalError `E_BAD_URL` naming where it
 * came from (`--ws-url`, `PERP_SIGNAL_WS_URL`...), as the command line's errors name their flags.
 */
export function resolveEndpoints(
  argv: { wsUrl?: string; restUrl?: string; 'ws-url'?: string; 'rest-url'?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
): Endpoints {
  const pick = (...vals: [string, string | undefined][]): [string, string] | undefined =>
    vals.find((v): v is [string, string] => v[1] !== undefined && v[1] !== '');
  const ws = pick(['--ws-url', argv.wsUrl], ['--ws-url', argv['ws-url']], ['env PERP_SIGNAL_WS_URL', env.PERP_SIGNAL_WS_URL]);
  const rest = pick(['--rest-url', argv.restUrl], ['--rest-url', argv['rest-url']], ['env PERP_SIGNAL_REST_URL', env.PERP_SIGNAL_REST_URL]);
  if (ws) checkUrl(ws[0], ws[1], WS_PROTOCOLS, DEFAULT_WS_URL);
  if (rest) checkUrl(rest[0], rest[1], REST_PROTOCOLS, DEFAULT_REST_URL);
  return {
    wsUrl: trimSlash(ws?.[1] ?? DEFAULT_WS_URL),
    restUrl: trimSlash(rest?.[1] ?? DEFAULT_REST_URL),
  };
}

/**
 * Throws `E_BAD_URL` unless `value` is a URL of one of `protocols`. `name` is what the user gave
 * it as: a flag on the command line (`--ws-url`), an option in the library (`wsUrl`).
 */
export function checkUrl(name: string, value: string | undefined, protocols: readonly string[], example: string): void {
  if (value === undefined) return;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || !protocols.includes(url.protocol)) {
    throw new PerpSignalError('E_BAD_URL', `${name} ${JSON.stringify(value)} is not a ${protocols.join(' or ')} URL (e.g. ${example})`);
  }
}

function trimSlash(u: string): string {
  return u.replace(/\/+$/, '');
}

/** `--api-key` (env PERP_SIGNAL_API_KEY): enables gap backfill from /fapi/v1/historicalTrades. */
export const apiKeyOption = {
  'api-key': {
    type: 'string',
    describe: 'Binance API key for filling gaps from historicalTrades (default: env PERP_SIGNAL_API_KEY, else none: gaps are reported, not filled)',
  },
} satisfies Record<string, Options>;

export function resolveApiKey(
  argv: { apiKey?: string; 'api-key'?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  return [argv.apiKey, argv['api-key'], env.PERP_SIGNAL_API_KEY].find((v) => v !== undefined && v !== '');
}

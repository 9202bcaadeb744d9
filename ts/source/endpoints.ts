/** Where every command connects: flags, then environment, then Binance mainnet. */
import type { Options } from 'yargs';

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

/** Resolves the endpoints from parsed argv (`ws-url`/`wsUrl`, `rest-url`/`restUrl`) and env. */
export function resolveEndpoints(
  argv: { wsUrl?: string; restUrl?: string; 'ws-url'?: string; 'rest-url'?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
): Endpoints {
  const pick = (...vals: (string | undefined)[]): string | undefined => vals.find((v) => v !== undefined && v !== '');
  return {
    wsUrl: trimSlash(pick(argv.wsUrl, argv['ws-url'], env.PERP_SIGNAL_WS_URL) ?? DEFAULT_WS_URL),
    restUrl: trimSlash(pick(argv.restUrl, argv['rest-url'], env.PERP_SIGNAL_REST_URL) ?? DEFAULT_REST_URL),
  };
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

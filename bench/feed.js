/**
 * Shared by the transport benchmarks (bench/tcp.js, bench/nats.js): a synthetic v2 trade stream
 * made at a fixed rate, and the line protocol between a bench and its child processes.
 */
'use strict';
const readline = require('node:readline');

const nowNs = () => Number(process.hrtime.bigint());

const SYMBOLS = [
  { symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.010', priceScale: 2, qtyScale: 3, p: 6180030, id: 5266583935 },
  { symbol: 'ETHUSDT', refPrice: '2650.12', refQty: '0.100', priceScale: 2, qtyScale: 3, p: 265012, id: 4100000000 },
];

/** The codec's asset specs of SYMBOLS. */
function assetSpecs() {
  return SYMBOLS.map(({ symbol, refPrice, refQty, priceScale, qtyScale }) => ({ symbol, refPrice, refQty, priceScale, qtyScale }));
}

function dec(units, d) {
  const s = String(units).padStart(d + 1, '0');
  return `${s.slice(0, s.length - d)}.${s.slice(s.length - d)}`;
}

/** Trade k of the stream (alternating symbols, random-walk price, consecutive ids per symbol). */
function makeTrade(k, state, mono) {
  const a = state[k & 1];
  a.p += ((k * 2654435761) >>> 28) - 7;
  const ms = Date.now();
  return {
    symbol: a.symbol,
    tradeTime: ms,
    eventTime: ms,
    tradeId: a.id++,
    price: dec(a.p, 2),
    qty: dec(1 + ((k * 40503) % 2500), 3),
    maker: (k & 2) === 0,
    type: 'MARKET',
    recvWallNs: BigInt(ms) * 1000000n,
    recvMonoNs: mono,
  };
}

/**
 * Runs `emit(from, to, stampNs)` for the trades due at `rate` from a 1 ms timer (as trades off a
 * socket arrive in bursts), until `total`; rate 0: as fast as possible, 256 per batch. Resolves
 * with the send stamp of every trade and the time taken.
 */
function paced(rate, total, emit) {
  return new Promise((resolve) => {
    const stamps = new Float64Array(total);
    const t0 = nowNs();
    let k = 0;
    const step = () => {
      const now = nowNs();
      const due = rate > 0 ? Math.min(total, Math.floor(((now - t0) * rate) / 1e9) + 1) : Math.min(total, k + 256);
      if (due > k) {
        stamps.fill(now, k, due);
        emit(k, due, now);
        k = due;
      }
      if (k < total) (rate > 0 ? setTimeout : setImmediate)(step, 0);
      else resolve({ stamps, seconds: (nowNs() - t0) / 1e9 });
    };
    step();
  });
}

const lines = (stream, onLine) => readline.createInterface({ input: stream }).on('line', onLine);
const send = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

module.exports = { nowNs, SYMBOLS, assetSpecs, dec, makeTrade, paced, lines, send };

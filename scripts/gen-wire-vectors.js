#!/usr/bin/env node
// Regenerates testdata/wire-vectors.json from the current codec (npm run build first). The file is
// a regression fixture read by both `cargo test` and jest: regenerate only for an intended change
// of the wire format, and review the diff byte by byte (the v1 worked example comes from the spec).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { Encoder } = require('../dist/index.js');

const T0 = 1723161256322;
const trade = (symbol, time, tradeId, price, qty, maker, type = 'MARKET') => ({
  symbol, tradeTime: time, eventTime: time, tradeId, price, qty, maker, type, recvWallNs: 0n, recvMonoNs: 0n,
});

function build(name, wire, assets, refTime, ops, doc) {
  const e = new Encoder({ wire, assets, refTime });
  const header = e.header().toString('hex');
  const out = [];
  for (const op of ops) {
    let bytes;
    if (op.trade) bytes = e.encode(trade(...op.trade));
    else if (op.gap) bytes = e.gap(op.gap);
    else if (op.heartbeat !== undefined) bytes = e.heartbeat(op.heartbeat);
    else if (op.snapshot) bytes = e.snapshot();
    const o = { ...op };
    if (op.trade) {
      const [symbol, time, tradeId, price, qty, maker, type] = op.trade;
      o.trade = { symbol, time, tradeId, price, qty, maker, type: type ?? 'MARKET' };
    }
    o.payload = bytes.toString('hex');
    out.push(o);
  }
  return { name, doc: !!doc, wire, refTime, assets, header, ops: out };
}

const btcEth = [
  { symbol: 'BTCUSDT', refPrice: '60000', refQty: '1' },
  { symbol: 'ETHUSDT', refPrice: '2500', refQty: '1' },
];
const scaled = [
  { symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.001', priceScale: 2, qtyScale: 3 },
  { symbol: 'ETHUSDT', refPrice: '2600.00', refQty: '0.01', priceScale: 2, qtyScale: 3 },
];
const many = Array.from({ length: 33 }, (_, i) => ({
  symbol: `A${i}USDT`, refPrice: '1.0000', refQty: '1', priceScale: 4, qtyScale: 0,
}));

const vectors = [
  build('v1 spec worked example', 'v1', btcEth, 1000, [{ trade: ['ETHUSDT', 1135, 1, '2500.0015', '0.0015', true] }], true),
  build('v1 mixed deltas, quantity 0.009 rounds to 900', 'v1', btcEth, T0, [
    { trade: ['BTCUSDT', T0 + 5, 1, '60000.10', '0.009', false] },
    { trade: ['BTCUSDT', T0 + 5, 2, '59999.90', '0.001', true] },
    { trade: ['ETHUSDT', T0 + 300, 3, '2499.99', '12.5', false] },
    { trade: ['BTCUSDT', T0 + 1, 4, '60100', '100', false] },
  ], true),
  build('v2 trades: plain, id jump, type change, scale growth', 'v2', scaled, T0, [
    { trade: ['BTCUSDT', T0 + 10, 1, '61800.40', '0.006', true] },
    { trade: ['BTCUSDT', T0 + 10, 2, '61800.30', '0.199', false] },
    { trade: ['ETHUSDT', T0 + 12, 900, '2600.01', '1.500', false] },
    { trade: ['BTCUSDT', T0 + 20, 10, '61790.00', '2.000', false, 'LIQUIDATION'] },
    { trade: ['BTCUSDT', T0 + 21, 11, '61790.005', '0.001', false, 'LIQUIDATION'] },
  ], true),
  build('v2 control frames: gap, heartbeat, snapshot', 'v2', scaled, T0, [
    { trade: ['BTCUSDT', T0 + 10, 41, '61800.40', '0.006', true] },
    { gap: { symbol: 'BTCUSDT', lastId: 41, nextId: 50, reason: 'reconnect' } },
    { trade: ['BTCUSDT', T0 + 900, 50, '61801.00', '0.010', false] },
    { heartbeat: T0 + 1000 },
    { snapshot: true },
  ], true),
  build('v2 asset index past 30 (escape)', 'v2', many, 0, [
    { trade: ['A32USDT', 5, 1, '1.0001', '7', false] },
    { trade: ['A3USDT', 6, 1, '0.9999', '8', true] },
  ], false),
];

const hostile = [
  { name: 'v1 truncated trade', wire: 'v1', payload: '0002', code: 'E_TRUNCATED' },
  { name: 'v1 unknown asset', wire: 'v1', payload: '05000000', code: 'E_UNKNOWN_ASSET' },
  { name: 'v1 trailing bytes', wire: 'v1', payload: '0000000000', code: 'E_TRAILING_BYTES' },
  { name: 'v1 varint longer than 10 bytes', wire: 'v1', payload: '00ffffffffffffffffffffff', code: 'E_VARINT_TOO_LONG' },
  { name: 'v1 varint overflowing u64', wire: 'v1', payload: '00ffffffffffffffffff02', code: 'E_VARINT_OVERFLOW' },
  { name: 'v2 unknown kind', wire: 'v2', payload: '04', code: 'E_UNKNOWN_KIND' },
  { name: 'v2 unknown asset', wire: 'v2', payload: '85000000000000', code: 'E_UNKNOWN_ASSET' },
  { name: 'v2 escaped asset index overflowing', wire: 'v2', payload: '9fffffffffffffffffff01000000', code: 'E_UNKNOWN_ASSET' },
  { name: 'v2 truncated trade', wire: 'v2', payload: '8000', code: 'E_TRUNCATED' },
  { name: 'v2 reserved extras flag', wire: 'v2', payload: 'a0000040000000', code: 'E_BAD_FLAGS' },
  { name: 'v2 scale above 18', wire: 'v2', payload: 'a000000163030000', code: 'E_BAD_HEADER' },
  { name: 'v2 varint longer than 10 bytes', wire: 'v2', payload: '800000ffffffffffffffffffffff', code: 'E_VARINT_TOO_LONG' },
  { name: 'header: empty', header: '', code: 'E_TRUNCATED' },
  { name: 'header: unknown magic', header: '7b2273', code: 'E_BAD_MAGIC' },
  { name: 'header: future v2+ version', header: '50535703000100', code: 'E_WRONG_VERSION' },
  { name: 'header: v1 with zero assets', header: '0100', code: 'E_BAD_HEADER' },
  { name: 'header: v2 asset count lying about its size', header: '50535702008008', code: 'E_TRUNCATED' },
  { name: 'header: v2 asset count above 1024', header: '505357020081800100', code: 'E_BAD_HEADER' },
];
// Hostile payloads run against the header of the first vector of their wire.
const doc = {
  about:
    'Wire test vectors shared by cargo test (crates/perp-signal-core/tests/vectors.rs) and jest (__tests__/codec.vectors.test.ts). ' +
    'Each vector: an encoder built from assets/refTime produces header, then each op produces payload (hex, no length prefix). ' +
    'Hostile: payload decoded after the header of the first vector of the same wire, or header decoded alone; code = expected error.',
  vectors,
  hostile,
};
fs.writeFileSync(path.join(__dirname, '..', 'testdata', 'wire-vectors.json'), JSON.stringify(doc, null, 1) + '\n');

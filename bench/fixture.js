'use strict';
// Where the benchmarks find the real capture: $PERP_SIGNAL_SHARED, else ../shared beside the
// checkout (as CI lays it out), else /work/shared.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const shared = [process.env.PERP_SIGNAL_SHARED, path.join(root, '..', 'shared'), '/work/shared'].find(
  (d) => d && fs.existsSync(path.join(d, 'fixtures')),
);

module.exports = {
  root,
  fixture: path.join(shared ?? path.join(root, '..', 'shared'), 'fixtures', 'binance-usdm-btcusdt-trades-20240808.txt.gz'),
};
